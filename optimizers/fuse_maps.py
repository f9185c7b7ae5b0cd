"""fuse_maps: run consecutive synchronous per-item nodes as one generated loop.

Fires on a maximal run of ``fusable`` nodes (map, filter, flatten, sampled monitors), each with one input and
one consumer, that may end with one ``batch_tail`` node (batched); the run becomes one
:class:`~squirrel_graph.graph.Fused` node that a backend executes as a single loop (whole-stage code
generation). It must not fire across a ``barrier()``, across a node with several inputs or consumers (the
intermediate stream is shared), or across anything that is not fusable (``async_map`` keeps its thread pool;
``shuffle``, ``take`` ... keep their state). A single node is left as it is: a backend runs it with the same
loop generator.
"""

from __future__ import annotations

from optimizers.base import Pass, PassContext, PassResult, Rewrite
from squirrel_graph.graph import Fused, Node, Plan

NAME = "fuse_maps"


def _fusable(plan: Plan, nid: str) -> bool:
    return bool(plan.node(nid).fusable) and len(plan.inputs(nid)) == 1


def _single_consumer(plan: Plan, nid: str) -> bool:
    return len(plan.consumers(nid)) <= 1


def find_runs(plan: Plan) -> list[list[str]]:
    """Maximal fusable runs, each listed top (closest to the source) to bottom."""
    runs: list[list[str]] = []
    seen: set[str] = set()
    for nid in plan.topo():
        if nid in seen or not _fusable(plan, nid):
            continue
        (up,) = plan.inputs(nid)
        if _fusable(plan, up) and _single_consumer(plan, up):
            continue  # not the top of a run; reached from its top
        run = [nid]
        while _single_consumer(plan, run[-1]):
            nxt = plan.consumers(run[-1])
            if not nxt or not _fusable(plan, nxt[0]):
                break
            run.append(nxt[0])
        nxt = plan.consumers(run[-1])
        if nxt and _single_consumer(plan, run[-1]) and plan.node(nxt[0]).batch_tail:
            run.append(nxt[0])  # a trailing batched is appended to inside the same loop
        seen.update(run)
        runs.append(run)
    return runs


def _stop_reason(plan: Plan, bottom: str, last: Node) -> str:
    nxt = plan.consumers(bottom)
    if not nxt:
        return "it is the output of the plan"
    if last.batch_tail:
        return f"{last.label()} closes it (a generated loop groups items into batches only at its end)"
    if len(nxt) > 1:
        return f"{bottom} feeds {len(nxt)} consumers"
    node = plan.node(nxt[0])
    if node.barrier:
        return "a barrier() follows"
    return f"{node.label()} is not a synchronous per-item node"


def fuse_maps(plan: Plan, context: PassContext | None = None) -> PassResult:
    """Replace every fusable run of two or more nodes by one Fused node (all runs in one rewrite)."""
    rewrites = []
    replacements: list[tuple[list[str], str, Node]] = []
    for run in find_runs(plan):
        if len(run) < 2:
            continue
        nodes = tuple(plan.node(n) for n in run)
        new_id = f"{run[0].split(':', 1)[0]}:fused"
        labels = " → ".join(n.label() for n in nodes)
        replacements.append((run, new_id, Fused(nodes=nodes, node_ids=tuple(run))))
        reason = f"{len(run)} synchronous per-item nodes ({labels}) run as one generated loop; the run ends because "
        rewrites.append((run, new_id, reason, nodes[-1]))
    if replacements:
        plan = plan.replace_runs(replacements)
    log = tuple(
        Rewrite(NAME, "fused", tuple(run), reason + _stop_reason(plan, new_id, last), new_id)
        for run, new_id, reason, last in rewrites
    )
    return PassResult(plan, log)


PASS = Pass(NAME, fuse_maps, "run consecutive map/filter/flatten (+ trailing batched) as one loop", order=40)
