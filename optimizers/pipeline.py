"""The pass pipeline: the fixed order in which passes run, and switching them off by name."""

from __future__ import annotations

from collections.abc import Iterable

from optimizers.base import Pass, Rewrite
from optimizers.collapse_dask import collapse_dask
from optimizers.eliminate_noops import eliminate_noops
from optimizers.fuse_maps import fuse_maps
from optimizers.push_splits import push_splits
from squirrel_graph.graph import Plan

#: Passes in the order they run (insert_monitors is appended when ``compile(monitor=...)`` asks for it).
DEFAULT_PASSES: tuple[Pass, ...] = (
    Pass("eliminate_noops", eliminate_noops, "drop shuffle(size<2) and take(None)"),
    Pass("push_splits", push_splits, "move rank/worker splits upstream, to the shard keys when legal"),
    Pass("fuse_maps", fuse_maps, "run consecutive map/filter/flatten (+ trailing batched) as one loop"),
    Pass("collapse_dask", collapse_dask, "consecutive dask_maps + materialize_dask -> one task per item"),
)
#: Every name ``disable=`` accepts; insert_monitors runs last, and only when ``compile(monitor=...)`` asks for it.
PASS_NAMES: tuple[str, ...] = (
    "eliminate_noops",
    "push_splits",
    "offload_to_dask",
    "fuse_maps",
    "collapse_dask",
    "insert_monitors",
)


def optimize(
    plan: Plan, disable: Iterable[str] = (), passes: tuple[Pass, ...] = DEFAULT_PASSES
) -> tuple[Plan, tuple[Rewrite, ...]]:
    """Run every pass not named in ``disable``; return the optimized plan and all rewrites in order."""
    disabled = set(disable)
    unknown = disabled - {p.name for p in passes} - set(PASS_NAMES)
    if unknown:
        raise ValueError(
            f"compile(disable=...): unknown pass name(s) {sorted(unknown)}; known passes: {[p.name for p in passes]}"
        )
    log: list[Rewrite] = []
    for p in passes:
        if p.name in disabled:
            log.append(Rewrite(p.name, "skipped", (), "disabled by the user"))
            continue
        result = p.run(plan)
        plan = result.plan
        log.extend(result.rewrites)
    return plan, tuple(log)
