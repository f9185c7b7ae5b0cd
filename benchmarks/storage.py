"""Store write and read throughput: squirrel_graph vs squirrel-core 0.20.2, interleaved run by run, every run's
content checked by checksum.

    python benchmarks/storage.py [--repeats 7] [--squirrel-core-python .venv-squirrel-core/bin/python]
                                 [--same-level 9] [--quick] [--out benchmarks/results/storage.json]

Data: 64 shards x 500 samples ``{"image": float32[32, 32], "label": int}`` (``--quick``: 8 x 50, 2 repeats), in a
temporary folder on local disk.

What one run times:

* write: ``IterableSource(samples).batched(500).async_map(store.set).join()`` (the documented path), from creating
  the driver to the last shard on disk. Two configurations: each library's default compression (squirrel_graph:
  ISA-L level 1; squirrel-core: zlib level 9 through ``gzip.GzipFile``; NOT like-for-like) and the same zlib level
  on both sides (``--same-level``, default 9: squirrel-core's level, so squirrel-core runs unmodified and
  squirrel_graph passes ``compresslevel=9`` to ``store.set``; for another level squirrel-core, which has no
  argument for it, gets it by re-registering fsspec's "gzip" codec; the output says which).
* read: ``list(MessagepackDriver(url).get_iter())`` with default arguments and with ``max_workers=8``, and the raw
  decode limit: one thread that reads, gunzips (ISA-L, as squirrel_graph does) and unpacks every shard. Both
  libraries and the raw loop read the same files; two stores are read, one written at ISA-L level 1
  (squirrel_graph's default) and one at zlib level 9 (squirrel-core's default level).

Interleaving: each round runs every side once (squirrel_graph in this process, squirrel-core in its own venv via one
subprocess per run whose start-up is outside the timed region, the raw loop here), rotating which goes first; a
ratio is the median over rounds of the per-round ratio. Each side's median and best are reported too.

Checksums: a run keeps every sample it read (``list``) and, after the clock stops, sums a crc32 of each sample's
label, dtype, shape and image bytes (mod 2**64, so shard order does not matter; a dropped, duplicated or corrupted
sample changes it). Every read run of every side must equal the checksum of the samples written, and every
written store is read back by the raw loop (outside the clock) and must equal it too. Results: a markdown table
(like-for-like rows first) and ``benchmarks/results/storage.json`` (with the commit/machine stamp).
"""

from __future__ import annotations

import argparse
import functools
import gzip
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from squirrel_core_run import measure_in_squirrel_core
from stamp import stamp

HERE = Path(__file__).resolve().parent
FULL, QUICK = (64, 500), (8, 50)  # shards, samples per shard
MASK = 2**64 - 1
GRAPH, CORE = "squirrel_graph", "squirrel_core"
XFL_MEANING = {2: "zlib level 9 (max)", 4: "zlib level 1 (fastest)", 0: "other level (ISA-L, or zlib 2-8)"}


# --- data and checksums --------------------------------------------------------------------------------------


def samples(n_shards: int, per_shard: int) -> list[dict[str, Any]]:
    n = n_shards * per_shard
    images = np.random.default_rng(0).standard_normal((n, 32, 32), dtype=np.float32)
    return [{"image": images[i], "label": int(i % 1000)} for i in range(n)]


def digest(label: Any, image: Any) -> int:
    """crc32 of the label, dtype, shape and bytes of one sample (numpy arrays and torch tensors alike)."""
    array = np.ascontiguousarray(image)
    head = f"{int(label)}|{array.dtype.str}|{array.shape}".encode()
    return zlib.crc32(array, zlib.crc32(head))


def checksum(pairs: Iterable[tuple[Any, Any]]) -> tuple[int, int]:
    """(sum of per-sample digests mod 2**64, number of samples) over ``(label, image)`` pairs: order-independent."""
    total = n = 0
    for label, image in pairs:
        total += digest(label, image)
        n += 1
    return total & MASK, n


def sample_pairs(items: Iterable[dict[str, Any]]) -> Iterable[tuple[Any, Any]]:
    return ((s["label"], s["image"]) for s in items)


# --- the sides: squirrel_graph / squirrel-core (same code, each in its own venv) and the raw loop -----------------


def driver_class(impl: str):
    if impl == GRAPH:
        from squirrel_graph.driver import MessagepackDriver
        from squirrel_graph.iterstream import IterableSource
    else:
        from squirrel.driver import MessagepackDriver
        from squirrel.iterstream import IterableSource
    return MessagepackDriver, IterableSource


def fsspec_gzip_codec() -> str:
    """Which gzip implementation fsspec (squirrel-core's only compressor) uses in this venv."""
    import fsspec.compression

    codec = fsspec.compression.compr["gzip"]
    return "ISA-L (isal installed)" if getattr(codec, "__name__", "") == "isal" else "zlib (gzip.GzipFile)"


def force_core_zlib_level(level: int) -> None:
    """squirrel-core 0.20.2 has no compression-level argument: its serializer writes every shard through
    ``fsspec.open(fp, compression="gzip")``, i.e. ``GzipFile(fileobj, mode)`` at zlib's default level 9. The only way
    to set a level is fsspec's public codec registry, re-registered here (in squirrel-core's process only)."""
    import fsspec.compression

    def codec(infile, mode="rb", **kwargs):
        return gzip.GzipFile(fileobj=infile, mode=mode, compresslevel=level, **kwargs)

    fsspec.compression.register_compression("gzip", codec, "gz", force=True)


def store_setter(impl: str, store: Any, level: int | None) -> Callable[[Any], Any]:
    if level is None:
        return store.set
    if impl == GRAPH:
        return functools.partial(store.set, compresslevel=level)
    if level != 9:
        force_core_zlib_level(level)
    return store.set


def timed_write(impl: str, url: str, data: list[dict[str, Any]], per_shard: int, level: int | None) -> float:
    driver, source = driver_class(impl)
    shutil.rmtree(url, ignore_errors=True)
    start = time.perf_counter()
    store = driver(url).store
    setter = store_setter(impl, store, level)
    source(data).batched(per_shard, drop_last_if_not_full=False).async_map(setter).join()
    return time.perf_counter() - start


def timed_read(impl: str, url: str, workers: int | None) -> dict[str, Any]:
    driver, _ = driver_class(impl)
    kwargs = {} if workers is None else {"max_workers": workers}
    start = time.perf_counter()
    got = list(driver(url).get_iter(**kwargs))
    seconds = time.perf_counter() - start
    total, n = checksum(sample_pairs(got))
    return {"s": seconds, "checksum": total, "n": n}


def _gunzip():
    try:
        from isal import igzip

        return igzip.decompress
    except ImportError:  # squirrel-core's venv has no isal; there the raw loop only verifies, it is not timed
        return gzip.decompress


def _unpack_hook(obj: dict[Any, Any]) -> Any:
    if b"nd" in obj:
        return np.frombuffer(obj[b"data"], dtype=np.dtype(obj[b"type"])).reshape(obj[b"shape"])
    return obj


def raw_decode(url: str) -> list[Any]:
    """The limit for one thread: read, gunzip and unpack every shard (msgpack-numpy layout) in one loop."""
    import msgpack

    gunzip, out = _gunzip(), []
    for name in sorted(n for n in os.listdir(url) if n.endswith(".gz")):
        with open(os.path.join(url, name), "rb") as f:
            payload = gunzip(f.read())
        unpacker = msgpack.Unpacker(use_list=False, object_hook=_unpack_hook, raw=False)
        unpacker.feed(payload)
        out.extend(unpacker)
    return out


def timed_raw(url: str) -> dict[str, Any]:
    start = time.perf_counter()
    got = raw_decode(url)
    seconds = time.perf_counter() - start
    total, n = checksum(sample_pairs(got))
    return {"s": seconds, "checksum": total, "n": n}


def raw_json(args: argparse.Namespace) -> list[dict[str, Any]]:
    """(squirrel-core's process) One untimed warm-up run of the case (a fresh interpreter's first run pays ~0.5 s of
    lazy imports, e.g. squirrel-core's async_map imports dask.distributed), then ``--repeats`` timed runs; the parent
    checks the checksums."""
    level = None if args.level == "default" else int(args.level)
    if args.case == "write":
        n_shards, per_shard = QUICK if args.quick else FULL
        data = samples(n_shards, per_shard)
        timed_write(args.impl, args.folder, data, per_shard, level)
        runs = [{"s": timed_write(args.impl, args.folder, data, per_shard, level)} for _ in range(args.repeats)]
        return [{**run, "codec": fsspec_gzip_codec()} for run in runs]
    workers = None if args.workers == 0 else args.workers
    timed_read(args.impl, args.folder, workers)
    return [timed_read(args.impl, args.folder, workers) for _ in range(args.repeats)]


# --- interleaved rounds ------------------------------------------------------------------------------------------


def core_run(python: str, *args: str) -> dict[str, Any]:
    """One squirrel-core run in its own venv (start-up outside the timed region, which is inside the subprocess)."""
    try:
        return measure_in_squirrel_core(python, __file__, "--repeats", "1", *args)[0]
    except subprocess.CalledProcessError as err:
        raise RuntimeError(f"squirrel-core run failed:\n{err.stderr}") from err


def interleave(
    sides: dict[str, Callable[[], dict[str, Any]]], repeats: int, expected: tuple[int, int]
) -> dict[str, list[dict[str, Any]]]:
    """An untimed warm-up run of every side in this process (squirrel-core's subprocesses warm up themselves), then
    ``repeats`` rounds; each runs every side once, the order rotated by one side per round. Every run is checked
    against the written data as soon as it returns."""
    names = list(sides)
    for name in names:
        if not name.startswith("core "):
            check(name, "warm-up", sides[name](), expected)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            runs[name].append(check(name, f"round {r + 1}", sides[name](), expected))
    return runs


def check(name: str, when: str, run: dict[str, Any], expected: tuple[int, int]) -> dict[str, Any]:
    got = (run["checksum"], run["n"])
    assert got == expected, f"{name}, {when}: checksum/count {got} != written data's {expected}"
    return run


def side_summary(runs: list[dict[str, Any]], n: int) -> dict[str, Any]:
    times = [r["s"] for r in runs]
    return {
        "median_samples_per_s": n / statistics.median(times),
        "best_samples_per_s": n / min(times),
        "times_s": times,
    }


def pair_ratio(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> dict[str, Any]:
    """Throughput of a over b in each round (the two runs of one round), and the median over rounds."""
    ratios = [rb["s"] / ra["s"] for ra, rb in zip(a, b, strict=True)]
    return {"median_ratio": statistics.median(ratios), "per_round": ratios}


# --- stores on disk ----------------------------------------------------------------------------------------------


def store_facts(url: str) -> dict[str, Any]:
    """Bytes on disk and the gzip header's XFL byte (2: zlib level 9, 4: zlib level 1, 0: anything else)."""
    names = [n for n in os.listdir(url) if n.endswith(".gz")]
    xfl = set()
    for name in names:
        with open(os.path.join(url, name), "rb") as f:
            xfl.add(f.read(10)[8])
    size = sum(os.path.getsize(os.path.join(url, n)) for n in names)
    return {"shards": len(names), "mb": size / 2**20, "gzip_xfl": sorted(xfl)}


def expect_xfl(facts: dict[str, Any], level: int | None, where: str) -> None:
    want = {1: 4, 9: 2}.get(level) if level is not None else 0  # None here: squirrel_graph's ISA-L default
    if want is not None:
        assert facts["gzip_xfl"] == [want], f"{where}: gzip XFL {facts['gzip_xfl']}, expected {want}"


# --- the benchmark -----------------------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, folder: str):
        self.args, self.folder = args, folder
        self.n_shards, self.per_shard = QUICK if args.quick else FULL
        self.n = self.n_shards * self.per_shard
        self.data = samples(self.n_shards, self.per_shard)
        self.expected = checksum(sample_pairs(self.data))
        self.core = args.squirrel_core_python
        self.quick = ["--quick"] if args.quick else []

    def graph_write(self, url: str, level: int | None) -> dict[str, Any]:
        seconds = timed_write(GRAPH, url, self.data, self.per_shard, level)
        return self.verified_write(url, {"s": seconds})

    def core_write(self, url: str, level: int | None) -> dict[str, Any]:
        lvl = "default" if level is None else str(level)
        run = core_run(self.core, "--case", "write", "--folder", url, "--level", lvl, *self.quick)
        return self.verified_write(url, run)

    def verified_write(self, url: str, run: dict[str, Any]) -> dict[str, Any]:
        """The store just written, read back by the raw loop (outside the clock), and its size and gzip header."""
        total, n = checksum(sample_pairs(raw_decode(url)))
        return {**run, "checksum": total, "n": n, "store": store_facts(url)}

    def core_read(self, url: str, workers: int) -> dict[str, Any]:
        return core_run(self.core, "--case", "read", "--folder", url, "--workers", str(workers))

    def writes(self) -> dict[str, Any]:
        level = self.args.same_level
        w = functools.partial(os.path.join, self.folder)
        sides = {
            "graph default": lambda: self.graph_write(w("w-graph-default"), None),
            f"graph zlib {level}": lambda: self.graph_write(w("w-graph-same"), level),
        }
        if self.core:
            sides["core default"] = lambda: self.core_write(w("w-core-default"), None)
            if level != 9:  # squirrel-core's default is zlib 9: at level 9 its default run is the same-level run
                sides[f"core zlib {level}"] = lambda: self.core_write(w("w-core-same"), level)
        runs = interleave(sides, self.args.repeats, self.expected)
        core_same = "core default" if level == 9 else f"core zlib {level}"
        self.check_levels(runs, level, core_same)
        return {"runs": runs, "core_same_level_side": core_same}

    def check_levels(self, runs: dict[str, list[dict[str, Any]]], level: int, core_same: str) -> None:
        expect_xfl(runs["graph default"][-1]["store"], None, "squirrel_graph default write")
        expect_xfl(runs[f"graph zlib {level}"][-1]["store"], level, f"squirrel_graph zlib {level} write")
        if self.core:
            expect_xfl(runs["core default"][-1]["store"], 9, "squirrel-core default write")
            expect_xfl(runs[core_same][-1]["store"], level, f"squirrel-core zlib {level} write")

    def write_store(self, name: str, level: int | None) -> str:
        url = os.path.join(self.folder, name)
        timed_write(GRAPH, url, self.data, self.per_shard, level)
        assert checksum(sample_pairs(raw_decode(url))) == self.expected, f"store {name} does not hold the data"
        return url

    def reads(self, url: str) -> dict[str, Any]:
        sides = {
            "graph defaults": lambda: timed_read(GRAPH, url, None),
            "graph max_workers=8": lambda: timed_read(GRAPH, url, 8),
            "raw loop": lambda: timed_raw(url),
        }
        if self.core:
            sides["core defaults"] = lambda: self.core_read(url, 0)
            sides["core max_workers=8"] = lambda: self.core_read(url, 8)
        runs = interleave(sides, self.args.repeats, self.expected)
        return {"runs": runs, "files": store_facts(url)}


# --- report ------------------------------------------------------------------------------------------------------


def fmt_side(summary: dict[str, Any]) -> str:
    return f"{summary['median_samples_per_s']:,.0f} ({summary['best_samples_per_s']:,.0f})"


def comparison(runs, n: int, pair: tuple[str, str], what: str, files: str, like: str) -> dict[str, Any]:
    a, b = pair
    return {
        "what": what,
        "files": files,
        "a": a,
        "b": b,
        "a_samples_per_s": side_summary(runs[a], n),
        "b_samples_per_s": side_summary(runs[b], n),
        "a_over_b": pair_ratio(runs[a], runs[b]),
        "like_for_like": like,
    }


def write_rows(writes: dict[str, Any], level: int, n: int, has_core: bool) -> list[dict[str, Any]]:
    runs, rows = writes["runs"], []
    g_same = f"graph zlib {level}"
    if has_core:
        how = "squirrel-core unmodified" if level == 9 else "squirrel-core via fsspec codec re-registration"
        pair = (g_same, writes["core_same_level_side"])
        rows.append(comparison(runs, n, pair, "write", f"zlib {level} both sides", f"yes ({how})"))
        like = "NO: different codec and level (each library's default)"
        rows.append(
            comparison(runs, n, ("graph default", "core default"), "write, defaults", "ISA-L 1 vs zlib 9", like)
        )
    like = "graph vs graph: what the compression level costs"
    files = f"ISA-L 1 vs zlib {level}"
    rows.append(comparison(runs, n, ("graph default", g_same), "write, default vs same level", files, like))
    return rows


def read_rows(reads: dict[str, Any], files: str, n: int, has_core: bool) -> list[dict[str, Any]]:
    runs, rows = reads["runs"], []
    for mode in ("defaults", "max_workers=8"):
        if has_core:
            like = "yes: same files, same samples; each library's own gunzip (graph ISA-L, core zlib)"
            rows.append(comparison(runs, n, (f"graph {mode}", f"core {mode}"), f"read, {mode}", files, like))
        like = "baseline: same files and gunzip (ISA-L); raw loop is 1 thread, no library"
        rows.append(comparison(runs, n, (f"graph {mode}", "raw loop"), f"read, {mode}", files, like))
    return rows


def row_rank(row: dict[str, Any]) -> int:
    """Like-for-like rows first, then baselines, then graph-only rows, then what is not like-for-like."""
    for rank, prefix in enumerate(("yes", "baseline", "graph vs graph")):
        if row["like_for_like"].startswith(prefix):
            return rank
    return 3


def markdown(rows: list[dict[str, Any]]) -> str:
    names = {"graph": "squirrel_graph", "core": "squirrel-core", "raw": "raw"}
    lines = [
        "| measurement | files (compression) | A | B | A samples/s median (best) | B samples/s median (best) "
        "| A/B, median of per-round ratios | like-for-like |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=row_rank):
        a = names[r["a"].split()[0]] + " " + " ".join(r["a"].split()[1:])
        b = names[r["b"].split()[0]] + " " + " ".join(r["b"].split()[1:])
        lines.append(
            f"| {r['what']} | {r['files']} | {a} | {b} | {fmt_side(r['a_samples_per_s'])} "
            f"| {fmt_side(r['b_samples_per_s'])} | {r['a_over_b']['median_ratio']:.2f}x | {r['like_for_like']} |"
        )
    return "\n".join(lines)


def like_for_like_note(level: int, has_core: bool) -> dict[str, list[str]]:
    return {
        "like_for_like": [
            "reads: both libraries and the raw loop read the very same files, and every run's samples are checked by "
            "checksum against the data written",
            f"write, same level: both sides write zlib level {level} gzip of the same samples (gzip header XFL "
            "asserted for levels 1 and 9; store sizes reported)",
            "interleaved rounds, rotating order; ratios are medians of per-round ratios; subprocess start-up, data "
            "generation and checksums are outside every timed region",
        ],
        "not_like_for_like": [
            "write, default vs default: squirrel_graph ISA-L level 1 vs squirrel-core zlib level 9 (each library's "
            "default), so it mixes codec/level with library speed",
            "reads decompress with each library's own gunzip: squirrel_graph ISA-L, squirrel-core zlib via fsspec "
            "(its venv has no isal)",
            "the raw loop is one thread with ISA-L: a baseline, not a library",
            "squirrel_graph's write also stores a small count file per shard; squirrel-core does not",
            "squirrel_graph runs in this process (warm after an untimed warm-up round), squirrel-core in a fresh "
            "subprocess per run after one untimed warm-up run in that subprocess",
        ]
        + ([] if has_core else ["no squirrel-core run: --squirrel-core-python not given"]),
    }


def run_all(args: argparse.Namespace, folder: str) -> dict[str, Any]:
    bench, level = Bench(args, folder), args.same_level
    writes = bench.writes()
    stores = {
        "ISA-L 1 (squirrel_graph default)": bench.write_store("r-isal1", None),
        "zlib 9 (squirrel-core default level)": bench.write_store("r-zlib9", 9),
    }
    reads = {label: bench.reads(url) for label, url in stores.items()}
    rows = write_rows(writes, level, bench.n, bool(bench.core))
    for label, r in reads.items():
        rows += read_rows(r, label, bench.n, bool(bench.core))
    core_how = (
        "default (zlib 9 via gzip.GzipFile)"
        if level == 9
        else f"fsspec.compression.register_compression('gzip', GzipFile(compresslevel={level}), force=True) in "
        "squirrel-core's process: squirrel-core 0.20.2 has no compression-level argument"
    )
    return {
        "stamp": stamp(),
        "like_for_like": like_for_like_note(level, bool(bench.core)),
        "samples": bench.n,
        "shards": bench.n_shards,
        "rounds": args.repeats,
        "expected": {"checksum": bench.expected[0], "n": bench.expected[1]},
        "compression": {
            "squirrel_graph default": "ISA-L level 1 (gzip_compress(raw, None))",
            "squirrel_graph same level": f"store.set(shard, compresslevel={level}) (zlib)",
            "squirrel-core same level": core_how,
        },
        "rows": rows,
        "written_stores": {k: v[-1]["store"] for k, v in writes["runs"].items()},
        "read_files": {k: r["files"] for k, r in reads.items()},
        "raw_runs": {"write": writes["runs"], **{f"read {k}": r["runs"] for k, r in reads.items()}},
    }


def print_report(report: dict[str, Any]) -> None:
    print(markdown(report["rows"]))
    print(f"\n{report['samples']} samples, {report['rounds']} interleaved rounds; A/B > 1: A is faster.")
    for side, how in report["compression"].items():
        print(f"- {side}: {how}")
    for name, facts in report["written_stores"].items():
        meaning = ", ".join(XFL_MEANING.get(x, str(x)) for x in facts["gzip_xfl"])
        print(f"- written by {name}: {facts['mb']:.1f} MB, gzip XFL {facts['gzip_xfl']} ({meaning})")
    for label, facts in report["read_files"].items():
        print(f"- read files {label}: {facts['mb']:.1f} MB in {facts['shards']} shards")
    e = report["expected"]
    print(f"- every run's checksum = written data's {e['checksum']:#018x} over {e['n']} samples")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, help="interleaved rounds (default 7; --quick: 2)")
    parser.add_argument("--quick", action="store_true", help="8 shards x 50 samples: checks the script, not speed")
    parser.add_argument("--same-level", type=int, default=9, choices=range(1, 10), help="zlib level for both sides")
    parser.add_argument("--squirrel-core-python")
    parser.add_argument("--out", default=str(HERE / "results" / "storage.json"))
    parser.add_argument("--impl", default=GRAPH, choices=[GRAPH, CORE], help="(internal)")
    parser.add_argument("--raw-json", action="store_true", help="(internal) one case, JSON on the last line")
    parser.add_argument("--case", choices=["write", "read"], help="(internal)")
    parser.add_argument("--folder", help="(internal) the store to write or read")
    parser.add_argument("--level", default="default", help="(internal) 'default' or a zlib level")
    parser.add_argument("--workers", type=int, default=0, help="(internal) max_workers for reads, 0: default")
    args = parser.parse_args()
    if args.repeats is None:
        args.repeats = 2 if args.quick else 7
    return args


def main() -> None:
    args = parse_args()
    if args.raw_json:
        print(json.dumps(raw_json(args)))
        return
    folder = tempfile.mkdtemp(prefix="sg-bench-")
    try:
        report = run_all(args, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print_report(report)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
