"""Store read/write throughput: squirrel_graph vs squirrel-core 0.20.2 on the same files, and the raw decode limit.

    python benchmarks/storage.py [--repeats 3] [--squirrel-core-python .venv-squirrel-core/bin/python]

A store of 64 shards x 500 samples ``{"image": float32[32, 32], "label": int}`` is written to a temporary folder
on local disk. Read: ``MessagepackDriver(url).get_iter()`` with default arguments and with ``max_workers=8``,
and a single-threaded loop that gzip-decompresses and unpacks the same files (the raw decode limit). Write: the
documented path ``IterableSource(samples).batched(500).async_map(store.set).join()``. squirrel-core runs in its
own venv (a subprocess) on the same files in the same run. Results: a table, and benchmarks/results/storage.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from squirrel_core_run import measure_in_squirrel_core

N_SHARDS, PER_SHARD = 64, 500
N = N_SHARDS * PER_SHARD
HERE = Path(__file__).resolve().parent


def samples():
    rng = np.random.default_rng(0)
    images = rng.standard_normal((N, 32, 32), dtype=np.float32)
    return [{"image": images[i], "label": int(i % 1000)} for i in range(N)]


def driver_class(impl):
    if impl == "squirrel_graph":
        from squirrel_graph.driver import MessagepackDriver
        from squirrel_graph.iterstream import IterableSource
    else:
        from squirrel.driver import MessagepackDriver
        from squirrel.iterstream import IterableSource
    return MessagepackDriver, IterableSource


def best(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        n = fn()
        times.append(time.perf_counter() - start)
        assert n == N, f"expected {N} samples, got {n}"
    return {"best_s": min(times), "median_s": statistics.median(times), "samples_per_s": N / min(times)}


def write(impl, url, data):
    driver, source = driver_class(impl)
    shutil.rmtree(url, ignore_errors=True)
    store = driver(url).store
    source(data).batched(PER_SHARD, drop_last_if_not_full=False).async_map(store.set).join()
    return sum(len(b) for b in [data])


def read(impl, url, **kw):
    driver, _ = driver_class(impl)
    return sum(1 for _ in driver(url).get_iter(**kw))


def raw_decode_loop(url):
    """The limit for one thread: read, gunzip and unpack every shard (msgpack-numpy layout) in one loop."""
    import msgpack

    def hook(obj):
        if b"nd" in obj:
            return np.frombuffer(obj[b"data"], dtype=np.dtype(obj[b"type"])).reshape(obj[b"shape"])
        return obj

    count = 0
    for name in sorted(n for n in os.listdir(url) if n.endswith(".gz")):
        with open(os.path.join(url, name), "rb") as f:
            payload = gzip.decompress(f.read())
        unpacker = msgpack.Unpacker(use_list=False, object_hook=hook, raw=False)
        unpacker.feed(payload)
        for _ in unpacker:
            count += 1
    return count


def measure(impl, folder, repeats, include_raw):
    data = samples()
    url = os.path.join(folder, f"written-by-{impl}")
    out = {"impl": impl}
    out["write"] = best(lambda: (write(impl, url, data), N)[1], repeats)
    assert read(impl, url) == N
    shared = os.path.join(folder, "shared-store")  # both implementations read the same files
    out["read_default"] = best(lambda: read(impl, shared), repeats)
    out["read_8_workers"] = best(lambda: read(impl, shared, max_workers=8), repeats)
    if include_raw:
        out["raw_decode_loop"] = best(lambda: raw_decode_loop(shared), repeats)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--impl", default="squirrel_graph", choices=["squirrel_graph", "squirrel_core"])
    parser.add_argument("--folder", help="(internal) the folder holding the shared store")
    parser.add_argument("--raw-json", action="store_true")
    parser.add_argument("--squirrel-core-python")
    parser.add_argument("--out", default=str(HERE / "results" / "storage.json"))
    args = parser.parse_args()

    if args.raw_json:
        print(json.dumps(measure(args.impl, args.folder, args.repeats, include_raw=False)))
        return
    folder = tempfile.mkdtemp(prefix="sg-bench-")
    try:
        driver, source = driver_class("squirrel_graph")
        store = driver(os.path.join(folder, "shared-store")).store
        source(samples()).batched(PER_SHARD).map(store.set).join()
        rows = [measure("squirrel_graph", folder, args.repeats, include_raw=True)]
        if args.squirrel_core_python:
            rows.append(
                measure_in_squirrel_core(
                    args.squirrel_core_python, __file__, "--folder", folder, "--repeats", str(args.repeats)
                )
            )
            # squirrel-core must read what squirrel_graph wrote, sample for sample (count checked in measure)
            check = subprocess.run(
                [
                    args.squirrel_core_python,
                    "-c",
                    "import sys; from squirrel.driver import MessagepackDriver as M; "
                    "print(sum(1 for _ in M(sys.argv[1]).get_iter()))",
                    os.path.join(folder, "written-by-squirrel_graph"),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            assert int(check.stdout.strip()) == N, check.stdout
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    g = rows[0]
    raw = g["raw_decode_loop"]["samples_per_s"]
    lines = [
        "| implementation | write samples/s | read (defaults) samples/s | read (max_workers=8) samples/s |",
        "|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['impl']} | {r['write']['samples_per_s']:,.0f} | {r['read_default']['samples_per_s']:,.0f} "
            f"| {r['read_8_workers']['samples_per_s']:,.0f} |"
        )
    lines.append(f"| raw decode loop (1 thread) | | {raw:,.0f} | |")
    report = {
        "rows": rows,
        "raw_decode_samples_per_s": raw,
        "read_default_vs_raw": g["read_default"]["samples_per_s"] / raw,
        "read_8_vs_raw": g["read_8_workers"]["samples_per_s"] / raw,
    }
    if len(rows) == 2:
        s = rows[1]
        report["vs_squirrel_core"] = {
            k: g[k]["samples_per_s"] / s[k]["samples_per_s"] for k in ("write", "read_default", "read_8_workers")
        }
    print("\n".join(lines))
    print(
        f"\nread vs raw decode loop: defaults {report['read_default_vs_raw']:.2f}x, "
        f"max_workers=8 {report['read_8_vs_raw']:.2f}x"
    )
    if "vs_squirrel_core" in report:
        v = report["vs_squirrel_core"]
        print(
            f"squirrel_graph / squirrel-core 0.20.2: write {v['write']:.2f}x, read defaults {v['read_default']:.2f}x, "
            f"read max_workers=8 {v['read_8_workers']:.2f}x"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
