"""Requests per reader at epoch start, and time to the first sample, with and without the store index.

    python benchmarks/store_index.py [--quick] [--repeats 5] [--sample 16] [--out benchmarks/results/store_index.json]

Stores: 1,000 and 10,000 shards of 4 small samples (``--quick``: 100 and 1,000, 2 rounds), written once on local
disk by ``store.set`` (count files included, as squirrel_graph always writes them).

(1) Requests per reader. The job of the issue, 512 ranks x 2 DataLoader workers = 1,024 readers, simulated in this
process: each reader gets a fresh driver (a process has its own), builds the stream a DDP job builds,
``get_iter(max_workers=0).split_by_rank_pytorch(equalize="drop").split_by_worker_pytorch()`` (rank and world size
patched into ``torch.distributed`` while building, the worker id into ``torch.utils.data.get_worker_info`` while
iterating) and takes its first sample. Every request goes through ``reqfile://``, a subclass of fsspec's
``LocalFileSystem`` over the same folder that counts ls/info/exists/isdir/isfile/size/open/cat_file/cat/find calls
(a call made inside another is not counted again). A reader's epoch-start requests are all of them but whole-shard
reads (its fetches, the same in every configuration). "S3 requests" counts a listing of n entries as ceil(n / 1000)
(one LIST page per 1,000 keys) and every other call as one request.

Configurations: no index (today: list, then one count file and trailer per shard for equalize); index; rank-0
listing (``driver.list_on_rank0()`` in rank 0's main process, the table pickled to every other rank as
``broadcast_object_list`` does and into each worker with the stream), on a store without and with an index. A
reader's requests do not depend on its rank or worker (every reader lists and counts the whole store: equalize needs
every rank's counts), so without an index (about 2-3 requests per shard per reader: 30 million for the 10,000-shard
store, hours in one process) ``--sample`` readers spread over ranks and workers are run, their counts asserted equal,
and totals multiplied by 1,024 (the output says so). Every other configuration runs all 1,024 readers.

(2) Time to the first sample at 10,000 shards (``--quick``: 1,000) on local disk (plain paths, no counting): from
building the driver to the first sample, for ``get_iter()`` and for the DDP reader above (rank 3 of 512, worker 1 of
2, equalize="drop"). Sides, in interleaved rounds (order rotated each round, one untimed warm-up round): "today"
(``use_index=False``: exactly the code path without an index), "no index present" (the index file moved away: one
failed read, then today's path) and "index". Ratios are medians of per-round ratios. Results: markdown tables and
``benchmarks/results/store_index.json`` (stamped with commit and machine).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import pickle
import shutil
import statistics
import sys
import tempfile
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from squirrel_graph import IterableSource  # noqa: E402
from squirrel_graph.io.drivers import MessagepackDriver  # noqa: E402
from squirrel_graph.io.store_index import INDEX_NAME  # noqa: E402

from stamp import stamp  # noqa: E402

RANKS, WORKERS = 512, 2
FULL, QUICK = (1_000, 10_000), (100, 1_000)
PER_SHARD = 4
LIST_PAGE = 1_000
COUNTED = ("ls", "info", "exists", "isdir", "isfile", "size", "open", "cat_file", "cat", "find")


# --- the counting filesystem --------------------------------------------------------------------------------------


class Requests:
    """Counted calls of this process: ``(operation, path, ranged, entries listed)``."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, bool, int]] = []
        self.lock = threading.Lock()
        self.depth = threading.local()

    def take(self) -> list[tuple[str, str, bool, int]]:
        with self.lock:
            rows, self.rows = self.rows, []
        return rows


REQUESTS = Requests()


def _counted(op: str, method: Any) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        outer = getattr(REQUESTS.depth, "n", 0) == 0
        REQUESTS.depth.n = getattr(REQUESTS.depth, "n", 0) + 1
        out: Any = ()
        try:
            out = method(*args, **kwargs)
            return out
        finally:  # a call that raises (an index that is not there) was a request too
            REQUESTS.depth.n -= 1
            if outer:
                ranged = kwargs.get("start") is not None or kwargs.get("end") is not None
                listed = len(out) if op == "ls" else 0
                with REQUESTS.lock:
                    REQUESTS.rows.append((op, str(args[0] if args else kwargs.get("path", "")), ranged, listed))

    return call


class CountingLocal(LocalFileSystem):
    """fsspec's local filesystem, counting every read call (see the module docstring)."""

    protocol = ("reqfile",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for op in COUNTED:
            setattr(self, op, _counted(op, getattr(self, op)))

    @classmethod
    def _strip_protocol(cls, path: Any) -> str:
        path = str(path)
        return LocalFileSystem._strip_protocol(path[len("reqfile://") :] if path.startswith("reqfile://") else path)


fsspec.register_implementation("reqfile", CountingLocal, clobber=True)


def epoch_start(rows: list[tuple[str, str, bool, int]]) -> dict[str, int]:
    """Calls and S3-equivalent requests of a reader, leaving out its whole-shard reads (fetches)."""
    start = [r for r in rows if not (r[0] in ("open", "cat_file", "cat") and r[1].endswith(".gz") and not r[2])]
    s3 = sum(max(1, math.ceil(r[3] / LIST_PAGE)) if r[0] == "ls" else 1 for r in start)
    return {"calls": len(start), "s3_requests": s3}


# --- simulated readers ----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def as_rank(rank: int, world: int) -> Iterator[None]:
    """torch.distributed reports this rank and world size (what split_by_rank_pytorch reads when built)."""
    import torch.distributed as dist

    saved = {n: getattr(dist, n) for n in ("is_available", "is_initialized", "get_rank", "get_world_size")}
    dist.is_available, dist.is_initialized = (lambda: True), (lambda: True)
    dist.get_rank, dist.get_world_size = (lambda group=None: rank), (lambda group=None: world)
    try:
        yield
    finally:
        for n, f in saved.items():
            setattr(dist, n, f)


@contextlib.contextmanager
def as_worker(worker: int, workers: int) -> Iterator[None]:
    """This thread is DataLoader worker ``worker`` of ``workers`` (what split_by_worker_pytorch reads)."""
    import torch.utils.data

    saved = torch.utils.data.get_worker_info
    torch.utils.data.get_worker_info = lambda: types.SimpleNamespace(id=worker, num_workers=workers)
    try:
        yield
    finally:
        torch.utils.data.get_worker_info = saved


def ddp_stream(driver: MessagepackDriver, rank: int, world: int) -> Any:
    with as_rank(rank, world):
        return driver.get_iter(max_workers=0).split_by_rank_pytorch(equalize="drop").split_by_worker_pytorch()


def first_sample(stream: Any) -> Any:
    it = iter(stream)
    try:
        return next(it)
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()


def spread(sample: int) -> list[tuple[int, int]]:
    """``sample`` (rank, worker) readers: ranks spread from 0 to the last, every worker position equally."""
    per_worker = max(1, sample // WORKERS)
    if per_worker >= RANKS:
        return [(r, w) for r in range(RANKS) for w in range(WORKERS)]
    ranks = sorted({round(i * (RANKS - 1) / max(1, per_worker - 1)) for i in range(per_worker)})
    return [(r, w) for r in ranks for w in range(WORKERS)]


def reader_requests(url: str, readers: list[tuple[int, int]], table: Any = None) -> list[dict[str, int]]:
    """Epoch-start requests of each reader, each with a fresh driver (and ``table`` broadcast to it, if given)."""
    out = []
    payload = pickle.dumps(table) if table is not None else None
    for rank, worker in readers:
        REQUESTS.take()
        driver = MessagepackDriver(f"reqfile://{url}")
        if payload is not None:
            driver.use_listing(pickle.loads(payload))  # what broadcast_object_list hands every other rank
        stream = ddp_stream(driver, rank, RANKS)
        if payload is not None:
            stream = pickle.loads(pickle.dumps(stream))  # the stream (and its driver's table) in a DataLoader worker
        with as_worker(worker, WORKERS):
            for _ in stream:  # its whole share: with 1,000 shards over 1,024 readers a share may be empty
                pass
        out.append(epoch_start(REQUESTS.take()))
    return out


def summarize(
    readers: list[tuple[int, int]], per_reader: list[dict[str, int]], rank0: dict[str, int] | None = None
) -> dict[str, Any]:
    """Per-reader figures; with a sample, the total for 1,024 readers: a reader's epoch-start requests depend only on
    its worker position (equalize counts the shards every rank has at that position), asserted on the sample."""
    calls = [r["calls"] for r in per_reader]
    s3 = [r["s3_requests"] for r in per_reader]
    n = RANKS * WORKERS
    if len(per_reader) < n:
        by_worker: dict[int, set[int]] = {}
        for (_, w), row in zip(readers, per_reader, strict=True):
            by_worker.setdefault(w, set()).add(row["s3_requests"])
        assert all(len(v) == 1 for v in by_worker.values()), f"readers at one worker position differ: {by_worker}"
        total = sum(RANKS * next(iter(v)) for v in by_worker.values())
        simulated = f"{len(per_reader)} of {n:,} readers (ranks spread, every worker position); total = 512 x each"
    else:
        total, simulated = sum(s3), f"all {n:,} readers"
    return {
        "readers_simulated": len(per_reader),
        "simulated": simulated,
        "calls_per_reader": {"median": statistics.median(calls), "max": max(calls)},
        "s3_requests_per_reader": {"median": statistics.median(s3), "max": max(s3)},
        "rank0_main_process": rank0,
        "s3_requests_all_readers": total + (rank0["s3_requests"] if rank0 else 0),
    }


def requests_for(url: str, shards: int, sample: int) -> dict[str, Any]:
    """The four configurations on one store (its index moved away for the ones without). The index configuration
    runs all 1,024 readers; the others ``sample`` of them (all with ``--sample 1024``)."""
    index = Path(url) / ".squirrel" / INDEX_NAME
    hidden = index.with_name("moved-away")
    everyone, sampled = spread(RANKS * WORKERS), spread(sample)
    out: dict[str, Any] = {}
    os.replace(index, hidden)
    try:
        out["no index (today)"] = summarize(sampled, reader_requests(url, sampled))
        out["rank-0 listing, no index"] = rank0_config(url, sampled)
    finally:
        os.replace(hidden, index)
    out["index"] = summarize(everyone, reader_requests(url, everyone))
    out["rank-0 listing, index"] = rank0_config(url, sampled)
    for name, row in out.items():
        print(f"  {shards:>6} shards, {name}: {row['s3_requests_per_reader']} S3 requests per reader", flush=True)
    return out


def rank0_config(url: str, readers: list[tuple[int, int]]) -> dict[str, Any]:
    REQUESTS.take()
    table = MessagepackDriver(f"reqfile://{url}").list_on_rank0()
    rank0 = epoch_start(REQUESTS.take())
    return summarize(readers, reader_requests(url, readers, table), rank0)


# --- time to the first sample -----------------------------------------------------------------------------------------


def ttfs_run(url: str, side: str, pipeline: str, world: int) -> float:
    index = Path(url) / ".squirrel" / INDEX_NAME
    hidden = index.with_name("moved-away")
    if side == "no index present":
        os.replace(index, hidden)
    try:
        start = time.perf_counter()
        driver = MessagepackDriver(url, use_index=side != "today")
        if pipeline == "get_iter()":
            sample = first_sample(driver.get_iter())
        else:
            stream = ddp_stream(driver, 3, world)
            with as_worker(1, WORKERS):
                sample = first_sample(stream)
        seconds = time.perf_counter() - start
    finally:
        if side == "no index present":
            os.replace(hidden, index)
    assert isinstance(sample, dict) and "i" in sample
    return seconds


def time_to_first_sample(url: str, shards: int, repeats: int) -> dict[str, Any]:
    sides = ["today", "no index present", "index"]
    world = min(RANKS, shards // 4)  # every (rank, worker) share holds a shard: equalize keeps samples
    out: dict[str, Any] = {}
    for pipeline in ("get_iter()", f"DDP reader (rank 3/{world}, worker 1/2, equalize='drop')"):
        for side in sides:  # untimed warm-up
            ttfs_run(url, side, pipeline, world)
        runs: dict[str, list[float]] = {s: [] for s in sides}
        for r in range(repeats):
            k = r % len(sides)
            for side in sides[k:] + sides[:k]:
                runs[side].append(ttfs_run(url, side, pipeline, world))
        ratio = [i / t for i, t in zip(runs["index"], runs["today"], strict=True)]
        missing = [n / t for n, t in zip(runs["no index present"], runs["today"], strict=True)]
        out[pipeline] = {
            "median_s": {s: statistics.median(v) for s, v in runs.items()},
            "best_s": {s: min(v) for s, v in runs.items()},
            "index_over_today": {"median": statistics.median(ratio), "per_round": ratio},
            "no_index_present_over_today": {"median": statistics.median(missing), "per_round": missing},
            "runs_s": runs,
        }
        print(f"  {pipeline}: index/today = {statistics.median(ratio):.3f}", flush=True)
    return out


# --- stores, report -------------------------------------------------------------------------------------------------


def write_store(url: str, shards: int) -> dict[str, Any]:
    """Shards written with the documented parallel write (``async_map(store.set)``), then ``build_index()``."""
    store = MessagepackDriver(url).store

    def shard(s: int) -> Any:
        return store.set([{"i": s * PER_SHARD + j, "x": b"\x00" * 64} for j in range(PER_SHARD)], key=f"shard-{s:06d}")

    start = time.perf_counter()
    IterableSource(range(shards)).async_map(shard, max_workers=8).join()
    written = time.perf_counter() - start
    start = time.perf_counter()
    table = store.build_index()
    built = time.perf_counter() - start
    assert len(table.keys) == shards and sum(e.samples for e in table.entries) == shards * PER_SHARD
    size = (Path(url) / ".squirrel" / INDEX_NAME).stat().st_size
    return {"write_s": written, "build_index_s": built, "index_bytes": size}


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "| shards | configuration | requests per reader (S3-equivalent) | rank 0 main process | all 1,024 readers "
        "| readers simulated |",
        "|---|---|---|---|---|---|",
    ]
    for shards, configs in report["requests"].items():
        for name, row in configs.items():
            per = row["s3_requests_per_reader"]
            per_s = f"{per['median']:,.0f}"
            if per["median"] != per["max"]:
                per_s += f" (max {per['max']:,})"
            r0 = row["rank0_main_process"]
            r0_s = "-" if r0 is None else f"{r0['s3_requests']:,}"
            lines.append(
                f"| {int(shards):,} | {name} | {per_s} | {r0_s} | {row['s3_requests_all_readers']:,.0f} "
                f"| {row['simulated']} |"
            )
    lines += ["", "| pipeline (time to first sample) | today | no index present | index | index / today |"]
    lines.append("|---|---|---|---|---|")
    for pipeline, row in report["time_to_first_sample"].items():
        m = row["median_s"]
        lines.append(
            f"| {pipeline} | {m['today'] * 1e3:.1f} ms | {m['no index present'] * 1e3:.1f} ms "
            f"| {m['index'] * 1e3:.1f} ms | {row['index_over_today']['median']:.3f}x |"
        )
    return "\n".join(lines)


def targets(report: dict[str, Any]) -> dict[str, Any]:
    per = {s: c["index"]["s3_requests_per_reader"]["max"] for s, c in report["requests"].items()}
    big = str(max(int(s) for s in report["requests"]))
    ratio = report["time_to_first_sample"]["get_iter()"]["index_over_today"]["median"]
    ddp = next(v for k, v in report["time_to_first_sample"].items() if k.startswith("DDP"))
    return {
        "index: <= 2 requests per reader, same for every store size": {
            "per_store": per,
            "met": all(v <= 2 for v in per.values()) and len(set(per.values())) == 1,
        },
        f"time to first sample at {int(big):,} shards, index <= 0.5x today": {
            "get_iter()": ratio,
            "DDP reader": ddp["index_over_today"]["median"],
            "met": ratio <= 0.5 and ddp["index_over_today"]["median"] <= 0.5,
        },
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100 and 1,000 shards, 2 rounds: checks the script")
    parser.add_argument("--repeats", type=int, help="interleaved rounds of time to first sample (default 5; quick 2)")
    parser.add_argument(
        "--sample", type=int, default=16, help="readers run in the configurations but 'index' (1024: all)"
    )
    parser.add_argument("--out", default=str(HERE / "results" / "store_index.json"))
    args = parser.parse_args()
    if args.repeats is None:
        args.repeats = 2 if args.quick else 5
    return args


def main() -> None:
    args = parse_args()
    sizes = QUICK if args.quick else FULL
    folder = tempfile.mkdtemp(prefix="sg-index-bench-")
    started = time.perf_counter()
    try:
        stores = {n: os.path.join(folder, f"store-{n}") for n in sizes}
        facts = {str(n): write_store(url, n) for n, url in stores.items()}
        print(f"stores written: {facts}", flush=True)
        requests = {str(n): requests_for(url, n, args.sample) for n, url in stores.items()}
        ttfs = time_to_first_sample(stores[max(sizes)], max(sizes), args.repeats)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report: dict[str, Any] = {
        "stamp": stamp(),
        "quick": args.quick,
        "readers": f"{RANKS} ranks x {WORKERS} workers",
        "shard": f"{PER_SHARD} samples of ~70 bytes",
        "stores": facts,
        "requests": requests,
        "time_to_first_sample": ttfs,
        "rounds": args.repeats,
        "seconds": time.perf_counter() - started,
    }
    report["targets"] = targets(report)
    print(markdown(report))
    print(json.dumps(report["targets"], indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
