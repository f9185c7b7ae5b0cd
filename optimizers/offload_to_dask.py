"""offload_to_dask: with ``compile(backend="dask")``, run the per-key part of a driver plan on the cluster.

It runs before fuse_maps and fires on a driver's ``fetch`` and the synchronous per-item stages right after it
(flatten, maps, filters; never a batched, which must see items across shards), which together turn one shard
key into that shard's final items. They become one :class:`~squirrel_graph.graph.DaskPerKey` node: one task
per key on the dask cluster, results streamed back in order. Everything after them (async_map, batched,
shuffles) stays local. It does not fire without a fetch, and only runs when the dask backend was asked for.
"""

from __future__ import annotations

from optimizers.base import Pass, PassResult, Rewrite
from squirrel_graph.graph import DaskPerKey, Fetch, Plan

NAME = "offload_to_dask"
_PER_KEY_KINDS = ("flatten", "map", "filter")  # runs before fuse_maps: a batched must stay local


def offload_to_dask(plan: Plan) -> PassResult:
    rewrites = []
    for fid in plan.topo():
        if fid not in plan.graph:  # replaced by an earlier rewrite
            continue
        node = plan.node(fid)
        if not isinstance(node, Fetch):
            continue
        run = [fid]
        while len(plan.consumers(run[-1])) == 1:
            nxt = plan.consumers(run[-1])[0]
            if plan.node(nxt).kind not in _PER_KEY_KINDS:
                break
            run.append(nxt)
        nodes = tuple(plan.node(n) for n in run[1:])
        new = DaskPerKey(fetch=node, nodes=nodes, node_ids=tuple(run))
        new_id = f"{fid.split(':', 1)[0]}:dask_per_key"
        plan = plan.replace_run(run, new_id, new)
        labels = " → ".join(plan.node(new_id).labels())
        rewrites.append(Rewrite(NAME, "offloaded", tuple(run), f"one dask task per key runs {labels}", new_id))
    return PassResult(plan, tuple(rewrites))


PASS = Pass(NAME, offload_to_dask, "per-key fetch/decode/maps as one dask task per key (backend='dask')")
