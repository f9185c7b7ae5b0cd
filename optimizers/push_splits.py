"""push_splits: move rank/worker splits upstream, to a driver's key listing when legal.

A split keeps every k-th item of its input. Moved above a node whose output set does not depend on the order
or number of its input items (map, async_map, filter, flatten, fetch, tqdm, a shuffle, a monitor: the node's
:meth:`~squirrel_graph.graph.Node.lets_split_pass`), every process still gets a disjoint share and together
they get every item exactly once: a partition, with a different (documented) assignment. At the key listing
it means each process fetches and decodes only its own shards.

It fires on every split with ``level="auto"``. It stops below: a source or key listing (the goal), a node
whose output depends on item order or count (take, zip_index, loop, sliding, batched), a ``barrier()``, a
custom stage (``to``, a Composable subclass: its effect is unknown), another split (splits compose in place),
and a node with several inputs or consumers. ``level="item"`` pins a split. Whether a split may sit where it
ends up is checked afterwards by the ``check_split_safety`` step.
"""

from __future__ import annotations

from optimizers.base import Pass, PassContext, PassResult, Rewrite
from optimizers.check_split_safety import SplitPlacementError
from squirrel_graph.graph import Plan, Split

NAME = "push_splits"


def _stop_reason(plan: Plan, nid: str, split: Split) -> str | None:
    """Why ``split`` cannot move above ``nid`` (None if it can)."""
    node = plan.node(nid)
    if len(plan.consumers(nid)) > 1:
        return f"{node.label()} feeds several consumers"
    if node.lists_keys:
        return f"reached the key listing {node.label()}: every process lists all keys but fetches only its shards"
    if node.n_inputs == 0:
        return f"reached the source {node.label()}"
    if isinstance(node, Split):
        return f"another split {node.label()} is directly above; splits compose in place"
    if node.lets_split_pass(split.axis):
        return None if len(plan.inputs(nid)) == 1 else f"{node.label()} has several inputs"
    if node.barrier:
        return "a barrier() stops optimizations"
    if node.custom:
        return f"{node.label()} is a custom stage whose effect on items is unknown"
    if node.order_sensitive:
        return f"{node.label()} depends on item order and count; moving the split above it would change its output"
    return f"{node.label()} is not a per-item node"


def push_splits(plan: Plan, context: PassContext | None = None) -> PassResult:
    """Move every ``level="auto"`` split as far upstream as legal, recording where it stopped and why."""
    rewrites: list[Rewrite] = []
    for sid in plan.topo():
        node = plan.node(sid)
        if not isinstance(node, Split):
            continue
        if node.level == "item":
            rewrites.append(Rewrite(NAME, "kept", (sid,), "pinned by level='item'"))
            continue
        crossed: list[str] = []
        above = plan.inputs(sid)[0]
        while (reason := _stop_reason(plan, above, node)) is None:
            crossed.append(above)
            above = plan.inputs(above)[0]
        if not crossed:
            rewrites.append(Rewrite(NAME, "kept", (sid,), f"stays in place: {reason}"))
            continue
        target = crossed[-1]
        plan = plan.remove(sid).insert_above(target, sid, node)
        what = ", ".join(plan.node(c).label() for c in crossed)
        rewrites.append(Rewrite(NAME, "moved", (sid,), f"moved up past {what}; it stops there because {reason}"))
    return PassResult(plan, tuple(rewrites))


PASS = Pass(NAME, push_splits, "move rank/worker splits upstream, to the shard keys when legal", order=20)

__all__ = ["NAME", "PASS", "SplitPlacementError", "push_splits"]
