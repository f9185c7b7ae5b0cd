"""Three chained dask_maps: squirrel_graph's collapsed tasks vs squirrel-core 0.20.2's task per map per item.

    python benchmarks/dask_maps.py [--repeats 7] [--quick] [--squirrel-core-python .venv-squirrel-core/bin/python]

``IterableSource(range(2000)).dask_map(f).dask_map(g).dask_map(h).materialize_dask()`` with cheap f, g, h, collected
into a list; squirrel_graph with one task per item (its default: like-for-like with squirrel-core, the same call
and the same output) and with ``partition_size=100`` (an option squirrel-core lacks: labelled as such). Each
measurement is a fresh process per library (squirrel-core in its own venv) with its own
``LocalCluster(processes=False, n_workers=1, threads_per_worker=2)``, one untimed warm-up of every variant on 50
items, then one timed run of each; the tasks the scheduler executed are counted from its task stream. Each run's
output is checksummed against the checksum computed from the formula; a dropped, duplicated or wrong item fails it.

A pair is one such squirrel_graph process next to one squirrel-core process (the order alternating); ratios are
medians of the per-pair ratios over ``--repeats`` pairs (default 7). squirrel-core's 6,000 tasks take about 13 s
per run on the 2-core development machine, so 7 pairs take a few minutes; the JSON and the output record the
pairs used and the wall time. Markdown to stdout; JSON, stamped with the commit and machine, to
``benchmarks/results/dask_maps.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import workloads as w  # noqa: E402
from stamp import stamp  # noqa: E402

N, N_QUICK, N_WARM_UP = 2000, 200, 50
GRAPH_VARIANTS = {"one task per item": {}, "partition_size=100": {"partition_size": 100}}
CORE = "squirrel-core"
NOTE = (
    "Both libraries run the same three dask_maps on the same items, on the same kind of fresh LocalCluster, with "
    "the same checksummed output; squirrel_graph's default (one task per item) is like-for-like with "
    "squirrel-core, partition_size=100 is an option squirrel-core lacks."
)


def f(x):
    return x + 1


def g(x):
    return x * 2


def h(x):
    return x - 3


def expected(n: int) -> str:
    return w.checksum_ints((x + 1) * 2 - 3 for x in range(n))


def variants(impl: str) -> tuple[Any, dict[str, dict[str, int]]]:
    if impl == "squirrel_graph":
        from squirrel_graph import IterableSource

        return IterableSource, GRAPH_VARIANTS
    from squirrel.iterstream import IterableSource

    return IterableSource, {CORE: {}}


def timed_run(client: Any, src: Any, n: int, kw: dict[str, int]) -> tuple[float, int, str]:
    """(seconds, tasks executed, output checksum) of one run."""
    from distributed import get_task_stream

    stream = src(range(n)).dask_map(f).dask_map(g).dask_map(h).materialize_dask(**kw)
    with get_task_stream(client) as ts:
        start = time.perf_counter()
        got = list(stream)
        seconds = time.perf_counter() - start
    return seconds, len(ts.data), w.checksum_ints(got)


def measure(impl: str, n: int, rounds: int, first_round: int) -> dict[str, Any]:
    """This process's runs: a warm-up of every variant, then ``rounds`` rounds (order alternating)."""
    from distributed import Client, LocalCluster

    src, kinds = variants(impl)
    out: dict[str, Any] = {name: {"times_s": [], "tasks": [], "checksum": expected(n)} for name in kinds}
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            for name, kw in kinds.items():
                w.verify(f"{impl} {name} (warm-up)", timed_run(client, src, N_WARM_UP, kw)[2], expected(N_WARM_UP))
            for i in range(rounds):
                names = list(kinds) if (first_round + i) % 2 == 0 else list(kinds)[::-1]
                for name in names:
                    seconds, tasks, checksum = timed_run(client, src, n, kinds[name])
                    w.verify(f"{impl} {name}", checksum, expected(n))
                    out[name]["times_s"].append(seconds)
                    out[name]["tasks"].append(tasks)
    return out


def run_pairs(pythons: dict[str, str], repeats: int, extra: list[str], want: str) -> dict[str, Any]:
    """``repeats`` pairs of fresh processes, one per library, the order alternating; checksums verified here."""
    got: dict[str, dict[str, list]] = {}
    for i in range(repeats):
        for impl in list(pythons) if i % 2 == 0 else list(pythons)[::-1]:
            raw = w.measure_in(pythons[impl], __file__, impl, "--repeats", "1", "--first-round", str(i), *extra)
            for name, r in raw.items():
                w.verify(f"{impl} {name}", r["checksum"], want)
                entry = got.setdefault(name, {"times_s": [], "tasks": []})
                entry["times_s"] += r["times_s"]
                entry["tasks"] += r["tasks"]
    return got


def figures(got: dict[str, Any]) -> list[dict[str, Any]]:
    one, part = got["one task per item"]["times_s"], got["partition_size=100"]["times_s"]
    rows = [
        w.figure(
            "partition_vs_one_task_per_item",
            "squirrel_graph partition_size=100 speed-up over its one task per item",
            "not like-for-like: partition_size=100 vs one task per item",
            w.paired(one, part),
        )
    ]
    if CORE not in got:
        return rows
    core = got[CORE]["times_s"]
    not_like = "not like-for-like: partition_size=100, an option squirrel-core lacks"
    return [
        w.figure("one_task_per_item_vs_core", "squirrel_graph one task per item (default) speed-up over squirrel-core",
                 w.LIKE, w.paired(core, one), target=">= 3"),
        w.figure("partition_vs_core", "squirrel_graph partition_size=100 speed-up over squirrel-core", not_like,
                 w.paired(core, part), target=">= 10"),
        *rows,
    ]  # fmt: skip


def rates_table(got: dict[str, Any], n: int) -> str:
    out = ["| variant | items/s (median) | items/s (best) | tasks executed per run |", "|---|---|---|---|"]
    for name, r in got.items():
        s = w.times_summary(r["times_s"])
        tasks = sorted(set(r["tasks"]))
        out.append(
            f"| {name} | {n / s['median_s']:,.0f} | {n / s['best_s']:,.0f} | {', '.join(f'{t:,}' for t in tasks)} |"
        )
    return "\n".join(out)


def pairs_note(repeats: int, wall_s: float, got: dict[str, Any]) -> str:
    why = "the default" if repeats >= 7 else f"--repeats {repeats}, fewer than the default 7, as asked"
    core = (
        f"squirrel-core's run took {w.times_summary(got[CORE]['times_s'])['median_s']:.1f} s (median), "
        if CORE in got
        else ""
    )
    return (
        f"{repeats} pairs ({why}); each pair is one fresh process per library (own LocalCluster, warm-up, one timed "
        f"run of each variant); {core}the whole measurement took {wall_s:.0f} s."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7, help="pairs of processes, default 7")
    parser.add_argument("--quick", action="store_true", help="200 items, to check that the script works")
    parser.add_argument("--impl", default="squirrel_graph", choices=["squirrel_graph", "squirrel_core"])
    parser.add_argument("--raw-json", action="store_true", help="print this process's raw measurement as JSON")
    parser.add_argument("--first-round", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--squirrel-core-python", help="a python with squirrel-core==0.20.2 and distributed installed")
    parser.add_argument("--out", default=str(HERE / "results" / "dask_maps.json"))
    args = parser.parse_args()
    n = N_QUICK if args.quick else N
    if args.raw_json:
        print(json.dumps(measure(args.impl, n, args.repeats, args.first_round)))
        return
    pythons = {"squirrel_graph": sys.executable}
    if args.squirrel_core_python:
        pythons["squirrel_core"] = args.squirrel_core_python
    start = time.perf_counter()
    got = run_pairs(pythons, args.repeats, ["--quick"] if args.quick else [], expected(n))
    note = pairs_note(args.repeats, time.perf_counter() - start, got)
    rows = figures(got)
    print(w.markdown(rows))
    print("\n" + rates_table(got, n))
    print(f"\n{note}\n{NOTE}")
    report = {
        "stamp": stamp(),
        "like_for_like": NOTE,
        "pairs": args.repeats,
        "pairs_note": note,
        "quick": args.quick,
        "items": n,
        "checksum": expected(n),
        "figures": rows,
        "runs": {name: {**w.times_summary(r["times_s"]), "tasks": r["tasks"]} for name, r in got.items()},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
