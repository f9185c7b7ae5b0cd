"""Autotuning: how close ``"auto"`` gets to the best fixed setting found by a sweep in the same run, and whether a
tuned stage stays within the memory bound (issue 15, "Autotune": auto >= 90 % of the best fixed setting).

    python benchmarks/autotune.py [--quick] [--rounds 3] [--items 100000] [--out benchmarks/results/autotune.json]

(i) I/O-bound async_map: ``IterableSource(range(N)).async_map(sleep_item, buffer=2 * k, max_workers=k)`` for k in
1, 2, 4, 8, 16, 32, 64 (the buffer twice the threads, as ``"auto"`` keeps it), against ``async_map(sleep_item,
max_workers="auto")``; ``sleep_item`` (workloads.py) sleeps 2 ms and returns its item. N = 100,000 (``--quick``:
4,000): at ~20k items/s the tuner's climb (six windows of >= 50 ms each, from 2 threads up) is a few percent of an
auto run. A fixed setting k runs on the first min(N, 1600 k) items, about 3.2 s of sleeping per thread: its rate is
steady from its first items (nothing to ramp up), and k = 1 on all N items would take more than 3 minutes. "auto"
and every k >= N / 1600 (here 64) run all N items.

(ii) Store read with CPU-bound decode plus a heavier map: a messagepack store of 64 shards x 500 samples
``{"x": float32[32, 32], "i": int}`` (``--quick``: 8 x 50), written once with ``MessagepackDriver(url).store.set``
(default compression) into a temporary folder on local disk (page-cached after the warm-up).
``MessagepackDriver(url).get_iter(max_workers=k, prefetch_buffer=2 * k).map(heavy)`` for k in 1, 2, 4, 8, 16, 32
(k = 1 reads and decodes in the consumer's thread; k > 1 reads on a pool of k threads, decodes on one thread per
core, 2 here) against ``get_iter(max_workers="auto").map(heavy)`` (the tuned knob is the read pool's threads, the
shard reads in flight being twice that). ``heavy``, in the consumer's thread, per sample: ``g = tanh(x @ x.T)``
(32 x 32 Gram matrix), the 4 largest values of each row of ``x`` (``np.sort`` along rows), and returns
``{"i": i, "v": float(g.sum() + top4.sum())}``; about 30-50 us a sample on this machine.

Timing: every run's stream is built outside the clock; the clock runs from ``iter()`` to the last item, every item
kept; after the clock stops the output's checksum (workloads.checksum_ints: crc32 over the item ids in order, with
the count; (ii) also a crc32 of the ``v`` values as float64) must equal the expected one, computed independently: (i)
from ``range(n)``, (ii) from the ids and arrays as written, ``heavy`` applied to them in a list comprehension. A
dropped, duplicated, reordered or wrong item fails the run. Throughput = items (samples) / seconds.

Rounds: one untimed, checked warm-up run of every setting ((i) on min(n, 2,000) items), then ``--rounds`` (default 3)
rounds, each running every setting once, the order rotated by one setting per round. A setting's throughput is its
median over rounds; the best fixed setting is the one with the highest median. The figure is the median over rounds
of the per-round ratio auto / best fixed (workloads.paired on seconds per item), target >= 0.90. After every auto
run the "== Autotuned in the latest run ==" line of ``str(stream.explain())`` is recorded: chosen value, reason and
the measured steps. Informative: auto / the fixed setting at auto's most frequent reported choice, and auto / the
fixed setting at the largest value auto reached most often (after an undo a pool keeps the threads and the in-flight
window of the largest value it tried: ``TaskPool.resize`` never stops a thread, and ``async_map_`` takes one result
per new item, so a smaller buffer never drains; the second is what the stage ran with once settled).

Memory bound: the tuner caps its knob at ``bound // (item bytes x items held per unit)``, the item measured on the
first one delivered; a pool holds 2 items per thread (its in-flight window), prefetch 1 per slot
(squirrel_graph/backends/threaded/stages.py). Two runs with ``limit_memory(bound)`` set low for their items:
  (m1) ``async_map(big, max_workers="auto")``, ``big`` sleeps 2 ms and returns ``np.full(2**18, i, float32)``
       (1 MiB), 2,000 items (``--quick``: 400), bound 8 MiB: at most 4 threads; the same run without the bound is
       shown beside it (what the bound prevents). Informative: tracemalloc's peak during the run, over the traced
       memory before it (the stage's in-flight items, the item last handed over, which the stage references until
       it takes the next, allocation overhead); the consumer keeps only each item's id.
  (m2) case (ii)'s ``get_iter(max_workers="auto").prefetch("auto").map(heavy)`` with the bound set to 3 in-flight
       units of the read pool (3 x 2 x one raw shard's bytes): at most 3 threads; prefetch's items are samples (KBs).
For every tuned stage of both: max(every value it measured, its final value) x held per unit x item bytes <= bound,
from its explain line (which shows item size and bound; the largest value, since an undo does not shrink what the
stage holds); a run that breaks it fails. Content checked as above.

Results: markdown tables to stdout, ``benchmarks/results/autotune.json`` stamped with the commit and machine, with
the load average before and after (the machine may be shared).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import tempfile
import time
import tracemalloc
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from squirrel_graph import IterableSource
from squirrel_graph.io.drivers import MessagepackDriver
from squirrel_graph.runtime.autotune import limit_memory

import workloads as w
from stamp import stamp

HERE = Path(__file__).resolve().parent
AUTO = "auto"
HELD = {"max_workers": 2, "n": 1}  # items a tuned stage holds per unit of its knob (backends/threaded/stages.py)
ITEMS_PER_THREAD = 1600  # (i): a fixed setting k runs min(N, 1600 k) items, ~3.2 s of 2 ms sleeps per thread


@dataclass(frozen=True)
class Setup:
    items: int = 100_000  # (i)
    sweep_i: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    shards: int = 64  # (ii)
    per_shard: int = 500
    sweep_ii: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    rounds: int = 3
    warm_items: int = 2_000
    mem_items: int = 2_000  # (m1)
    mem_bound: int = 8 * 2**20  # (m1)
    mem_units: int = 3  # (m2): bound = 3 in-flight units of the read pool


FULL = Setup()
QUICK = Setup(items=4_000, shards=8, per_shard=50, warm_items=500, mem_items=400)


# --- the work -------------------------------------------------------------------------------------------------------


def heavy(sample: dict[str, Any]) -> dict[str, Any]:
    """Real numpy work per sample: a squashed Gram matrix and the 4 largest values of each row."""
    x = sample["x"]
    gram = np.tanh(x @ x.T)
    top4 = np.sort(x, axis=1)[:, -4:]
    return {"i": sample["i"], "v": float(gram.sum() + top4.sum())}


def big(i: int) -> np.ndarray:
    w.sleep_item(i)
    return np.full(2**18, i, dtype=np.float32)  # 1 MiB


def write_store(url: str, s: Setup) -> tuple[str, int]:
    """The store of case (ii); the expected checksum of ``heavy`` over it, and the largest shard file's bytes."""
    store = MessagepackDriver(url).store
    rng = np.random.default_rng(0)
    ids, values = [], []
    for k in range(s.shards):
        xs = rng.standard_normal((s.per_shard, 32, 32), dtype=np.float32)
        samples = [{"x": xs[j], "i": k * s.per_shard + j} for j in range(s.per_shard)]
        store.set(samples, key=f"shard-{k:04d}")
        out = [heavy(sample) for sample in samples]
        ids += [o["i"] for o in out]
        values += [o["v"] for o in out]
    shard_bytes = max(p.stat().st_size for p in Path(url).rglob("*.gz") if ".squirrel" not in p.parts)
    return checksum_samples(ids, values), shard_bytes


def checksum_samples(ids: Iterable[int], values: Iterable[float]) -> str:
    return f"{w.checksum_ints(ids)}, values crc32 {zlib.crc32(np.asarray(list(values), dtype=np.float64)):08x}"


def check_samples(out: list[dict[str, Any]]) -> str:
    return checksum_samples((o["i"] for o in out), (o["v"] for o in out))


# --- explain --------------------------------------------------------------------------------------------------------

LINE = re.compile(
    r"^(?P<stage>.+?): (?P<knob>\w+)=(?P<value>\d+) \((?P<reason>[^;]*); (?P<steps>[^;]*?)(?P<size>;.*)?\)$"
)


def tuned(stream: Any) -> list[dict[str, Any]]:
    """Each line of the "Autotuned in the latest run" section of ``stream.explain()``, parsed."""
    text = str(stream.explain())
    if "== Autotuned in the latest run ==\n" not in text:
        raise AssertionError("explain has no '== Autotuned in the latest run ==' section after an auto run")
    section = text.split("== Autotuned in the latest run ==\n")[1].split("\n==")[0]
    rows = []
    lines = (re.sub(r"'[^']*sg-autotune-bench-[^']*'", "'<temp store>'", raw.strip()) for raw in section.splitlines())
    for line in (line for line in lines if line):
        m = LINE.match(line)
        if m is None:
            raise AssertionError(f"unexpected tuner line: {line!r}")
        steps = [(int(k), float(r.replace(",", ""))) for k, r in re.findall(r"(\d+): ([\d,.]+)/s", m["steps"])]
        size = re.search(r"items ~([\d,]+) B, bound ([\d,]+) B", m["size"] or "")
        rows.append(
            {
                "line": line,
                "stage": m["stage"],
                "knob": m["knob"],
                "value": int(m["value"]),
                "reason": m["reason"],
                "steps": steps,
                "item_bytes": int(size[1].replace(",", "")) if size else None,
                "bound": int(size[2].replace(",", "")) if size else None,
            }
        )
    return rows


def within_bound(row: dict[str, Any]) -> dict[str, Any]:
    """The most the stage held by its own accounting: max(measured values, final value) x held per unit x item."""
    if row["item_bytes"] is None:
        raise AssertionError(f"no item size in the tuner's line: {row['line']!r}")
    largest = max([k for k, _ in row["steps"]] + [row["value"]])
    held = largest * HELD[row["knob"]] * row["item_bytes"]
    return {**row, "largest_value": largest, "held_per_unit": HELD[row["knob"]], "held_bytes": held,
            "within": held <= row["bound"]}  # fmt: skip


# --- runs -----------------------------------------------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    items: int
    tuned: list[dict[str, Any]]


def timed(name: str, stream: Any, check: Callable[[list[Any]], str], expected: str, auto: bool) -> Run:
    start = time.perf_counter()
    out = []
    for item in stream:
        out.append(item)
    seconds = time.perf_counter() - start
    w.verify(name, check(out), expected)
    return Run(seconds, len(out), tuned(stream) if auto else [])


def items_for(k: Any, n: int) -> int:
    return n if k == AUTO else min(n, ITEMS_PER_THREAD * k)


def async_run(k: Any, n: int) -> Run:
    n = items_for(k, n)
    if k == AUTO:
        stream = IterableSource(range(n)).async_map(w.sleep_item, max_workers=AUTO)
    else:
        stream = IterableSource(range(n)).async_map(w.sleep_item, buffer=2 * k, max_workers=k)
    return timed(f"(i) async_map max_workers={k}", stream, w.checksum_ints, w.checksum_ints(range(n)), k == AUTO)


def store_stream(url: str, k: Any) -> Any:
    if k == AUTO:
        return MessagepackDriver(url).get_iter(max_workers=AUTO).map(heavy)
    return MessagepackDriver(url).get_iter(max_workers=k, prefetch_buffer=2 * k).map(heavy)


def store_run(url: str, k: Any, expected: str) -> Run:
    return timed(f"(ii) get_iter max_workers={k}", store_stream(url, k), check_samples, expected, k == AUTO)


def sweep(label: str, settings: list[Any], run: Callable[[Any], Run], warm: Callable[[Any], Run], rounds: int) -> dict:
    """Warm-up, then ``rounds`` rounds of every setting, rotated; each setting's runs and throughputs."""
    for k in settings:
        warm(k)
    runs: dict[str, list[Run]] = {str(k): [] for k in settings}
    for r in range(rounds):
        j = r % len(settings)
        for k in settings[j:] + settings[:j]:
            runs[str(k)].append(run(k))
        print(
            f"  {label} round {r + 1}: "
            + ", ".join(f"{k} {runs[str(k)][-1].items / runs[str(k)][-1].seconds:,.0f}/s" for k in settings),
            flush=True,
        )
    return runs


def summarize(key: str, label: str, runs: dict[str, list[Run]], unit: str) -> tuple[dict, list[dict]]:
    rate = {k: [r.items / r.seconds for r in rs] for k, rs in runs.items()}
    per_item = {k: [r.seconds / r.items for r in rs] for k, rs in runs.items()}
    median = {k: statistics.median(v) for k, v in rate.items()}
    fixed = [k for k in runs if k != AUTO]
    best = max(fixed, key=lambda k: median[k])
    chosen = Counter(row["value"] for r in runs[AUTO] for row in r.tuned)
    largest = Counter(max([k for k, _ in row["steps"]] + [row["value"]]) for r in runs[AUTO] for row in r.tuned)
    rows = [
        w.figure(
            f"{key}_auto_over_best_fixed",
            f"{label}: auto / best fixed (max_workers={best}), throughput",
            w.LIKE,
            w.paired(per_item[best], per_item[AUTO]),
            target=">= 0.90",
        )
    ]
    mode = chosen.most_common(1)[0][0] if chosen else None
    if mode is not None and str(mode) in runs:
        rows.append(
            w.figure(
                f"{key}_auto_over_its_choice",
                f"{label}: auto / fixed at auto's most frequent reported choice (max_workers={mode}), throughput",
                "informative: explain's value",
                w.paired(per_item[str(mode)], per_item[AUTO]),
            )
        )
    top = largest.most_common(1)[0][0] if largest else None
    if top is not None and top != mode and str(top) in runs:
        rows.append(
            w.figure(
                f"{key}_auto_over_its_largest",
                f"{label}: auto / fixed at the largest value auto reached most often (max_workers={top}), throughput",
                "informative: the threads and window the stage kept",
                w.paired(per_item[str(top)], per_item[AUTO]),
            )
        )
    summary = {
        "unit": unit,
        "items_per_run": {k: rs[0].items for k, rs in runs.items()},
        "median_rate": median,
        "rates": rate,
        "times_s": {k: [r.seconds for r in rs] for k, rs in runs.items()},
        "best_fixed": best,
        "auto_chose": {str(k): c for k, c in sorted(chosen.items())},
        "auto_largest": {str(k): c for k, c in sorted(largest.items())},
        "auto_tuner_lines": [[row["line"] for row in r.tuned] for r in runs[AUTO]],
    }
    return summary, rows


def memory_checks(url: str, s: Setup, shard_bytes: int, expected: str) -> list[dict[str, Any]]:
    out = []
    n = s.mem_items

    def m1(bounded: bool) -> tuple[Run, float]:
        stream = IterableSource(range(n)).async_map(big, max_workers=AUTO)

        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            with limit_memory(s.mem_bound) if bounded else contextlib.nullcontext():
                start = time.perf_counter()
                got = []
                for a in stream:  # the consumer keeps the id only: what the stage holds is what is measured
                    got.append(int(a[0]))
                    del a
                seconds = time.perf_counter() - start
            peak = tracemalloc.get_traced_memory()[1] - before
        finally:
            tracemalloc.stop()
        w.verify("(m1) async_map of 1 MiB items", w.checksum_ints(got), w.checksum_ints(range(n)))
        return Run(seconds, len(got), tuned(stream)), peak

    bounded, peak = m1(True)
    free, free_peak = m1(False)
    (row,) = bounded.tuned
    (free_row,) = free.tuned
    out.append(
        {
            "case": f"(m1) async_map(big, max_workers='auto'), {n:,} items of 1 MiB",
            "limit_memory": s.mem_bound,
            **within_bound(row),
            "traced_peak_bytes": peak,
            "without_bound": {"value": free_row["value"], "line": free_row["line"], "traced_peak_bytes": free_peak},
        }
    )
    bound = s.mem_units * HELD["max_workers"] * shard_bytes
    with limit_memory(bound):
        stream = MessagepackDriver(url).get_iter(max_workers=AUTO).prefetch(AUTO).map(heavy)
        run = timed("(m2) get_iter auto + prefetch auto", stream, check_samples, expected, True)
    for row in run.tuned:
        out.append(
            {
                "case": "(m2) get_iter(max_workers='auto').prefetch('auto').map(heavy)",
                "limit_memory": bound,
                **within_bound(row),
            }
        )
    for row in out:
        if not row["within"] or row["bound"] != row["limit_memory"]:
            raise AssertionError(f"memory bound broken: {row['line']!r}")
    return out


# --- report ---------------------------------------------------------------------------------------------------------


def sweep_table(cases: dict[str, dict[str, Any]]) -> str:
    names = list(cases)
    settings = list(dict.fromkeys(k for c in cases.values() for k in c["median_rate"]))
    out = ["| max_workers | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for k in settings:
        cells = []
        for c in cases.values():
            if k not in c["median_rate"]:
                cells.append("-")
                continue
            rate = f"{c['median_rate'][k]:,.0f}/s"
            rate = f"**{rate}** (best fixed)" if k == c["best_fixed"] else rate
            if k == AUTO:
                rate += " (chose " + ", ".join(f"{v} x{n}" for v, n in c["auto_chose"].items())
                rate += "; largest reached " + ", ".join(f"{v} x{n}" for v, n in c["auto_largest"].items()) + ")"
            cells.append(rate)
        out.append(f"| {k} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def memory_table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| run | stage | bound | item | chose | largest used | held (largest x per unit x item) | within |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['case']} | {r['stage']} | {r['bound']:,} B | {r['item_bytes']:,} B | {r['knob']}={r['value']} "
            f"| {r['largest_value']} | {r['largest_value']} x {r['held_per_unit']} x {r['item_bytes']:,} = "
            f"{r['held_bytes']:,} B | {'yes' if r['within'] else 'NO'} |"
        )
    return "\n".join(out)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="4,000 items, 8 shards x 50: checks the script")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3)")
    parser.add_argument("--items", type=int, help="(i): N items (default 100,000; quick 4,000)")
    parser.add_argument("--out", default=str(HERE / "results" / "autotune.json"))
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    base = QUICK if args.quick else FULL
    s = Setup(**{**asdict(base), **{k: v for k, v in (("rounds", args.rounds), ("items", args.items)) if v}})
    load_before = os.getloadavg()
    started = time.perf_counter()
    sections: dict[str, float] = {}
    folder = tempfile.mkdtemp(prefix="sg-autotune-bench-")
    try:
        print(f"(i) async_map of 2 ms sleeps, N = {s.items:,}", flush=True)
        settings_i: list[Any] = [*s.sweep_i, AUTO]
        runs_i = sweep(
            "(i)",
            settings_i,
            lambda k: async_run(k, s.items),
            lambda k: async_run(k, min(s.items, s.warm_items)),
            s.rounds,
        )
        sections["(i) async_map"] = time.perf_counter() - started
        url = f"{folder}/store"
        expected, shard_bytes = write_store(url, s)
        print(f"(ii) store read, {s.shards} x {s.per_shard} samples, .map(heavy)", flush=True)
        settings_ii: list[Any] = [*s.sweep_ii, AUTO]
        runs_ii = sweep(
            "(ii)",
            settings_ii,
            lambda k: store_run(url, k, expected),
            lambda k: store_run(url, k, expected),
            s.rounds,
        )
        sections["(ii) store read"] = time.perf_counter() - started - sum(sections.values())
        print("memory bound", flush=True)
        memory = memory_checks(url, s, shard_bytes, expected)
        sections["memory bound"] = time.perf_counter() - started - sum(sections.values())
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    sum_i, fig_i = summarize("async_map", f"(i) async_map of 2 ms sleeps, N = {s.items:,}", runs_i, "items/s")
    sum_ii, fig_ii = summarize(
        "store_read", f"(ii) get_iter + .map(heavy), {s.shards} x {s.per_shard}", runs_ii, "samples/s"
    )
    figures = fig_i + fig_ii
    missed = [r["key"] for r in figures if r["status"] and "missed" in r["status"]]
    report = {
        "stamp": stamp(),
        "quick": args.quick,
        "setup": asdict(s),
        "fixed_items": {str(k): items_for(k, s.items) for k in s.sweep_i},
        "shard_file_bytes_max": shard_bytes,
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "async_map": sum_i,
        "store_read": sum_ii,
        "memory_bound": memory,
        "figures": figures,
        "targets_missed": missed,
        "seconds": time.perf_counter() - started,
        "section_seconds": sections,
    }
    cases = {"(i) async_map, items/s": sum_i, "(ii) store read + heavy, samples/s": sum_ii}
    print(sweep_table(cases))
    print()
    print(w.markdown(figures))
    print()
    print(memory_table(memory))
    print(f"\n(m1) traced peak {memory[0]['traced_peak_bytes']:,} B with the bound; without it the stage chose "
          f"max_workers={memory[0]['without_bound']['value']} (traced peak "
          f"{memory[0]['without_bound']['traced_peak_bytes']:,} B)")  # fmt: skip
    for c, summary in (("(i)", sum_i), ("(ii)", sum_ii)):
        for line in summary["auto_tuner_lines"]:
            print(f"{c} auto: {' | '.join(line)}")
    print(f"load average before {load_before[0]:.2f}, after {report['load_average']['after'][0]:.2f}")
    if missed:
        print(f"\ntarget missed: {', '.join(missed)}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{report['seconds']:.0f} s; written to {args.out}")


if __name__ == "__main__":
    main()
