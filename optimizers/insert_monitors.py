"""insert_monitors: put a monitor after every physical stage, named after it (``stream.compile(monitor=...)``).

It runs after fuse_maps, so it never splits a fused loop: a fused stage gets one monitor after it. It does not
fire after a monitor the user placed (those stay where the user put them) or after a ``barrier()``, and it
does not run at all when ``compile(monitor=...)`` was not asked for.
"""

from __future__ import annotations

from optimizers.base import Pass, PassContext, PassResult, Rewrite
from squirrel_graph.graph import Monitor, Node, Plan

NAME = "insert_monitors"


def insert_monitors(plan: Plan, context: PassContext) -> PassResult:
    """A monitor after every stage; ``context.monitor`` is the callback (True: only ``stream.stats()``)."""
    callback = None if context.monitor is True else context.monitor
    inserts: list[tuple[str, str, Node]] = []
    rewrites = []
    for nid in plan.topo():
        node = plan.node(nid)
        if isinstance(node, Monitor) or node.barrier:
            continue
        label = node.label()
        mon = Monitor(callback=callback, prefix=f"{label}: ", window_size=100, every=context.monitor_every, auto=True)
        inserts.append((nid, f"{nid}.monitor", mon))
        rewrites.append(Rewrite(NAME, "inserted", (nid,), f"measures what leaves {label}", result=f"{nid}.monitor"))
    return PassResult(plan.insert_after(inserts), tuple(rewrites))


PASS = Pass(
    NAME,
    insert_monitors,
    "a monitor after every physical stage (compile(monitor=...))",
    order=90,
    enabled=lambda context: context.monitor is not None,
    when="when compile(monitor=...) asks for monitors",
)
