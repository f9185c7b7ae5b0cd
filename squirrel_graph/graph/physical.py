"""Nodes that only the optimizer produces: fused loops, collapsed dask tasks, per-key tasks on an engine.

They are plan nodes like the logical ones (so explain and lowering treat them alike), with traits derived from
the logical nodes they replace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from squirrel_graph.graph.base import Node, traits


@traits()
@dataclass(frozen=True, eq=False)
class Fused(Node):
    """A run of synchronous per-item nodes (and an optional trailing ``batched``) executed as one loop."""

    kind: ClassVar[str] = "fused"
    nodes: tuple[Node, ...] = ()
    node_ids: tuple[str, ...] = ()

    def label(self) -> str:
        return " → ".join(n.label() for n in self.nodes)

    @property
    def item_independent(self) -> bool:  # type: ignore[override]
        return all(n.item_independent for n in self.nodes)

    @property
    def order_sensitive(self) -> bool:  # type: ignore[override]
        return any(n.order_sensitive for n in self.nodes)

    @property
    def preserves_count(self) -> bool:  # type: ignore[override]
        return all(n.preserves_count for n in self.nodes)

    @property
    def keeps_items(self) -> bool:  # type: ignore[override]
        return all(n.keeps_items for n in self.nodes)

    @property
    def holds_state(self) -> bool:  # type: ignore[override]
        return any(n.holds_state for n in self.nodes)

    @property
    def per_key(self) -> bool:  # type: ignore[override]
        return all(n.per_key for n in self.nodes)

    def keeps_key_counts(self) -> bool:
        return all(n.keeps_key_counts() for n in self.nodes)


@traits(item_independent=True, preserves_count=True, holds_state=True)
@dataclass(frozen=True, eq=False)
class DaskTasks(Node):
    """``k`` consecutive dask_maps and their materialization as one task per item (or per ``partition_size``
    items) running the composed function on the active dask.distributed Client (or dask's local scheduler)."""

    kind: ClassVar[str] = "dask_tasks"
    fns: tuple[Any, ...] = ()
    labels: tuple[str, ...] = ()
    buffer: int = 10
    max_workers: int | None = None
    partition_size: int = 1

    def label(self) -> str:
        per = "item" if self.partition_size == 1 else f"{self.partition_size} items"
        return f"dask[{' → '.join(self.labels)}: {len(self.fns)} maps -> 1 task per {per}]"


@traits(item_independent=True, reads_shards=True, holds_state=True)
@dataclass(frozen=True, eq=False)
class PerKey(Node):
    """A driver's fetch and the per-key stages after it, run as one task per shard key on ``engine`` (the backend
    that owns such nodes); results stream back in key order."""

    kind: ClassVar[str] = "per_key"
    engine: str = ""
    fetch: Any = None  # the Fetch node
    nodes: tuple[Node, ...] = ()  # flatten / map / filter nodes applied to each shard's samples
    node_ids: tuple[str, ...] = ()  # the fetch's id, then the ids of ``nodes``

    def labels(self) -> list[str]:
        return [self.fetch.label(), *(n.label() for n in self.nodes)]

    def label(self) -> str:
        return f"{self.engine} per key[" + " → ".join(self.labels()) + "]"

    def keeps_key_counts(self) -> bool:
        return all(n.keeps_key_counts() for n in self.nodes)


__all__ = ["DaskTasks", "Fused", "PerKey"]
