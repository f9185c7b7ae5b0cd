"""Monitoring overhead, as a ratio to the same run without monitors, in the same process (interleaved runs).

    python benchmarks/monitor.py [--repeats 5]

(i) workload (a) of run.py with one monitor after ``batched(100)``; (ii) one monitor between two maps of
workload (a), with the default settings (a callback every 1000 items) and with ``every=1`` (squirrel-core's mode);
(iii) ``compile(monitor=...)`` on the async_map sleep workload (b) preceded by a fused map stage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from squirrel_graph import IterableSource  # noqa: E402

import workloads as w  # noqa: E402


def sink(metrics, **kwargs):
    """A callback that does what a tracker's log call must at least do: look at the values."""
    return len(metrics)


def consume(stream):
    return sum(1 for _ in stream)


def a_plain():
    return consume(IterableSource(range(w.N_ITEMS)).map(w.f1).map(w.f2).map(w.f3).filter(w.p).batched(w.BATCH))


def a_monitor_after_batched():
    s = IterableSource(range(w.N_ITEMS)).map(w.f1).map(w.f2).map(w.f3).filter(w.p).batched(w.BATCH).monitor(sink)
    return consume(s)


def a_monitor_between_maps(inline=True, **kw):
    s = IterableSource(range(w.N_ITEMS)).map(w.f1).monitor(sink, **kw).map(w.f2).map(w.f3).filter(w.p)
    return consume(s.batched(w.BATCH).compile(inline=inline))


def a_plain_calls():
    s = IterableSource(range(w.N_ITEMS)).map(w.f1).map(w.f2).map(w.f3).filter(w.p).batched(w.BATCH)
    return consume(s.compile(inline=False))


def b_plain():
    return consume(IterableSource(range(w.N_SLEEPS)).map(w.f1).async_map(w.sleep_item, max_workers=w.WORKERS))


def b_compiled_monitor():
    s = IterableSource(range(w.N_SLEEPS)).map(w.f1).async_map(w.sleep_item, max_workers=w.WORKERS)
    return consume(s.compile(monitor=sink))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(HERE / "results" / "monitor.json"))
    args = parser.parse_args()
    a = w.interleaved(
        {
            "plain": a_plain,
            "after_batched": a_monitor_after_batched,
            "between_maps_default": a_monitor_between_maps,
            "between_maps_every_1": lambda: a_monitor_between_maps(every=1),
            "plain_calls": a_plain_calls,
            "between_maps_default_calls": lambda: a_monitor_between_maps(inline=False),
        },
        args.repeats,
    )
    b = w.interleaved({"plain": b_plain, "compile_monitor": b_compiled_monitor}, args.repeats)
    rows = {
        "(i) monitor after batched(100)": a["after_batched"]["best_s"] / a["plain"]["best_s"],
        "(ii) monitor between two maps, defaults (every=1000)": a["between_maps_default"]["best_s"]
        / a["plain"]["best_s"],
        "(ii) monitor between two maps, every=1 (squirrel-core's mode)": a["between_maps_every_1"]["best_s"]
        / a["plain"]["best_s"],
        "(ii) the same with compile(inline=False) (f1..p called, as in a hand loop)": a["between_maps_default_calls"][
            "best_s"
        ]
        / a["plain_calls"]["best_s"],
        "(iii) compile(monitor=...) on async_map + fused map": b["compile_monitor"]["best_s"] / b["plain"]["best_s"],
    }
    print("| case | time vs the same run without monitors |\n|---|---|")
    for k, v in rows.items():
        print(f"| {k} | {v:.3f}x |")
    Path(args.out).write_text(json.dumps({"ratios": rows, "a": a, "b": b}, indent=2) + "\n")


if __name__ == "__main__":
    main()
