"""Plans of any length: time to build, compile, explain and run chains of 100 to 10,000 calls.

    python benchmarks/long_chains.py [--repeats 3] [--squirrel-core-python .venv-squirrel-core/bin/python]

The chain alternates ``map(inc)`` and ``filter(keep)`` over ``range(100)``; every run checks its items against
the expected ones. For squirrel_graph: building the plan, compiling it (passes + lowering), the explain text,
and a full run, each best of ``--repeats`` (7); compile milliseconds per node and the ratio of the 10,000-call
compile to the 1,000-call one (target: <= 12x, < 0.5 ms per node). For squirrel-core 0.20.2 (nested
generators): the time to the first item and whether the chain runs at all. Results go to stdout and to
``benchmarks/results/long_chains.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from squirrel_core_run import measure_in_squirrel_core  # noqa: E402
from stamp import stamp  # noqa: E402

LENGTHS = (100, 1_000, 3_000, 10_000)
N_ITEMS = 100


def inc(x):
    return x + 1


def keep(x):
    return True


def chain(source_cls, n: int):
    s = source_cls(range(N_ITEMS))
    for i in range(n):
        s = s.map(inc) if i % 2 == 0 else s.filter(keep)
    return s


def expected(n: int) -> list[int]:
    return [x + (n + 1) // 2 for x in range(N_ITEMS)]


def _best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def measure_graph(repeats: int) -> dict[str, dict[str, float]]:
    from squirrel_graph import IterableSource
    from squirrel_graph.compiler import compile_plan
    from squirrel_graph.stream.planning import build_plan

    compile_plan(build_plan(chain(IterableSource, 10)))  # imports and first-use caches outside the timings
    out = {}
    for n in LENGTHS:
        stream = chain(IterableSource, n)
        plan = build_plan(stream)
        build_s = _best(lambda s=stream: build_plan(s), repeats)
        compile_s = _best(lambda p=plan: compile_plan(p), repeats)
        explain_s = _best(lambda s=stream: str(s.compile(inline=True).explain()), repeats)
        got = stream.collect()
        assert got == expected(n), f"chain of {n}: wrong items"
        run_s = _best(lambda s=stream: s.collect(), repeats)
        out[str(n)] = {
            "build_s": build_s,
            "compile_s": compile_s,
            "compile_ms_per_node": compile_s / (n + 1) * 1e3,
            "explain_s": explain_s,
            "run_s": run_s,
        }
    return out


def measure_core(repeats: int) -> dict[str, dict[str, object]]:
    from squirrel.iterstream import IterableSource

    out: dict[str, dict[str, object]] = {}
    for n in LENGTHS:
        try:
            first_s = _best(lambda n=n: next(iter(chain(IterableSource, n))), repeats)
            assert chain(IterableSource, n).collect() == expected(n)
            out[str(n)] = {"runs": True, "first_item_s": first_s}
        except RecursionError:
            out[str(n)] = {"runs": False, "error": "RecursionError"}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--impl", default="squirrel_graph", choices=["squirrel_graph", "squirrel_core"])
    parser.add_argument("--raw-json", action="store_true")
    parser.add_argument("--squirrel-core-python")
    parser.add_argument("--out", default=str(HERE / "results" / "long_chains.json"))
    args = parser.parse_args()
    if args.raw_json:
        measure = measure_graph if args.impl == "squirrel_graph" else measure_core
        print(json.dumps(measure(args.repeats)))
        return

    graph = measure_graph(args.repeats)
    report: dict[str, object] = {
        "stamp": stamp(),
        "machine": f"{platform.processor() or platform.machine()}, python {platform.python_version()}",
        "repeats": args.repeats,
        "squirrel_graph": graph,
        "compile_10k_over_1k": graph["10000"]["compile_s"] / graph["1000"]["compile_s"],
    }
    if args.squirrel_core_python:
        report["squirrel_core"] = measure_in_squirrel_core(
            args.squirrel_core_python, __file__, "--repeats", str(args.repeats)
        )
    print("| calls | build plan | compile | ms/node | compile + explain text | run 100 items | squirrel-core 0.20.2 |")
    print("|---|---|---|---|---|---|---|")
    for n in LENGTHS:
        g = graph[str(n)]
        core = report.get("squirrel_core", {}).get(str(n)) if "squirrel_core" in report else None
        core_text = (
            "-" if core is None else (f"{core['first_item_s']:.3f} s to first item" if core["runs"] else core["error"])
        )
        print(
            f"| {n:,} | {g['build_s']:.3f} s | {g['compile_s']:.3f} s | {g['compile_ms_per_node']:.3f} "
            f"| {g['explain_s']:.3f} s | {g['run_s']:.3f} s | {core_text} |"
        )
    print(f"\ncompile time, 10,000 calls / 1,000 calls: {report['compile_10k_over_1k']:.1f}x (target <= 12x)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
