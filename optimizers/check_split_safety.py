"""check_split_safety (a validate step): refuse a plan where a split sits below a node whose output differs
between processes (an unseeded shuffle): the processes' shares would overlap and miss items.

It runs after the passes, and also with ``optimize=False``; ``disable=`` cannot switch it off.
"""

from __future__ import annotations

from optimizers.base import PassResult, Rewrite, Step
from squirrel_graph.graph import Plan, PlanError, Split

NAME = "check_split_safety"


class SplitPlacementError(PlanError):
    """A split cannot give every process a disjoint share (e.g. it is below an unseeded shuffle)."""


def check_split_safety(plan: Plan) -> PassResult:
    """Raise SplitPlacementError if a split reads from a node whose output differs between processes."""
    checked = []
    for sid, node in plan.items():
        if not isinstance(node, Split):
            continue
        checked.append(sid)
        for up in plan.ancestors(sid):
            other = plan.node(up)
            if other.differs_between_processes:
                raise SplitPlacementError(
                    f"{node.label()} (node {sid}) is below the unseeded {other.label()} (node {up}): every process "
                    "would shuffle differently, so their shares would overlap and miss items. Seed the shuffle "
                    "(shuffle(..., seed=...)), or let the split move above it (level='auto' and no order-dependent "
                    "stage such as take/batched in between)"
                )
    if not checked:
        return PassResult(plan)
    reason = "no split reads from a stage whose output differs between processes: the shares form a partition"
    return PassResult(plan, (Rewrite(NAME, "checked", tuple(checked), reason),))


STEP = Step(NAME, "validate", check_split_safety, "splits give every process a disjoint share", order=10)
