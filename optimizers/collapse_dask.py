"""collapse_dask: consecutive ``dask_map``s and their ``materialize_dask`` become one task per item.

squirrel-core wrapped every dask_map of every item in its own ``dask.delayed`` call, so k maps over n items
made k x n tasks, each paying the scheduler's per-task cost. This pass fires on a chain of one or more dask_map
nodes (single input, single consumer) that ends in materialize_dask, and replaces it by one
:class:`~squirrel_graph.graph.DaskTasks` node that submits the composed function once per item (or per
``partition_size`` items). It must not fire when the delayed items are consumed by anything but
materialize_dask (the user gets the delayed objects), nor across a barrier.
"""

from __future__ import annotations

import functools

from optimizers.base import Pass, PassContext, PassResult, Rewrite
from squirrel_graph.graph import DaskMap, DaskTasks, MaterializeDask, Plan

NAME = "collapse_dask"


def collapse_dask(plan: Plan, context: PassContext | None = None) -> PassResult:
    """Replace each run of dask_maps ending in materialize_dask by one DaskTasks node."""
    rewrites = []
    for mid in plan.topo():
        node = plan.node(mid)
        if not isinstance(node, MaterializeDask):
            continue
        run: list[str] = []
        up = plan.inputs(mid)[0]
        while isinstance(plan.node(up), DaskMap) and len(plan.consumers(up)) == 1:
            run.insert(0, up)
            up = plan.inputs(up)[0]
        if not run:
            continue
        maps = [plan.node(n) for n in run]
        fns = tuple(_bind(m) for m in maps)
        labels = tuple(m.label() for m in maps)
        new = DaskTasks(
            fns=fns, labels=labels, buffer=node.buffer, max_workers=node.max_workers, partition_size=node.partition_size
        )
        new_id = f"{run[0].split(':', 1)[0]}:dask_tasks"
        plan = plan.replace_run([*run, mid], new_id, new)
        per = "item" if node.partition_size == 1 else f"partition of {node.partition_size} items"
        reason = f"{len(run)} maps -> 1 task per {per}: one scheduler round trip instead of {len(run)} per item"
        rewrites.append(Rewrite(NAME, "collapsed", (*run, mid), reason, result=new_id))
    return PassResult(plan, tuple(rewrites))


def _bind(node: DaskMap):
    return functools.partial(node.fn, **node.kwargs) if node.kwargs else node.fn


PASS = Pass(NAME, collapse_dask, "consecutive dask_maps + materialize_dask -> one task per item", order=50)
