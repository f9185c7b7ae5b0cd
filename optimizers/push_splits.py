"""push_splits: move rank/worker splits upstream, to a driver's key listing when legal.

A split keeps every k-th item of its input. Moved above a node that maps each input item to its own output
items (map, async_map, filter, flatten, fetch, tqdm) or above a shuffle, every process still gets a disjoint
share and together they get every item exactly once: a partition, with a different (documented) assignment.
At the key listing it means each process fetches and decodes only its own shards.

It fires on every split with ``level="auto"``. It stops below: a source or key listing (the goal), a node
whose output depends on item order or count (take, zip_index, loop, sliding, batched), a ``barrier()``, a
custom stage (``to``, a Composable subclass: its effect is unknown), another split (splits compose in place),
and a node with several inputs or consumers. ``level="item"`` pins a split.

Independently of where a split lands, :func:`check_split_safety` refuses a plan where a split sits below a
node whose output differs between processes (an unseeded shuffle): the shares would overlap and miss items.
"""

from __future__ import annotations

from optimizers.base import PassResult, Rewrite
from squirrel_graph.graph import (
    AsyncMap,
    Equalize,
    Fetch,
    Filter,
    Flatten,
    KeySource,
    Map,
    Plan,
    PlanError,
    Shuffle,
    Split,
    Tqdm,
)

NAME = "push_splits"
_CROSSABLE = (Map, Filter, Flatten, AsyncMap, Fetch, Shuffle, Tqdm)


class SplitPlacementError(PlanError):
    """A split cannot give every process a disjoint share (e.g. it is below an unseeded shuffle)."""


def _stop_reason(plan: Plan, nid: str, split: Split) -> str | None:
    """Why ``split`` cannot move above ``nid`` (None if it can)."""
    node = plan.node(nid)
    if len(plan.consumers(nid)) > 1:
        return f"{node.label()} feeds several consumers"
    if isinstance(node, KeySource):
        return f"reached the key listing {node.label()}: every process lists all keys but fetches only its shards"
    if node.n_inputs == 0:
        return f"reached the source {node.label()}"
    if isinstance(node, Split):
        return f"another split {node.label()} is directly above; splits compose in place"
    if isinstance(node, _CROSSABLE) or (isinstance(node, Equalize) and split.axis == "worker"):
        # a worker split may pass a rank's equalize: equalize then sets a quota per worker position
        return None if len(plan.inputs(nid)) == 1 else f"{node.label()} has several inputs"
    if node.kind in ("take", "zip_index", "loop", "sliding", "batched"):
        return f"{node.label()} depends on item order and count; moving the split above it would change its output"
    if node.kind == "barrier":
        return "a barrier() stops optimizations"
    if node.kind in ("opaque", "to"):
        return f"{node.label()} is a custom stage whose effect on items is unknown"
    return f"{node.label()} is not a per-item node"


def push_splits(plan: Plan) -> PassResult:
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


def attach_equalize(plan: Plan) -> Plan:
    """Put an Equalize node right after every rank split with ``equalize=`` (before any pass runs, so it stays on
    the items the user split even when push_splits moves the split itself up to the keys)."""
    for sid, node in list(plan.items()):
        if isinstance(node, Split) and node.axis == "rank" and node.equalize:
            eq = Equalize(mode=node.equalize, rank=node.index, world_size=node.parts, counts=node.shard_counts)
            after = _items_after(plan, sid)
            consumers = plan.consumers(after)
            if consumers:
                plan = plan.insert_above(consumers[0], f"{sid}.equalize", eq)
            else:
                plan = Plan.combine(f"{sid}.equalize", eq, [plan])
    return plan


def _items_after(plan: Plan, sid: str) -> str:
    """The node after which a split's items are samples: the split itself, or, for a split of shard keys (a key
    hook), the fetch below it (and the flatten right after that fetch)."""
    cur = sid
    while len(plan.consumers(cur)) == 1:
        nxt = plan.consumers(cur)[0]
        if isinstance(plan.node(nxt), Fetch):
            after = plan.consumers(nxt)
            if len(after) == 1 and isinstance(plan.node(after[0]), Flatten):
                return after[0]
            return nxt
        if plan.node(nxt).kind not in ("shuffle", "split", "to", "opaque", "tqdm", "barrier"):
            break
        cur = nxt
    return sid


def check_split_safety(plan: Plan) -> None:
    """Raise if any split sits below a node whose output differs between processes (an unseeded shuffle)."""
    for sid, node in plan.items():
        if not isinstance(node, Split):
            continue
        for up in plan.ancestors(sid):
            other = plan.node(up)
            if isinstance(other, Shuffle) and other.seed is None and other.rng_state is None and other.size >= 2:
                raise SplitPlacementError(
                    f"{node.label()} (node {sid}) is below the unseeded {other.label()} (node {up}): every process "
                    "would shuffle differently, so their shares would overlap and miss items. Seed the shuffle "
                    "(shuffle(..., seed=...)), or let the split move above it (level='auto' and no order-dependent "
                    "stage such as take/batched in between)"
                )
