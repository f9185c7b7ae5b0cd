"""Monitoring overhead in squirrel_graph: time with a monitor over time of the same run without it, and how many times
the monitor's callback ran.

    python benchmarks/monitor.py [--repeats 7] [--quick]

Every case runs the same workload as its baseline, with the same checksummed output (a monitor passes items
through unchanged); the callback counts its calls and looks at the metrics it gets.
(i) workload (a) of run.py, one monitor after ``batched(100)``: defaults (``every=1000``: a handful of calls) and
    ``every=1`` (a call per batch); target for the defaults <= 1.05x;
(ii) one monitor between the first two maps of workload (a) (1,000,000 items reach it): defaults (``every=1000``,
    ~1,000 calls; target <= 1.25x), ``every=100`` (~10,000 calls), ``every=1`` (squirrel-core's mode, a call per
    item), and the defaults under ``compile(inline=False)`` against the same ``inline=False`` run without monitors;
(iii) ``compile(monitor=...)`` (a monitor after every stage) on the async_map sleep workload (b) preceded by a map:
    defaults (``monitor_every=1000``, target <= 1.05x) and ``monitor_every=1``.
Each case is paired with its baseline: after one untimed run of both, each round runs the two back to back (order
alternating); the figure is the median of the per-pair ratios over ``--repeats`` rounds (ratio of the best times
beside it). A figure over its target is reported as "target missed". Markdown to stdout; JSON, stamped with the
commit and machine, to ``benchmarks/results/monitor.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from squirrel_graph import IterableSource  # noqa: E402

import workloads as w  # noqa: E402
from stamp import stamp  # noqa: E402

NOTE = (
    "Each ratio compares a run with monitors to the same run without them (same stream, same compile options, same "
    "checksummed output), measured in pairs in one process; the callback calls of each case are counted."
)


class CountingCallback:
    """A callback that counts its calls and does what a tracker's log call must at least do: look at the values."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, metrics: dict[str, float], **kwargs: Any) -> int:
        self.calls += 1
        return len(metrics)


def maps(n: int) -> Any:
    return IterableSource(range(n)).map(w.f1).map(w.f2).map(w.f3).filter(w.p).batched(w.BATCH)


def maps_monitor_between(n: int, sink: CountingCallback, **kw: Any) -> Any:
    return IterableSource(range(n)).map(w.f1).monitor(sink, **kw).map(w.f2).map(w.f3).filter(w.p).batched(w.BATCH)


def sleeps(n: int) -> Any:
    return IterableSource(range(n)).map(w.f1).async_map(w.sleep_item, max_workers=w.WORKERS)


@dataclass(frozen=True)
class MonitorCase:
    key: str
    label: str
    baseline: str
    build: Callable[[CountingCallback], Any]  # the stream, with its monitors calling the given callback
    target: str | None = None


def baselines(sz: w.Sizes) -> dict[str, Callable[[CountingCallback], Any]]:
    """The runs without monitors (the callback is ignored)."""
    return {
        "maps": lambda _: maps(sz.items),
        "maps_inline_false": lambda _: maps(sz.items).compile(inline=False),
        "sleeps": lambda _: sleeps(sz.sleeps),
    }


def cases(sz: w.Sizes) -> list[MonitorCase]:
    n = sz.items
    return [
        MonitorCase(
            "i_after_batched", "(i) one monitor after `batched(100)`, defaults (every=1000)", "maps",
            lambda s: maps(n).monitor(s), "<= 1.05",
        ),
        MonitorCase(
            "i_after_batched_every_1", "(i) the same with every=1 (a call per batch)", "maps",
            lambda s: maps(n).monitor(s, every=1),
        ),
        MonitorCase(
            "ii_between_maps", "(ii) one monitor between two maps, defaults (every=1000)", "maps",
            lambda s: maps_monitor_between(n, s), "<= 1.25",
        ),
        MonitorCase(
            "ii_between_maps_every_100", "(ii) the same with every=100", "maps",
            lambda s: maps_monitor_between(n, s, every=100),
        ),
        MonitorCase(
            "ii_between_maps_every_1", "(ii) the same with every=1 (squirrel-core's mode: a call per item)", "maps",
            lambda s: maps_monitor_between(n, s, every=1),
        ),
        MonitorCase(
            "ii_between_maps_inline_false", "(ii) defaults under `compile(inline=False)` (f1..p called), "
            "vs the same inline=False run without monitors", "maps_inline_false",
            lambda s: maps_monitor_between(n, s).compile(inline=False),
        ),
        MonitorCase(
            "iii_compile_monitor", "(iii) `compile(monitor=...)` on async_map + a fused map stage", "sleeps",
            lambda s: sleeps(sz.sleeps).compile(monitor=s), "<= 1.05",
        ),
        MonitorCase(
            "iii_compile_monitor_every_1", "(iii) the same with `monitor_every=1` (a call per item per stage)",
            "sleeps", lambda s: sleeps(sz.sleeps).compile(monitor=s, monitor_every=1),
        ),
    ]  # fmt: skip


def expected(sz: w.Sizes) -> dict[str, str]:
    sleeps_out = w.checksum_ints(x + 1 for x in range(sz.sleeps))
    return {"maps": w.expected_maps(sz.items), "maps_inline_false": w.expected_maps(sz.items), "sleeps": sleeps_out}


def checker(baseline: str) -> Callable[[Any], str]:
    return w.checksum_ints if baseline == "sleeps" else w.checksum_batches


def timed(name: str, build: Callable[[CountingCallback], Any], check: Callable[[Any], str], want: str) -> tuple:
    """(seconds, callback calls) of one run; its output's checksum is verified after the clock stops."""
    sink = CountingCallback()
    start = time.perf_counter()
    out = w.consume(build(sink))
    seconds = time.perf_counter() - start
    w.verify(name, check(out), want)
    return seconds, sink.calls


def measure_case(case: MonitorCase, base: Callable, want: str, repeats: int) -> dict[str, Any]:
    """One untimed run of both, then ``repeats`` back-to-back pairs, the order alternating."""
    check = checker(case.baseline)
    runs = {"baseline": (f"{case.baseline} (no monitor)", base), "monitored": (case.key, case.build)}
    times: dict[str, list[float]] = {k: [] for k in runs}
    calls: list[int] = []
    for name, build in runs.values():
        timed(name, build, check, want)
    for i in range(repeats):
        for key in ("baseline", "monitored") if i % 2 == 0 else ("monitored", "baseline"):
            seconds, n_calls = timed(*runs[key], check, want)
            times[key].append(seconds)
            if key == "monitored":
                calls.append(n_calls)
    return {"times": times, "calls": calls}


def row(case: MonitorCase, got: dict[str, Any]) -> dict[str, Any]:
    calls = sorted(set(got["calls"]))
    ratio = w.paired(got["times"]["monitored"], got["times"]["baseline"])
    out = w.figure(case.key, case.label, w.LIKE, ratio, target=case.target)
    out["callback_calls"] = calls[0] if len(calls) == 1 else calls
    out["baseline"] = case.baseline
    out["times"] = {k: w.times_summary(t) for k, t in got["times"].items()}
    return out


def table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| case | callback calls per run | median time vs the same run without monitors | ratio of bests "
        "| range over pairs | pairs | target |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        calls = r["callback_calls"]
        calls_s = f"{calls:,}" if isinstance(calls, int) else ", ".join(f"{c:,}" for c in calls)
        out.append(
            f"| {r['figure']} | {calls_s} | **{w.fmt(r['median'])}** | {w.fmt(r['of_bests'])} "
            f"| {w.fmt(r['min'])} - {w.fmt(r['max'])} | {r['pairs']} | {r['status'] or '-'} |"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7, help="pairs per case, default 7")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check that the script works")
    parser.add_argument("--out", default=str(HERE / "results" / "monitor.json"))
    args = parser.parse_args()
    sz = w.sizes(args.quick)
    base, want = baselines(sz), expected(sz)
    rows = []
    for case in cases(sz):
        got = measure_case(case, base[case.baseline], want[case.baseline], args.repeats)
        rows.append(row(case, got))
    print(table(rows))
    missed = [r["key"] for r in rows if r["status"] and "missed" in r["status"]]
    if missed:
        print(f"\ntarget missed: {', '.join(missed)}")
    report = {
        "stamp": stamp(),
        "like_for_like": NOTE,
        "repeats": args.repeats,
        "quick": args.quick,
        "sizes": asdict(sz),
        "targets_missed": missed,
        "cases": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{NOTE}\nwritten to {args.out}")


if __name__ == "__main__":
    main()
