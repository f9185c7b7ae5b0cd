"""The benchmark workloads, written once and run against squirrel_graph or squirrel-core 0.20.2.

This module imports neither library at import time, so it runs in squirrel-core's own venv as well.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

N_ITEMS = 1_000_000
BATCH = 100
N_SLEEPS = 2_000
SLEEP_S = 0.002
WORKERS = 32


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


# ------------------------------------------------------------------ (a) cheap fused maps


def maps_hand_loop(n: int = N_ITEMS) -> int:
    """The practical limit: a plain for loop making the same calls and building the same batches."""
    batches = 0
    batch: list[int] = []
    for x in range(n):
        x = f3(f2(f1(x)))
        if p(x):
            batch.append(x)
            if len(batch) == BATCH:
                batches += 1
                batch = []
    return batches


def maps_hand_loop_inlined(n: int = N_ITEMS) -> int:
    """The same loop with f1..p written out inline: the limit for a pipeline that inlines them."""
    batches = 0
    batch: list[int] = []
    for x in range(n):
        x = (x + 1) * 2 - 3
        if x % 3 != 0:
            batch.append(x)
            if len(batch) == BATCH:
                batches += 1
                batch = []
    return batches


def maps_pipeline(impl: str, n: int = N_ITEMS, inline: bool = True) -> int:
    src = source_class(impl)
    stream = src(range(n)).map(f1).map(f2).map(f3).filter(p).batched(BATCH)
    if not inline:  # squirrel_graph only: the generated loop calls f1..p like the hand loop does
        stream = stream.compile(inline=False)
    batches = 0
    for _ in stream:
        batches += 1
    return batches


# ------------------------------------------------------------------ (b) I/O-bound async_map


def async_pipeline(impl: str) -> int:
    src = source_class(impl)
    count = 0
    for _ in src(range(N_SLEEPS)).async_map(sleep_item, max_workers=WORKERS):
        count += 1
    return count


def plain_threads() -> int:
    """32 plain threads, each sleeping for its share of the items: the practical limit for (b)."""
    shares = [len(range(i, N_SLEEPS, WORKERS)) for i in range(WORKERS)]
    done = [0] * WORKERS

    def work(i: int) -> None:
        for _ in range(shares[i]):
            time.sleep(SLEEP_S)
            done[i] += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done)


def bare_pool() -> int:
    with ThreadPoolExecutor(WORKERS) as pool:
        return sum(1 for _ in pool.map(sleep_item, range(N_SLEEPS)))


# ------------------------------------------------------------------ timing


def timed(fn: Callable[[], Any], repeats: int) -> dict[str, float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"best_s": min(times), "median_s": statistics.median(times), "runs": repeats}


def interleaved(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, dict[str, float]]:
    """Time several functions round-robin (A B C A B C ...) so drift hits them all alike."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {k: {"best_s": min(v), "median_s": statistics.median(v), "runs": repeats} for k, v in times.items()}


def measure(impl: str, repeats: int) -> dict[str, Any]:
    """All workloads for one implementation, with its baselines measured in the same process."""
    assert maps_pipeline(impl, 10_000) == maps_hand_loop(10_000)
    fns = {"hand_loop": maps_hand_loop, "pipeline": lambda: maps_pipeline(impl)}
    if impl == "squirrel_graph":
        assert maps_pipeline(impl, 10_000, inline=False) == maps_hand_loop(10_000) == maps_hand_loop_inlined(10_000)
        fns["pipeline_no_inline"] = lambda: maps_pipeline(impl, inline=False)
        fns["hand_loop_inlined"] = maps_hand_loop_inlined
    maps = interleaved(fns, repeats)
    async_ = interleaved(
        {"plain_threads": plain_threads, "bare_pool": bare_pool, "pipeline": lambda: async_pipeline(impl)}, repeats
    )
    return {"impl": impl, "maps": maps, "async_map": async_}
