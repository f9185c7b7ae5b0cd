"""Three chained dask_maps: squirrel_graph's collapsed tasks vs squirrel-core 0.20.2's task per map per item.

    python benchmarks/dask_maps.py [--repeats 3] [--squirrel-core-python .venv-squirrel-core/bin/python]

``IterableSource(range(2000)).dask_map(f).dask_map(g).dask_map(h).materialize_dask()`` with cheap f, g, h, each
implementation in its own process with its own ``LocalCluster(processes=False, n_workers=1,
threads_per_worker=2)``; squirrel_graph with one task per item and with ``partition_size=100``. Reports items/s
and the tasks the scheduler executed (from its task stream).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from squirrel_core_run import measure_in_squirrel_core

HERE = Path(__file__).resolve().parent
N = 2000


def f(x):
    return x + 1


def g(x):
    return x * 2


def h(x):
    return x - 3


def measure(impl: str, repeats: int) -> dict:
    from distributed import Client, LocalCluster, get_task_stream

    if impl == "squirrel_graph":
        from squirrel_graph import IterableSource

        variants = {"one task per item": {}, "partition_size=100": {"partition_size": 100}}
    else:
        from squirrel.iterstream import IterableSource

        variants = {"squirrel-core": {}}
    expected = [h(g(f(x))) for x in range(N)]
    out = {}
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            times: dict[str, list[float]] = {k: [] for k in variants}
            tasks: dict[str, int] = {}
            for _ in range(repeats):
                for name, kw in variants.items():
                    stream = IterableSource(range(N)).dask_map(f).dask_map(g).dask_map(h).materialize_dask(**kw)
                    with get_task_stream(client) as ts:
                        start = time.perf_counter()
                        got = list(stream)
                        times[name].append(time.perf_counter() - start)
                    assert got == expected, name
                    tasks[name] = len(ts.data)
            for name in variants:
                out[name] = {
                    "items_per_s": N / min(times[name]),
                    "median_items_per_s": N / statistics.median(times[name]),
                    "tasks": tasks[name],
                }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--impl", default="squirrel_graph", choices=["squirrel_graph", "squirrel_core"])
    parser.add_argument("--raw-json", action="store_true")
    parser.add_argument("--squirrel-core-python")
    parser.add_argument("--out", default=str(HERE / "results" / "dask_maps.json"))
    args = parser.parse_args()
    if args.raw_json:
        print(json.dumps(measure(args.impl, args.repeats)))
        return
    rows = measure("squirrel_graph", args.repeats)
    if args.squirrel_core_python:
        rows.update(measure_in_squirrel_core(args.squirrel_core_python, __file__, "--repeats", str(args.repeats)))
    print("| variant | items/s | tasks executed | vs squirrel-core |\n|---|---|---|---|")
    base = rows.get("squirrel-core", {}).get("items_per_s")
    for name, r in rows.items():
        ratio = f"{r['items_per_s'] / base:.1f}x" if base else "n/a"
        print(f"| {name} | {r['items_per_s']:,.0f} | {r['tasks']} | {ratio} |")
    Path(args.out).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
