"""Framework overhead of squirrel_graph, like for like, against hand-written baselines and squirrel-core 0.20.2.

    python benchmarks/run.py [--repeats 7] [--quick] [--squirrel-core-python .venv-squirrel-core/bin/python]

(a) ``IterableSource(range(1_000_000)).map(f1).map(f2).map(f3).filter(p).batched(100)`` with cheap functions, each
    batch taken in a Python loop. Like-for-like (time ratios, lower is better):
    - squirrel_graph ``compile(inline=False)`` (its generated loop calls f1..p) vs a hand loop calling f1..p that
      builds the same batches: the headline, target <= 1.10x;
    - squirrel_graph's default (f1..p inlined into its generated loop) vs the hand loop with f1..p inlined too;
    - squirrel-core vs the hand loop calling f1..p (in its own process), and squirrel_graph ``inline=False`` vs
      squirrel-core (both call f1..p).
    squirrel_graph's default against a loop that calls f1..p (the hand loop, or squirrel-core) is reported only in
    rows labelled "not like-for-like: inlined vs calling".
(b) ``async_map`` of 2,000 items through a function that sleeps 2 ms, ``max_workers=32``, vs 32 plain threads calling
    the same function on the same items (rate ratio, target >= 95%), a bare ThreadPoolExecutor(32) and squirrel-core.

Every timed run keeps its whole output (all batches, all items); after the clock stops its checksum must equal the
one computed from the formula, so a dropped, duplicated or wrong item fails the run. After one untimed warm-up run
of everything, each round runs every case once (order reversed every other round; a pipeline and its baseline are
adjacent); a figure is the median over ``--repeats`` rounds of the per-round ratio, with the ratio of the best
times beside it. With ``--squirrel-core-python``, each round also runs squirrel-core in its own venv in a fresh
process (``--impl squirrel_core --raw-json``: warm-up, then one round of it and its own baselines), alternating
which library goes first, so the cross-library ratios are per pair too. Markdown to stdout; JSON, stamped with the
commit and machine, to ``benchmarks/results/latest.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import workloads as w  # noqa: E402
from stamp import stamp  # noqa: E402

GROUPS = ("maps", "async_map")
NOTE = (
    "Rows marked like-for-like compare runs that do the same work (the same functions, called or inlined the same "
    "way, the same checksummed output). squirrel_graph's default inlines f1..p into its generated loop, so its "
    "ratio to a hand loop or squirrel-core that calls them is labelled 'not like-for-like: inlined vs calling'. "
    "Cross-library ratios pair each squirrel_graph round with an adjacent squirrel-core process (own venv, warmed up)."
)


def maps_cases(impl: str, sz: w.Sizes) -> dict[str, w.Case]:
    """Workload (a), each pipeline next to the hand loop it is compared with."""
    n, expected = sz.items, w.expected_maps(sz.items)
    fns = {"hand_loop": lambda: w.maps_hand_loop(n)}
    if impl == "squirrel_graph":
        fns["pipeline_no_inline"] = lambda: w.consume(w.maps_stream(impl, n, inline=False))
        fns["hand_loop_inlined"] = lambda: w.maps_hand_loop_inlined(n)
    fns["pipeline"] = lambda: w.consume(w.maps_stream(impl, n))
    return {name: w.Case(fn, w.checksum_batches, expected) for name, fn in fns.items()}


def async_cases(impl: str, sz: w.Sizes) -> dict[str, w.Case]:
    n, expected = sz.sleeps, w.checksum_ints(range(sz.sleeps))
    fns = {
        "plain_threads": lambda: w.plain_threads(n),
        "pipeline": lambda: w.async_pipeline(impl, n),
        "bare_pool": lambda: w.bare_pool(n),
    }
    return {name: w.Case(fn, w.checksum_ints, expected) for name, fn in fns.items()}


def expected_checksums(sz: w.Sizes) -> dict[str, str]:
    return {"maps": w.expected_maps(sz.items), "async_map": w.checksum_ints(range(sz.sleeps))}


class Session:
    """One implementation's cases in this process: warmed up once, then timed a round at a time."""

    def __init__(self, impl: str, sz: w.Sizes) -> None:
        self.impl = impl
        self.cases = {"maps": maps_cases(impl, sz), "async_map": async_cases(impl, sz)}
        for cases in self.cases.values():
            w.warm_up(cases)
        self.times: dict[str, dict[str, list[float]]] = {g: {} for g in GROUPS}

    def round(self, index: int) -> None:
        for group in GROUPS:
            w.add_round(self.times[group], w.one_round(self.cases[group], index))

    def raw(self) -> dict[str, Any]:
        """Every run's time; the checksum every run of each case had (each was verified)."""
        out: dict[str, Any] = {"impl": self.impl}
        for group in GROUPS:
            out[group] = {name: w.times_summary(t) for name, t in self.times[group].items()}
        out["checksums"] = {g: {name: c.expected for name, c in self.cases[g].items()} for g in GROUPS}
        return out


class CoreSide:
    """squirrel-core, one fresh process in its own venv per round; its checksums are verified here too."""

    def __init__(self, python: str, sz: w.Sizes, quick: bool) -> None:
        self.python, self.quick = python, quick
        self.expected = expected_checksums(sz)
        self.times: dict[str, dict[str, list[float]]] = {g: {} for g in GROUPS}

    def round(self, index: int) -> None:
        extra = ["--quick"] if self.quick else []
        raw = w.measure_in(
            self.python, __file__, "squirrel_core", "--repeats", "1", "--first-round", str(index), *extra
        )
        for group in GROUPS:
            for name, checksum in raw["checksums"][group].items():
                w.verify(f"squirrel_core {group} {name}", checksum, self.expected[group])
            for name, summary in raw[group].items():
                self.times[group].setdefault(name, []).extend(summary["times_s"])

    def raw(self) -> dict[str, Any]:
        out: dict[str, Any] = {"impl": "squirrel_core", "checksums": self.expected}
        for group in GROUPS:
            out[group] = {name: w.times_summary(t) for name, t in self.times[group].items()}
        return out


def graph_figures(g: dict[str, dict[str, list[float]]]) -> list[dict[str, Any]]:
    gm, ga = g["maps"], g["async_map"]
    return [
        w.figure(
            "a_no_inline_vs_hand_loop",
            "(a) squirrel_graph `compile(inline=False)` vs a hand loop calling f1..p, time",
            w.LIKE,
            w.paired(gm["pipeline_no_inline"], gm["hand_loop"]),
            target="<= 1.10",
        ),
        w.figure(
            "a_inlined_vs_inlined_hand_loop",
            "(a) squirrel_graph default (f1..p inlined) vs a hand loop with f1..p inlined, time",
            w.LIKE,
            w.paired(gm["pipeline"], gm["hand_loop_inlined"]),
        ),
        w.figure(
            "b_rate_vs_plain_threads",
            "(b) squirrel_graph async_map rate vs 32 plain threads",
            w.LIKE,
            w.paired(ga["plain_threads"], ga["pipeline"]),
            unit="%",
            target=">= 95",
        ),
        w.figure(
            "b_rate_vs_bare_pool",
            "(b) squirrel_graph async_map rate vs a bare ThreadPoolExecutor(32)",
            w.LIKE,
            w.paired(ga["bare_pool"], ga["pipeline"]),
            unit="%",
        ),
        w.figure(
            "a_inlined_vs_calling_hand_loop",
            "(a) squirrel_graph default (f1..p inlined) vs a hand loop calling f1..p, time",
            w.INLINED_VS_CALLING,
            w.paired(gm["pipeline"], gm["hand_loop"]),
        ),
    ]


def per_own_hand_loop(times: dict[str, list[float]], pipeline: str) -> list[float]:
    return [t / h for t, h in zip(times[pipeline], times["hand_loop"])]


def core_figures(g: dict[str, dict[str, list[float]]], c: dict[str, dict[str, list[float]]]) -> list[dict[str, Any]]:
    gm, ga, cm, ca = g["maps"], g["async_map"], c["maps"], c["async_map"]
    return [
        w.figure(
            "a_core_vs_hand_loop",
            "(a) squirrel-core 0.20.2 vs a hand loop calling f1..p (its process), time",
            w.LIKE,
            w.paired(cm["pipeline"], cm["hand_loop"]),
        ),
        w.figure(
            "a_no_inline_speedup_vs_core",
            "(a) squirrel_graph `inline=False` speed-up over squirrel-core (both call f1..p)",
            w.LIKE,
            w.paired(cm["pipeline"], gm["pipeline_no_inline"]),
        ),
        w.figure(
            "a_no_inline_speedup_vs_core_normalised",
            "(a) the same, each time divided by its own process's hand loop",
            w.LIKE,
            w.paired(per_own_hand_loop(cm, "pipeline"), per_own_hand_loop(gm, "pipeline_no_inline")),
        ),
        w.figure(
            "b_core_rate_vs_plain_threads",
            "(b) squirrel-core async_map rate vs 32 plain threads (its process)",
            w.LIKE,
            w.paired(ca["plain_threads"], ca["pipeline"]),
            unit="%",
        ),
        w.figure(
            "b_rate_vs_core",
            "(b) squirrel_graph async_map rate vs squirrel-core's",
            w.LIKE,
            w.paired(ca["pipeline"], ga["pipeline"]),
        ),
        w.figure(
            "a_default_speedup_vs_core",
            "(a) squirrel_graph default (f1..p inlined) speed-up over squirrel-core (calls f1..p)",
            w.INLINED_VS_CALLING,
            w.paired(cm["pipeline"], gm["pipeline"]),
        ),
    ]


def throughput_table(sides: dict[str, dict[str, dict[str, list[float]]]], sz: w.Sizes) -> str:
    out = ["| implementation | run | median s | best s | items/s (median) |", "|---|---|---|---|---|"]
    for impl, times in sides.items():
        for group, n in (("maps", sz.items), ("async_map", sz.sleeps)):
            for name, t in times[group].items():
                s = w.times_summary(t)
                out.append(
                    f"| {impl} | ({'a' if group == 'maps' else 'b'}) {name} | {s['median_s']:.4f} "
                    f"| {s['best_s']:.4f} | {n / s['median_s']:,.0f} |"
                )
    out.append(
        f"| - | (b) theoretical, {sz.workers} workers / {w.SLEEP_S * 1e3:g} ms | | | {w.WORKERS / w.SLEEP_S:,.0f} |"
    )
    return "\n".join(out)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7, help="rounds (pairs per ratio), default 7")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check that the script works")
    parser.add_argument("--impl", default="squirrel_graph", choices=["squirrel_graph", "squirrel_core"])
    parser.add_argument("--raw-json", action="store_true", help="print this process's raw measurement as JSON")
    parser.add_argument("--first-round", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--squirrel-core-python", help="a python with squirrel-core==0.20.2 installed")
    parser.add_argument("--out", default=str(HERE / "results" / "latest.json"))
    return parser.parse_args()


def raw_json(args: argparse.Namespace) -> None:
    session = Session(args.impl, w.sizes(args.quick))
    for i in range(args.repeats):
        session.round(args.first_round + i)
    print(json.dumps(session.raw()))


def main() -> None:
    args = parse_args()
    if args.raw_json:
        raw_json(args)
        return
    sz = w.sizes(args.quick)
    graph = Session("squirrel_graph", sz)
    core = CoreSide(args.squirrel_core_python, sz, args.quick) if args.squirrel_core_python else None
    for i in range(args.repeats):
        for side in (graph, core) if i % 2 == 0 else (core, graph):
            if side is not None:
                side.round(i)
    rows = graph_figures(graph.times) + (core_figures(graph.times, core.times) if core else [])
    sides = {"squirrel_graph": graph.times, **({"squirrel_core": core.times} if core else {})}
    print(w.markdown(rows))
    print("\n" + throughput_table(sides, sz))
    report = {
        "stamp": stamp(),
        "like_for_like": NOTE,
        "repeats": args.repeats,
        "quick": args.quick,
        "sizes": asdict(sz),
        "figures": rows,
        "squirrel_graph": graph.raw(),
        **({"squirrel_core": core.raw()} if core else {}),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{NOTE}\nwritten to {args.out}")


if __name__ == "__main__":
    main()
