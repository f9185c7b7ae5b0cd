"""Throughput benchmarks for squirrel_graph, side by side with a hand-written loop and squirrel-core 0.20.2.

    python benchmarks/run.py [--repeats 7] [--squirrel-core-python .venv-squirrel-core/bin/python]

(a) ``IterableSource(range(1_000_000)).map(f1).map(f2).map(f3).filter(p).batched(100)`` with cheap functions,
    against a plain ``for`` loop making the same calls (time ratio, lower is better, target <= 1.10).
(b) ``async_map`` of 2,000 items that each sleep 2 ms with ``max_workers=32``, against 32 plain threads doing
    the same sleeps, a bare ThreadPoolExecutor, and the theoretical 32 / 2 ms (rate ratio, target >= 95%).
Each implementation's baselines are measured in the same process as it, interleaved, best of ``--repeats``.
Results go to stdout as a table and to ``benchmarks/results/latest.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import workloads as w  # noqa: E402
from squirrel_core_run import measure_in_squirrel_core  # noqa: E402


def summarize(result: dict) -> dict:
    maps, async_ = result["maps"], result["async_map"]
    theory = w.WORKERS / w.SLEEP_S
    rate = {k: w.N_SLEEPS / v["best_s"] for k, v in async_.items()}
    no_inline = maps.get("pipeline_no_inline")
    hand_inlined = maps.get("hand_loop_inlined")
    return {
        "maps_inlined_time_ratio_vs_inlined_hand_loop": (
            maps["pipeline"]["best_s"] / hand_inlined["best_s"] if hand_inlined else None
        ),
        "maps_no_inline_time_ratio_vs_hand_loop": (
            no_inline["best_s"] / maps["hand_loop"]["best_s"] if no_inline else None
        ),
        "impl": result["impl"],
        "maps_items_per_s": w.N_ITEMS / maps["pipeline"]["best_s"],
        "maps_hand_items_per_s": w.N_ITEMS / maps["hand_loop"]["best_s"],
        "maps_time_ratio_vs_hand_loop": maps["pipeline"]["best_s"] / maps["hand_loop"]["best_s"],
        "maps_median_time_ratio_vs_hand_loop": maps["pipeline"]["median_s"] / maps["hand_loop"]["median_s"],
        "async_items_per_s": rate["pipeline"],
        "async_plain_threads_items_per_s": rate["plain_threads"],
        "async_bare_pool_items_per_s": rate["bare_pool"],
        "async_theoretical_items_per_s": theory,
        "async_rate_vs_plain_threads": rate["pipeline"] / rate["plain_threads"],
        "async_rate_vs_bare_pool": rate["pipeline"] / rate["bare_pool"],
        "async_rate_vs_theoretical": rate["pipeline"] / theory,
        "plain_threads_vs_theoretical": rate["plain_threads"] / theory,
    }


def table(rows: list[dict]) -> str:
    out = [
        "| implementation | (a) items/s | (a) hand loop items/s | (a) time vs hand loop calling f1..p "
        "| (a) inline=False: time vs hand loop calling f1..p | (a) time vs hand loop with f1..p inlined | (b) items/s "
        "| (b) 32 plain threads | (b) bare pool | (b) theoretical | (b) rate vs plain threads |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        no_inline = r["maps_no_inline_time_ratio_vs_hand_loop"]
        vs_inlined = r["maps_inlined_time_ratio_vs_inlined_hand_loop"]
        out.append(
            f"| {r['impl']} | {r['maps_items_per_s']:,.0f} | {r['maps_hand_items_per_s']:,.0f} "
            f"| {r['maps_time_ratio_vs_hand_loop']:.3f}x | {f'{no_inline:.3f}x' if no_inline else 'n/a'} "
            f"| {f'{vs_inlined:.3f}x' if vs_inlined else 'n/a'} "
            f"| {r['async_items_per_s']:,.0f} "
            f"| {r['async_plain_threads_items_per_s']:,.0f} | {r['async_bare_pool_items_per_s']:,.0f} "
            f"| {r['async_theoretical_items_per_s']:,.0f} | {100 * r['async_rate_vs_plain_threads']:.1f}% |"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--impl", default="squirrel_graph", choices=["squirrel_graph", "squirrel_core"])
    parser.add_argument("--raw-json", action="store_true", help="print the raw measurement as JSON and exit")
    parser.add_argument("--squirrel-core-python", help="a python with squirrel-core==0.20.2 installed")
    parser.add_argument("--out", default=str(HERE / "results" / "latest.json"))
    args = parser.parse_args()

    if args.raw_json:
        print(json.dumps(w.measure(args.impl, args.repeats)))
        return
    rows = [summarize(w.measure("squirrel_graph", args.repeats))]
    if args.squirrel_core_python:
        rows.append(
            summarize(measure_in_squirrel_core(args.squirrel_core_python, __file__, "--repeats", str(args.repeats)))
        )
    report = {
        "machine": f"{platform.processor() or platform.machine()}, python {platform.python_version()}",
        "repeats": args.repeats,
        "rows": rows,
    }
    if len(rows) == 2:
        g, s = rows
        report["squirrel_graph_vs_squirrel_core"] = {
            "maps_speedup": s["maps_time_ratio_vs_hand_loop"] / g["maps_time_ratio_vs_hand_loop"],
            "async_speedup": g["async_rate_vs_plain_threads"] / s["async_rate_vs_plain_threads"],
        }
    print(table(rows))
    if "squirrel_graph_vs_squirrel_core" in report:
        cmp_ = report["squirrel_graph_vs_squirrel_core"]
        print(
            f"\nsquirrel_graph vs squirrel-core 0.20.2 (each normalised by its own in-process baseline): "
            f"(a) {cmp_['maps_speedup']:.2f}x faster, (b) {cmp_['async_speedup']:.2f}x the rate"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
