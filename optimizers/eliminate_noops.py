"""eliminate_noops: remove nodes that provably pass every item through unchanged.

Fires on every single-input node whose :meth:`~squirrel_graph.graph.Node.noop_reason` says it is a no-op
(``shuffle(size<2)``: a buffer of one cannot reorder; ``take(None)``: takes everything). It never removes a
``barrier()`` (the user asked for a boundary), nor ``loop(1)`` (its ``.counter`` is observable), and never
touches a node with several inputs.
"""

from __future__ import annotations

from optimizers.base import Pass, PassContext, PassResult, Rewrite
from squirrel_graph.graph import Node, Plan

NAME = "eliminate_noops"


def noop_reason(node: Node) -> str | None:
    """Why ``node`` is a no-op, or None if it is not one (asked of the node)."""
    return node.noop_reason()


def eliminate_noops(plan: Plan, context: PassContext | None = None) -> PassResult:
    """Splice out every no-op node, recording why each one was removed."""
    rewrites = []
    for nid in plan.topo():
        reason = noop_reason(plan.node(nid))
        if reason is None or len(plan.inputs(nid)) != 1:
            continue
        plan = plan.remove(nid)
        rewrites.append(Rewrite(NAME, "removed", (nid,), reason))
    return PassResult(plan, tuple(rewrites))


PASS = Pass(NAME, eliminate_noops, "drop shuffle(size<2) and take(None)", order=10)
