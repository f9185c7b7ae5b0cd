"""Inlining simple pure functions into generated loops: only when provably identical, never a different result."""

from __future__ import annotations

import importlib
import sys
import traceback

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from squirrel_graph import IterableSource
from squirrel_graph.errors import stage_of
from squirrel_graph.runtime.inline import inline_expression

OFFSET = 5


def plus_one(x):
    return x + 1


def twice(x):
    """A docstring does not prevent inlining."""
    return x * 2


def branchy(x):
    return x // 3 if x % 2 else -x


def keep(x):
    return x % 3 != 0


def uses_global(x):
    return x + OFFSET


def uses_builtin(x):
    return abs(x)


def with_default(x, k=2):
    return x * k


def two_statements(x):
    y = x + 1
    return y


def decorator(fn):
    def wrapper(x):
        return fn(x) + 100

    wrapper.__name__ = fn.__name__
    return wrapper


@decorator
def decorated(x):
    return x


def make_closure(k):
    def closure(x):
        return x * k

    return closure


def test_simple_pure_functions_and_lambdas_are_inlined():
    assert inline_expression(plus_one, "_x") == "(_x + 1)"
    assert inline_expression(twice, "_x") == "(_x * 2)"
    assert inline_expression(branchy, "_x") == "(_x // 3 if _x % 2 else -_x)"
    square = lambda y: y * y  # noqa: E731
    assert inline_expression(square, "_x") == "(_x * _x)"


@pytest.mark.parametrize(
    "fn", [uses_global, uses_builtin, with_default, two_statements, decorated, make_closure(3), len, str.upper]
)
def test_functions_that_read_names_or_are_not_simple_are_called_not_inlined(fn):
    assert inline_expression(fn, "_x") is None


@pytest.mark.parametrize(
    "before, after",
    [
        ("x + 1", "x - 1000"),
        ("x in (1, 2)", "x in (1, 3)"),
        ("x in (1, 2)", "x in {1, 2}"),
        ("x * 2", "x * 2.0"),
        ("x + 0.0", "x + -0.0"),
    ],
)
def test_an_edited_source_file_is_never_inlined(tmp_path, monkeypatch, before, after):
    name = f"edited_mod_{abs(hash((before, after)))}"
    mod = tmp_path / f"{name}.py"
    mod.write_text(f"def f(x):\n    return {before}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module(name)
    try:
        mod.write_text(f"def f(x):\n    return {after}\n")  # the file no longer matches the loaded code
        import linecache

        linecache.checkcache(str(mod))
        assert inline_expression(module.f, "_x") is None
        loaded = [eval(before, {"x": x}) for x in (1, 2, 3)]
        assert IterableSource([1, 2, 3]).map(module.f).collect() == loaded
    finally:
        sys.modules.pop(name, None)


def test_a_function_from_a_module_without_future_imports_is_inlined(tmp_path, monkeypatch):
    """This package compiles with ``from __future__ import annotations``; the check must not lend that flag to
    the user's code (whose compiled form would then never match)."""
    (tmp_path / "plain_user_mod.py").write_text("def add_two(x):\n    return x + 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        module = importlib.import_module("plain_user_mod")
        assert inline_expression(module.add_two, "_x") == "(_x + 2)"
    finally:
        sys.modules.pop("plain_user_mod", None)


def in_small_set(x):
    return x in {1, 2, 3}  # a frozenset constant


async def async_plus_one(x):
    return x + 1


def odd_by_walrus(x):
    return (x := x + 1) % 2 == 0  # rebinds its own parameter: inlined, it would rebind the loop's item


def two_params(x, y):
    return x + 1  # called with one item it raises; inlined, it would not


def test_constant_containers_inline_and_two_parameters_coroutines_and_rebinding_expressions_do_not():
    assert inline_expression(two_params, "_x") is None
    with pytest.raises(TypeError, match="y"):
        IterableSource([1]).map(two_params).collect()
    assert inline_expression(in_small_set, "_x") == "(_x in {1, 2, 3})"
    assert IterableSource(range(5)).filter(in_small_set).collect() == [1, 2, 3]
    assert inline_expression(async_plus_one, "_x") is None
    assert inline_expression(odd_by_walrus, "_x") is None
    assert IterableSource(range(6)).filter(odd_by_walrus).collect() == [1, 3, 5]


def test_explain_reports_what_was_inlined_and_inline_false_turns_it_off():
    stream = IterableSource(range(10)).map(plus_one).map(uses_global).filter(keep)
    assert "inlined map(plus_one), filter(keep)" in str(stream.explain())
    assert "inlined" not in str(stream.compile(inline=False).explain())


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-(10**6), 10**6), max_size=50))
def test_inlined_loops_equal_called_loops(items):
    stream = (
        IterableSource(items).map(plus_one).map(branchy).filter(keep).map(twice).batched(3, drop_last_if_not_full=False)
    )
    assert stream.collect() == stream.compile(inline=False).collect()


def test_error_in_an_inlined_expression_names_the_stage():
    def inv(x):
        return 1 // x

    with pytest.raises(ZeroDivisionError) as info:
        IterableSource([2, 1, 0]).map(plus_one).map(inv).map(inv).collect()
    # map(inv) is defined in a function body: it reads no outer names, so it is inlined too
    assert stage_of(info.value) == "map(inv)"
    assert any("(node 3:map)" in n for n in info.value.__notes__)
    assert "squirrel_graph fused loop" in "".join(traceback.format_tb(info.value.__traceback__))


def raise_on_zero(x):
    return 1 // x


def bad_collate(batch):
    raise ValueError(f"cannot collate {batch}")


def collate_pairs_only(batch):
    return batch if len(batch) == 2 else bad_collate(batch)


def same(x):
    return x


FUSED_ERRORS = {
    "filter": (lambda: IterableSource([2, 0]).map(twice).filter(raise_on_zero), "filter(raise_on_zero)", "2:filter"),
    "leading flatten": (lambda: IterableSource([[1], 2]).flatten().map(twice), "flatten", "1:flatten"),
    "later flatten": (lambda: IterableSource([[1], 2]).map(same).flatten(), "flatten", "2:flatten"),
    "full batch": (
        lambda: IterableSource(range(4)).map(twice).batched(2, collation_fn=bad_collate),
        "batched(2)",
        "2:batched",
    ),
    "last partial batch": (
        lambda: (
            IterableSource(range(3)).map(twice).batched(2, collation_fn=collate_pairs_only, drop_last_if_not_full=False)
        ),
        "batched(2)",
        "2:batched",
    ),
}


@pytest.mark.parametrize("case", FUSED_ERRORS)
def test_an_error_on_any_line_of_a_fused_loop_names_the_stage_that_owns_the_line(case):
    make, stage, node = FUSED_ERRORS[case]
    stream = make()
    assert "generated loop" in str(stream.explain(stage="physical"))  # the stages really run fused
    with pytest.raises(Exception) as info:
        stream.collect()
    assert stage_of(info.value) == stage
    assert info.value.__notes__ == [f"squirrel_graph: raised in stage '{stage}' (node {node})"]
