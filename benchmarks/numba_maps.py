"""numba_map: squirrel_graph's compiled fused runs vs squirrel-core 0.20.2, plain map, and a hand-written njit loop.

    python benchmarks/numba_maps.py [--repeats 3] [--squirrel-core-python .venv-squirrel-core/bin/python]

(a) ``IterableSource(range(1_000_000)).numba_map(f).numba_map(g).filter(p)`` with arithmetic f, g, p;
(b) ``numba_map(lambda a: a * 2 + 1).numba_map(lambda a: np.clip(a, 0, 1))`` over 100,000 float32[32,32] arrays,
one array out per item, against a hand-written ``@njit`` function applied to each array in a Python loop that
collects one output per item (the limit). Compile time is measured separately (the first run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from squirrel_core_run import measure_in_squirrel_core

HERE = Path(__file__).resolve().parent
N_SCALARS, N_ARRAYS = 1_000_000, 100_000


def f(x):
    return x * 2 + 1


def g(x):
    return x - 3


def p(x):
    return x % 3 != 0


def scale(a):
    return a * 2 + 1


def clip01(a):
    return np.clip(a, 0, 1)


def arrays():
    base = np.random.default_rng(0).standard_normal((N_ARRAYS, 32, 32), dtype=np.float32)
    return list(base)


def timed(fn, repeats):
    first_start = time.perf_counter()
    first = fn()
    first_s = time.perf_counter() - first_start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return first, {"first_run_s": first_s, "best_s": min(times), "median_s": statistics.median(times)}


def measure(impl: str, repeats: int) -> dict:
    if impl == "squirrel_graph":
        from squirrel_graph import IterableSource
    else:
        from squirrel.iterstream import IterableSource
    out: dict[str, dict] = {}
    data = arrays()
    a_numba = lambda: IterableSource(range(N_SCALARS)).numba_map(f).numba_map(g).filter(p).collect()  # noqa: E731
    b_numba = lambda: IterableSource(data).numba_map(scale).numba_map(clip01).collect()  # noqa: E731
    ref_a, out["a_numba_map"] = timed(a_numba, repeats)
    ref_b, out["b_numba_map"] = timed(b_numba, repeats)
    if impl == "squirrel_graph":
        from numba import njit

        got_a, out["a_plain_map"] = timed(
            lambda: IterableSource(range(N_SCALARS)).map(f).map(g).filter(p).collect(), repeats
        )
        assert got_a == ref_a
        got_b, out["b_plain_map"] = timed(lambda: IterableSource(data).map(scale).map(clip01).collect(), repeats)
        assert all(np.array_equal(x, y) for x, y in zip(got_b[:100], ref_b[:100]))

        @njit
        def hand(a):
            return np.clip(a * 2 + 1, 0, 1)

        _, out["b_hand_njit_loop"] = timed(lambda: [hand(a) for a in data], repeats)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--impl", default="squirrel_graph", choices=["squirrel_graph", "squirrel_core"])
    parser.add_argument("--raw-json", action="store_true")
    parser.add_argument("--squirrel-core-python")
    parser.add_argument("--out", default=str(HERE / "results" / "numba_maps.json"))
    args = parser.parse_args()
    if args.raw_json:
        print(json.dumps(measure(args.impl, args.repeats)))
        return
    g_rows = measure("squirrel_graph", args.repeats)
    report = {"squirrel_graph": g_rows}
    if args.squirrel_core_python:
        report["squirrel_core"] = measure_in_squirrel_core(
            args.squirrel_core_python, __file__, "--repeats", str(args.repeats)
        )
    a, b = g_rows["a_numba_map"]["best_s"], g_rows["b_numba_map"]["best_s"]
    print("| workload | squirrel_graph numba_map | plain map | hand njit loop | squirrel-core numba_map |")
    print("|---|---|---|---|---|")
    core = report.get("squirrel_core", {})
    ca = core.get("a_numba_map", {}).get("best_s")
    cb = core.get("b_numba_map", {}).get("best_s")
    print(
        f"| (a) 1M ints, items/s | {N_SCALARS / a:,.0f} | {N_SCALARS / g_rows['a_plain_map']['best_s']:,.0f} | - "
        f"| {f'{N_SCALARS / ca:,.0f}' if ca else 'n/a'} |"
    )
    print(
        f"| (b) 100k arrays, items/s | {N_ARRAYS / b:,.0f} | {N_ARRAYS / g_rows['b_plain_map']['best_s']:,.0f} "
        f"| {N_ARRAYS / g_rows['b_hand_njit_loop']['best_s']:,.0f} | {f'{N_ARRAYS / cb:,.0f}' if cb else 'n/a'} |"
    )
    ratios = {
        "b_time_vs_hand_njit_loop": b / g_rows["b_hand_njit_loop"]["best_s"],
        "a_first_run_s": g_rows["a_numba_map"]["first_run_s"],
        "b_first_run_s": g_rows["b_numba_map"]["first_run_s"],
    }
    if ca:
        ratios["a_speedup_vs_squirrel_core"] = ca / a
    if cb:
        ratios["b_speedup_vs_squirrel_core"] = cb / b
    report["ratios"] = ratios
    print("\n" + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
