"""numba_map, cold and warm, in squirrel_graph and squirrel-core 0.20.2, each beside its own plain map.

    python benchmarks/numba_maps.py [--repeats 7] [--quick] [--squirrel-core-python .venv-squirrel-core/bin/python]

Workloads, the same on both sides, each collected into a list:
(a) ``IterableSource(range(1_000_000)).numba_map(f).numba_map(g).filter(p)`` with arithmetic f, g, p, and the same
    with ``.map`` instead of ``.numba_map``;
(b) ``numba_map(a * 2 + 1).numba_map(np.clip(a, 0, 1))`` over 100,000 float32[32,32] arrays (seed 0), the same with
    ``.map``, and a hand-written ``@njit`` function applied to each array in a Python loop that collects one output
    per item (the limit);
probe: (a) on 10 items, the fixed cost of one iteration.

Cold: the first iteration in a fresh process (``--cold CASE``, one process per measurement, library, numpy and numba
already imported, input built), compilation included; numba's import time is recorded apart. Warm: later
iterations in the same process, after one untimed first iteration. squirrel_graph caches its compiled kernels per
process; squirrel-core's numba_map defines and compiles a new ``numba.jit(forceobj=True)`` function on every
iteration, so its warm figures include a compilation each time (the probe shows that cost).

Every run's output is checksummed (after the clock stops) against the checksum computed from the formula with
vectorised numpy; a dropped, duplicated or wrong item fails the run. Ratios are medians of per-pair ratios over
``--repeats`` pairs: cold pairs are two fresh processes, one per library, run one after the other (order
alternating); warm pairs are a round in this process (squirrel_graph, order alternating) next to one fresh
squirrel-core process in its own venv that warms up and then runs one round. Markdown to stdout; JSON, stamped with
the commit and machine, to ``benchmarks/results/numba_maps.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import workloads as w  # noqa: E402
from stamp import stamp  # noqa: E402


@dataclass(frozen=True)
class Sizes:
    scalars: int = 1_000_000
    arrays: int = 100_000
    probe: int = 10


FULL, QUICK = Sizes(), Sizes(scalars=20_000, arrays=2_000)
COLD_CASES = ("a_plain_map", "a_numba_map", "b_plain_map", "b_numba_map")
WARM_CASES = (*COLD_CASES, "b_hand_njit_loop", "probe_plain_map", "probe_numba_map")
IMPLS = ("squirrel_graph", "squirrel_core")
NOTE = (
    "Both libraries run the same workloads on the same inputs with the same checksummed outputs. Cold = first "
    "iteration in a fresh process, compilation included (numba already imported); warm = later iterations. "
    "squirrel-core's numba_map compiles a new function on every iteration, so its warm figures include a "
    "compilation each time; squirrel_graph's are cached per process. Each numba_map is shown beside its own "
    "library's plain map on the same workload."
)


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


def checksum_arrays(arrays: list[Any]) -> str:
    """Order-sensitive CRC-32 over every array's dtype, shape and bytes, with the count."""
    crc, count = 0, 0
    for a in arrays:
        crc = zlib.crc32(f"{a.dtype.str}{a.shape}".encode(), crc)
        crc = zlib.crc32(np.ascontiguousarray(a), crc)
        count += 1
    return f"{count} arrays, crc32 {crc:08x}"


def expected_a(n: int) -> str:
    """(a) from the formula: g(f(x)) = 2x - 2, kept when not a multiple of 3."""
    return w.checksum_ints(y for y in (2 * x - 2 for x in range(n)) if y % 3 != 0)


class Inputs:
    """The arrays of (b) (seed 0) and every workload's expected checksum, (b)'s from one vectorised numpy call."""

    def __init__(self, sz: Sizes, arrays: bool = True) -> None:
        self.sz = sz
        base = np.random.default_rng(0).standard_normal((sz.arrays if arrays else 0, 32, 32), dtype=np.float32)
        self.arrays = list(base)
        self.expected = {
            "a": expected_a(sz.scalars),
            "probe": expected_a(sz.probe),
            "b": checksum_arrays(list(np.clip(base * 2 + 1, 0, 1))) if arrays else None,
        }


def hand_njit() -> Any:
    from numba import njit

    @njit
    def hand(a):
        return np.clip(a * 2 + 1, 0, 1)

    return hand


def stream_a(src: Any, n: int, numba: bool) -> Any:
    s = src(range(n))
    return (s.numba_map(f).numba_map(g) if numba else s.map(f).map(g)).filter(p)


def stream_b(src: Any, data: list[Any], numba: bool) -> Any:
    s = src(data)
    return s.numba_map(scale).numba_map(clip01) if numba else s.map(scale).map(clip01)


def make_case(impl: str, name: str, inputs: Inputs) -> w.Case:
    src, numba, sz = w.source_class(impl), "numba" in name, inputs.sz
    workload = name.split("_", 1)[0]
    expected = inputs.expected[workload]
    if workload in ("a", "probe"):
        n = sz.scalars if workload == "a" else sz.probe
        return w.Case(lambda: stream_a(src, n, numba).collect(), w.checksum_ints, expected)
    data = inputs.arrays
    if name == "b_hand_njit_loop":
        hand = hand_njit()
        return w.Case(lambda: [hand(a) for a in data], checksum_arrays, expected)
    return w.Case(lambda: stream_b(src, data, numba).collect(), checksum_arrays, expected)


def cold(impl: str, name: str, sz: Sizes) -> dict[str, Any]:
    """This (fresh) process's first and second run of one case; numba's import is timed before them, apart."""
    case = make_case(impl, name, Inputs(sz, arrays=name.startswith("b_")))
    start = time.perf_counter()
    import numba  # noqa: F401

    numba_import_s = time.perf_counter() - start
    first = w.timed_run(f"{impl} {name} (cold)", case)
    second = w.timed_run(f"{impl} {name} (second)", case)
    return {"cold_s": first, "second_s": second, "numba_import_s": numba_import_s, "checksum": case.expected}


class Session:
    """One implementation's warm cases in this process: one untimed first run each, then a round at a time."""

    def __init__(self, impl: str, inputs: Inputs) -> None:
        self.cases = {name: make_case(impl, name, inputs) for name in WARM_CASES}
        w.warm_up(self.cases)
        self.times: dict[str, list[float]] = {}

    def round(self, index: int) -> None:
        w.add_round(self.times, w.one_round(self.cases, index))

    def raw(self) -> dict[str, Any]:
        return {
            "times": {k: w.times_summary(t) for k, t in self.times.items()},
            "checksums": {k: c.expected for k, c in self.cases.items()},
        }


class CoreSide:
    """squirrel-core's warm rounds: one fresh process in its own venv per round, checksums verified here."""

    def __init__(self, python: str, expected: dict[str, str], extra: list[str]) -> None:
        self.python, self.expected, self.extra = python, expected, extra
        self.times: dict[str, list[float]] = {}

    def round(self, index: int) -> None:
        raw = w.measure_in(
            self.python, __file__, "squirrel_core", "--repeats", "1", "--first-round", str(index), *self.extra
        )
        for name, checksum in raw["checksums"].items():
            w.verify(f"squirrel_core {name}", checksum, self.expected[name.split("_", 1)[0]])
        for name, summary in raw["times"].items():
            self.times.setdefault(name, []).extend(summary["times_s"])


def run_cold(pythons: dict[str, str], repeats: int, extra: list[str], expected: dict[str, str]) -> dict[str, Any]:
    """``repeats`` pairs of fresh processes per cold case, the libraries' order alternating."""
    got: dict[str, dict[str, list[dict[str, float]]]] = {impl: {c: [] for c in COLD_CASES} for impl in pythons}
    for i in range(repeats):
        for name in COLD_CASES:
            for impl in list(pythons) if i % 2 == 0 else list(pythons)[::-1]:
                res = w.measure_in(pythons[impl], __file__, impl, "--cold", name, *extra)
                w.verify(f"{impl} {name} (cold)", res.pop("checksum"), expected[name.split("_", 1)[0]])
                got[impl][name].append(res)
    return got


def cold_times(cold_runs: dict[str, Any], impl: str, name: str, key: str = "cold_s") -> list[float]:
    return [r[key] for r in cold_runs[impl][name]]


def headline_figures(warm: dict[str, dict[str, list[float]]]) -> list[dict[str, Any]]:
    gw, cw = warm["squirrel_graph"], warm.get("squirrel_core")
    rows = []
    if cw:
        rows.append(
            w.figure(
                "a_speedup_vs_core_warm",
                "(a) numba_map, warm: squirrel_graph speed-up over squirrel-core (which recompiles every iteration)",
                w.LIKE,
                w.paired(cw["a_numba_map"], gw["a_numba_map"]),
                target=">= 5",
            )
        )
    rows.append(
        w.figure(
            "b_vs_hand_njit_loop",
            "(b) squirrel_graph numba_map vs a hand-written @njit per-item loop, warm, time",
            w.LIKE,
            w.paired(gw["b_numba_map"], gw["b_hand_njit_loop"]),
            target="<= 1.5",
        )
    )
    return rows


def cross_figures(cold_runs: dict[str, Any], warm: dict[str, dict[str, list[float]]]) -> list[dict[str, Any]]:
    """squirrel_graph's speed-up over squirrel-core, cold and warm, numba_map and plain map."""
    gw, cw = warm["squirrel_graph"], warm["squirrel_core"]
    rows = []
    for op in ("numba", "plain"):
        for wl in ("a", "b"):
            name = f"{wl}_{op}_map"
            if (wl, op) != ("a", "numba"):  # the headline
                rows.append(speedup_figure(name, "warm (later iterations)", cw[name], gw[name]))
            graph_cold, core_cold = (cold_times(cold_runs, impl, name) for impl in IMPLS)
            rows.append(speedup_figure(name, "cold (first iteration, fresh process)", core_cold, graph_cold))
    return rows


def speedup_figure(name: str, when: str, core_s: list[float], graph_s: list[float]) -> dict[str, Any]:
    wl, op = name.split("_", 1)
    tail = " (squirrel-core recompiles every iteration)" if op == "numba_map" and when.startswith("warm") else ""
    return w.figure(
        f"{name}_speedup_vs_core_{when.split()[0]}",
        f"({wl}) {'numba_map' if op == 'numba_map' else 'plain map'}, {when}: squirrel_graph speed-up over "
        f"squirrel-core{tail}",
        w.LIKE,
        w.paired(core_s, graph_s),
    )


def numba_vs_plain_figures(cold_runs: dict[str, Any], warm: dict[str, dict[str, list[float]]]) -> list[dict]:
    """Each library's numba_map against its own plain map on the same workload: does numba help?"""
    rows = []
    for impl, times in warm.items():
        for wl in ("a", "b"):
            for when in ("warm", "cold"):
                if when == "warm":
                    numba_s, plain_s = times[f"{wl}_numba_map"], times[f"{wl}_plain_map"]
                else:
                    numba_s, plain_s = (cold_times(cold_runs, impl, f"{wl}_{op}_map") for op in ("numba", "plain"))
                rows.append(
                    w.figure(
                        f"{wl}_{impl}_numba_vs_plain_{when}",
                        f"({wl}) {impl} numba_map vs its own plain map, {when}, time (< 1: numba helps)",
                        w.LIKE,
                        w.paired(numba_s, plain_s),
                    )
                )
    return rows


def seconds_table(cold_runs: dict[str, Any], warm: dict[str, dict[str, list[float]]], sz: Sizes) -> str:
    out = [
        "| implementation | workload | operator | cold s (first iteration, fresh process; median) "
        "| second iteration s (same process; median) | warm s (median) | warm items/s |",
        "|---|---|---|---|---|---|---|",
    ]
    n = {"a": sz.scalars, "b": sz.arrays, "probe": sz.probe}
    for impl, times in warm.items():
        for name, t in times.items():
            wl, op = name.split("_", 1)
            cold_s = second_s = "-"
            if name in COLD_CASES:
                cold_s = f"{w.times_summary(cold_times(cold_runs, impl, name))['median_s']:.4f}"
                second_s = f"{w.times_summary(cold_times(cold_runs, impl, name, 'second_s'))['median_s']:.4f}"
            med = w.times_summary(t)["median_s"]
            out.append(
                f"| {impl} | ({wl}) {n[wl]:,} items | {op} | {cold_s} | {second_s} | {med:.4f} | {n[wl] / med:,.0f} |"
            )
    return "\n".join(out)


def probe_note(warm: dict[str, dict[str, list[float]]], cold_runs: dict[str, Any]) -> str:
    parts, imports = [], []
    for impl, times in warm.items():
        numba_ms = w.times_summary(times["probe_numba_map"])["median_s"] * 1e3
        plain_ms = w.times_summary(times["probe_plain_map"])["median_s"] * 1e3
        parts.append(f"{impl} numba_map {numba_ms:.3f} ms (plain map {plain_ms:.3f} ms)")
        runs = [r["numba_import_s"] for case in cold_runs[impl].values() for r in case]
        imports.append(f"{impl} {w.times_summary(runs)['median_s']:.2f} s")
    return (
        "One warm iteration over 10 items (the fixed cost of an iteration): " + "; ".join(parts) + ". "
        "Importing numba in a fresh process (not in the cold figures), median: " + ", ".join(imports) + "."
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7, help="pairs per ratio, cold and warm; default 7")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check that the script works")
    parser.add_argument("--impl", default="squirrel_graph", choices=IMPLS)
    parser.add_argument("--raw-json", action="store_true", help="print this process's raw measurement as JSON")
    parser.add_argument("--cold", choices=COLD_CASES, help="with --raw-json: this process's first run of one case")
    parser.add_argument("--first-round", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--squirrel-core-python", help="a python with squirrel-core==0.20.2 and numba installed")
    parser.add_argument("--out", default=str(HERE / "results" / "numba_maps.json"))
    return parser.parse_args()


def raw_json(args: argparse.Namespace, sz: Sizes) -> None:
    if args.cold:
        print(json.dumps(cold(args.impl, args.cold, sz)))
        return
    session = Session(args.impl, Inputs(sz))
    for i in range(args.repeats):
        session.round(args.first_round + i)
    print(json.dumps(session.raw()))


def main() -> None:
    args = parse_args()
    sz = QUICK if args.quick else FULL
    if args.raw_json:
        raw_json(args, sz)
        return
    extra = ["--quick"] if args.quick else []
    pythons = {"squirrel_graph": sys.executable}
    if args.squirrel_core_python:
        pythons["squirrel_core"] = args.squirrel_core_python
    inputs = Inputs(sz)
    cold_runs = run_cold(pythons, args.repeats, extra, inputs.expected)
    graph = Session("squirrel_graph", inputs)
    core = CoreSide(args.squirrel_core_python, inputs.expected, extra) if args.squirrel_core_python else None
    for i in range(args.repeats):
        for side in (graph, core) if i % 2 == 0 else (core, graph):
            if side is not None:
                side.round(i)
    warm = {"squirrel_graph": graph.times, **({"squirrel_core": core.times} if core else {})}
    rows = headline_figures(warm) + (cross_figures(cold_runs, warm) if core else [])
    rows += numba_vs_plain_figures(cold_runs, warm)
    print(w.markdown(rows))
    print("\n" + seconds_table(cold_runs, warm, sz))
    print("\n" + probe_note(warm, cold_runs))
    report = {
        "stamp": stamp(),
        "like_for_like": NOTE,
        "repeats": args.repeats,
        "quick": args.quick,
        "sizes": asdict(sz),
        "figures": rows,
        "probe": probe_note(warm, cold_runs),
        "cold": cold_runs,
        "warm": {impl: {k: w.times_summary(t) for k, t in times.items()} for impl, times in warm.items()},
        "checksums": inputs.expected,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{NOTE}\nwritten to {args.out}")


if __name__ == "__main__":
    main()
