"""The pass pipeline: fusion happens where legal and nowhere else, passes switch off by name, rewrites are logged."""

from __future__ import annotations

import networkx as nx
import pytest

from optimizers import PASS_NAMES, optimize
from optimizers.fuse_maps import find_runs
from squirrel_graph import IterableSource, Multiplexer, MultiplexingStrategy
from squirrel_graph.graph import Fused, Map, Plan, PlanError

from helpers import add_one, not_div3, square, times_two


def chain():
    return IterableSource(range(1000)).map(add_one).map(times_two).filter(not_div3).map(square).batched(10)


def test_map_map_filter_map_batched_becomes_one_physical_stage_after_the_source():
    ex = chain().explain()
    stages = ex.physical_stages
    assert len(stages) == 2
    fused = stages[1]
    assert fused.node_ids == ("1:map", "2:map", "3:filter", "4:map", "5:batched")
    assert "fused 1:map, 2:map, 3:filter, 4:map, 5:batched -> 1:fused" in str(ex)
    assert "run as one generated loop" in str(ex)


def test_fused_and_unfused_results_are_equal():
    expected = chain().compile(optimize=False).collect()
    assert chain().collect() == expected
    assert chain().compile(disable=["fuse_maps"]).collect() == expected
    kept = [((x + 1) * 2) ** 2 for x in range(1000) if ((x + 1) * 2) % 3 != 0]
    assert expected == [kept[i : i + 10] for i in range(0, len(kept) - len(kept) % 10, 10)] and len(expected) == 66


def test_disable_by_name_keeps_nodes_apart_and_is_logged():
    ex = chain().compile(disable=["fuse_maps"]).explain()
    assert len(ex.physical_stages) == 6
    assert "[fuse_maps] skipped" in str(ex)


def test_barrier_stops_fusion():
    stream = IterableSource(range(10)).map(add_one).map(times_two).barrier().map(square).map(add_one)
    ex = stream.explain()
    fused = [s for s in ex.physical_stages if len(s.node_ids) > 1]
    assert [s.node_ids for s in fused] == [("1:map", "2:map"), ("4:map", "5:map")]
    assert "a barrier() follows" in str(ex)
    assert stream.collect() == [((x + 1) * 2) ** 2 + 1 for x in range(10)]


def test_async_map_and_shuffle_are_stage_boundaries():
    stream = IterableSource(range(10)).map(add_one).async_map(times_two).map(square).shuffle(4, seed=1).map(add_one)
    ex = stream.explain()
    assert all(len(s.node_ids) == 1 for s in ex.physical_stages)
    assert sorted(stream.collect()) == sorted(((x + 1) * 2) ** 2 + 1 for x in range(10))


def test_flatten_is_fused_and_batched_only_at_the_end_of_a_run():
    stream = IterableSource([[1, 2], [3]]).flatten().map(add_one).batched(2).map(len)
    runs = find_runs(stream.plan)
    assert runs == [["1:flatten", "2:map", "3:batched"], ["4:map"]]
    assert stream.collect() == [2]


def test_eliminate_noops_removes_shuffle_1_and_take_none_and_says_why():
    stream = IterableSource(range(5)).shuffle(1).take(None).map(add_one)
    optimized, log = optimize(stream.plan)
    kinds = [optimized.node(n).kind for n in optimized.topo()]
    assert kinds == ["source", "map"]
    reasons = [r.reason for r in log if r.action == "removed"]
    assert any("cannot reorder" in r for r in reasons) and any("keeps every item" in r for r in reasons)


def test_passes_are_pure_and_plans_immutable():
    plan = chain().plan
    before = sorted(plan.graph.nodes)
    optimized, _ = optimize(plan)
    assert sorted(plan.graph.nodes) == before
    assert isinstance(optimized.node("1:fused"), Fused)
    with pytest.raises(nx.NetworkXError):
        plan.graph.add_node("x")


def test_multi_input_plans_fuse_each_branch_separately():
    a = IterableSource([1, 2]).map(add_one).map(add_one)
    b = IterableSource([10]).map(times_two).map(times_two)
    mux = Multiplexer([a, b], MultiplexingStrategy.ROUND_ROBIN).map(add_one)
    plan = mux.plan
    assert len(plan.inputs(plan.output)) == 1
    optimized, log = optimize(plan)
    assert sum(isinstance(optimized.node(n), Fused) for n in optimized.topo()) == 2
    assert mux.collect() == [4, 41, 5]


def test_pass_names_are_documented_order():
    assert PASS_NAMES == (
        "eliminate_noops",
        "push_splits",
        "offload_to_dask",
        "fuse_maps",
        "collapse_dask",
        "insert_monitors",
    )


def test_discovery_finds_every_declared_pass_and_step_in_order():
    from optimizers import pipeline

    passes, steps = pipeline._declared()  # found again, not the import-time result
    assert tuple(p.name for p in passes) == PASS_NAMES
    assert [p.order for p in passes] == sorted(p.order for p in passes)
    assert [(s.phase, s.name) for s in steps] == [("normalize", "attach_equalize"), ("validate", "check_split_safety")]
    assert passes == pipeline.PASSES and steps == pipeline.STEPS


def test_plan_rejects_invalid_graphs():
    g = nx.DiGraph()
    g.add_node("a", op=Map(fn=add_one))
    g.add_node("b", op=Map(fn=add_one))
    with pytest.raises(PlanError, match="exactly one output"):
        Plan(g, "a")
    with pytest.raises(PlanError, match="not in the plan"):
        Plan(g, "zzz")
