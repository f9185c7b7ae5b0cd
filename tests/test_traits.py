"""Every node class declares every trait; passes and the runtime read traits, never kind strings or class lists."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

import squirrel_graph.graph as ir
from squirrel_graph.graph import TRAITS, Node, traits, undeclared_traits

ROOT = Path(__file__).resolve().parent.parent


def _all_node_classes() -> list[type[Node]]:
    out, todo = [], [Node]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            out.append(sub)
            todo.append(sub)
    return out


def test_the_ir_exports_many_node_classes_and_all_are_found():
    exported = {v for v in vars(ir).values() if isinstance(v, type) and issubclass(v, Node) and v is not Node}
    assert len(exported) >= 28
    assert exported <= set(_all_node_classes())


@pytest.mark.parametrize("cls", _all_node_classes(), ids=lambda c: c.__name__)
def test_every_node_class_declares_every_trait(cls):
    assert undeclared_traits(cls) == [], f"{cls.__name__} must declare its traits with @traits(...)"


def test_a_class_that_forgets_traits_is_caught():
    @dataclass(frozen=True, eq=False)
    class Forgot(ir.Map):
        pass

    assert undeclared_traits(Forgot) == ["@traits(...) missing on the class itself"]
    assert undeclared_traits(traits(item_independent=True)(Forgot)) == []
    assert Forgot.item_independent is True and Forgot.per_key is False


def test_an_unknown_trait_is_refused():
    with pytest.raises(TypeError, match="unknown trait"):
        traits(per_item=True)


def test_traits_drive_legality_for_subclasses_too():
    assert ir.NumbaMap.fusable and ir.NumbaMap.item_independent and not ir.NumbaMap.per_key
    assert ir.Shuffle(size=10).differs_between_processes and not ir.Shuffle(size=10, seed=1).differs_between_processes
    assert ir.Equalize().lets_split_pass("worker") and not ir.Equalize().lets_split_pass("rank")
    assert not ir.Batched().lets_split_pass("rank") and ir.Map().lets_split_pass("rank")
    fused = ir.Fused(nodes=(ir.Map(), ir.Flatten()), node_ids=("1", "2"))
    assert fused.keeps_key_counts() and not fused.preserves_count
    assert not ir.Fused(nodes=(ir.Map(), ir.Filter())).keeps_key_counts()
    assert set(TRAITS) >= {"item_independent", "order_sensitive", "preserves_count", "per_key", "barrier"}


KIND_LISTS = ("_CROSSABLE", "_PER_KEY_KINDS", "_COUNT_PRESERVING", "_LOOP_KINDS")


def test_passes_never_dispatch_on_kind_strings():
    offenders = []
    for path in (ROOT / "optimizers").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "kind":
                offenders.append(f"{path.name}:{node.lineno} reads .kind")
            if isinstance(node, ast.Name) and node.id in KIND_LISTS:
                offenders.append(f"{path.name}:{node.lineno} uses {node.id}")
    assert not offenders, offenders
