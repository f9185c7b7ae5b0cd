"""Spark: writing a store from a DataFrame and reading it back, against squirrel_graph's single-process writer and
against Parquet.

    python benchmarks/spark.py [--quick] [--rounds 3] [--out benchmarks/results/spark.json]

Data: 100,000 samples ``{"x": float32 (32, 32), "y": int}`` (400 MB of floats; ``--quick``: 10,000 and 1 round),
standard-normal floats from a fixed seed. The source DataFrame is a Parquet dataset of 10 files (snappy), one Spark
partition per file, so a Spark job writes 10 partitions of 10,000 rows: 100 shards of 1,000 samples, as many as the
single-process writer writes. Two column layouts of ``x``, both stored as float32 (32, 32) numpy arrays
(``squirrel_graph.spark.columns``): ``nested``, ``x array<array<float>>`` (Spark's own type for it), and ``tensor``,
``x binary`` holding each array's 4,096 bytes with tensor metadata (``squirrel_graph.spark.tensors``).

Writes, in interleaved rounds (order rotated each round, after one untimed warm-up of every side):

- ``write_store`` on ``local[1]`` and on ``local[2]`` (each its own SparkSession, in its own process, kept between
  rounds; only the call is timed, not the session start): Parquet scan → Arrow batches → Python worker → numpy →
  msgpack → gzip → staged shard files → commit (renames) → store index;
- squirrel_graph's single-process writer on the same samples, already in memory as numpy arrays
  (``SquirrelStore.writer()``, one thread; and ``async_map(w.set, max_workers=2)``, two threads).

Reads, in the same rounds: a full scan of ``read_store(spark, url)`` (inferred schema: nested; given a tensor field:
tensor) and of the Parquet dataset of the same layout, each forced by a ``noop`` write (``count()`` on Parquet reads
only the footers). Where Spark's time goes, from the same sessions: ``parquet noop`` (the JVM reading the source
alone) and ``arrow to python`` (the source shipped to the Python workers as Arrow batches and dropped there: a
``mapInArrow`` that returns nothing); and, in this process, what the Python side of each job costs without Spark
(Arrow → numpy samples, msgpack, gzip; decode, samples → Arrow). Once, not interleaved: ``write_store(df.rdd)`` on
``local[2]``, the path without Arrow (rows pickled by the JVM, nested lists of Python floats turned into arrays by
``to_sample``).

Checked: every store written holds every source sample exactly once, its array float32 (32, 32) and equal to the
source's; the count and the sums of ``y`` and of ``x`` read through ``read_store`` (both layouts) and through Parquet
equal numpy's. Ratios are medians of per-round ratios. Results: a markdown table and
``benchmarks/results/spark.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from stamp import stamp  # noqa: E402

SHAPE = (32, 32)
PER_SHARD = 1000
FILES = 10
SEED = 0


def make_data(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    return rng.standard_normal((n, *SHAPE), dtype=np.float32), np.arange(n, dtype=np.int64)


def arrow_table(x: np.ndarray, y: np.ndarray) -> Any:
    import pyarrow as pa

    n = len(x)
    inner = pa.ListArray.from_arrays(pa.array(np.arange(n * SHAPE[0] + 1, dtype=np.int32) * SHAPE[1]), x.reshape(-1))
    outer = pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32) * SHAPE[0]), inner)
    return pa.table({"x": outer, "y": y})


def write_parquet(folder: Path, x: np.ndarray, y: np.ndarray, files: int, layout: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True)
    if layout == "nested":
        table = arrow_table(x, y)
    else:
        size = x[0].nbytes
        offsets = pa.py_buffer(np.arange(len(x) + 1, dtype=np.int32) * size)
        xs = pa.Array.from_buffers(pa.binary(), len(x), [None, offsets, pa.py_buffer(x.tobytes())])
        table = pa.table({"x": xs, "y": y})
    per = len(x) // files
    for f in range(files):
        pq.write_table(table.slice(f * per, per), folder / f"part-{f:03d}.parquet", compression="snappy")


# --- the Spark side: one process per master, serving commands on stdin --------------------------------------------


def spark_session(master: str, part_bytes: int) -> Any:
    from pyspark.sql import SparkSession

    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    os.environ["PYSPARK_PYTHON"] = sys.executable
    spark = (
        SparkSession.builder.master(master)
        .appName(f"squirrel_graph benchmark {master}")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", "4g")
        .config("spark.sql.files.maxPartitionBytes", str(part_bytes))
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def drop_batches(batches: Any) -> Any:
    """A mapInArrow body that receives every batch and returns nothing: the cost of shipping the data to Python."""
    for _ in batches:
        pass
    return iter(())


def checksum_batches(batches: Any) -> Any:
    """A mapInArrow body: (rows, sum of y, sum of x) of its batches, x nested lists or tensor bytes."""
    import pyarrow as pa

    n, sy, sx = 0, 0, 0.0
    for b in batches:
        col = b.column(b.schema.get_field_index("x"))
        if pa.types.is_binary(col.type):
            data = np.frombuffer(b"".join(v.as_py() for v in col), dtype=np.float32)
        else:
            data = col.flatten().flatten().to_numpy()
        n, sy, sx = (
            n + b.num_rows,
            sy + int(np.asarray(b.column(b.schema.get_field_index("y"))).sum()),
            sx + float(data.astype(np.float64).sum()),
        )
    yield pa.RecordBatch.from_pydict({"n": [n], "y": [sy], "x": [sx]})


def rdd_row_to_sample(row: Any) -> dict[str, Any]:
    return {"x": np.asarray(row.x, dtype=np.float32), "y": row.y}


def source(spark: Any, src: str, layout: str) -> Any:
    from squirrel_graph.spark import tensor_metadata

    df = spark.read.parquet(src)
    return df.withMetadata("x", tensor_metadata("float32", SHAPE)) if layout == "tensor" else df


def stored(spark: Any, url: str, layout: str) -> Any:
    from pyspark.sql.types import LongType, StructField, StructType

    from squirrel_graph.spark import read_store, tensor_field

    if layout == "nested":
        return read_store(spark, url)
    return read_store(
        spark, url, schema=StructType([tensor_field("x", "float32", SHAPE), StructField("y", LongType())])
    )


def tree_cpu_seconds() -> float:
    """CPU seconds (user + system) used so far by this process and its descendants: the JVM and its Python workers
    (workers reused between tasks live on; one that ended in between is not counted)."""
    try:
        import psutil
    except ImportError:
        return float("nan")
    total = 0.0
    me = psutil.Process()
    for p in [me, *me.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def spark_op(spark: Any, op: str, args: dict[str, Any]) -> dict[str, Any]:
    from squirrel_graph.spark import write_store

    layout = args.get("layout", "nested")
    cpu = tree_cpu_seconds()
    start = time.perf_counter()
    out: dict[str, Any] = {}
    if op == "write_store":
        keys = write_store(
            source(spark, args["src"], layout), args["url"], samples_per_shard=PER_SHARD, mode="overwrite"
        )
        out["shards"] = len(keys)
    elif op == "write_store_rdd":
        rdd = spark.read.parquet(args["src"]).rdd
        keys = write_store(rdd, args["url"], samples_per_shard=PER_SHARD, mode="overwrite", to_sample=rdd_row_to_sample)
        out["shards"] = len(keys)
    elif op == "arrow_to_python":
        spark.read.parquet(args["src"]).mapInArrow(drop_batches, "y long").write.format("noop").mode("overwrite").save()
    elif op == "parquet_noop":
        spark.read.parquet(args["src"]).write.format("noop").mode("overwrite").save()
    elif op == "read_store_noop":
        stored(spark, args["url"], layout).write.format("noop").mode("overwrite").save()
    elif op in ("checksum_store", "checksum_parquet"):
        df = stored(spark, args["url"], layout) if op == "checksum_store" else spark.read.parquet(args["src"])
        rows = df.mapInArrow(checksum_batches, "n long, y long, x double").collect()
        out.update(n=sum(r["n"] for r in rows), y=sum(r["y"] for r in rows), x=sum(r["x"] for r in rows))
    else:
        raise ValueError(op)
    out["seconds"] = time.perf_counter() - start
    out["cpu_seconds"] = tree_cpu_seconds() - cpu
    return out


def serve(master: str, part_bytes: int) -> None:
    warnings.filterwarnings("ignore", category=FutureWarning)
    spark = spark_session(master, part_bytes)
    print("@@" + json.dumps({"ready": master}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "quit":
            break
        try:
            reply = spark_op(spark, cmd["op"], cmd.get("args", {}))
        except Exception as exc:  # the orchestrator reports it
            reply = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
        print("@@" + json.dumps(reply), flush=True)
    spark.stop()


class Server:
    """A SparkSession of ``master`` in its own process (a JVM each), answering one command at a time."""

    def __init__(self, master: str, part_bytes: int, log: Path) -> None:
        self.master = master
        self.log = open(log, "w")  # noqa: SIM115 - closed in close()
        cmd = [sys.executable, __file__, "--serve", master, "--part-bytes", str(part_bytes)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True)
        self._reply()

    def _reply(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("@@"):
                return json.loads(line[2:])
        raise RuntimeError(f"the {self.master} Spark process ended; see {self.log.name}")

    def call(self, op: str, **args: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, "args": args}) + "\n")
        self.proc.stdin.flush()
        reply = self._reply()
        if "error" in reply:
            raise RuntimeError(f"{self.master} {op}: {reply['error']}")
        return reply

    def close(self) -> None:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=120)
        except Exception:
            self.proc.kill()
        self.log.close()


# --- this process: the single-process writers, the Python side without Spark, the content checks -------------------


CPU: dict[str, list[float]] = defaultdict(list)  # CPU seconds of each timed side, per round


def samples_of(x: np.ndarray, y: np.ndarray) -> list[dict[str, Any]]:
    return [{"x": x[i], "y": int(y[i])} for i in range(len(x))]


def single_write(url: str, samples: list[dict[str, Any]], threads: int) -> float:
    from squirrel_graph import IterableSource
    from squirrel_graph.io.drivers import MessagepackDriver

    shutil.rmtree(url, ignore_errors=True)
    store = MessagepackDriver(url).store
    cpu = time.process_time()
    start = time.perf_counter()
    with store.writer() as w:
        shards = (samples[i : i + PER_SHARD] for i in range(0, len(samples), PER_SHARD))
        if threads == 1:
            for shard in shards:
                w.set(shard)
        else:
            IterableSource(shards).async_map(w.set, max_workers=threads).join()
    seconds = time.perf_counter() - start
    CPU[f"single process, {threads} thread{'s' if threads > 1 else ''}"].append(time.process_time() - cpu)
    return seconds


def python_side(folder: Path, url: str) -> dict[str, float]:
    """Seconds of each Python step of a write and of a read, in this process, without Spark."""
    import pyarrow.parquet as pq
    from pyspark.sql import types as T
    from pyspark.sql.pandas.types import to_arrow_schema

    from squirrel_graph.io.drivers import MessagepackDriver
    from squirrel_graph.io.serialization import MessagepackSerializer, gzip_compress
    from squirrel_graph.spark.columns import batch_samples, samples_batch

    tensors = {"x": (np.dtype(np.float32), SHAPE)}
    out: dict[str, float] = {}
    for lay in LAYOUTS:
        files = sorted((folder / f"source-{lay}").glob("*.parquet"))
        batches = [b for f in files for b in pq.read_table(f).to_batches(max_chunksize=10_000)]
        start = time.perf_counter()
        samples = [s for b in batches for s in batch_samples(b, tensors if lay == "tensor" else None)]
        out[f"write {lay}: Arrow batches -> numpy samples"] = time.perf_counter() - start
    shards = [samples[i : i + PER_SHARD] for i in range(0, len(samples), PER_SHARD)]
    start = time.perf_counter()
    packed = [MessagepackSerializer.pack_shard(s) for s in shards]
    out["write: msgpack"] = time.perf_counter() - start
    start = time.perf_counter()
    for p in packed:
        gzip_compress(p)
    out["write: gzip (ISA-L level 1)"] = time.perf_counter() - start
    driver = MessagepackDriver(url)
    keys = list(driver.store.keys())
    start = time.perf_counter()
    decoded = [driver.fetch(k) for k in keys]
    out["read: read + gunzip + msgpack decode"] = time.perf_counter() - start
    for lay in LAYOUTS:
        x_type = T.ArrayType(T.ArrayType(T.FloatType())) if lay == "nested" else T.BinaryType()
        schema = to_arrow_schema(T.StructType([T.StructField("x", x_type), T.StructField("y", T.LongType())]))
        start = time.perf_counter()
        for shard in decoded:
            samples_batch(shard, schema, "bench", tensors if lay == "tensor" else None)
        out[f"read {lay}: numpy samples -> Arrow batches"] = time.perf_counter() - start
    return out


def check_store(url: str, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Every sample of the source exactly once in the store at ``url``, its array float32 (32, 32) and equal. (Spark
    orders a scan's partitions by file size, so a Spark store's shards need not follow the files' order.)"""
    from squirrel_graph.io.drivers import MessagepackDriver

    seen = np.zeros(len(y), dtype=np.int64)
    for s in MessagepackDriver(url).get_iter():
        assert s["x"].dtype == np.float32 and s["x"].shape == SHAPE, (s["x"].dtype, s["x"].shape)
        assert np.array_equal(s["x"], x[s["y"]]), s["y"]
        seen[s["y"]] += 1
    assert (seen == 1).all(), f"{int((seen == 0).sum())} missing, {int((seen > 1).sum())} duplicated"
    return {"samples": int(seen.sum()), "each_once_and_equal": True}


# --- rounds, report -------------------------------------------------------------------------------------------------


LAYOUTS = ("nested", "tensor")
MASTERS = ("local[1]", "local[2]")
WRITES = [f"write_store {m} {lay}" for lay in LAYOUTS for m in MASTERS] + [
    "single process, 1 thread",
    "single process, 2 threads",
]
PARTS = [f"{what} {m} {lay}" for lay in LAYOUTS for m in MASTERS for what in ("parquet noop", "arrow to python")]
READS = [f"read_store noop {m} {lay}" for lay in LAYOUTS for m in MASTERS]


def one(name: str, servers: dict[str, Server], folder: Path, samples: list[Any]) -> float:
    """Run the side called ``name`` once; its seconds (its CPU seconds go to ``CPU``)."""
    if name.startswith("single process"):
        return single_write(str(folder / "single"), samples, int(name.split(", ")[1][0]))
    *what, master, layout = name.split(" ")
    src = str(folder / f"source-{layout}")
    op = {"write_store": "write_store", "parquet noop": "parquet_noop", "arrow to python": "arrow_to_python"}.get(
        " ".join(what), "read_store_noop"
    )
    if op == "write_store":
        reply = servers[master].call(op, src=src, url=str(folder / f"spark-{master}-{layout}"), layout=layout)
        assert reply["shards"] == len(samples) // PER_SHARD, reply
    elif op == "read_store_noop":
        reply = servers[master].call(op, url=str(folder / "spark-local[2]-nested"), layout=layout)
    else:
        reply = servers[master].call(op, src=src)
    CPU[name].append(reply["cpu_seconds"])
    return reply["seconds"]


def median_ratio(runs: dict[str, list[float]], num: str, den: str) -> dict[str, Any]:
    per = [a / b for a, b in zip(runs[num], runs[den], strict=True)]
    return {"median": statistics.median(per), "per_round": per}


def markdown(report: dict[str, Any]) -> str:
    m, r = report["median_s"], report["ratios"]
    n = report["samples"]
    lines = [
        f"| {n:,} samples {{float32[32,32], int}} | median s | samples/s | time / single process (1 thread) "
        "| cores busy (CPU s / s) |",
        "|---|---|---|---|---|",
    ]
    base = m["single process, 1 thread"]
    busy = report["cores_busy_median"]
    for name in [*WRITES, *READS, *PARTS]:
        lines.append(f"| {name} | {m[name]:.2f} | {n / m[name]:,.0f} | {m[name] / base:.2f} | {busy[name]:.2f} |")
    for name, sec in report["once"].items():
        lines.append(f"| {name} (once) | {sec:.2f} | {n / sec:,.0f} | {sec / base:.2f} | - |")
    lines += ["", "| ratio (median of per-round ratios) | value |", "|---|---|"]
    lines += [f"| {k} | {v['median']:.2f} |" for k, v in r.items()]
    return "\n".join(lines)


def ratios(runs: dict[str, list[float]]) -> dict[str, Any]:
    out = {}
    for lay in LAYOUTS:
        w1, w2 = f"write_store local[1] {lay}", f"write_store local[2] {lay}"
        out[f"write {lay}: local[2] speedup over local[1]"] = median_ratio(runs, w1, w2)
        out[f"write {lay}: local[1] time / single process (1 thread)"] = median_ratio(
            runs, w1, "single process, 1 thread"
        )
        out[f"write {lay}: local[2] time / single process (2 threads)"] = median_ratio(
            runs, w2, "single process, 2 threads"
        )
        for m in MASTERS:
            out[f"read {lay} {m}: read_store time / Parquet time"] = median_ratio(
                runs, f"read_store noop {m} {lay}", f"parquet noop {m} {lay}"
            )
        out[f"read {lay}: read_store local[2] speedup over local[1]"] = median_ratio(
            runs, f"read_store noop local[1] {lay}", f"read_store noop local[2] {lay}"
        )
    out["write local[2]: nested time / tensor time"] = median_ratio(
        runs, "write_store local[2] nested", "write_store local[2] tensor"
    )
    return out


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10,000 samples, 1 round: checks the script")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3; quick 1)")
    parser.add_argument("--out", default=str(HERE / "results" / "spark.json"))
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--part-bytes", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    return args


def main() -> None:
    args = parse_args()
    if args.serve:
        serve(args.serve, args.part_bytes)
        return
    n = 10_000 if args.quick else 100_000
    started = time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix="sg-spark-bench-"))
    servers: dict[str, Server] = {}
    try:
        x, y = make_data(n)
        for lay in LAYOUTS:
            write_parquet(folder / f"source-{lay}", x, y, FILES, lay)
            write_parquet(folder / f"warm-{lay}", x[: n // FILES], y[: n // FILES], 1, lay)
        file_bytes = max(f.stat().st_size for f in folder.glob("source-*/*.parquet"))
        part_bytes = int(file_bytes * 1.2)  # one Spark partition per file
        samples = samples_of(x, y)
        for master in MASTERS:  # sessions and an untimed warm-up of every operation
            server = servers[master] = Server(master, part_bytes, folder / f"{master}.log")
            for lay in LAYOUTS:
                warm, store = str(folder / f"warm-{lay}"), str(folder / f"warm-{master}-{lay}")
                server.call("write_store", src=warm, url=store, layout=lay)
                server.call("read_store_noop", url=store, layout=lay)
                server.call("parquet_noop", src=warm)
                server.call("arrow_to_python", src=warm)
        single_write(str(folder / "single"), samples[: n // FILES], 1)
        CPU.clear()  # the warm-up is not measured
        print(f"data and sessions ready after {time.perf_counter() - started:.0f} s", flush=True)
        runs: dict[str, list[float]] = {k: [] for k in [*WRITES, *READS, *PARTS]}
        for r in range(args.rounds):
            k = r % len(WRITES)
            for name in WRITES[k:] + WRITES[:k] + READS + PARTS:  # reads need this round's local[2] nested store
                runs[name].append(one(name, servers, folder, samples))
                print(f"  round {r}: {name}: {runs[name][-1]:.2f} s", flush=True)
        rdd = servers["local[2]"].call(
            "write_store_rdd", src=str(folder / "source-nested"), url=str(folder / "spark-rdd")
        )
        once = {"write_store(df.rdd) local[2] nested, no Arrow": rdd["seconds"]}
        stores = [f"spark-{m}-{lay}" for lay in LAYOUTS for m in MASTERS] + ["single", "spark-rdd"]
        checks: dict[str, Any] = {name: check_store(str(folder / name), x, y) for name in stores}
        want = {"n": n, "y": int(y.sum()), "x": float(x.astype(np.float64).sum())}
        tolerance = 1e-6 * float(np.abs(x).sum())
        for lay in LAYOUTS:
            for op in ("checksum_store", "checksum_parquet"):
                where = {"url": str(folder / "spark-local[2]-nested"), "src": str(folder / f"source-{lay}")}
                got = servers["local[2]"].call(op, layout=lay, **where)
                assert got["n"] == want["n"] and got["y"] == want["y"], (op, lay, got, want)
                assert abs(got["x"] - want["x"]) <= tolerance, (op, lay, got, want)
                checks[f"{op} {lay}"] = {"n": got["n"], "sum_y": got["y"], "sum_x": got["x"], "numpy_sum_x": want["x"]}
        python = python_side(folder, str(folder / "single"))
    finally:
        for s in servers.values():
            s.close()
        shutil.rmtree(folder, ignore_errors=True)
    report: dict[str, Any] = {
        "stamp": stamp(),
        "quick": args.quick,
        "samples": n,
        "sample": "{'x': float32 (32, 32) standard normal, 'y': int}",
        "source": f"Parquet, {FILES} files (one Spark partition each), snappy; {PER_SHARD} samples per shard",
        "layouts": {"nested": "x array<array<float>>", "tensor": "x binary + tensor metadata float32 (32, 32)"},
        "rounds": args.rounds,
        "median_s": {k: statistics.median(v) for k, v in runs.items()},
        "runs_s": runs,
        "cpu_s": dict(CPU),
        "cores_busy_median": {k: statistics.median(c / t for c, t in zip(CPU[k], runs[k])) for k in runs},
        "once": once,
        "python_side_without_spark_s": python,
        "checks": checks,
        "ratios": ratios(runs),
    }
    report["targets"] = {
        f"write {lay}: local[2] >= 1.5x local[1]": {
            "value": (v := report["ratios"][f"write {lay}: local[2] speedup over local[1]"]["median"]),
            "met": v >= 1.5,
        }
        for lay in LAYOUTS
    }
    report["seconds"] = time.perf_counter() - started
    print(markdown(report))
    print(json.dumps({"python_side_without_spark_s": python, "targets": report["targets"]}, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
