"""DataLoader read benchmark: split push-down vs item-level splits, squirrel_graph vs squirrel-core 0.20.2.

    python benchmarks/torch_loader.py [--repeats 2] [--squirrel-core-python .venv-squirrel-core/bin/python]

The 64 x 500 store of benchmarks/storage.py is read through ``DataLoader(num_workers=2, batch_size=None)`` over
a stream that ends in ``.batched(100)``. Per worker: shards opened and bytes read (a counting fsspec filesystem
logs every shard a process opens), CPU seconds, and end-to-end samples/s, for
(a) squirrel_graph, the user's item-level split after the fetch (optimized: pushed to the keys),
(b) squirrel_graph with the same split pinned by ``level="item"``,
(c) squirrel-core with the same item-level chain, (d) squirrel-core with ``key_hooks=[SplitByWorker]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import fsspec
from fsspec.implementations.local import LocalFileSystem

from squirrel_core_run import measure_in_squirrel_core

HERE = Path(__file__).resolve().parent
N_SHARDS, PER_SHARD, WORKERS, BATCH = 64, 500, 2, 100
N = N_SHARDS * PER_SHARD
LOG_ENV = "SG_BENCH_LOG"


class CountingFS(LocalFileSystem):
    """Local files; every shard opened for reading is logged as "open <pid> <bytes>" to $SG_BENCH_LOG."""

    protocol = ("countfile",)

    @classmethod
    def _strip_protocol(cls, path):
        path = str(path)
        return super()._strip_protocol(path[len("countfile://") :] if path.startswith("countfile://") else path)

    def _open(self, path, mode="rb", **kwargs):
        if "r" in mode and str(path).endswith(".gz") and os.environ.get(LOG_ENV):
            with open(os.environ[LOG_ENV], "a") as f:
                f.write(f"open {os.getpid()} {os.path.getsize(path)}\n")
        return super()._open(path, mode, **kwargs)


fsspec.register_implementation("countfile", CountingFS, clobber=True)


def record_cpu(it):
    """Pass items through; when the worker's stream ends, log the CPU seconds the process spent since it started
    pulling items (so interpreter and worker start-up are not counted)."""
    start = time.process_time()
    yield from it
    with open(os.environ[LOG_ENV], "a") as f:
        f.write(f"cpu {os.getpid()} {time.process_time() - start}\n")


def batch_len(batch):
    return len(batch)


def stream(impl, url, variant, decode_only=False):
    if impl == "squirrel_graph":
        from squirrel_graph.driver import MessagepackDriver
        from squirrel_graph.iterstream.torch_composables import SplitByWorker
    else:
        from squirrel.driver import MessagepackDriver
        from squirrel.iterstream.torch_composables import SplitByWorker
    url = "countfile://" + url
    if variant == "key_hooks":
        s = MessagepackDriver(url).get_iter(key_hooks=[SplitByWorker])
    elif variant == "item_pinned":
        s = MessagepackDriver(url).get_iter().split_by_worker_pytorch(level="item")
    else:
        s = MessagepackDriver(url).get_iter().split_by_worker_pytorch()
    if variant == "item_collated" and not decode_only:  # one tensor per field and batch: few IPC buffers
        from torch.utils.data import default_collate

        s = s.batched(BATCH, collation_fn=default_collate)
    else:
        s = s.batched(BATCH)
    if decode_only:  # send only each batch's length back: the worker's CPU is then its read+decode cost
        s = s.map(batch_len)
    return s.to(record_cpu).to_torch_iterable()


def run_once(impl, url, variant, log, decode_only=False):
    from torch.utils.data import DataLoader

    if os.path.exists(log):
        os.remove(log)
    os.environ[LOG_ENV] = log
    start = time.perf_counter()
    loader = DataLoader(stream(impl, url, variant, decode_only), num_workers=WORKERS, batch_size=None)
    n = sum(int(b) if decode_only else len(b["label"] if isinstance(b, dict) else b) for b in loader)
    elapsed = time.perf_counter() - start
    assert n == N, (impl, variant, n)
    opens, nbytes, cpu = defaultdict(int), defaultdict(int), {}
    for line in open(log):
        kind, pid, value = line.split()
        if kind == "open":
            opens[pid] += 1
            nbytes[pid] += int(value)
        else:
            cpu[pid] = float(value)
    return {
        "samples_per_s": N / elapsed,
        "shards_per_worker": sorted(opens.values()),
        "mb_per_worker": sorted(round(v / 2**20, 1) for v in nbytes.values()),
        "cpu_s_per_worker": sorted(round(v, 2) for v in cpu.values()),
    }


def measure(impl, url, variants, repeats):
    """Per variant: end-to-end samples/s with real batches, and shards/bytes/CPU per worker from decode-only runs."""
    log = os.path.join(tempfile.gettempdir(), f"sg-bench-{os.getpid()}.log")
    out = {}
    for variant in variants:
        e2e = [run_once(impl, url, variant, log) for _ in range(repeats)]
        dec = [run_once(impl, url, variant, log, decode_only=True) for _ in range(repeats)]
        best = min(dec, key=lambda r: sum(r["cpu_s_per_worker"]))
        out[variant] = {
            "samples_per_s": max(r["samples_per_s"] for r in e2e),
            "median_samples_per_s": statistics.median(r["samples_per_s"] for r in e2e),
            "decode_only_samples_per_s": max(r["samples_per_s"] for r in dec),
            "shards_per_worker": best["shards_per_worker"],
            "mb_per_worker": best["mb_per_worker"],
            "cpu_s_per_worker": best["cpu_s_per_worker"],
        }
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--impl", default="squirrel_graph", choices=["squirrel_graph", "squirrel_core"])
    parser.add_argument("--url", help="(internal) the store to read")
    parser.add_argument("--raw-json", action="store_true")
    parser.add_argument("--squirrel-core-python")
    parser.add_argument("--out", default=str(HERE / "results" / "torch_loader.json"))
    args = parser.parse_args()
    if args.raw_json:
        print(json.dumps(measure(args.impl, args.url, ["item", "key_hooks"], args.repeats)))
        return

    sys.path.insert(0, str(HERE))
    import storage

    folder = tempfile.mkdtemp(prefix="sg-bench-torch-")
    try:
        from squirrel_graph import IterableSource
        from squirrel_graph.driver import MessagepackDriver

        url = os.path.join(folder, "store")
        store = MessagepackDriver(url).store
        IterableSource(storage.samples()).batched(PER_SHARD).map(store.set).join()
        variants = ["item", "item_pinned", "item_collated"]
        rows = {f"squirrel_graph {k}": v for k, v in measure("squirrel_graph", url, variants, args.repeats).items()}
        if args.squirrel_core_python:
            core = measure_in_squirrel_core(
                args.squirrel_core_python, __file__, "--url", url, "--repeats", str(args.repeats)
            )
            rows.update({f"squirrel-core {k}": v for k, v in core.items()})
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    names = {
        "squirrel_graph item": "(a) squirrel_graph, item split after fetch (pushed down)",
        "squirrel_graph item_pinned": "(b) squirrel_graph, level='item' pinned",
        "squirrel_graph item_collated": "(a') as (a), batches collated in the worker (default_collate)",
        "squirrel-core item": "(c) squirrel-core, item split after fetch",
        "squirrel-core key_hooks": "(d) squirrel-core, key_hooks=[SplitByWorker]",
    }
    lines = [
        "| variant | end-to-end samples/s | decode-only samples/s | shards opened per worker "
        "| MB read per worker | read+decode CPU s per worker |",
        "|---|---|---|---|---|---|",
    ]
    for key, r in rows.items():
        lines.append(
            f"| {names[key]} | {r['samples_per_s']:,.0f} | {r['decode_only_samples_per_s']:,.0f} "
            f"| {r['shards_per_worker']} | {r['mb_per_worker']} | {r['cpu_s_per_worker']} |"
        )
    print("\n".join(lines))
    a = rows["squirrel_graph item"]
    report = {"rows": rows, "num_workers": WORKERS, "shards": N_SHARDS}
    b = rows["squirrel_graph item_pinned"]
    report["a_cpu_vs_b"] = sum(a["cpu_s_per_worker"]) / sum(b["cpu_s_per_worker"])
    msg = f"\n(a) reads {a['shards_per_worker']} of {N_SHARDS} shards per worker; "
    msg += f"CPU (a)/(b) {report['a_cpu_vs_b']:.2f}"
    if "squirrel-core item" in rows:
        report["a_vs_c"] = a["samples_per_s"] / rows["squirrel-core item"]["samples_per_s"]
        report["a_vs_d"] = a["samples_per_s"] / rows["squirrel-core key_hooks"]["samples_per_s"]
        msg += f"; end-to-end (a)/(c) {report['a_vs_c']:.2f}x, (a)/(d) {report['a_vs_d']:.2f}x"
    print(msg)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
