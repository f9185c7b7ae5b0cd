"""DataLoader read benchmark: split push-down vs item-level splits, squirrel_graph vs squirrel-core 0.20.2,
interleaved run by run, every run's content checked by checksum.

    python benchmarks/torch_loader.py [--repeats 7] [--squirrel-core-python .venv-squirrel-core/bin/python]
                                      [--store-level N] [--quick] [--out benchmarks/results/torch_loader.json]

The store of benchmarks/storage.py (64 shards x 500 samples ``{"image": float32[32, 32], "label": int}``; ``--quick``:
8 x 50, batches of 20, 2 rounds), written by squirrel_graph with its default compression (ISA-L level 1;
``--store-level N``: zlib level N), is read through ``DataLoader(num_workers=2, batch_size=None)`` over a stream that
ends in ``.batched(100)``, by:

(a) squirrel_graph, the user's item-level split after the fetch (the optimizer pushes it down to the keys),
(b) squirrel_graph with the same split pinned by ``level="item"``,
(a') as (a), batches collated in the worker (``default_collate``; no squirrel-core counterpart),
(c) squirrel-core with the same item-level chain as (a)/(b),
(d) squirrel-core with ``key_hooks=[SplitByWorker]`` (each worker reads its own shards, as (a) does),
(e) as (a), ``to_torch_iterable(pack=True)``: each batch crosses as one shared-memory tensor per field; the loop
    receives what (a), (c) and (d) deliver (a list of samples, arrays as tensors).

Targets (issue 15): (e) end to end >= 5x (c) and >= 5x (d), and >= 0.5x (a').

Each variant is timed end to end (real batches to the main process, which checksums every sample it receives) and
decode-only (each worker sends only batch lengths; it keeps its samples and checksums them after its last batch is
sent and its CPU clock is read; (e)'s decode-only run is (a)'s, as there is nothing to pack). The clock stops at the
last batch received. Per worker: shards opened and bytes read (a counting fsspec filesystem logs every shard a process
opens), read+decode CPU seconds (decode-only runs) and end-to-end CPU seconds (the same plus sending the batches).

Interleaving: each round runs every variant once (end to end, then decode-only), rotating which goes first;
squirrel-core runs in its own venv, one subprocess per variant and round, timed inside (its interpreter start-up and an
untimed warm-up run are outside the clock). A ratio is the median over rounds of the per-round ratio.

Checksums: ``storage.digest`` (crc32 of label, dtype, shape and image bytes) summed mod 2**64 over every sample a run
delivered; every run must equal the written data's checksum and count (a dropped, duplicated or corrupted sample
fails). Results: markdown tables (like-for-like first) and ``benchmarks/results/torch_loader.json`` with the stamp.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import storage
from fsspec.implementations.local import LocalFileSystem

from squirrel_core_run import measure_in_squirrel_core
from stamp import stamp

HERE = Path(__file__).resolve().parent
WORKERS = 2
FULL, QUICK = (64, 500, 100), (8, 50, 20)  # shards, samples per shard, batch size
LOG_ENV = "SG_BENCH_LOG"
GRAPH, CORE = "squirrel_graph", "squirrel_core"
VARIANTS = {  # id: (library, chain, label)
    "a": (GRAPH, "item", "(a) squirrel_graph, item split after fetch (pushed down)"),
    "b": (GRAPH, "item_pinned", "(b) squirrel_graph, level='item' pinned"),
    "a_collated": (GRAPH, "item_collated", "(a') as (a), batches collated in the worker (default_collate)"),
    "c": (CORE, "item", "(c) squirrel-core, item split after fetch"),
    "d": (CORE, "key_hooks", "(d) squirrel-core, key_hooks=[SplitByWorker]"),
    "a_packed": (GRAPH, "item_packed", "(e) squirrel_graph, as (a), to_torch_iterable(pack=True)"),
}
PAIRS = [  # (A, B, like-for-like?)
    ("b", "c", "yes: same chain, same work (every worker reads every shard and keeps its items)"),
    ("a", "d", "yes in work and output (each worker reads only its shards); user code differs: (d) hand-placed hook"),
    ("a", "b", "graph vs graph: what the push-down saves"),
    ("a", "c", "NO: same user code, but (a) reads half the shards per worker (push-down), (c) all of them"),
    ("a_packed", "d", "yes in work and output (each worker reads its shards; the loop gets the same samples)"),
    ("a_packed", "c", "NO: the same pipeline, but (e) reads half the shards per worker (push-down), (c) all of them"),
    ("a_packed", "a_collated", "same work, different output: (a') delivers one collated dict of tensors per batch"),
    ("a_packed", "a", "graph vs graph: what packing saves (same work and output)"),
]
TARGETS = [  # (A, B, minimum end-to-end A/B) from issue 15
    ("a_packed", "c", 5.0),
    ("a_packed", "d", 5.0),
    ("a_packed", "a_collated", 0.5),
]


class CountingFS(LocalFileSystem):
    """Local files; every shard opened for reading is logged as "open <pid> <bytes>" to $SG_BENCH_LOG."""

    protocol = ("countfile",)

    @classmethod
    def _strip_protocol(cls, path):
        path = str(path)
        return super()._strip_protocol(path[len("countfile://") :] if path.startswith("countfile://") else path)

    def _open(self, path, mode="rb", **kwargs):
        if "r" in mode and str(path).endswith(".gz") and os.environ.get(LOG_ENV):
            log_line(f"open {os.getpid()} {os.path.getsize(path)}")
        return super()._open(path, mode, **kwargs)


fsspec.register_implementation("countfile", CountingFS, clobber=True)


def log_line(line: str) -> None:
    with open(os.environ[LOG_ENV], "a") as f:
        f.write(line + "\n")


# --- in the DataLoader workers -----------------------------------------------------------------------------------


def record_cpu(samples: Iterable[Any]) -> Iterator[Any]:
    """(end to end) Pass samples through (before ``batched``, so that ``pack=True`` sees the batches); at the end log
    the CPU seconds the process spent since it started pulling items (so interpreter and worker start-up are not
    counted)."""
    start = time.process_time()
    yield from samples
    log_line(f"cpu {os.getpid()} {time.process_time() - start}")


def decode_only(batches: Iterable[Any]) -> Iterator[int]:
    """(decode-only) Send each batch's length; keep the samples; after the last batch log the CPU seconds, then the
    checksum of every sample this worker produced (outside the CPU figure and after the main process's clock)."""
    start, kept = time.process_time(), []
    for batch in batches:
        kept.append(batch)
        yield len(batch)
    log_line(f"cpu {os.getpid()} {time.process_time() - start}")
    total, n = storage.checksum(pair for batch in kept for pair in storage.sample_pairs(batch))
    log_line(f"sum {os.getpid()} {total} {n}")


def stream(impl: str, url: str, chain: str, batch: int, decode: bool):
    if impl == GRAPH:
        from squirrel_graph.driver import MessagepackDriver
        from squirrel_graph.iterstream.torch_composables import SplitByWorker
    else:
        from squirrel.driver import MessagepackDriver
        from squirrel.iterstream.torch_composables import SplitByWorker
    url = "countfile://" + url
    if chain == "key_hooks":
        s = MessagepackDriver(url).get_iter(key_hooks=[SplitByWorker])
    elif chain == "item_pinned":
        s = MessagepackDriver(url).get_iter().split_by_worker_pytorch(level="item")
    else:
        s = MessagepackDriver(url).get_iter().split_by_worker_pytorch()
    if decode:
        return s.batched(batch, drop_last_if_not_full=False).to(decode_only).to_torch_iterable()
    s = s.to(record_cpu)
    if chain == "item_collated":  # one tensor per field and batch: few IPC buffers
        from torch.utils.data import default_collate

        return s.batched(batch, collation_fn=default_collate, drop_last_if_not_full=False).to_torch_iterable()
    s = s.batched(batch, drop_last_if_not_full=False)
    return s.to_torch_iterable(pack=True) if chain == "item_packed" else s.to_torch_iterable()


# --- in the main process -----------------------------------------------------------------------------------------


def batch_pairs(batch: Any) -> Iterable[tuple[Any, Any]]:
    """(label, image) of every sample of a received batch: a list of samples, or one collated dict of tensors."""
    if isinstance(batch, dict):
        return zip(np.asarray(batch["label"]).tolist(), np.asarray(batch["image"]))
    return storage.sample_pairs(batch)


def consume(loader: Any, decode: bool) -> tuple[float, int, int]:
    """(seconds to the last batch received, checksum of what arrived (end to end only), samples received)."""
    start = last = time.perf_counter()
    total = n = 0
    for batch in loader:
        if decode:
            n += int(batch)
        else:
            got, k = storage.checksum(batch_pairs(batch))
            total, n = total + got, n + k
        last = time.perf_counter()
    return last - start, total & storage.MASK, n


def parse_log(log: str) -> dict[str, Any]:
    opens, nbytes, cpu = defaultdict(int), defaultdict(int), {}
    total = counted = 0
    for line in open(log):
        kind, pid, *values = line.split()
        if kind == "open":
            opens[pid] += 1
            nbytes[pid] += int(values[0])
        elif kind == "cpu":
            cpu[pid] = float(values[0])
        else:
            total, counted = total + int(values[0]), counted + int(values[1])
    return {
        "shards_per_worker": sorted(opens.values()),
        "mb_per_worker": sorted(round(v / 2**20, 1) for v in nbytes.values()),
        "cpu_s_per_worker": sorted(round(v, 3) for v in cpu.values()),
        "worker_checksum": (total & storage.MASK, counted),
    }


def run_once(impl: str, url: str, chain: str, batch: int, decode: bool) -> dict[str, Any]:
    from torch.utils.data import DataLoader

    log = os.path.join(tempfile.gettempdir(), f"sg-bench-{os.getpid()}.log")
    if os.path.exists(log):
        os.remove(log)
    os.environ[LOG_ENV] = log
    loader = DataLoader(stream(impl, url, chain, batch, decode), num_workers=WORKERS, batch_size=None)
    seconds, total, n = consume(loader, decode)
    facts = parse_log(log)
    os.remove(log)
    worker_sum = facts.pop("worker_checksum")
    if decode:  # the workers checksummed what they produced; their count must match what arrived here
        total = worker_sum[0] if worker_sum[1] == n else -1
    return {"s": seconds, "checksum": total, "n": n, **facts}


def run_variant(impl: str, url: str, chain: str, batch: int) -> dict[str, Any]:
    return {"e2e": run_once(impl, url, chain, batch, False), "decode": run_once(impl, url, chain, batch, True)}


def core_variant(python: str, url: str, chain: str, quick: bool) -> dict[str, Any]:
    """One squirrel-core run of a chain in its own venv (timed inside the subprocess)."""
    args = ["--url", url, "--chain", chain, "--repeats", "1", *(["--quick"] if quick else [])]
    try:
        return measure_in_squirrel_core(python, __file__, *args)[0]
    except subprocess.CalledProcessError as err:
        raise RuntimeError(f"squirrel-core run failed:\n{err.stderr}") from err


def interleave(args: argparse.Namespace, url: str, batch: int, expected: tuple[int, int]) -> dict[str, list[Any]]:
    """An untimed warm-up of each squirrel_graph variant here, then ``--repeats`` rounds of every variant, the order
    rotated by one variant per round; every run is checked against the written data as soon as it returns."""
    ids = [v for v in VARIANTS if VARIANTS[v][0] == GRAPH or args.squirrel_core_python]

    def one(v: str) -> dict[str, Any]:
        impl, chain, _ = VARIANTS[v]
        if impl == CORE:
            return core_variant(args.squirrel_core_python, url, chain, args.quick)
        return run_variant(impl, url, chain, batch)

    for v in ids:
        if VARIANTS[v][0] == GRAPH:
            check(v, "warm-up", one(v), expected)
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in ids}
    for r in range(args.repeats):
        k = r % len(ids)
        for v in ids[k:] + ids[:k]:
            runs[v].append(check(v, f"round {r + 1}", one(v), expected))
    return runs


def check(v: str, when: str, run: dict[str, Any], expected: tuple[int, int]) -> dict[str, Any]:
    for mode in ("e2e", "decode"):
        got = (run[mode]["checksum"], run[mode]["n"])
        assert got == expected, f"{VARIANTS[v][2]}, {mode}, {when}: {got} != written data's {expected}"
    return run


def preimport_lazy_modules() -> float:
    """squirrel-core's async_map imports ``dask.distributed`` (when installed) each time it starts iterating; in a
    DataLoader worker forked from a process that has not imported it, that costs every worker, every epoch, ~0.5 s
    of CPU. Imported here, in the process the workers fork from, so the figures measure reading and decoding;
    returns what the import cost (reported apart)."""
    start = time.process_time()
    try:
        import dask.distributed  # noqa: F401
    except ImportError:
        pass
    return time.process_time() - start


def raw_json(args: argparse.Namespace) -> list[dict[str, Any]]:
    """(squirrel-core's process) the lazy import, an untimed warm-up run, then ``--repeats`` runs."""
    batch = (QUICK if args.quick else FULL)[2]
    import_cpu = preimport_lazy_modules()
    run_variant(args.impl, args.url, args.chain, batch)
    runs = [run_variant(args.impl, args.url, args.chain, batch) for _ in range(args.repeats)]
    return [{**run, "lazy_import_cpu_s": import_cpu} for run in runs]


# --- summaries and report ----------------------------------------------------------------------------------------


def rate(runs: list[dict[str, Any]], n: int) -> dict[str, float]:
    times = [r["s"] for r in runs]
    return {"median": n / statistics.median(times), "best": n / min(times)}


def variant_summary(rounds: list[dict[str, Any]], n: int) -> dict[str, Any]:
    dec = sorted((r["decode"] for r in rounds), key=lambda r: sum(r["cpu_s_per_worker"]))
    mid = dec[(len(dec) - 1) // 2]  # the decode-only run with the median total CPU
    e2e = sorted((r["e2e"] for r in rounds), key=lambda r: sum(r["cpu_s_per_worker"]))
    return {
        "e2e_samples_per_s": rate([r["e2e"] for r in rounds], n),
        "decode_only_samples_per_s": rate([r["decode"] for r in rounds], n),
        "shards_per_worker": mid["shards_per_worker"],
        "mb_per_worker": mid["mb_per_worker"],
        "cpu_s_per_worker": mid["cpu_s_per_worker"],
        "e2e_cpu_s_per_worker": e2e[(len(e2e) - 1) // 2]["cpu_s_per_worker"],
    }


def pair_summary(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> dict[str, float]:
    """Medians over rounds of A/B: throughput end to end and decode-only, and B's worker CPU over A's."""

    def med(ratios: Iterable[float]) -> float:
        return statistics.median(list(ratios))

    return {
        "e2e": med(rb["e2e"]["s"] / ra["e2e"]["s"] for ra, rb in zip(a, b, strict=True)),
        "decode_only": med(rb["decode"]["s"] / ra["decode"]["s"] for ra, rb in zip(a, b, strict=True)),
        "cpu_b_over_a": med(
            sum(rb["decode"]["cpu_s_per_worker"]) / sum(ra["decode"]["cpu_s_per_worker"])
            for ra, rb in zip(a, b, strict=True)
        ),
    }


def fmt(r: dict[str, float]) -> str:
    return f"{r['median']:,.0f} ({r['best']:,.0f})"


def short(v: str) -> str:
    """The variant's letter, e.g. "(a)"."""
    return VARIANTS[v][2].split()[0]


def pair_table(pairs: list[dict[str, Any]], variants: dict[str, Any]) -> list[str]:
    lines = [
        "| comparison A vs B | A end-to-end samples/s median (best) | B end-to-end | end-to-end A/B "
        "| decode-only A/B | worker CPU B/A | like-for-like |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in pairs:
        a, b = variants[p["a"]], variants[p["b"]]
        lines.append(
            f"| {short(p['a'])} vs {short(p['b'])} | {fmt(a['e2e_samples_per_s'])} | {fmt(b['e2e_samples_per_s'])} "
            f"| {p['e2e']:.2f}x | {p['decode_only']:.2f}x | {p['cpu_b_over_a']:.2f}x | {p['like_for_like']} |"
        )
    return lines


def variant_table(variants: dict[str, Any]) -> list[str]:
    lines = [
        "| variant | end-to-end samples/s median (best) | decode-only samples/s median (best) "
        "| shards opened per worker | MB read per worker | read+decode CPU s per worker "
        "| end-to-end CPU s per worker |",
        "|---|---|---|---|---|---|---|",
    ]
    for v, r in variants.items():
        label = VARIANTS[v][2] + (" (no squirrel-core counterpart)" if v in ("a_collated", "a_packed") else "")
        lines.append(
            f"| {label} | {fmt(r['e2e_samples_per_s'])} | {fmt(r['decode_only_samples_per_s'])} "
            f"| {r['shards_per_worker']} | {r['mb_per_worker']} | {r['cpu_s_per_worker']} "
            f"| {r['e2e_cpu_s_per_worker']} |"
        )
    return lines


def target_table(targets: list[dict[str, Any]]) -> list[str]:
    lines = ["| target (issue 15) | end-to-end A/B, median of per-round ratios | met |", "|---|---|---|"]
    for t in targets:
        met = "yes" if t["met"] else "**no**"
        lines.append(f"| {short(t['a'])} vs {short(t['b'])} >= {t['min']}x | {t['e2e']:.2f}x | {met} |")
    return lines


LIKE_FOR_LIKE = {
    "like_for_like": [
        "every variant reads the same store files and must deliver exactly the written samples (checksum and count)",
        "(b) vs (c): same chain, same work; (a) vs (d): same shards per worker and same output",
        "interleaved rounds, rotating order, ratios are medians of per-round ratios; squirrel-core's interpreter "
        "start-up and a warm-up run are outside its clock, squirrel_graph is warmed up by an untimed run",
        "the checksum work is the same per sample in every variant: end to end it is done by the main process inside "
        "the clock (a consumer touching every sample), decode-only after the clock and the CPU figure",
    ],
    "not_like_for_like": [
        "(a) vs (c): same user code, different work (squirrel_graph's push-down reads half the shards per worker)",
        "(a) vs (d): the user code differs (squirrel-core needs the split hand-placed in key_hooks)",
        "(a') has no squirrel-core counterpart",
        "(e) has no squirrel-core counterpart; (e) vs (a'): the same work, but (a') delivers one collated dict per "
        "batch and (e) a list of samples",
        "decompression: squirrel_graph ISA-L, squirrel-core zlib via fsspec (its venv has no isal)",
        "left out of squirrel-core's figures: the import of dask.distributed that its async_map does in every worker "
        "of every epoch (done once in the main process first; its cost is reported apart)",
    ],
}


def lazy_import_cost(runs: dict[str, list[dict[str, Any]]]) -> float | None:
    costs = [r["lazy_import_cpu_s"] for rounds in runs.values() for r in rounds if "lazy_import_cpu_s" in r]
    return statistics.median(costs) if costs else None


def report(runs: dict[str, list[dict[str, Any]]], n: int, n_shards: int, files: str) -> dict[str, Any]:
    variants = {v: variant_summary(rounds, n) for v, rounds in runs.items()}
    pairs = [
        {"a": a, "b": b, "like_for_like": like, **pair_summary(runs[a], runs[b])}
        for a, b, like in PAIRS
        if a in runs and b in runs
    ]
    by_pair = {(p["a"], p["b"]): p for p in pairs}
    targets = [
        {"a": a, "b": b, "min": low, "e2e": by_pair[a, b]["e2e"], "met": by_pair[a, b]["e2e"] >= low}
        for a, b, low in TARGETS
        if (a, b) in by_pair
    ]
    return {
        "stamp": stamp(),
        "like_for_like": LIKE_FOR_LIKE,
        "files": files,
        "num_workers": WORKERS,
        "shards": n_shards,
        "samples": n,
        "rounds": len(next(iter(runs.values()))),
        "squirrel_core_worker_import_cpu_s": lazy_import_cost(runs),
        "variants": {v: {"label": VARIANTS[v][2], **s} for v, s in variants.items()},
        "pairs": pairs,
        "targets": targets,
        "raw_runs": runs,
    }


def print_report(rep: dict[str, Any]) -> None:
    print("\n".join(pair_table(rep["pairs"], rep["variants"])))
    print()
    if rep["targets"]:
        print("\n".join(target_table(rep["targets"])))
        print()
    print("\n".join(variant_table(rep["variants"])))
    print(
        f"\n{rep['samples']} samples in {rep['shards']} shards, files: {rep['files']}; {WORKERS} workers, "
        f"{rep['rounds']} interleaved rounds; every run's checksum and count = the written data's. "
        "A/B > 1: A is faster; CPU B/A > 1: A uses less."
    )
    cost = rep["squirrel_core_worker_import_cpu_s"]
    if cost is not None:
        print(
            f"Not in the figures: squirrel-core's async_map imports dask.distributed in every DataLoader worker, every "
            f"epoch, unless the main process has imported it ({cost:.2f} s CPU per worker here); it is imported in "
            "the main process before the workers start, so the rows compare reading and decoding."
        )


def write_store(url: str, level: int | None, n_shards: int, per_shard: int) -> tuple[int, int]:
    """The store every variant reads; returns the checksum and count of the samples written."""
    from squirrel_graph import IterableSource
    from squirrel_graph.driver import MessagepackDriver

    data = storage.samples(n_shards, per_shard)
    setter = storage.store_setter(GRAPH, MessagepackDriver(url).store, level)
    IterableSource(data).batched(per_shard).map(setter).join()
    expected = storage.checksum(storage.sample_pairs(data))
    assert storage.checksum(storage.sample_pairs(storage.raw_decode(url))) == expected
    return expected


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, help="interleaved rounds (default 7; --quick: 2)")
    parser.add_argument("--quick", action="store_true", help="8 shards x 50 samples: checks the script, not speed")
    parser.add_argument(
        "--store-level", type=int, choices=range(1, 10), help="zlib level of the store (default ISA-L 1)"
    )
    parser.add_argument("--squirrel-core-python")
    parser.add_argument("--out", default=str(HERE / "results" / "torch_loader.json"))
    parser.add_argument("--impl", default=GRAPH, choices=[GRAPH, CORE], help="(internal)")
    parser.add_argument("--raw-json", action="store_true", help="(internal) one chain, JSON on the last line")
    parser.add_argument("--url", help="(internal) the store to read")
    parser.add_argument("--chain", help="(internal) item, item_pinned, item_collated, item_packed or key_hooks")
    args = parser.parse_args()
    if args.repeats is None:
        args.repeats = 2 if args.quick else 7
    return args


def main() -> None:
    args = parse_args()
    if args.raw_json:
        print(json.dumps(raw_json(args)))
        return
    n_shards, per_shard, batch = QUICK if args.quick else FULL
    level = args.store_level
    files = "ISA-L level 1 (squirrel_graph's default)" if level is None else f"zlib level {level}"
    folder = tempfile.mkdtemp(prefix="sg-bench-torch-")
    try:
        url = os.path.join(folder, "store")
        expected = write_store(url, level, n_shards, per_shard)
        runs = interleave(args, url, batch, expected)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    rep = report(runs, n_shards * per_shard, n_shards, files)
    print_report(rep)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rep, indent=2) + "\n")


if __name__ == "__main__":
    main()
