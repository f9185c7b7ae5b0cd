"""The base of every plan node and the traits that passes and the runtime ask instead of kind strings.

A trait is a fact about the operation, not about a backend. Every concrete node class declares each trait in
:data:`TRAITS` (on itself or through a parent that is a node kind of its own); ``tests/test_traits.py`` fails
for a class that leaves one undeclared, so a new operator cannot silently fall outside a pass's legality rules.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, ClassVar

#: The traits every node class declares (``None`` on :class:`Node` means "not declared").
TRAITS: dict[str, str] = {
    "item_independent": "each input item's outputs depend on that item alone (not on its neighbours or position)",
    "order_sensitive": "which items or values come out depends on the order or number of the items coming in",
    "preserves_count": "exactly one output item per input item",
    "unnests": "yields the elements of each item (a shard's count counts these elements)",
    "keeps_items": "output items are input items, unchanged (possibly fewer, reordered or repeated)",
    "fusable": "a synchronous per-item step that a generated loop can run inline",
    "batch_tail": "may end a generated loop by grouping its items (batched)",
    "per_key": "may run inside a per-shard-key task on another engine (synchronous, no local callbacks)",
    "reads_shards": "turns a shard key into that shard's samples",
    "lists_keys": "lists a store's shard keys (where splits are pushed to)",
    "barrier": "no optimization crosses it",
    "custom": "user code over the whole iterator: its effect on items is unknown",
    "holds_state": "keeps a position or buffer during a run (what a checkpoint must capture)",
}


def callable_name(fn: Any) -> str:
    """A short human name for a user callable (used in labels, errors and explain)."""
    if isinstance(fn, functools.partial):
        return callable_name(fn.func)
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    if name is None:
        return type(fn).__name__
    return name.rsplit("<locals>.", 1)[-1]  # a nested function is named by itself, not its enclosing path


@dataclass(frozen=True, eq=False)
class Node:
    """Base of every plan node: a frozen dataclass of parameters and user callables, compared by identity.

    ``n_inputs`` is the number of inputs (0 for sources, ``None`` for several); the traits in :data:`TRAITS`
    say what passes may do around the node.
    """

    kind: ClassVar[str] = "node"
    n_inputs: ClassVar[int | None] = 1
    item_independent: ClassVar[bool | None] = None
    order_sensitive: ClassVar[bool | None] = None
    preserves_count: ClassVar[bool | None] = None
    unnests: ClassVar[bool | None] = None
    keeps_items: ClassVar[bool | None] = None
    fusable: ClassVar[bool | None] = None
    batch_tail: ClassVar[bool | None] = None
    per_key: ClassVar[bool | None] = None
    reads_shards: ClassVar[bool | None] = None
    lists_keys: ClassVar[bool | None] = None
    barrier: ClassVar[bool | None] = None
    custom: ClassVar[bool | None] = None
    holds_state: ClassVar[bool | None] = None
    #: the output differs between processes given the same input (an unseeded shuffle): no split may sit below it
    differs_between_processes: ClassVar[bool] = False
    declared_traits: ClassVar[type | None] = None

    def label(self) -> str:
        """One-line description used by explain and in error messages."""
        return self.kind

    def params(self) -> dict[str, Any]:
        """Parameters worth showing in explain (never the callables themselves)."""
        return {}

    # ------------------------------------------------------------------ legality derived from the traits
    def lets_split_pass(self, axis: str) -> bool:
        """May a rank/worker split move from below this node to above it and still give every process a disjoint
        share? Yes for nodes whose output set does not depend on input order or count."""
        return not (self.order_sensitive or self.barrier or self.custom)

    def keeps_key_counts(self) -> bool:
        """Does each shard key give as many items after this node as its shard count says?"""
        return bool(self.preserves_count or self.unnests)

    def noop_reason(self) -> str | None:
        """Why this node passes every item through unchanged (so it can be removed), or None."""
        return None


def traits(**values: bool) -> Any:
    """Class decorator declaring a node class's traits: the named ones as given, every other trait False.

    A trait the class body defines itself (a property computed from parameters) is left as it is. Each node
    class declares its own, so a subclass states what it changes."""
    unknown = sorted(set(values) - set(TRAITS))
    if unknown:
        raise TypeError(f"traits(): unknown trait(s) {unknown}; known: {sorted(TRAITS)}")

    def declare(cls: type[Node]) -> type[Node]:
        for name in TRAITS:
            if name in values:
                setattr(cls, name, bool(values[name]))
            elif name not in cls.__dict__:
                setattr(cls, name, False)
        cls.declared_traits = cls  # marks the class that declared them (a subclass without @traits inherits it)
        return cls

    return declare


def undeclared_traits(cls: type[Node]) -> list[str]:
    """Why ``cls`` does not declare its traits: [] when it does (the trait-completeness test reads this)."""
    if getattr(cls, "declared_traits", None) is not cls:
        return ["@traits(...) missing on the class itself"]
    return [name for name in TRAITS if getattr(cls, name) is None]
