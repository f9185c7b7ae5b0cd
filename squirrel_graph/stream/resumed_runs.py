"""Resuming a merged state on another topology: the remaining work of every old (rank, worker) share, each run
with that share's split numbers, spread over this run's processes by whole shares.

A merged state lists every share of the run it came from with its position (``done`` once finished). A process
of the new run takes the shares whose index in (rank, worker) order is its own global index modulo the number of
processes, runs each from its position as the old process would have, and reports them all in its own states, so
merging those again covers every old share exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from squirrel_graph.graph import Split
from squirrel_graph.runtime.context import RunContext
from squirrel_graph.runtime.splits import worker_info


def topology(plan: Any = None) -> dict[str, int]:
    """This process's place: rank and world size (those a rank split of ``plan`` captured when the stream was built,
    else torch.distributed's if initialized), DataLoader worker and worker count."""
    import sys

    rank, world = 0, 1
    splits = [plan.node(n) for n in plan.topo() if isinstance(plan.node(n), Split)] if plan is not None else []
    by_rank = [s for s in splits if s.axis == "rank"]
    torch = sys.modules.get("torch")
    if by_rank:
        rank, world = by_rank[0].index, by_rank[0].parts
    elif torch is not None and torch.distributed.is_available() and torch.distributed.is_initialized():
        rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    worker, workers = worker_info()
    return {"rank": rank, "world_size": world, "worker": worker, "num_workers": workers}


def share_key(share: Mapping[str, Any]) -> tuple[int, int]:
    return int(share["rank"]), int(share["worker"])


def assigned(shares: Sequence[Mapping[str, Any]], topology: Mapping[str, int]) -> list[dict[str, Any]]:
    """The old shares this process (``topology``: rank, world size, worker, worker count) resumes."""
    processes = topology["world_size"] * topology["num_workers"]
    me = topology["rank"] * topology["num_workers"] + topology["worker"]
    ordered = sorted(shares, key=share_key)
    return [dict(s) for j, s in enumerate(ordered) if j % processes == me]


class MergedRun:
    """One run over the old shares assigned to this process, one after the other."""

    def __init__(self, shares: list[dict[str, Any]], output: str, epoch: int | None) -> None:
        self.shares = shares
        self.output = output
        self.epoch = epoch
        self.live: tuple[int, RunContext] | None = None

    def run(self, physical: Any) -> Iterator[Any]:
        for i, share in enumerate(self.shares):
            if share.get("done"):
                continue
            ctx = RunContext(epoch=self.epoch)
            ctx.shares = {
                "rank": (int(share["rank"]), int(share["world_size"])),
                "worker": (int(share["worker"]), int(share["num_workers"])),
            }
            if share.get("position") is not None:
                ctx.resume[self.output] = share["position"]
            self.live = (i, ctx)
            yield from physical.open(ctx)
            share.update(done=True, position=None)
            self.live = None

    def shares_now(self) -> list[dict[str, Any]]:
        """Every assigned share with its position now (the live one's from its run)."""
        out = [dict(s) for s in self.shares]
        if self.live is not None:
            i, ctx = self.live
            found = ctx.positions.get(self.output)
            if found is not None:
                out[i]["position"] = found()
        return out
