"""Unit tests of every optimization pass and pipeline step on hand-built plans (no fluent API): each one fires where
it should, declines where it must not (with the reason explain shows), and the optimized plan yields the same items
as the unoptimized one (the same partition, for push_splits)."""

from __future__ import annotations

import importlib
import pkgutil
from collections import Counter, defaultdict

import pytest

import optimizers
from optimizers import PassContext, run_pipeline
from optimizers.attach_equalize import STEP as ATTACH_EQUALIZE
from optimizers.attach_equalize import attach_equalize
from optimizers.base import Pass, Step
from optimizers.check_split_safety import STEP as CHECK_SPLIT_SAFETY
from optimizers.check_split_safety import SplitPlacementError, check_split_safety
from optimizers.collapse_dask import PASS as COLLAPSE_DASK
from optimizers.collapse_dask import collapse_dask
from optimizers.eliminate_noops import PASS as ELIMINATE_NOOPS
from optimizers.eliminate_noops import eliminate_noops
from optimizers.fuse_maps import PASS as FUSE_MAPS
from optimizers.fuse_maps import fuse_maps
from optimizers.insert_monitors import PASS as INSERT_MONITORS
from optimizers.insert_monitors import insert_monitors
from optimizers.offload_per_key import PASS as OFFLOAD
from optimizers.offload_per_key import offload_per_key
from optimizers.pipeline import PASSES, STEPS
from optimizers.push_splits import PASS as PUSH_SPLITS
from optimizers.push_splits import push_splits
from squirrel_graph.backends.lowering import lower
from squirrel_graph.backends.registry import backends_for
from squirrel_graph.graph import (
    AsyncMap,
    Barrier,
    Batched,
    DaskMap,
    DaskTasks,
    Equalize,
    Fetch,
    Filter,
    Flatten,
    Fused,
    IteratorFn,
    IterSource,
    KeySource,
    Loop,
    Map,
    MaterializeDask,
    Monitor,
    Multiplex,
    PerKey,
    Plan,
    Shuffle,
    Split,
    Take,
    ZipIndex,
)
from squirrel_graph.runtime.context import RunContext

# ------------------------------------------------------------------------------------------ user callables
# module level, so that a backend that pickles them could


def add_one(x):
    return x + 1


def times_two(x):
    return x * 2


def add(x, offset=0):
    return x + offset


def is_odd(x):
    return x % 2 == 1


def not_div3(x):
    return x % 3 != 0


def to_pair(x):
    return [x, -x]


def not_second(s):
    return not s.endswith("1")


def upper(s):
    return s.upper()


def passthrough(it):
    yield from it


SHARD_SIZES = {"a": 3, "b": 1, "c": 2, "d": 4, "e": 2}


def read_shard(key):
    return [f"{key}{i}" for i in range(SHARD_SIZES[key])]


def shard_size(key):
    return SHARD_SIZES[key]


class Recorder:
    """A monitor callback that records the prefix (the measured stage) of every call."""

    def __init__(self):
        self.calls = []

    def __call__(self, metrics, **kwargs):
        (prefix,) = {key.split(": ")[0] for key in metrics}
        self.calls.append(prefix)


# ------------------------------------------------------------------------------------------ helpers

#: pass/step name -> the aspects tested below ("fires", "declines", "same_items")
COVERED: dict[str, set[str]] = defaultdict(set)


def covers(name, *aspects):
    """Register a test as covering ``aspects`` of the pass or step ``name`` (checked by the completeness test)."""

    def mark(fn):
        COVERED[name].update(aspects)
        return fn

    return mark


def run(plan, backend="threaded", ctx=None):
    return list(lower(plan, backends_for(backend, {"inline": True}, {})).open(ctx))


def kinds(plan):
    return [plan.node(n).kind for n in plan.topo()]


def edges(plan):
    return sorted(plan.graph.edges)


def chain(*nodes):
    """A linear plan ``nodes[0] -> nodes[1] -> ...`` with ids ``"{i}:{kind}"``; returns (plan, ids)."""
    ids, triples = [], []
    for i, node in enumerate(nodes):
        nid = f"{i}:{node.kind}"
        triples.append((nid, node, (ids[-1],) if ids else ()))
        ids.append(nid)
    return Plan.build(triples, ids[-1]), ids


def key_plan(*after):
    """keys -> fetch -> flatten -> ``after``: a driver's plan over SHARD_SIZES."""
    return chain(
        KeySource(source=list(SHARD_SIZES), store="s"),
        Fetch(fn=read_shard, max_workers=1, store="s"),
        Flatten(),
        *after,
    )


ALL_SHARD_ITEMS = sorted(item for key in SHARD_SIZES for item in read_shard(key))

# ------------------------------------------------------------------------------------------ eliminate_noops


@covers("eliminate_noops", "fires", "same_items")
def test_eliminate_noops_removes_shuffle_1_and_take_none_and_keeps_the_items():
    plan, _ = chain(IterSource(source=range(10)), Shuffle(size=1), Map(fn=add_one), Take(n=None))
    result = eliminate_noops(plan, PassContext())
    assert kinds(result.plan) == ["source", "map"]
    assert result.plan.output == "2:map"  # the removed take(None) was the output
    assert [(r.action, r.nodes) for r in result.rewrites] == [("removed", ("1:shuffle",)), ("removed", ("3:take",))]
    assert result.rewrites[0].reason == "shuffle buffer of size 1 cannot reorder items"
    assert result.rewrites[1].reason == "take(None) keeps every item"
    assert run(result.plan) == run(plan) == list(range(1, 11))
    assert len(plan) == 4  # the input plan is untouched


@covers("eliminate_noops", "declines")
def test_eliminate_noops_keeps_nodes_that_are_not_noops():
    plan, _ = chain(
        IterSource(source=range(10)),
        Shuffle(size=2, seed=1),
        Take(n=8),
        Barrier(),
        Loop(n=1),
        Map(fn=add_one),
    )
    result = eliminate_noops(plan, PassContext())
    assert result.rewrites == ()
    assert result.plan is plan


@covers("eliminate_noops", "declines")
def test_eliminate_noops_never_touches_a_node_with_several_inputs():
    plan = Plan.build(
        [
            ("0:source", IterSource(source=range(3)), ()),
            ("1:source", IterSource(source=range(3)), ()),
            ("2:take", Take(n=None), ("0:source", "1:source")),
        ],
        "2:take",
    )
    result = eliminate_noops(plan, PassContext())
    assert result.rewrites == () and result.plan is plan


# ------------------------------------------------------------------------------------------ push_splits


def _split_shares(plan_for_index):
    """The items of rank 0 and rank 1 of a 2-way rank split, planned by ``plan_for_index(index)``."""
    return [run(plan_for_index(i)) for i in (0, 1)]


def _assert_partition(shares, expected):
    assert Counter(shares[0]) + Counter(shares[1]) == Counter(expected)
    assert not set(shares[0]) & set(shares[1])


@covers("push_splits", "fires", "same_items")
def test_push_splits_moves_a_rank_split_to_the_key_listing_and_keeps_the_partition():
    def planned(index):
        return key_plan(Map(fn=upper), Split(axis="rank", index=index, parts=2))[0]

    plan = planned(0)
    result = push_splits(plan, PassContext())
    assert kinds(result.plan) == ["keys", "split", "fetch", "flatten", "map"]
    assert result.plan.inputs("4:split") == ["0:keys"] and result.plan.output == "3:map"
    (rw,) = result.rewrites
    assert rw.action == "moved" and rw.nodes == ("4:split",)
    assert rw.reason.startswith("moved up past map(upper), flatten, fetch(s); it stops there because reached the key")

    expected = [s.upper() for s in ALL_SHARD_ITEMS]
    before = _split_shares(planned)
    after = _split_shares(lambda i: push_splits(planned(i), PassContext()).plan)
    _assert_partition(before, expected)
    _assert_partition(after, expected)
    assert after[0] == ["A0", "A1", "A2", "C0", "C1", "E0", "E1"]  # whole shards a, c, e: the assignment changed
    assert before != after


@covers("push_splits", "fires", "same_items")
def test_push_splits_past_a_filter_changes_the_assignment_but_not_the_union():
    def planned(index):
        return chain(
            IterSource(source=range(20)), Filter(predicate=is_odd), Map(fn=times_two), Split("rank", index, 2)
        )[0]

    result = push_splits(planned(0), PassContext())
    assert kinds(result.plan) == ["source", "split", "filter", "map"]
    assert "reached the source source(range(0, 20))" in result.rewrites[0].reason
    expected = [2 * x for x in range(20) if x % 2]
    after = _split_shares(lambda i: push_splits(planned(i), PassContext()).plan)
    _assert_partition(_split_shares(planned), expected)
    _assert_partition(after, expected)
    assert after == [[], expected]  # rank 0 takes the even numbers, which the filter then drops: legal, unbalanced


@pytest.mark.parametrize(
    ("above", "reason"),
    [
        (Take(n=5), "stays in place: take(5) depends on item order and count"),
        (Batched(batchsize=2), "stays in place: batched(2) depends on item order and count"),
        (ZipIndex(), "stays in place: zip_index depends on item order and count"),
        (Barrier(), "stays in place: a barrier() stops optimizations"),
        (
            IteratorFn(fn=passthrough),
            "stays in place: to(passthrough) is a custom stage whose effect on items is unknown",
        ),
        (
            Split(axis="worker", level="item"),
            "stays in place: another split split_by_worker(at iteration, level='item') is directly above",
        ),
    ],
    ids=["take", "batched", "zip_index", "barrier", "to", "split"],
)
@covers("push_splits", "declines", "same_items")
def test_push_splits_keeps_a_split_below_an_order_dependent_node(above, reason):
    def planned(index):
        return chain(IterSource(source=range(12)), Map(fn=add_one), above, Split("rank", index, 2))[0]

    plan = planned(0)
    result = push_splits(plan, PassContext())
    (rw,) = [r for r in result.rewrites if r.nodes == ("3:split",)]
    assert rw.action == "kept"
    assert rw.reason.startswith(reason)
    assert edges(result.plan) == edges(plan)
    for i in (0, 1):
        assert run(push_splits(planned(i), PassContext()).plan) == run(planned(i))


@covers("push_splits", "declines")
def test_push_splits_keeps_a_pinned_split_and_a_split_below_a_shared_node():
    pinned, _ = chain(IterSource(source=range(4)), Map(fn=add_one), Split("rank", 0, 2, level="item"))
    result = push_splits(pinned, PassContext())
    assert [(r.action, r.reason) for r in result.rewrites] == [("kept", "pinned by level='item'")]
    assert edges(result.plan) == edges(pinned)

    shared = Plan.build(
        [
            ("0:source", IterSource(source=range(4)), ()),
            ("1:map", Map(fn=add_one), ("0:source",)),
            ("2:split", Split("rank", 0, 2), ("1:map",)),
            ("3:filter", Filter(predicate=is_odd), ("1:map",)),
            ("4:multiplex", Multiplex(), ("2:split", "3:filter")),
        ],
        "4:multiplex",
    )
    result = push_splits(shared, PassContext())
    assert [(r.action, r.reason) for r in result.rewrites] == [
        ("kept", "stays in place: map(add_one) feeds several consumers")
    ]
    assert edges(result.plan) == edges(shared)


@covers("push_splits", "declines")
def test_push_splits_stops_below_a_node_with_several_inputs_even_one_that_lets_splits_pass():
    """No node of ours with several inputs lets a split pass today (they are order-sensitive); an order-free union
    would, and a split above it would then sit on one input only: the pass must keep it in place."""
    from dataclasses import dataclass
    from typing import ClassVar

    from squirrel_graph.graph import Node, traits

    @traits(item_independent=True)
    @dataclass(frozen=True, eq=False)
    class Union(Node):
        kind: ClassVar[str] = "union"
        n_inputs: ClassVar[int | None] = None

    assert Union().lets_split_pass("rank")
    plan = Plan.build(
        [
            ("0:a", IterSource(source=range(4)), ()),
            ("1:b", IterSource(source=range(4, 8)), ()),
            ("2:union", Union(), ("0:a", "1:b")),
            ("3:split", Split("rank", 0, 2), ("2:union",)),
        ],
        "3:split",
    )
    result = push_splits(plan, PassContext())
    assert [(r.action, r.reason) for r in result.rewrites] == [("kept", "stays in place: union has several inputs")]
    assert edges(result.plan) == edges(plan)


# ------------------------------------------------------------------------------------------ offload_to_dask

DASK = PassContext(backend="dask", per_key_engine="dask")


def test_offload_runs_only_when_the_backend_has_a_per_key_engine():
    assert not OFFLOAD.enabled(PassContext())
    assert OFFLOAD.enabled(DASK)


@covers("offload_to_dask", "fires", "same_items")
def test_offload_turns_fetch_and_per_key_stages_into_one_per_key_node_up_to_batched():
    pytest.importorskip("dask")
    plan, _ = key_plan(Map(fn=upper), Filter(predicate=not_second), Batched(batchsize=3))
    result = offload_per_key(plan, DASK)
    assert kinds(result.plan) == ["keys", "per_key", "batched"]
    node = result.plan.node("1:dask_per_key")
    assert isinstance(node, PerKey) and node.engine == "dask"
    assert node.node_ids == ("1:fetch", "2:flatten", "3:map", "4:filter")
    (rw,) = result.rewrites
    assert (rw.action, rw.nodes, rw.result) == ("offloaded", node.node_ids, "1:dask_per_key")
    assert rw.reason == "one dask task per key runs fetch(s) → flatten → map(upper) → filter(not_second)"
    expected = run(plan)
    assert len(expected) == 2 and expected[0] == ["A0", "A2", "B0"]
    assert run(result.plan, "dask") == expected


@covers("offload_to_dask", "declines", "same_items")
def test_offload_declines_without_a_shard_reader_and_stops_at_a_local_callback():
    plan, _ = chain(IterSource(source=range(5)), Map(fn=add_one), Filter(predicate=is_odd))
    result = offload_per_key(plan, DASK)
    assert result.rewrites == () and result.plan is plan

    sampled = Monitor(every=2)
    plan, _ = key_plan(sampled, Map(fn=upper))
    result = offload_per_key(plan, DASK)
    (rw,) = result.rewrites
    assert rw.nodes == ("1:fetch", "2:flatten")  # the sampled monitor's callback belongs to the local process
    assert rw.reason == "one dask task per key runs fetch(s) → flatten"
    assert kinds(result.plan) == ["keys", "per_key", "monitor", "map"]
    pytest.importorskip("dask")
    assert run(result.plan, "dask") == run(plan) == [s.upper() for s in ALL_SHARD_ITEMS]


def down_at_b(key):
    if key == "b":
        raise ConnectionError("store down")
    return read_shard(key)


def corrupt_at_b(key):
    from squirrel_graph.io.serialization import CorruptShardError

    if key == "b":
        raise CorruptShardError("b.gz: not a gzip file")
    return read_shard(key)


def fails_on_b0(s):
    if s == "b0":
        raise ValueError("bad sample")
    return s


def per_key_task(fetch, *after):
    """The task body of the per-key node offload_per_key makes of keys -> ``fetch`` -> flatten -> ``after``."""
    from squirrel_graph.runtime.per_key import PerKeyTask

    plan, _ = chain(KeySource(source=list(SHARD_SIZES), store="s"), fetch, Flatten(), *after)
    return PerKeyTask(offload_per_key(plan, DASK).plan.node("1:dask_per_key"))


def test_a_per_key_task_gives_up_on_a_shard_naming_the_fetch_and_its_limits():
    task = per_key_task(Fetch(fn=down_at_b, store="s", timeout=5), Map(fn=upper))
    assert task(["a", "c"]) == (["A0", "A1", "A2", "C0", "C1"], [])
    with pytest.raises(ConnectionError) as err:
        task(["a", "b"])
    assert str(err.value) == (
        "fetch(s): shard 'b' failed after 1 attempt(s) (fetch_timeout=5 s, fetch_retries=0): ConnectionError: "
        "store down"
    )


def test_a_per_key_task_skips_a_corrupt_shard_and_logs_it_naming_the_fetch(caplog):
    task = per_key_task(Fetch(fn=corrupt_at_b, store="s", skip_corrupt=True), Map(fn=upper))
    with caplog.at_level("WARNING", logger="squirrel_graph"):
        assert task(["a", "b", "c"]) == (["A0", "A1", "A2", "C0", "C1"], [("b", "b.gz: not a gzip file")])
    assert caplog.messages == ["fetch(s): skipping corrupt shard 'b': b.gz: not a gzip file"]


def test_an_error_in_a_per_key_task_names_the_stage_and_node_it_came_from():
    with pytest.raises(ValueError, match="bad sample") as err:
        per_key_task(Fetch(fn=read_shard, store="s"), Map(fn=fails_on_b0), Map(fn=upper))(["a", "b"])
    assert err.value.__notes__ == ["squirrel_graph: raised in stage 'map(fails_on_b0)' (node 3:map)"]


# ------------------------------------------------------------------------------------------ fuse_maps


@covers("fuse_maps", "fires", "same_items")
@pytest.mark.parametrize("drop_last", [True, False])
def test_fuse_maps_fuses_map_filter_flatten_sampled_monitor_and_a_trailing_batched(drop_last):
    plan, _ = chain(
        IterSource(source=range(12)),
        Map(fn=add, kwargs={"offset": 1}),
        Filter(predicate=not_div3),
        Map(fn=to_pair),
        Flatten(),
        Monitor(every=3),
        Batched(batchsize=5, drop_last=drop_last),
    )
    result = fuse_maps(plan, PassContext())
    assert kinds(result.plan) == ["source", "fused"]
    fused = result.plan.node("1:fused")
    assert isinstance(fused, Fused)
    assert fused.node_ids == ("1:map", "2:filter", "3:map", "4:flatten", "5:monitor", "6:batched")
    (rw,) = result.rewrites
    assert (rw.action, rw.result) == ("fused", "1:fused")
    assert rw.reason.startswith("6 synchronous per-item nodes (map(add) → filter(not_div3) → map(to_pair) → flatten")
    assert rw.reason.endswith("the run ends because it is the output of the plan")
    kept = [y for x in range(1, 13) if x % 3 for y in (x, -x)]
    full = [kept[i : i + 5] for i in range(0, len(kept), 5)]
    expected = full if not drop_last else [b for b in full if len(b) == 5]
    assert run(plan) == expected
    assert run(result.plan) == expected


@covers("fuse_maps", "declines", "same_items")
def test_fuse_maps_stops_at_a_barrier_an_async_map_and_a_shuffle_and_leaves_single_nodes():
    plan, _ = chain(
        IterSource(source=range(10)),
        Map(fn=add_one),
        Map(fn=times_two),
        Barrier(),
        Map(fn=add_one),
        Map(fn=add_one),
        AsyncMap(fn=times_two, max_workers=1),
        Map(fn=add_one),  # alone between two boundaries: stays a plain node
        Shuffle(size=3, seed=7),
        Filter(predicate=is_odd),
    )
    result = fuse_maps(plan, PassContext())
    assert kinds(result.plan) == ["source", "fused", "barrier", "fused", "async_map", "map", "shuffle", "filter"]
    reasons = {r.nodes: r.reason.split("the run ends because ")[1] for r in result.rewrites}
    assert reasons == {
        ("1:map", "2:map"): "a barrier() follows",
        ("4:map", "5:map"): "async_map(times_two) is not a synchronous per-item node",
    }
    assert run(result.plan) == run(plan)
    assert sorted(run(plan)) == sorted(((x + 1) * 2 + 2) * 2 + 1 for x in range(10))


@covers("fuse_maps", "declines")
def test_fuse_maps_does_not_fuse_across_a_shared_stream():
    plan = Plan.build(
        [
            ("0:source", IterSource(source=range(4)), ()),
            ("1:map", Map(fn=add_one), ("0:source",)),
            ("2:map", Map(fn=times_two), ("1:map",)),
            ("3:map", Map(fn=add_one), ("2:map",)),
            ("4:filter", Filter(predicate=is_odd), ("2:map",)),
            ("5:multiplex", Multiplex(), ("3:map", "4:filter")),
        ],
        "5:multiplex",
    )
    result = fuse_maps(plan, PassContext())
    (rw,) = result.rewrites
    assert rw.nodes == ("1:map", "2:map")
    assert rw.reason.endswith("the run ends because 1:fused feeds 2 consumers")
    assert kinds(result.plan) == ["source", "fused", "map", "filter", "multiplex"]


def test_fuse_maps_explains_that_a_trailing_batched_ends_the_loop():
    plan, _ = chain(IterSource(source=range(10)), Map(fn=add_one), Batched(batchsize=2), Map(fn=len))
    result = fuse_maps(plan, PassContext())
    (rw,) = result.rewrites
    assert rw.nodes == ("1:map", "2:batched")
    assert run(result.plan) == run(plan) == [2] * 5
    ends = rw.reason.split("the run ends because ")[1]
    assert "map(len) is not a synchronous per-item node" not in ends
    assert "batched(2)" in ends


# ------------------------------------------------------------------------------------------ collapse_dask


@covers("collapse_dask", "fires", "same_items")
@pytest.mark.parametrize("partition_size", [1, 3])
def test_collapse_dask_turns_dask_maps_and_materialize_into_one_task_node(partition_size):
    pytest.importorskip("dask")
    plan, _ = chain(
        IterSource(source=range(7)),
        DaskMap(fn=add, kwargs={"offset": 10}),
        DaskMap(fn=times_two),
        MaterializeDask(buffer=4, partition_size=partition_size),
        Map(fn=add_one),
    )
    result = collapse_dask(plan, PassContext())
    assert kinds(result.plan) == ["source", "dask_tasks", "map"]
    node = result.plan.node("1:dask_tasks")
    assert isinstance(node, DaskTasks) and node.partition_size == partition_size and node.buffer == 4
    (rw,) = result.rewrites
    assert (rw.action, rw.nodes, rw.result) == (
        "collapsed",
        ("1:dask_map", "2:dask_map", "3:materialize_dask"),
        "1:dask_tasks",
    )
    per = "item" if partition_size == 1 else "partition of 3 items"
    assert rw.reason == f"2 maps -> 1 task per {per}: one scheduler round trip instead of 2 per item"
    expected = [(x + 10) * 2 + 1 for x in range(7)]
    assert run(plan, "dask") == expected
    assert run(result.plan, "dask") == expected


@covers("collapse_dask", "declines")
def test_collapse_dask_declines_across_a_barrier_and_for_shared_delayed_items():
    across, _ = chain(IterSource(source=range(3)), DaskMap(fn=add_one), Barrier(), MaterializeDask())
    result = collapse_dask(across, PassContext())
    assert result.rewrites == () and result.plan is across

    alone, _ = chain(IterSource(source=range(3)), MaterializeDask())
    assert collapse_dask(alone, PassContext()).rewrites == ()

    shared = Plan.build(
        [
            ("0:source", IterSource(source=range(3)), ()),
            ("1:dask_map", DaskMap(fn=add_one), ("0:source",)),
            ("2:dask_map", DaskMap(fn=times_two), ("1:dask_map",)),
            ("3:materialize_dask", MaterializeDask(), ("2:dask_map",)),
            ("4:multiplex", Multiplex(), ("3:materialize_dask", "1:dask_map")),  # the user reads 1's delayed items
        ],
        "4:multiplex",
    )
    result = collapse_dask(shared, PassContext())
    (rw,) = result.rewrites
    assert rw.nodes == ("2:dask_map", "3:materialize_dask")  # only the unshared dask_map is collapsed
    assert kinds(result.plan) == ["source", "dask_map", "dask_tasks", "multiplex"]
    assert sorted(result.plan.consumers("1:dask_map")) == ["2:dask_tasks", "4:multiplex"]


# ------------------------------------------------------------------------------------------ insert_monitors


def test_insert_monitors_runs_only_when_monitors_are_asked_for():
    assert not INSERT_MONITORS.enabled(PassContext())
    assert INSERT_MONITORS.enabled(PassContext(monitor=True))
    assert INSERT_MONITORS.enabled(PassContext(monitor=Recorder()))


@covers("insert_monitors", "fires", "declines", "same_items")
def test_insert_monitors_measures_every_stage_but_user_monitors_and_barriers():
    plan, _ = chain(
        IterSource(source=range(150)),
        Map(fn=add_one),
        Monitor(prefix="mine: "),
        Barrier(),
        Filter(predicate=is_odd),
    )
    recorder = Recorder()
    result = insert_monitors(plan, PassContext(monitor=recorder, monitor_every=25))
    assert [r.nodes for r in result.rewrites] == [("0:source",), ("1:map",), ("4:filter",)]
    assert all(r.action == "inserted" for r in result.rewrites)
    assert result.rewrites[1].reason == "measures what leaves map(add_one)"
    assert kinds(result.plan) == [
        "source", "monitor", "map", "monitor", "monitor", "barrier", "filter", "monitor",
    ]  # fmt: skip
    assert result.plan.output == "4:filter.monitor"
    auto = result.plan.node("1:map.monitor")
    assert (
        auto.auto and auto.callback is recorder and auto.every == 25 and auto.label() == "monitor(after map(add_one))"
    )

    ctx = RunContext()
    assert run(result.plan, ctx=ctx) == run(plan) == list(range(1, 151, 2))
    assert ctx.state["1:map.monitor"].items == 150 and ctx.state["4:filter.monitor"].items == 75
    # sampled monitors (every 25 items): 150 items give 6 calls, the 75 that pass the filter 3
    assert Counter(recorder.calls) == {"source(range(0, 150))": 6, "map(add_one)": 6, "filter(is_odd)": 3}
    assert insert_monitors(plan, PassContext(monitor=True)).plan.node("1:map.monitor").callback is None


# ------------------------------------------------------------------------------------------ attach_equalize (step)


@covers("attach_equalize", "fires")
@pytest.mark.parametrize("mode", ["drop", "pad"])
def test_attach_equalize_puts_equalize_after_the_shard_reader_and_its_unnesting(mode):
    plan, _ = chain(
        KeySource(source=["a", "b", "c", "d"], store="s", counts=shard_size),
        Split("rank", 1, 2, equalize=mode),
        Fetch(fn=read_shard, max_workers=1, store="s"),
        Flatten(),
        Map(fn=upper),
    )
    result = attach_equalize(plan)
    assert kinds(result.plan) == ["keys", "split", "fetch", "flatten", "equalize", "map"]
    assert result.plan.inputs("1:split.equalize") == ["3:flatten"]
    assert result.plan.consumers("1:split.equalize") == ["4:map"]
    eq = result.plan.node("1:split.equalize")
    assert isinstance(eq, Equalize) and (eq.mode, eq.rank, eq.world_size) == (mode, 1, 2)
    (rw,) = result.rewrites
    assert (rw.action, rw.nodes, rw.result) == ("attached", ("1:split",), "1:split.equalize")
    assert rw.reason == f"equal item counts per rank ({mode!r}) after flatten"


@covers("attach_equalize", "fires", "same_items")
@pytest.mark.parametrize(("mode", "count"), [("drop", 3), ("pad", 7)])
def test_attach_equalize_makes_ranks_yield_the_same_count_of_their_own_items(mode, count):
    def planned(index, equalize):
        return chain(
            KeySource(source=["a", "b", "d", "c"], store="s", counts=shard_size),
            Split("rank", index, 2, equalize=equalize),
            Fetch(fn=read_shard, max_workers=1, store="s"),
            Flatten(),
        )[0]

    plain = [run(planned(i, None)) for i in (0, 1)]
    assert plain == [["a0", "a1", "a2", "d0", "d1", "d2", "d3"], ["b0", "c0", "c1"]]
    equal = [run(attach_equalize(planned(i, mode)).plan) for i in (0, 1)]
    assert [len(e) for e in equal] == [count, count]
    for own, got in zip(plain, equal):
        assert set(got) <= set(own)
        if mode == "drop":
            assert got == own[:count]
        else:  # pad repeats this rank's own items from its start, in order
            assert got == (own * count)[:count]


@covers("attach_equalize", "fires")
@pytest.mark.parametrize(
    ("between", "below", "expected"),
    [
        ([Shuffle(size=4, seed=1)], [Flatten()], ["keys", "split", "shuffle", "fetch", "flatten", "equalize"]),
        ([], [Map(fn=upper)], ["keys", "split", "fetch", "equalize", "map"]),
        ([Map(fn=upper)], [Flatten()], ["keys", "split", "equalize", "map", "fetch", "flatten"]),
        ([Filter(predicate=bool)], [Flatten()], ["keys", "split", "equalize", "filter", "fetch", "flatten"]),
    ],
    ids=["shuffled keys", "no unnesting", "mapped keys", "filtered keys"],
)
def test_attach_equalize_reaches_the_shard_reader_only_through_stages_that_keep_every_key(between, below, expected):
    """A shuffle keeps the keys and their count; a map changes them and a filter their count: the equalize then
    stays on the split. Below the reader it takes the unnesting only."""
    plan, _ = chain(
        KeySource(source=["a", "b", "c", "d"], store="s"),
        Split("rank", 0, 2, equalize="drop"),
        *between,
        Fetch(fn=read_shard, max_workers=1, store="s"),
        *below,
    )
    assert kinds(attach_equalize(plan).plan) == expected


@covers("attach_equalize", "declines")
def test_attach_equalize_ignores_splits_without_equalize_and_worker_splits():
    plan, _ = chain(
        IterSource(source=range(6)),
        Split("rank", 0, 2),
        Split("worker", 0, 1, equalize="drop"),
    )
    result = attach_equalize(plan)
    assert result.rewrites == () and result.plan is plan


@covers("attach_equalize", "fires", "same_items")
def test_attach_equalize_at_item_level_stays_after_the_split_when_push_splits_moves_it():
    def planned(index):
        return chain(IterSource(source=range(5)), Map(fn=add_one), Split("rank", index, 2, equalize="drop"))[0]

    result = attach_equalize(planned(0))
    assert kinds(result.plan) == ["source", "map", "split", "equalize"]
    assert result.rewrites[0].reason == "equal item counts per rank ('drop') after split_by_rank(0/2, equalize='drop')"
    pushed = [push_splits(attach_equalize(planned(i)).plan, PassContext()).plan for i in (0, 1)]
    assert kinds(pushed[0]) == ["source", "split", "map", "equalize"]
    shares = [run(p) for p in pushed]
    assert shares == [[1, 3], [2, 4]]  # 3 and 2 items, dropped to 2 each
    assert [run(push_splits(planned(i), PassContext()).plan) for i in (0, 1)] == [[1, 3, 5], [2, 4]]


# ------------------------------------------------------------------------------------------ check_split_safety (step)


@covers("check_split_safety", "fires")
def test_check_split_safety_refuses_a_split_below_an_unseeded_shuffle():
    plan, _ = chain(IterSource(source=range(8)), Shuffle(size=4), Take(n=6), Split("rank", 0, 2))
    with pytest.raises(SplitPlacementError, match=r"split_by_rank\(0/2\) \(node 3:split\) is below the unseeded "):
        check_split_safety(plan)
    with pytest.raises(SplitPlacementError):  # push_splits cannot help: the take holds the split below the shuffle
        run_pipeline(plan)


@covers("check_split_safety", "declines")
@pytest.mark.parametrize(
    "shuffle",
    [Shuffle(size=4, seed=3), Shuffle(size=1)],
    ids=["seeded", "size-1"],
)
def test_check_split_safety_accepts_a_split_below_a_shuffle_every_process_replays(shuffle):
    plan, _ = chain(IterSource(source=range(8)), shuffle, Split("rank", 0, 2))
    result = check_split_safety(plan)
    (rw,) = result.rewrites
    assert (rw.action, rw.nodes) == ("checked", ("2:split",))
    assert "the shares form a partition" in rw.reason
    assert result.plan is plan
    assert check_split_safety(chain(IterSource(source=range(3)), Map(fn=add_one))[0]).rewrites == ()


@covers("check_split_safety", "declines")
def test_check_split_safety_accepts_an_unseeded_shuffle_once_push_splits_moved_the_split_above_it():
    def planned(index):
        return chain(IterSource(source=range(10)), Map(fn=add_one), Shuffle(size=4), Split("rank", index, 2))[0]

    with pytest.raises(SplitPlacementError):
        check_split_safety(planned(0))
    result = run_pipeline(planned(0))
    assert kinds(result.optimized) == ["source", "split", "map", "shuffle"]
    assert [r.pass_name for r in result.rewrites if r.action == "checked"] == ["check_split_safety"]
    _assert_partition([run(run_pipeline(planned(i)).optimized) for i in (0, 1)], list(range(1, 11)))


# ------------------------------------------------------------------------------------------ completeness

ASPECTS = {Pass: {"fires", "declines", "same_items"}, Step: {"fires", "declines"}}


def _declared_in_modules():
    """name -> Pass/Step for every module of the optimizers package that declares PASS or STEP."""
    found = {}
    for info in pkgutil.iter_modules(optimizers.__path__):
        module = importlib.import_module(f"optimizers.{info.name}")
        for attr in ("PASS", "STEP"):
            decl = getattr(module, attr, None)
            if decl is not None:
                assert isinstance(decl, (Pass, Step)), f"optimizers.{info.name}.{attr} is not a Pass or Step"
                found[decl.name] = decl
    return found


def test_every_pass_and_step_has_unit_tests_here():
    declared = _declared_in_modules()
    assert set(declared) == {p.name for p in PASSES} | {s.name for s in STEPS}
    assert {ELIMINATE_NOOPS, PUSH_SPLITS, OFFLOAD, FUSE_MAPS, COLLAPSE_DASK, INSERT_MONITORS} <= set(PASSES)
    assert {ATTACH_EQUALIZE, CHECK_SPLIT_SAFETY} <= set(STEPS)
    missing = {
        name: sorted(ASPECTS[type(decl)] - COVERED.get(name, set()))
        for name, decl in declared.items()
        if ASPECTS[type(decl)] - COVERED.get(name, set())
    }
    assert not missing, f"passes/steps without unit tests in tests/test_passes.py (name -> missing aspects): {missing}"
    assert set(COVERED) <= set(declared), f"tests cover unknown names: {sorted(set(COVERED) - set(declared))}"


# ------------------------------------------------------------------------------------------ mutation survivors
# Each test below pins a detail a deliberate mutant of the passes changed without any other test noticing.


def test_a_worker_split_moves_past_a_rank_equalize_but_a_rank_split_would_not():
    plan, _ = chain(IterSource(source=range(12)), Equalize(mode="drop", rank=0, world_size=2), Split("worker", 0, 1))
    moved = push_splits(plan, PassContext())
    assert kinds(moved.plan) == ["source", "split", "equalize"]  # the worker split now reads the source
    assert Equalize(mode="drop", rank=0, world_size=2).lets_split_pass("worker")
    assert not Equalize(mode="drop", rank=0, world_size=2).lets_split_pass("rank")


def test_insert_monitors_builds_windows_of_100_and_names_the_inserted_node():
    plan, _ = chain(IterSource(source=range(5)), Map(fn=add_one))
    result = insert_monitors(plan, PassContext(monitor=True, monitor_every=7))
    mon = result.plan.node("1:map.monitor")
    assert (mon.window_size, mon.every, mon.auto) == (100, 7, True)
    assert [r.result for r in result.rewrites] == ["0:source.monitor", "1:map.monitor"]


def test_offload_names_its_rewrite_after_the_pass():
    result = offload_per_key(key_plan(Map(fn=upper))[0], PassContext(per_key_engine="dask"))
    assert result.rewrites and all(r.pass_name == "offload_to_dask" for r in result.rewrites)
    assert [r.result for r in result.rewrites] == ["1:dask_per_key"]
