"""Checkpoint/resume: time to the first batch after resuming mid-epoch, the shards a resumed run fetches first, and
what keeping positions costs a normal run.

    python benchmarks/resume.py [--quick] [--rounds 5] [--pairs 7] [--no-pack] [--out benchmarks/results/resume.json]

Store: 64 shards x 500 samples ``{"x": float32[32, 32], "i": int}`` (``--quick``: 8 x 50), written once with
``MessagepackDriver(url).store.set(shard, key=...)`` (default compression) into a temporary folder on local disk.

Pipeline (as tests/checkpoint_train.py, sizes for this store):
``MessagepackDriver(url).get_iter(shuffle_key_buffer=8, key_shuffle_kwargs={"seed": 1}, shuffle_item_buffer=1000,
item_shuffle_kwargs={"seed": 2}, max_workers=4, prefetch_buffer=4)`` (item shuffle ``initial=100``, its default)
``.map(scale)`` (x * 2) ``.filter(keep)`` (drops i % 7 == 3) ``.async_map(label, buffer=8)`` (adds ``y = i % 10``)
``.batched(100)``: 27,429 samples kept, 274 full batches (``--quick``: buffer 100, batches of 10).

(1) Time to the first batch. An uninterrupted reference run records every batch and takes ``state_dict()`` after
10 %, 50 % and 90 % of its batches (k = 27, 137, 247; each state goes through a JSON round trip). Sides, each on a
new handle built outside the clock:
  * start: clock from ``iter()`` to the first batch of the epoch;
  * resume@p: clock from ``load_state_dict(state)`` (which checks the state against the pipeline) to the first batch;
  * replay@p: what a plain IterableDataset gets: clock from ``iter()``, the first k batches taken and discarded,
    then batch k.
The batch each side returns must equal the reference run's batch at that position (the sample ids and a crc32 of
every sample's x bytes; a mismatch fails the run); the iterator is closed outside the clock. One untimed warm-up
round of start and the resumes (the reference runs warmed the page cache for the replays), then ``--rounds`` (>= 5)
rounds, each running all seven sides once, the order rotated by one side per round. Figures are medians of per-round
ratios: resume@p / start (target at 90 %: <= 1.5x) and replay@p / resume@p (target at 90 %: >= 10x).

(2) Shards fetched before the first batch: the same start and resume@p runs (untimed) on the same folder through
``resumebench://``, a subclass of fsspec's LocalFileSystem registered by this script that logs every ``open`` /
``cat_file`` / ``cat`` (a call made inside another is not logged again); a fetch is a whole read of a shard file
(``*.gz`` outside ``.squirrel/``). Counted: fetches logged when the first batch is returned (the read-ahead threads
keep fetching after that: all fetches until the iterator is closed are reported too), over ``--count-runs`` runs
(default 2).
The bound it is held to: the shards the item shuffle's window spans, counted as shuffle_item_buffer / samples per
shard (2) + 1 shard being read = 3, + 1 (the issue's slack), + the fetch read-ahead ``prefetch_buffer`` (4, which
happens at an epoch start too) = 8. The fresh start's count is reported beside it (the read-ahead is common to both),
and so is the window the saved state really re-reads: the shuffle position's ``pulled - from`` items (from the
oldest item still buffered to the last pulled), in shards.

(3) Overhead of keeping state, each the median of paired ratios (state on / state off) over ``--pairs`` (>= 7)
interleaved pairs, order alternating (three sides: rotated), after one untimed, checked run of every side:
  (a) the README's workload (a): workloads.maps_stream on squirrel_graph (source -> 3 maps -> filter -> batched(100)),
      its FULL/QUICK sizes and expected checksum; off = the run opened inside ``track_positions(False)``. This
      pipeline has no read-ahead stage, the only kind that switch changes, so the pair compares identical code and
      can only show noise (the always-on part of positions is in both sides). Informative third side: the same run
      calling ``state_dict()`` after every batch (what a StatefulDataLoader worker does), against off.
  (b) the store read of benchmarks/storage.py: ``storage.timed_read`` (``list(get_iter())`` with default arguments)
      on storage.py's data (64 x 500 ``{"image", "label"}``, written here), checked against the written data's
      checksum; off = inside ``track_positions(False)``.
  (c) a DataLoader epoch over the pipeline above, split by worker (``split_by_worker_pytorch()`` after get_iter),
      ``to_torch_iterable(pack=True)``, ``num_workers=2, batch_size=None``, timed from building the loader to its
      last batch: on = ``StatefulDataLoader`` with its default snapshot after every batch, off = torch's plain
      ``DataLoader``. pack=True sends each batch as one shared-memory tensor per field; with the default pack=False
      every sample's x crosses as its own shared-memory tensor, which makes the epoch about 4x longer here and would
      dilute the figure (``--no-pack`` measures that path). Informative third side: StatefulDataLoader with
      ``track_positions(False)`` entered in each worker by its ``worker_init_fn``. Positions are on by default, so
      the plain DataLoader's workers keep them too: (c) is what StatefulDataLoader and its snapshots add, and
      StatefulDataLoader positions on / off (c'') is what positions cost inside a DataLoader. Every epoch's batches
      (sample ids, in order) must equal the two worker streams run in this process (get_worker_info patched) and
      merged round-robin, as an in-order DataLoader delivers them.
  (d) (not one of the issue's three) an epoch of the pipeline above in this process, ``list(stream)``; off = inside
      ``track_positions(False)``; every batch checked against the reference run's.
Target for each of (a), (b), (c), and (d): <= 1.05x.

Results: markdown tables to stdout, and ``benchmarks/results/resume.json`` stamped with the commit and machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
import types
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
from fsspec.implementations.local import LocalFileSystem

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import storage  # noqa: E402

from squirrel_graph.checkpoint import track_positions  # noqa: E402
from squirrel_graph.io.drivers import MessagepackDriver  # noqa: E402

import workloads as w  # noqa: E402
from stamp import stamp  # noqa: E402

# torchdata 0.11's StatefulDataLoader calls torch.set_vital, deprecated in torch 2.13: nothing this script can change
warnings.filterwarnings("ignore", message=".*set_vital.*deprecated", category=UserWarning)

GRAPH = "squirrel_graph"
FRACTIONS = (0.1, 0.5, 0.9)
KEY_SEED, ITEM_SEED = 1, 2


@dataclass(frozen=True)
class Setup:
    shards: int = 64
    per_shard: int = 500
    batch: int = 100
    key_buffer: int = 8
    item_buffer: int = 1000
    fetch_workers: int = 4
    prefetch: int = 4
    async_buffer: int = 8
    rounds: int = 5
    pairs: int = 7
    count_runs: int = 2


FULL = Setup()
QUICK = Setup(shards=8, per_shard=50, batch=10, item_buffer=100, rounds=2, pairs=2, count_runs=1)


# --- the pipeline -----------------------------------------------------------------------------------------------


def scale(sample: dict[str, Any]) -> dict[str, Any]:
    return {**sample, "x": sample["x"] * 2.0}


def keep(sample: dict[str, Any]) -> bool:
    return sample["i"] % 7 != 3


def label(sample: dict[str, Any]) -> dict[str, Any]:
    return {**sample, "y": sample["i"] % 10}


def pipeline(url: str, s: Setup, split: bool = False) -> Any:
    stream = MessagepackDriver(url).get_iter(
        shuffle_key_buffer=s.key_buffer,
        key_shuffle_kwargs={"seed": KEY_SEED},
        shuffle_item_buffer=s.item_buffer,
        item_shuffle_kwargs={"seed": ITEM_SEED},
        max_workers=s.fetch_workers,
        prefetch_buffer=s.prefetch,
    )
    if split:
        stream = stream.split_by_worker_pytorch()
    return stream.map(scale).filter(keep).async_map(label, buffer=s.async_buffer).batched(s.batch)


def n_batches(s: Setup) -> int:
    kept = sum(1 for i in range(s.shards * s.per_shard) if i % 7 != 3)
    return kept // s.batch


def write_store(url: str, s: Setup) -> None:
    store = MessagepackDriver(url).store
    rng = np.random.default_rng(0)
    for k in range(s.shards):
        xs = rng.standard_normal((s.per_shard, 32, 32), dtype=np.float32)
        store.set([{"x": xs[j], "i": k * s.per_shard + j} for j in range(s.per_shard)], key=f"shard-{k:04d}")


def fingerprint(batch: Any) -> tuple[tuple[int, ...], int]:
    """A batch's sample ids, in order, and a crc32 over every sample's x (dtype, shape and bytes)."""
    crc = 0
    for sample in batch:
        x = np.ascontiguousarray(sample["x"])
        crc = zlib.crc32(x, zlib.crc32(f"{x.dtype.str}|{x.shape}".encode(), crc))
    return tuple(int(sample["i"]) for sample in batch), crc


def first_batch(it: Iterator[Any]) -> Any:
    return next(it)


def close(it: Any) -> None:
    closer = getattr(it, "close", None)
    if closer is not None:
        closer()


# --- (1) time to the first batch ---------------------------------------------------------------------------------


@dataclass
class Reference:
    """The uninterrupted run: every batch's fingerprint, and the state after ``k`` batches for each position."""

    batches: list[tuple[tuple[int, ...], int]]
    states: dict[int, dict[str, Any]]


def reference_run(url: str, s: Setup, positions: list[int]) -> Reference:
    stream = pipeline(url, s)
    batches, states = [], {}
    it = iter(stream)
    for batch in it:
        batches.append(fingerprint(batch))
        if len(batches) in positions:
            states[len(batches)] = json.loads(json.dumps(stream.state_dict()))
    assert len(batches) == n_batches(s), f"reference run: {len(batches)} batches, expected {n_batches(s)}"
    for k, state in states.items():
        assert state["resumable"], f"state after {k} batches not resumable: {state['reason']}"
    return Reference(batches, states)


def check_batch(side: str, got: Any, ref: Reference, k: int) -> None:
    found = fingerprint(got)
    if found != ref.batches[k]:
        mine, theirs = list(found[0][:8]), list(ref.batches[k][0][:8])
        why = "same ids, x differs" if found[0] == ref.batches[k][0] else f"ids {mine}... vs {theirs}..."
        raise AssertionError(f"{side}: batch {k} differs from the uninterrupted run's ({why})")


def time_side(url: str, s: Setup, ref: Reference, side: str) -> float:
    """Seconds of one side (see the module docstring); its batch is checked after the clock stops."""
    kind, _, at = side.partition("@")
    k = int(at) if at else 0
    stream = pipeline(url, s)
    start = time.perf_counter()
    if kind == "resume":
        stream.load_state_dict(ref.states[k])
        it = iter(stream)
        batch = first_batch(it)
    else:
        it = iter(stream)
        for _ in range(k):  # replay: batches before the position, discarded
            next(it)
        batch = first_batch(it)
    seconds = time.perf_counter() - start
    close(it)
    check_batch(side, batch, ref, k)
    return seconds


def first_batch_rounds(url: str, s: Setup, ref: Reference, positions: list[int], rounds: int) -> dict[str, Any]:
    sides = ["start"] + [f"resume@{k}" for k in positions] + [f"replay@{k}" for k in positions]
    for side in sides:
        if not side.startswith("replay"):
            time_side(url, s, ref, side)  # warm-up
    times: dict[str, list[float]] = {side: [] for side in sides}
    for r in range(rounds):
        k = r % len(sides)
        for side in sides[k:] + sides[:k]:
            times[side].append(time_side(url, s, ref, side))
        print(f"  round {r + 1}: " + ", ".join(f"{n} {times[n][-1] * 1e3:.0f} ms" for n in sides), flush=True)
    return times


def first_batch_figures(times: dict[str, list[float]], positions: list[int]) -> list[dict[str, Any]]:
    rows = []
    for frac, k in zip(FRACTIONS, positions):
        pct = f"{round(frac * 100)}%"
        last = frac == FRACTIONS[-1]
        rows.append(
            w.figure(
                f"resume_{pct}_over_start",
                f"time to first batch, resume at {pct} (batch {k}) / start of epoch",
                w.LIKE,
                w.paired(times[f"resume@{k}"], times["start"]),
                target="<= 1.5" if last else None,
            )
        )
        rows.append(
            w.figure(
                f"replay_{pct}_over_resume",
                f"time to first batch at {pct}, replay / resume (how many times faster resume is)",
                w.LIKE,
                w.paired(times[f"replay@{k}"], times[f"resume@{k}"]),
                target=">= 10" if last else None,
            )
        )
    return rows


# --- (2) shards fetched ------------------------------------------------------------------------------------------

PROTOCOL = "resumebench"


class Fetches:
    """Counted reads of this process: ``(operation, path)``; a read made inside another is not counted again."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.depth = threading.local()

    def take(self) -> list[tuple[str, str]]:
        with self.lock:
            rows, self.rows = self.rows, []
        return rows

    def snapshot(self) -> list[tuple[str, str]]:
        with self.lock:
            return list(self.rows)


FETCHES = Fetches()


def _logged(op: str, method: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        depth = getattr(FETCHES.depth, "n", 0)
        if depth == 0:
            ranged = kwargs.get("start") is not None or kwargs.get("end") is not None
            if not ranged:
                with FETCHES.lock:
                    FETCHES.rows.append((op, str(args[0] if args else kwargs.get("path", ""))))
        FETCHES.depth.n = depth + 1
        try:
            return method(*args, **kwargs)
        finally:
            FETCHES.depth.n = depth

    return call


class CountingLocal(LocalFileSystem):
    """fsspec's local filesystem under ``resumebench://``, logging every open / cat_file / cat."""

    protocol = (PROTOCOL,)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for op in ("open", "cat_file", "cat"):
            setattr(self, op, _logged(op, getattr(self, op)))

    @classmethod
    def _strip_protocol(cls, path: Any) -> str:
        path = str(path)
        prefix = f"{PROTOCOL}://"
        return LocalFileSystem._strip_protocol(path[len(prefix) :] if path.startswith(prefix) else path)


fsspec.register_implementation(PROTOCOL, CountingLocal, clobber=True)


def shard_fetches(rows: list[tuple[str, str]]) -> list[str]:
    return [p.rsplit("/", 1)[-1] for _, p in rows if p.endswith(".gz") and "/.squirrel/" not in p]


def count_side(url: str, s: Setup, ref: Reference, side: str) -> dict[str, Any]:
    kind, _, at = side.partition("@")
    k = int(at) if at else 0
    stream = pipeline(url, s)
    FETCHES.take()
    if kind == "resume":
        stream.load_state_dict(ref.states[k])
    it = iter(stream)
    batch = first_batch(it)
    before = shard_fetches(FETCHES.snapshot())
    close(it)
    total = shard_fetches(FETCHES.take())
    check_batch(f"{side} (counting)", batch, ref, k)
    return {"before_first_batch": len(before), "distinct": len(set(before)), "until_closed": len(total)}


def shuffle_span(state: dict[str, Any]) -> int:
    """Items the item shuffle re-reads on resuming: ``pulled - from`` of the outermost shuffle position."""
    todo = [state["position"]]
    while todo:
        p = todo.pop(0)
        if isinstance(p, dict):
            if {"pulled", "from"} <= p.keys():
                return int(p["pulled"]) - int(p["from"])
            todo.extend(p.values())
        elif isinstance(p, list):
            todo.extend(p)
    raise AssertionError("no shuffle position in the state")


def count_shards(folder: str, s: Setup, plain_ref: Reference, positions: list[int]) -> dict[str, Any]:
    url = f"{PROTOCOL}://{folder}"
    ref = reference_run(url, s, positions)
    assert ref.batches == plain_ref.batches, "the run through resumebench:// differs from the plain run"
    window = -(-s.item_buffer // s.per_shard) + 1
    bound = window + 1 + s.prefetch
    out: dict[str, Any] = {
        "window_shards": window,
        "bound": bound,
        "bound_is": f"item buffer {s.item_buffer} / {s.per_shard} samples per shard = {window - 1}, + 1 shard being "
        f"read = {window} (window), + 1 (slack) + prefetch_buffer {s.prefetch} (read-ahead) = {bound}",
        "sides": {},
    }
    for side in ["start"] + [f"resume@{k}" for k in positions]:
        runs = [count_side(url, s, ref, side) for _ in range(s.count_runs)]
        row: dict[str, Any] = {
            "before_first_batch": [r["before_first_batch"] for r in runs],
            "distinct_before_first_batch": [r["distinct"] for r in runs],
            "until_closed": [r["until_closed"] for r in runs],
        }
        if side != "start":
            span = shuffle_span(ref.states[int(side.split("@")[1])])
            row["shuffle_reread_items"] = span
            row["shuffle_reread_shards"] = span / s.per_shard
        row["max_before_first_batch"] = max(row["before_first_batch"])
        out["sides"][side] = row
        print(f"  {side}: shards fetched before the first batch {row['before_first_batch']}", flush=True)
    last = f"resume@{positions[-1]}"
    worst = out["sides"][last]["max_before_first_batch"]
    out["target"] = f"resume at 90%: <= {bound} shards: " + ("met" if worst <= bound else "target missed")
    span = -(-out["sides"][last]["shuffle_reread_items"] // s.per_shard)
    wide = span + 1 + 1 + s.prefetch
    out["target_with_the_states_window"] = (
        f"informative: resume at 90% <= the state's re-read window {span} shards + 1 straddled + 1 (slack) "
        f"+ prefetch_buffer {s.prefetch} = {wide}: " + ("met" if worst <= wide else "missed")
    )
    return out


# --- (3) overhead of keeping state ---------------------------------------------------------------------------------


def rotated(sides: dict[str, Callable[[], float]], pairs: int) -> dict[str, list[float]]:
    """One untimed (checked) run of every side, then ``pairs`` rounds, order rotated (two sides: alternating)."""
    names = list(sides)
    for name in names:
        sides[name]()
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(pairs):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            times[name].append(sides[name]())
    return times


def maps_run(n: int, mode: str, want: str) -> float:
    stream = w.maps_stream(GRAPH, n)
    ctx = track_positions(False) if mode == "off" else contextlib.nullcontext()
    with ctx:
        start = time.perf_counter()
        out = []
        if mode == "state_dict":
            for batch in stream:
                out.append(batch)
                stream.state_dict()
        else:
            for batch in stream:
                out.append(batch)
        seconds = time.perf_counter() - start
    w.verify(f"workload (a), {mode}", w.checksum_batches(out), want)
    return seconds


def pipeline_run(url: str, s: Setup, mode: str, ref: Reference) -> float:
    stream = pipeline(url, s)
    ctx = track_positions(False) if mode == "off" else contextlib.nullcontext()
    with ctx:
        start = time.perf_counter()
        out = list(stream)
        seconds = time.perf_counter() - start
    if [fingerprint(b) for b in out] != ref.batches:
        raise AssertionError(f"pipeline epoch, {mode}: batches differ from the reference run's")
    return seconds


def read_run(url: str, mode: str, want: tuple[int, int]) -> float:
    ctx = track_positions(False) if mode == "off" else contextlib.nullcontext()
    with ctx:
        run = storage.timed_read(storage.GRAPH, url, None)
    storage.check(f"store read, {mode}", "run", run, want)
    return run["s"]


_WORKER_STACK = contextlib.ExitStack()


def positions_off(worker_id: int) -> None:
    """worker_init_fn: runs opened in this DataLoader worker keep no positions."""
    _WORKER_STACK.enter_context(track_positions(False))


@contextlib.contextmanager
def as_worker(worker: int, workers: int) -> Iterator[None]:
    """This thread is DataLoader worker ``worker`` of ``workers`` (what split_by_worker_pytorch reads)."""
    import torch.utils.data

    saved = torch.utils.data.get_worker_info
    torch.utils.data.get_worker_info = lambda: types.SimpleNamespace(id=worker, num_workers=workers, seed=0)
    try:
        yield
    finally:
        torch.utils.data.get_worker_info = saved


def loader_expected(url: str, s: Setup, workers: int) -> str:
    """The two worker streams run here, merged as an in-order DataLoader does: round-robin until each ends."""
    per = []
    for wid in range(workers):
        with as_worker(wid, workers):
            per.append([[int(x["i"]) for x in b] for b in pipeline(url, s, split=True)])
    merged = [p[i] for i in range(max(map(len, per))) for p in per if i < len(p)]
    return w.checksum_batches(merged)


def loader_run(url: str, s: Setup, side: str, pack: bool, want: str) -> float:
    from torch.utils.data import DataLoader
    from torchdata.stateful_dataloader import StatefulDataLoader

    dataset = pipeline(url, s, split=True).to_torch_iterable(pack=pack)
    start = time.perf_counter()
    if side == "DataLoader":
        loader: Any = DataLoader(dataset, batch_size=None, num_workers=2)
    elif side == "StatefulDataLoader":
        loader = StatefulDataLoader(dataset, batch_size=None, num_workers=2)
    else:
        loader = StatefulDataLoader(dataset, batch_size=None, num_workers=2, worker_init_fn=positions_off)
    got = [[int(x["i"]) for x in batch] for batch in loader]
    seconds = time.perf_counter() - start
    w.verify(f"DataLoader epoch, {side}", w.checksum_batches(got), want)
    return seconds


def overheads(
    folder: str, url: str, s: Setup, ref: Reference, quick: bool, pack: bool
) -> tuple[list[dict[str, Any]], dict]:
    rows, raw = [], {}
    n = w.sizes(quick).items
    want = w.expected_maps(n)
    t = rotated({m: (lambda m=m: maps_run(n, m, want)) for m in ("on", "off", "state_dict")}, s.pairs)
    raw["workload_a"] = t
    rows.append(
        w.figure(
            "overhead_workload_a",
            f"(a) README workload (a), {n:,} items: positions on / track_positions(False) (no read-ahead stage: "
            "both sides run the same code)",
            w.LIKE,
            w.paired(t["on"], t["off"]),
            target="<= 1.05",
        )
    )
    rows.append(
        w.figure(
            "workload_a_state_dict_every_batch",
            "(a') workload (a) calling state_dict() after every batch / track_positions(False)",
            "informative: adds a state_dict() call per batch",
            w.paired(t["state_dict"], t["off"]),
        )
    )
    print(f"  (a) on/off {rows[-2]['median']:.3f}x, state_dict per batch {rows[-1]['median']:.3f}x", flush=True)

    read_url = f"{folder}/storage-store"
    shards, per_shard = storage.QUICK if quick else storage.FULL
    data = storage.samples(shards, per_shard)
    store = MessagepackDriver(read_url).store
    for k in range(shards):
        store.set(data[k * per_shard : (k + 1) * per_shard], key=f"shard-{k:04d}")
    expected = storage.checksum(storage.sample_pairs(data))
    t = rotated({m: (lambda m=m: read_run(read_url, m, expected)) for m in ("on", "off")}, s.pairs)
    raw["store_read"] = t
    rows.append(
        w.figure(
            "overhead_store_read",
            f"(b) store read (storage.timed_read, {shards} x {per_shard}): positions on / track_positions(False)",
            w.LIKE,
            w.paired(t["on"], t["off"]),
            target="<= 1.05",
        )
    )
    print(f"  (b) on/off {rows[-1]['median']:.3f}x", flush=True)

    t = rotated({m: (lambda m=m: pipeline_run(url, s, m, ref)) for m in ("on", "off")}, s.pairs)
    raw["pipeline"] = t
    rows.append(
        w.figure(
            "overhead_resume_pipeline",
            "(d) an epoch of this benchmark's pipeline in this process: positions on / track_positions(False) "
            "(not one of the issue's three; the same 5% applied)",
            w.LIKE,
            w.paired(t["on"], t["off"]),
            target="<= 1.05",
        )
    )
    print(f"  (d) on/off {rows[-1]['median']:.3f}x", flush=True)

    want_dl = loader_expected(url, s, 2)
    sides = ("DataLoader", "StatefulDataLoader", "StatefulDataLoader, positions off")
    t = rotated({d: (lambda d=d: loader_run(url, s, d, pack, want_dl)) for d in sides}, s.pairs)
    raw["dataloader"] = t
    how = f"to_torch_iterable(pack={pack}), num_workers=2"
    rows.append(
        w.figure(
            "overhead_stateful_dataloader",
            f"(c) DataLoader epoch ({how}): StatefulDataLoader (snapshot every batch) / DataLoader",
            w.LIKE,
            w.paired(t["StatefulDataLoader"], t["DataLoader"]),
            target="<= 1.05",
        )
    )
    rows.append(
        w.figure(
            "stateful_dataloader_positions_off",
            f"(c') StatefulDataLoader with track_positions(False) in its workers / DataLoader ({how})",
            "informative: StatefulDataLoader's own cost",
            w.paired(t["StatefulDataLoader, positions off"], t["DataLoader"]),
        )
    )
    rows.append(
        w.figure(
            "stateful_dataloader_positions_on_over_off",
            f"(c'') StatefulDataLoader, positions on / off in its workers ({how})",
            w.LIKE,
            w.paired(t["StatefulDataLoader"], t["StatefulDataLoader, positions off"]),
        )
    )
    print(f"  (c) SDL/DL {rows[-3]['median']:.3f}x, SDL off/DL {rows[-2]['median']:.3f}x", flush=True)
    return rows, raw


# --- report -------------------------------------------------------------------------------------------------------


def sides_table(times: dict[str, list[float]]) -> str:
    out = ["| side | median | best | runs |", "|---|---|---|---|"]
    for side, t in times.items():
        out.append(f"| {side} | {statistics.median(t) * 1e3:.1f} ms | {min(t) * 1e3:.1f} ms | {len(t)} |")
    return "\n".join(out)


def shards_table(counts: dict[str, Any]) -> str:
    out = [
        "| side | shards fetched before the first batch | distinct | fetched until closed "
        "| shuffle re-read window (from the state) |",
        "|---|---|---|---|---|",
    ]
    for side, r in counts["sides"].items():
        span = "-"
        if side != "start":
            span = f"{r['shuffle_reread_items']:,} items = {r['shuffle_reread_shards']:.1f} shards"
        out.append(
            f"| {side} | {', '.join(map(str, r['before_first_batch']))} "
            f"| {', '.join(map(str, r['distinct_before_first_batch']))} "
            f"| {', '.join(map(str, r['until_closed']))} | {span} |"
        )
    out.append(f"\nbound: {counts['bound_is']}; {counts['target']}")
    out.append(counts["target_with_the_states_window"])
    return "\n".join(out)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="8 shards x 50 samples, 2 rounds/pairs: checks the script")
    parser.add_argument("--rounds", type=int, help="interleaved rounds of time to first batch (default 5; quick 2)")
    parser.add_argument("--pairs", type=int, help="interleaved pairs per overhead figure (default 7; quick 2)")
    parser.add_argument("--count-runs", type=int, help="runs per side of the shard count (default 2; quick 1)")
    parser.add_argument("--no-pack", action="store_true", help="(c) with to_torch_iterable() (pack=False)")
    parser.add_argument("--out", default=str(HERE / "results" / "resume.json"))
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    base = QUICK if args.quick else FULL
    s = Setup(
        **{
            **asdict(base),
            **{k: v for k, v in (("rounds", args.rounds), ("pairs", args.pairs), ("count_runs", args.count_runs)) if v},
        }
    )
    total = n_batches(s)
    positions = [round(f * total) for f in FRACTIONS]
    folder = tempfile.mkdtemp(prefix="sg-resume-bench-")
    started = time.perf_counter()
    try:
        url = f"{folder}/store"
        write_store(url, s)
        ref = reference_run(url, s, positions)
        print(f"{s.shards} shards x {s.per_shard}: {total} batches; positions {positions}", flush=True)
        sections = {"store and reference run": time.perf_counter() - started}
        print("(1) time to the first batch", flush=True)
        times = first_batch_rounds(url, s, ref, positions, s.rounds)
        figures = first_batch_figures(times, positions)
        sections["(1) time to first batch"] = time.perf_counter() - started - sum(sections.values())
        print("(2) shards fetched", flush=True)
        counts = count_shards(url, s, ref, positions)
        sections["(2) shards fetched"] = time.perf_counter() - started - sum(sections.values())
        print("(3) overhead of keeping state", flush=True)
        over, over_raw = overheads(folder, url, s, ref, args.quick, not args.no_pack)
        sections["(3) overheads"] = time.perf_counter() - started - sum(sections.values())
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    figures += over
    state_bytes = {str(k): len(json.dumps(v)) for k, v in ref.states.items()}
    missed = [r["key"] for r in figures if r["status"] and "missed" in r["status"]]
    if "missed" in counts["target"]:
        missed.append("shards_before_first_batch")
    report = {
        "stamp": stamp(),
        "quick": args.quick,
        "setup": asdict(s),
        "pipeline": (
            f"get_iter(shuffle_key_buffer={s.key_buffer}, key seed {KEY_SEED}, shuffle_item_buffer={s.item_buffer}, "
            f"item seed {ITEM_SEED}, max_workers={s.fetch_workers}, prefetch_buffer={s.prefetch}).map(scale)"
            f".filter(keep).async_map(label, buffer={s.async_buffer}).batched({s.batch})"
        ),
        "batches_per_epoch": total,
        "positions": dict(zip([f"{round(f * 100)}%" for f in FRACTIONS], positions)),
        "state_json_bytes": state_bytes,
        "first_batch": {
            "median_s": {k: statistics.median(v) for k, v in times.items()},
            "best_s": {k: min(v) for k, v in times.items()},
            "times_s": times,
        },
        "shards_fetched": counts,
        "overhead_times_s": over_raw,
        "figures": figures,
        "targets_missed": missed,
        "seconds": time.perf_counter() - started,
        "section_seconds": sections,
    }
    print(sides_table(times))
    print()
    print(shards_table(counts))
    print()
    print(w.markdown(figures))
    if missed:
        print(f"\ntarget missed: {', '.join(missed)}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{report['seconds']:.0f} s; written to {args.out}")


if __name__ == "__main__":
    main()
