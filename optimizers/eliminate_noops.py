"""eliminate_noops: remove nodes that provably pass every item through unchanged.

Fires on ``shuffle(size<2)`` (a buffer of one cannot reorder) and ``take(None)`` (takes everything).
It never removes a ``barrier()`` (the user asked for a boundary), nor ``loop(1)`` (its ``.counter`` is
observable), and never touches a node with several inputs.
"""

from __future__ import annotations

from optimizers.base import PassResult, Rewrite
from squirrel_graph.graph import Node, Plan, Shuffle, Take

NAME = "eliminate_noops"


def noop_reason(node: Node) -> str | None:
    """Why ``node`` is a no-op, or None if it is not one."""
    if isinstance(node, Shuffle) and node.size < 2:
        return f"shuffle buffer of size {node.size} cannot reorder items"
    if isinstance(node, Take) and node.n is None:
        return "take(None) keeps every item"
    return None


def eliminate_noops(plan: Plan) -> PassResult:
    rewrites = []
    for nid in plan.topo():
        reason = noop_reason(plan.node(nid))
        if reason is None or len(plan.inputs(nid)) != 1:
            continue
        plan = plan.remove(nid)
        rewrites.append(Rewrite(NAME, "removed", (nid,), reason))
    return PassResult(plan, tuple(rewrites))
