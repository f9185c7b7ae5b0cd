"""The source node of elastic mode: a store's samples in a global order that does not depend on the topology."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from squirrel_graph.graph.base import Node, traits


@traits(holds_state=True, reads_shards=True)
@dataclass(frozen=True, eq=False)
class ElasticSource(Node):
    """This process's samples of a store for elastic determinism: every epoch's global order (keys shuffled, then
    samples shuffled within windows of ``window`` shards, from ``seed`` and the epoch) is cut into global steps of
    ``global_batch_size``; rank ``rank`` of ``world_size`` takes its equal part of each step (grouped by shard) and
    DataLoader worker ``w`` of ``K`` the steps ``w, w + K, ...``. The set of samples of a global step is the same
    for every number of ranks and workers."""

    kind: ClassVar[str] = "elastic"
    n_inputs: ClassVar[int | None] = 0
    covers_axes: ClassVar[tuple[str, ...]] = ("rank", "worker")  # it splits by rank and by worker itself
    keys: Any = None  # callable: the store's keys
    counts: Any = None  # callable key -> number of samples
    fetch: Any = None  # callable key -> the shard's samples
    store: str = ""
    global_batch_size: int = 1
    seed: Any = 0
    window: int = 4
    rank: int = 0
    world_size: int = 1

    def label(self) -> str:
        return f"elastic({self.store}, global_batch_size={self.global_batch_size}, window={self.window})"

    def params(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "rank": f"{self.rank} of {self.world_size}",
            "per_rank_batch": self.global_batch_size // self.world_size,
            "assignment": "global order: keys shuffled, samples shuffled per window; global step t = samples "
            "[t*G, (t+1)*G); rank r takes its G/world part of each step (by shard), worker w the steps w, w+K, ...",
        }


__all__ = ["ElasticSource"]
