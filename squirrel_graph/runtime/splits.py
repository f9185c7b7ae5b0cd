"""Runtime of rank/worker splits: which share this process takes, equal counts per rank, and the torch checks."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from squirrel_graph.errors import PyTorchSplittingException
from squirrel_graph.graph import Batched, Equalize, IterSource, KeySource, Plan, Split, TorchCheck
from squirrel_graph.runtime import resume
from squirrel_graph.runtime.context import Opener, RunContext, Runner
from squirrel_graph.runtime.one_shot import is_one_shot


def worker_info() -> tuple[int, int]:
    """(worker id, number of workers) of the DataLoader worker this runs in; (0, 1) outside one.

    torch is only consulted if this process already imported it (DataLoader workers always have).
    """
    torch = sys.modules.get("torch")
    if torch is None:
        return 0, 1
    info = torch.utils.data.get_worker_info()
    return (0, 1) if info is None else (info.id, info.num_workers)


def share(node: Split) -> tuple[int, int]:
    """(index, parts) of this process's share for ``node``."""
    return worker_info() if node.axis == "worker" else (node.index, node.parts)


# ------------------------------------------------------------------------------------------------ equalize


def _key_level(plan: Plan, nid: str) -> tuple[str, list[Split]]:
    """From an Equalize node, walk up through count-preserving nodes to the splits at the key level; returns the
    id of the node the splits read (the key listing, or a sized source) and the splits, top-down."""
    up = plan.inputs(nid)[0]
    while plan.node(up).keeps_key_counts():
        up = plan.inputs(up)[0]
    splits: list[Split] = []
    while isinstance(plan.node(up), Split):
        splits.insert(0, plan.node(up))
        up = plan.inputs(up)[0]
    return up, splits


def _counts_fn(node: Equalize, listing: Any) -> Callable[[Any], int]:
    if isinstance(node.counts, Mapping):
        return node.counts.__getitem__
    if callable(node.counts):
        return node.counts
    if isinstance(listing, KeySource) and listing.counts is not None:
        return listing.counts
    return lambda key: 1  # item-level: every item counts once


def _assign(keys: Sequence[Any], splits: Sequence[Split], rank: int, world: int, worker: int, workers: int):
    """The keys a (rank, worker) process gets after applying ``splits`` in order."""
    out = list(keys)
    for s in splits:
        index, parts = (rank, world) if s.axis == "rank" else (worker, workers)
        out = out[index::parts]
    return out


def equalize(nid: str, node: Equalize, plan: Plan, opener_of: Callable[[str], Callable[[RunContext], Any]]) -> Runner:
    """Truncate or pad this process's items to the count every process at the same worker position agrees on.

    ``opener_of(stage_id)`` opens another stage of the same physical plan: here, the key listing to count."""
    listing_id, splits = _key_level(plan, nid)
    listing = plan.node(listing_id)
    if not splits or not isinstance(listing, (KeySource, IterSource)):
        raise ValueError(
            f"{node.label()}: equal counts per rank need the rank split at a driver's key listing (or right below a "
            f"source), with only count-preserving stages after it; found {listing.label()} instead"
        )
    if isinstance(listing, IterSource) and not isinstance(listing, KeySource) and is_one_shot(listing.source):
        raise ValueError(
            f"{node.label()}: equal counts need a re-iterable source (a list, a range, a callable), not "
            "an iterator that counting would use up"
        )
    open_listing = opener_of(listing_id)
    counts = _counts_fn(node, listing)

    def run(inputs: Sequence[Opener], ctx: RunContext) -> Iterator[Any]:
        keys = list(open_listing(RunContext()))
        # a merged state's old share, if resumed: its rank and worker among the old run's, whatever this run's are
        worker, workers = ctx.shares.get("worker") or worker_info()
        rank, world = ctx.shares.get("rank") or (node.rank, node.world_size)
        per_rank = [sum(counts(k) for k in _assign(keys, splits, r, world, worker, workers)) for r in range(world)]
        target = min(per_rank) if node.mode == "drop" else max(per_rank)
        state = ctx.state[nid] = {"target": target, "own": per_rank[rank], "per_rank": per_rank}
        start = resume.taken(ctx, nid)
        resume.hand(ctx, inputs[0], start["up"] if start else None)
        up = resume.reader(ctx, inputs[0])
        done = {k: int(start[k]) if start else 0 for k in ("produced", "pass", "pass_start")}
        ctx.positions[nid] = lambda: {**done, "up": up()} if done["produced"] else start
        return _to_count(inputs[0], target, node, state, done)

    return run


def _to_count(
    open_input: Opener, target: int, node: Equalize, state: dict[str, Any], done: dict[str, int]
) -> Iterator[Any]:
    """The first ``target`` items; with ``pad``, this process's items again from the start until there are
    ``target``. ``done`` holds the items handed over, the pass (0: the first) and the count when that pass began,
    which a resumed run starts from."""
    while done["produced"] < target:
        for item in itertools.islice(open_input(), target - done["produced"]):
            done["produced"] += 1
            yield item
        if done["produced"] >= target:
            break
        if done["pass"] == 0 and node.mode == "drop":
            raise ValueError(
                f"{node.label()}: this process yielded {done['produced']} items but its shard counts promised at "
                f"least {target}; the counts are wrong (check shard_counts=)"
            )
        if done["produced"] == done["pass_start"]:  # this pass (or the first, resumed at its start) gave nothing
            raise ValueError(f"{node.label()}: cannot pad to {target} items: this process has none to repeat")
        done["pass"] += 1  # pad: repeat this process's items from the start
        done["pass_start"] = done["produced"]
    state["yielded"] = done["produced"]


# ------------------------------------------------------------------------------------------------ torch check


def _covered(plan: Plan, nid: str, axis: str) -> bool:
    """Does every path from a source to ``nid`` pass through a split of ``axis``? (Iterative: plans of any length.)"""
    todo, seen = [nid], set()
    while todo:
        cur = todo.pop()
        if cur in seen:
            continue
        seen.add(cur)
        node = plan.node(cur)
        if (isinstance(node, Split) and node.axis == axis) or axis in getattr(node, "covers_axes", ()):
            continue
        ins = plan.inputs(cur)
        if not ins:
            return False  # a source reached without passing a split
        todo.extend(ins)
    return True


def check(nid: str, node: TorchCheck, plan: Plan) -> Runner:
    """On the first item: a multi-rank/multi-worker run without the matching split raises PyTorchSplittingException."""
    (up,) = plan.inputs(nid)
    has_rank, has_worker = _covered(plan, up, "rank"), _covered(plan, up, "worker")
    rank_parts = {
        plan.node(a).parts
        for a in plan.ancestors(nid)
        if isinstance(plan.node(a), Split) and plan.node(a).axis == "rank"
    }

    def run(inputs: Sequence[Opener], ctx: RunContext) -> Iterator[Any]:
        return _checked(inputs[0], node, has_rank, has_worker, rank_parts)

    return run


def _checked(
    open_input: Opener, node: TorchCheck, has_rank: bool, has_worker: bool, rank_parts: set[int]
) -> Iterator[Any]:
    torch = sys.modules.get("torch")
    if torch is not None:
        dist = torch.distributed
        multi_rank = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        if node.enforce_rank_check and multi_rank and not has_rank:
            raise PyTorchSplittingException(
                "to_torch_iterable(): this is a multi-rank run but nothing upstream splits by rank, so every rank "
                "would see every item; add split_by_rank_pytorch() (or pass enforce_rank_check=False)"
            )
        if node.enforce_rank_check and multi_rank and rank_parts - {dist.get_world_size()}:
            raise PyTorchSplittingException(
                f"to_torch_iterable(): a rank split upstream was built for {sorted(rank_parts)} rank(s) but this run "
                f"has {dist.get_world_size()}: build the stream after torch.distributed.init_process_group()"
            )
        if node.enforce_worker_check and worker_info()[1] > 1 and not has_worker:
            raise PyTorchSplittingException(
                "to_torch_iterable(): this runs in a multi-worker DataLoader but nothing upstream splits by worker, so "
                "every worker would yield every item; add split_by_worker_pytorch() or key_hooks=[SplitByWorker] "
                "(or pass enforce_worker_check=False)"
            )
    yield from open_input()


def check_elastic(nid: str, node: Any, plan: Plan) -> None:
    """Elastic mode defines global steps only if nothing between the source and ``batched(G / world)`` changes the
    number of items (or splits them again); refuse anything else, naming the stage."""
    label = node.label()
    if node.global_batch_size % node.world_size:
        raise ValueError(
            f"{label}: global_batch_size={node.global_batch_size} is not divisible by the world size "
            f"{node.world_size}: every rank takes an equal part of each global step"
        )
    per_rank = node.global_batch_size // node.world_size
    cur = nid
    while True:
        after = plan.consumers(cur)
        if len(after) != 1:
            raise ValueError(f"{label}: elastic mode needs .batched({per_rank}) after the source; none follows")
        cur = after[0]
        fused = plan.node(cur)
        for stage in getattr(fused, "nodes", None) or (fused,):  # a fused loop: its logical stages in order
            if isinstance(stage, Batched):
                if stage.batchsize != per_rank:
                    raise ValueError(
                        f"{label}: elastic mode needs batched({per_rank}) (global_batch_size / world size); found "
                        f"{stage.label()}"
                    )
                return
            if isinstance(stage, Split) or not stage.preserves_count:
                raise ValueError(
                    f"{label}: {stage.label()} between the elastic source and batched({per_rank}) "
                    "changes the number of items (or splits them), so global steps would not be defined; "
                    "move it after batched() or filter before writing the store"
                )
