"""attach_equalize (a normalize step): an Equalize node right after every rank split with ``equalize=``.

It runs before any pass (and with ``optimize=False``), so the equalize stays on the items the user split even
when push_splits moves the split itself up to the keys; ``disable=`` cannot switch it off.
"""

from __future__ import annotations

from optimizers.base import PassResult, Rewrite, Step
from squirrel_graph.graph import Equalize, Plan, Split

NAME = "attach_equalize"


def _items_after(plan: Plan, sid: str) -> str:
    """The node after which a split's items are samples: the split itself, or, for a split of shard keys (a key
    hook), the shard reader below it (and the unnesting right after that reader)."""
    cur = sid
    while len(plan.consumers(cur)) == 1:
        nxt = plan.consumers(cur)[0]
        node = plan.node(nxt)
        if node.reads_shards:
            after = plan.consumers(nxt)
            if len(after) == 1 and plan.node(after[0]).unnests:
                return after[0]
            return nxt
        passes_keys = (node.keeps_items and node.preserves_count) or node.custom or isinstance(node, Split)
        if not passes_keys:
            break
        cur = nxt
    return sid


def attach_equalize(plan: Plan) -> PassResult:
    """Insert the Equalize node of every rank split that asks for equal counts."""
    rewrites = []
    for sid, node in list(plan.items()):
        if isinstance(node, Split) and node.axis == "rank" and node.equalize:
            eq = Equalize(mode=node.equalize, rank=node.index, world_size=node.parts, counts=node.shard_counts)
            after = _items_after(plan, sid)
            new_id = f"{sid}.equalize"
            plan = plan.insert_after([(after, new_id, eq)])
            reason = f"equal item counts per rank ({node.equalize!r}) after {plan.node(after).label()}"
            rewrites.append(Rewrite(NAME, "attached", (sid,), reason, result=new_id))
    return PassResult(plan, tuple(rewrites))


STEP = Step(NAME, "normalize", attach_equalize, "equal counts per rank for split_by_rank(equalize=...)", order=10)
