"""The workloads of run.py and monitor.py, their baselines, output checksums and paired timing, written once and run
against squirrel_graph or squirrel-core 0.20.2; the checksum, pairing and reporting helpers are shared by the other
benchmark scripts too.

This module imports neither library at import time, so it runs in squirrel-core's own venv as well.

Every timed run returns its whole output; the clock stops before the output's checksum is taken, and a checksum
that differs from the expected one (computed independently, from a list comprehension) fails the run: a dropped,
duplicated, reordered or wrong item raises ``AssertionError``. Ratios are per pair: the two runs of a pair are
adjacent in time, the order within a pair alternates from round to round, and a figure is the median of the
per-pair ratios (with the ratio of the best times beside it).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import threading
import time
import zlib
from array import array
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Sizes:
    items: int = 1_000_000  # workload (a): cheap maps
    batch: int = 100
    sleeps: int = 2_000  # workload (b): I/O-bound async_map
    workers: int = 32


FULL = Sizes()
QUICK = Sizes(items=20_000, sleeps=200)
N_ITEMS, BATCH, N_SLEEPS, WORKERS = FULL.items, FULL.batch, FULL.sleeps, FULL.workers
SLEEP_S = 0.002


def sizes(quick: bool) -> Sizes:
    return QUICK if quick else FULL


def f1(x):
    return x + 1


def f2(x):
    return x * 2


def f3(x):
    return x - 3


def p(x):
    return x % 3 != 0


def sleep_item(x):
    time.sleep(SLEEP_S)
    return x


def source_class(impl: str) -> Any:
    if impl == "squirrel_graph":
        from squirrel_graph import IterableSource
    else:
        from squirrel.iterstream import IterableSource
    return IterableSource


# ------------------------------------------------------------------ checksums


def checksum_batches(batches: Iterable[Sequence[int]]) -> str:
    """Order-sensitive CRC-32 over every batch's length and int64 contents, with the batch count."""
    crc, count = 0, 0
    for batch in batches:
        crc = zlib.crc32(len(batch).to_bytes(8, "little"), crc)
        crc = zlib.crc32(array("q", batch), crc)
        count += 1
    return f"{count} batches, crc32 {crc:08x}"


def checksum_ints(items: Iterable[int]) -> str:
    """Order-sensitive CRC-32 over the items as int64, with the item count."""
    values = array("q", items)
    return f"{len(values)} items, crc32 {zlib.crc32(values):08x}"


def verify(name: str, got: str, expected: str) -> None:
    """Fail the run (even under ``python -O``) if an output's checksum is not the expected one."""
    if got != expected:
        raise AssertionError(
            f"{name}: output checksum {got!r} != expected {expected!r} (an item dropped, duplicated or wrong)"
        )


def expected_maps(n: int, batch: int = BATCH) -> str:
    """Workload (a)'s output, from the formula: full batches of ``(x + 1) * 2 - 3`` that are not multiples of 3."""
    kept = [y for y in ((x + 1) * 2 - 3 for x in range(n)) if y % 3 != 0]
    return checksum_batches(kept[i : i + batch] for i in range(0, len(kept) - batch + 1, batch))


# ------------------------------------------------------------------ (a) cheap maps


def maps_hand_loop(n: int = N_ITEMS) -> list[list[int]]:
    """The practical limit: a plain for loop making the same calls and building the same batches."""
    out: list[list[int]] = []
    batch: list[int] = []
    for x in range(n):
        x = f3(f2(f1(x)))
        if p(x):
            batch.append(x)
            if len(batch) == BATCH:
                out.append(batch)
                batch = []
    return out


def maps_hand_loop_inlined(n: int = N_ITEMS) -> list[list[int]]:
    """The same loop with f1..p written out inline: the limit for a pipeline that inlines them."""
    out: list[list[int]] = []
    batch: list[int] = []
    for x in range(n):
        x = (x + 1) * 2 - 3
        if x % 3 != 0:
            batch.append(x)
            if len(batch) == BATCH:
                out.append(batch)
                batch = []
    return out


def maps_stream(impl: str, n: int = N_ITEMS, inline: bool = True) -> Any:
    stream = source_class(impl)(range(n)).map(f1).map(f2).map(f3).filter(p).batched(BATCH)
    # squirrel_graph only: with inline=False the generated loop calls f1..p, as the hand loop does
    return stream if inline else stream.compile(inline=False)


def consume(stream: Iterable[Any]) -> list[Any]:
    """What a training loop does with each item at least: take it in a Python loop (kept, for the checksum)."""
    out = []
    for item in stream:
        out.append(item)
    return out


# ------------------------------------------------------------------ (b) I/O-bound async_map


def async_pipeline(impl: str, n: int = N_SLEEPS) -> list[int]:
    return consume(source_class(impl)(range(n)).async_map(sleep_item, max_workers=WORKERS))


def plain_threads(n: int = N_SLEEPS) -> list[int]:
    """32 plain threads, each calling sleep_item on its share of the items: the practical limit for (b)."""
    out: list[int] = [0] * n

    def work(i: int) -> None:
        for x in range(i, n, WORKERS):
            out[x] = sleep_item(x)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def bare_pool(n: int = N_SLEEPS) -> list[int]:
    with ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(sleep_item, range(n)))


# ------------------------------------------------------------------ timing


@dataclass(frozen=True)
class Case:
    """One timed thing: ``fn()`` returns its whole output, ``check(output)`` its checksum."""

    fn: Callable[[], Any]
    check: Callable[[Any], str]
    expected: str


def timed_run(name: str, case: Case) -> float:
    """Seconds for one run of ``case``; its output's checksum is verified after the clock stops."""
    start = time.perf_counter()
    out = case.fn()
    seconds = time.perf_counter() - start
    verify(name, case.check(out), case.expected)
    return seconds


def warm_up(cases: dict[str, Case]) -> None:
    """One untimed (but checked) run of every case."""
    for name, case in cases.items():
        timed_run(name, case)


def one_round(cases: dict[str, Case], index: int) -> dict[str, float]:
    """Every case once, in the given order on even rounds and in reverse on odd ones."""
    names = list(cases) if index % 2 == 0 else list(cases)[::-1]
    return {name: timed_run(name, cases[name]) for name in names}


def add_round(times: dict[str, list[float]], got: dict[str, float]) -> None:
    for name, seconds in got.items():
        times.setdefault(name, []).append(seconds)


def times_summary(times: Sequence[float]) -> dict[str, Any]:
    return {"best_s": min(times), "median_s": statistics.median(times), "runs": len(times), "times_s": list(times)}


def paired(num: Sequence[float], den: Sequence[float]) -> dict[str, Any]:
    """``num[i] / den[i]`` for each pair: the median (the headline), range, and the ratio of the best values."""
    if len(num) != len(den) or not num:
        raise ValueError(f"unpaired measurements: {len(num)} vs {len(den)}")
    ratios = [a / b for a, b in zip(num, den)]
    return {
        "median": statistics.median(ratios),
        "min": min(ratios),
        "max": max(ratios),
        "of_bests": min(num) / min(den),
        "pairs": len(ratios),
        "per_pair": ratios,
    }


# ------------------------------------------------------------------ subprocesses


def measure_in(python: str, script: str, impl: str, *args: str) -> Any:
    """``python script --impl impl --raw-json *args``: its last line, parsed as JSON (squirrel-core through
    squirrel_core_run's helper). A failure there, a checksum mismatch included, fails this run with its stderr."""
    from squirrel_core_run import measure_in_squirrel_core

    try:
        if impl == "squirrel_core":
            return measure_in_squirrel_core(python, script, *args)
        cmd = [python, script, "--impl", impl, "--raw-json", *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"the {impl} subprocess failed: {' '.join(exc.cmd)}\n{exc.stderr[-4000:]}") from None


# ------------------------------------------------------------------ reporting

LIKE = "like-for-like"
INLINED_VS_CALLING = "not like-for-like: inlined vs calling"


def figure(
    key: str, label: str, comparison: str, ratio: dict[str, Any], unit: str = "x", target: str | None = None
) -> dict[str, Any]:
    """One reported figure: ``ratio`` from :func:`paired`; ``target`` like ``"<= 1.10"``, judged on the median."""
    row = {"key": key, "figure": label, "comparison": comparison, "unit": unit, **ratio}
    row["target"] = target
    row["status"] = target_status(ratio["median"], target, unit) if target else None
    return row


def target_status(value: float, target: str, unit: str = "x") -> str:
    op, limit = target.split()
    bound = float(limit) / (100 if unit == "%" else 1)
    met = value <= bound if op == "<=" else value >= bound
    return f"target {op} {limit}{unit}: {'met' if met else 'target missed'}"


def fmt(value: float, unit: str = "x") -> str:
    return f"{100 * value:.1f}%" if unit == "%" else f"{value:.3f}x"


def markdown(figures: Sequence[dict[str, Any]]) -> str:
    """Like-for-like figures first, their medians in bold; every other row says what it is in its comparison
    column and is not in bold."""
    ordered = sorted(figures, key=lambda r: r["comparison"] != LIKE)
    out = [
        "| figure | comparison | median of per-pair ratios | ratio of bests | range over pairs | pairs | target |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in ordered:
        u = r["unit"]
        median = f"**{fmt(r['median'], u)}**" if r["comparison"] == LIKE else fmt(r["median"], u)
        out.append(
            f"| {r['figure']} | {r['comparison']} | {median} | {fmt(r['of_bests'], u)} "
            f"| {fmt(r['min'], u)} - {fmt(r['max'], u)} | {r['pairs']} | {r['status'] or '-'} |"
        )
    return "\n".join(out)
