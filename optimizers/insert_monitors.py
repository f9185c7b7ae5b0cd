"""insert_monitors: put a monitor after every physical stage, named after it (``stream.compile(monitor=...)``).

It runs after fuse_maps, so it never splits a fused loop: a fused stage gets one monitor after it. It does not
fire after a monitor the user placed (those stay where the user put them) or after a ``barrier()``, and it
never inserts anything when ``compile(monitor=...)`` was not asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from optimizers.base import Pass, PassResult, Rewrite
from squirrel_graph.graph import Monitor, Plan

NAME = "insert_monitors"


def make_insert_monitors(callback: Callable[..., Any] | None, every: int = 1000, interval: float | None = None) -> Pass:
    """The pass for one compile: ``callback`` receives each stage's metrics (None: only ``stream.stats()``)."""

    def insert_monitors(plan: Plan) -> PassResult:
        rewrites = []
        for nid in plan.topo():
            node = plan.node(nid)
            if isinstance(node, Monitor) or node.kind == "barrier":
                continue
            label = node.label()
            mon = Monitor(
                callback=callback, prefix=f"{label}: ", window_size=100, every=every, interval=interval, auto=True
            )
            new_id = f"{nid}.monitor"
            consumers = plan.consumers(nid)
            plan = plan.insert_above(consumers[0], new_id, mon) if consumers else Plan.combine(new_id, mon, [plan])
            for other in consumers[1:]:  # a stage feeding several consumers: all of them read through the monitor
                plan = _rewire(plan, nid, other, new_id)
            rewrites.append(Rewrite(NAME, "inserted", (nid,), f"measures what leaves {label}", result=new_id))
        return PassResult(plan, tuple(rewrites))

    return Pass(NAME, insert_monitors, "a monitor after every physical stage (compile(monitor=...))")


def _rewire(plan: Plan, old: str, consumer: str, new: str) -> Plan:
    import networkx as nx

    g = nx.DiGraph(plan.graph)
    port = g.edges[old, consumer]["port"]
    g.remove_edge(old, consumer)
    g.add_edge(new, consumer, port=port)
    return Plan(g, plan.output)
