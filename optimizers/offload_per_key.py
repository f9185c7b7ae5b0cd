"""offload_to_dask (historical name; backend-neutral): run the per-key part of a driver plan on an engine.

When the chosen backend declares a per-key engine (``compile(backend="dask")`` does), this pass runs before
fuse_maps and fires on a node that reads shards (a driver's ``fetch``) and the ``per_key`` stages right after
it (flatten, maps, filters; never a batched, which must see items across shards, nor a sampled monitor, whose
callback belongs to the local process), which together turn one shard key into that shard's final items.
They become one :class:`~squirrel_graph.graph.PerKey` node for that engine: one task per key, results
streamed back in order. Everything after them (async_map, batched, shuffles) stays local. It does not fire
without a shard reader, and does not run at all when the backend has no per-key engine.
"""

from __future__ import annotations

from optimizers.base import Pass, PassContext, PassResult, Rewrite
from squirrel_graph.graph import PerKey, Plan

NAME = "offload_to_dask"


def offload_per_key(plan: Plan, context: PassContext) -> PassResult:
    """Replace each shard reader and its per-key successors by one PerKey node for ``context.per_key_engine``."""
    engine = context.per_key_engine
    rewrites = []
    replacements = []
    for fid in plan.topo():
        node = plan.node(fid)
        if not node.reads_shards or isinstance(node, PerKey):
            continue
        run = [fid]
        while len(plan.consumers(run[-1])) == 1:
            nxt = plan.consumers(run[-1])[0]
            if not plan.node(nxt).per_key:
                break
            run.append(nxt)
        new = PerKey(engine=engine, fetch=node, nodes=tuple(plan.node(n) for n in run[1:]), node_ids=tuple(run))
        new_id = f"{fid.split(':', 1)[0]}:{engine}_per_key"
        replacements.append((run, new_id, new))
        labels = " → ".join(new.labels())
        rewrites.append(Rewrite(NAME, "offloaded", tuple(run), f"one {engine} task per key runs {labels}", new_id))
    if replacements:
        plan = plan.replace_runs(replacements)
    return PassResult(plan, tuple(rewrites))


PASS = Pass(
    NAME,
    offload_per_key,
    "per-key fetch/decode/maps as one task per shard key on the backend's engine (backend='dask')",
    order=30,
    enabled=lambda context: context.per_key_engine is not None,
    when="when the backend runs per-key tasks (compile(backend='dask'))",
)
