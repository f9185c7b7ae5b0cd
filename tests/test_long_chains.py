"""Plans of any length: building, compiling and explaining are iterative, so a chain far beyond Python's recursion
limit builds, compiles, explains and (fused) runs; the benchmark measures the time (benchmarks/long_chains.py)."""

from __future__ import annotations

import sys

from squirrel_graph import IterableSource
from squirrel_graph.stream.planning import build_plan, chain_fingerprint

from helpers import add_one, is_odd


def _chain(n: int):
    s = IterableSource(range(50))
    for i in range(n):
        s = s.map(add_one) if i % 2 == 0 else s.filter(is_odd).map(add_one)
    return s


def test_a_chain_of_5000_calls_builds_compiles_explains_and_runs():
    n = 5000
    stream = _chain(n)
    assert n > 4 * sys.getrecursionlimit()
    plan = build_plan(stream)
    assert len(plan) == 1 + n + n // 2
    assert plan.output == f"{len(plan) - 1}:map" and plan.topo()[0] == "0:source"
    assert len(chain_fingerprint(stream)) == 2 * len(plan)  # each handle and its links, and the range
    text = str(stream.explain())
    assert f"== Logical plan ({len(plan)} nodes) ==" in text and "== Optimized plan (2 nodes) ==" in text
    expected = list(range(50))
    for i in range(n):  # the same work by hand
        expected = [x + 1 for x in expected] if i % 2 == 0 else [x + 1 for x in expected if x % 2 == 1]
    assert stream.collect() == expected


def test_compile_options_are_found_iteratively_along_a_long_chain():
    stream = _chain(1000).compile(inline=False)
    for _ in range(1500):
        stream = stream.map(add_one)
    ex = stream.explain()
    assert ex.compiled.options.inline is False
    assert "inlined" not in ex.physical_stages[-1].note


def test_compiling_leaves_the_garbage_collector_as_it_found_it():
    import gc

    from squirrel_graph.compiler import compile_plan

    plan = build_plan(_chain(10))
    assert gc.isenabled()
    compile_plan(plan)
    assert gc.isenabled()
    gc.disable()
    try:
        compile_plan(plan)
        assert not gc.isenabled()
    finally:
        gc.enable()
