"""Spark: write_store puts every row in the store exactly once (a first attempt that fails after writing shards, two
attempts of one partition at once), in squirrel-core's format, with Spark's write modes; read_store equals the
driver; backend="spark" equals the threaded backend, one task per key, and survives a killed Python worker.

One real local SparkSession for the whole module (``spark_helpers.spark``); the tests without ``spark`` need no JVM.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import msgpack
import numpy as np
import pytest

pytest.importorskip("pyspark")
pa = pytest.importorskip("pyarrow")

from spark_helpers import (  # noqa: E402
    FailFirstAttempt,
    TwiceAtOnce,
    always_fails,
    fail_on_7,
    id_not_div3,
    killed_once_at_13,
    sample_id,
    spark_session,  # noqa: F401  - the session fixture, named "spark"
    with_task,
)

from squirrel_graph.driver import MessagepackDriver  # noqa: E402
from squirrel_graph.errors import stage_of  # noqa: E402
from squirrel_graph.io.serialization import MessagepackSerializer  # noqa: E402
from squirrel_graph.spark import WriteJob, read_store, write_store  # noqa: E402
from squirrel_graph.spark.columns import batch_samples  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "squirrel-core-0.20.2-store" / "messagepack"
WIDENED = {"float16": "float32", "uint8": "int16", "uint16": "int32", "uint32": "int64", "uint64": "int64"}


def frame(spark, n, partitions, start=0):
    """A DataFrame of ``n`` rows ``(i, x)``, ``x`` a 4x4 float array as nested lists, in ``partitions`` contiguous
    partitions (row order = id order)."""
    rows = [(i, (np.arange(16, dtype=np.float32).reshape(4, 4) + i).tolist()) for i in range(start, start + n)]
    return spark.createDataFrame(spark.sparkContext.parallelize(rows, partitions), "i long, x array<array<float>>")


def staging(url):
    return Path(url, ".squirrel", "spark-staging")


def ids_of(url):
    return [s["i"] for s in MessagepackDriver(str(url)).get_iter().collect()]


def same(got, want, path="sample"):
    """``got`` (through Spark and back) equals ``want`` (as the driver reads it), arrays widened as documented."""
    if isinstance(want, np.ndarray):
        assert isinstance(got, np.ndarray), f"{path}: {type(got)}"
        assert str(got.dtype) == WIDENED.get(str(want.dtype), str(want.dtype)) and got.shape == want.shape, path
        np.testing.assert_array_equal(got, want, err_msg=path)
    elif isinstance(want, dict):
        assert isinstance(got, dict) and list(got) == list(want), f"{path}: {got!r:.80}"
        for k in want:
            same(got[k], want[k], f"{path}[{k!r}]")
    elif isinstance(want, (list, tuple)):
        assert isinstance(got, (list, np.ndarray)) and len(got) == len(want), f"{path}: {got!r:.80}"
        for i, (a, b) in enumerate(zip(got, want)):
            same(a, b, f"{path}[{i}]")
    else:
        assert got == want and type(got) is type(want), f"{path}: {got!r} != {want!r}"


def spark_samples(df):
    """A DataFrame's rows as samples, through Arrow and the documented column mapping (write direction)."""
    return [s for batch in df.toArrow().to_batches() for s in batch_samples(batch)]


# ------------------------------------------------------------------------------------------------ write_store


def test_write_store_writes_squirrel_cores_format_partition_by_partition(spark, tmp_path):
    url = str(tmp_path / "store")
    keys = write_store(frame(spark, 64, 4), url, samples_per_shard=5)  # 4 partitions of 16 rows
    store = MessagepackDriver(url).store
    assert keys == sorted(keys) and len(keys) == 16  # ceil(16 / 5) shards per partition, as SquirrelStore writes
    assert [store.count(k) for k in keys] == [5, 5, 5, 1] * 4
    assert sorted(os.listdir(url)) == [".squirrel", *sorted(f"{k}.gz" for k in keys)]
    assert sorted(os.listdir(Path(url, ".squirrel", "counts"))) == keys and not staging(url).exists()
    assert store.read_index().keys == keys  # written after the commit
    samples = MessagepackDriver(url).get_iter().collect()
    assert [s["i"] for s in samples] == list(range(64))  # key order is row order
    for s in samples:
        assert s["x"].dtype == np.float32 and s["x"].shape == (4, 4)
        np.testing.assert_array_equal(s["x"], np.arange(16, dtype=np.float32).reshape(4, 4) + s["i"])
    # squirrel-core's bytes, read without squirrel_graph: gzip of back-to-back msgpack, msgpack-numpy's array maps
    raw = gzip.decompress(Path(url, f"{keys[1]}.gz").read_bytes())
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(raw)
    plain = list(unpacker)
    assert [p["i"] for p in plain] == [5, 6, 7, 8, 9]
    header = {b"nd": True, b"type": "<f4", b"kind": b"", b"shape": [4, 4], b"data": samples[5]["x"].tobytes()}
    assert plain[0]["x"] == header
    assert MessagepackSerializer.pack_shard(MessagepackSerializer.unpack_shard(raw)) == raw


def test_a_first_attempt_failing_after_writing_shards_leaves_every_row_once(spark, tmp_path):
    url, marks = str(tmp_path / "store"), tmp_path / "marks"
    marks.mkdir()
    fails = FailFirstAttempt(url, str(marks), partition=1, after=12)  # partition 1's rows 20..39
    keys = write_store(frame(spark, 40, 2), url, samples_per_shard=5, to_sample=fails)
    assert (marks / "staged-before-failure").read_text() == "2"  # the failed attempt had staged 2 shards
    assert Counter(ids_of(url)) == Counter(range(40)) and len(keys) == 8
    assert not staging(url).exists()


def test_two_attempts_of_one_partition_at_once_leave_every_row_once(spark, tmp_path):
    url = str(tmp_path / "store")
    job = WriteJob(url, MessagepackSerializer(), samples_per_shard=4)
    assert job.prepare("error")
    rdd = spark.sparkContext.parallelize([{"i": i} for i in range(30)], 3)
    attempts = rdd.mapPartitionsWithIndex(TwiceAtOnce(job, partition=1)).collect()
    staged = sorted(p.name for p in Path(job.staging).iterdir())
    assert len(attempts) == 3 and [s.split("-")[0] for s in staged] == ["00000", "00001", "00001", "00002"]
    keys = job.commit(attempts, "error")
    assert Counter(ids_of(url)) == Counter(range(30)) and len(keys) == 9
    assert not staging(url).exists()
    winner = next(a for a in attempts if a.partition == 1).name
    assert winner.endswith(("first", "duplicate"))
    in_order = sorted(range(10, 20), reverse=winner.endswith("duplicate"))
    assert ids_of(url)[10:20] == in_order  # partition 1 in the chosen attempt's own row order


def test_write_modes_and_a_failed_job_that_changes_nothing(spark, tmp_path):
    url = str(tmp_path / "store")
    first = write_store(frame(spark, 10, 2), url, samples_per_shard=5)
    with pytest.raises(FileExistsError, match=r"mode='error'.*already holds shards.*mode='append'"):
        write_store(frame(spark, 2, 1), url)
    assert write_store(frame(spark, 2, 1), url, mode="ignore") == []
    added = write_store(frame(spark, 10, 2, start=100), url, samples_per_shard=5, mode="append")
    assert set(first).isdisjoint(added) and ids_of(url) == [*range(10), *range(100, 110)]
    index = Path(url, ".squirrel", "index.json.gzip")
    assert MessagepackDriver(url).store.read_index().keys == first + added
    leftover = staging(url) / "20000101T000000-OLDJOB" / "00000-t1a0-x"  # an attempt that outlived its job
    leftover.mkdir(parents=True)
    (leftover / "k.shard").write_bytes(b"x")
    before = (sorted(os.listdir(url)), index.read_bytes())
    with pytest.raises(Exception, match="this job never succeeds"):
        write_store(frame(spark, 4, 1, start=900), url, mode="overwrite", to_sample=always_fails)
    assert (sorted(os.listdir(url)), index.read_bytes()) == before
    assert [p.name for p in staging(url).iterdir()] == ["20000101T000000-OLDJOB"]  # the failed job's files are gone
    replaced = write_store(frame(spark, 6, 1, start=500), url, samples_per_shard=5, mode="overwrite")
    assert ids_of(url) == list(range(500, 506)) and len(replaced) == 2
    assert sorted(os.listdir(Path(url, ".squirrel", "counts"))) == replaced
    assert not staging(url).exists()  # overwrite removed the leftover too


def test_an_rdd_of_rows_or_samples_and_the_jsonl_serializer(spark, tmp_path):
    from pyspark.sql import Row

    url = str(tmp_path / "store")
    rdd = spark.sparkContext.parallelize([Row(i=i, tags=["a", str(i)]) for i in range(8)], 2)
    keys = write_store(rdd, url, serializer="jsonl", samples_per_shard=3)
    from squirrel_graph.driver import JsonlDriver

    assert len(keys) == 4
    assert JsonlDriver(url).get_iter().collect() == [{"i": i, "tags": ["a", str(i)]} for i in range(8)]


# ------------------------------------------------------------------------------------------------ read_store


def mixed_sample(i):
    return {
        "i": i,
        "x": np.arange(6, dtype=np.float32).reshape(3, 2) * i,
        "mask": np.array([i % 2 == 0, True, False]),
        "u8": np.array([i, 255], dtype=np.uint8),
        "half": np.array([0.5, i], dtype=np.float16),
        "s": f"s{i}",
        "raw": bytes([i, 0]),
        "tags": ["a", "b"],
        "nested": {"k": i, "v": np.array([1.5, -i], dtype=np.float64)},
    }


def test_read_store_equals_the_driver_on_a_squirrel_store_and_on_squirrel_cores_store(spark, tmp_path):
    from pyspark.sql.functions import spark_partition_id
    from pyspark.sql.types import LongType, StructField, StructType

    from squirrel_graph.spark import tensor_field, tensor_metadata

    url = str(tmp_path / "store")
    store = MessagepackDriver(url).store
    for k in range(5):
        store.set([mixed_sample(k * 4 + j) for j in range(4)], key=f"shard-{k}")
    df = read_store(spark, url, num_partitions=2)
    assert df.schema.simpleString() == (
        "struct<i:bigint,x:array<array<float>>,mask:array<boolean>,u8:array<smallint>,half:array<float>,s:string,"
        "raw:binary,tags:array<string>,nested:struct<k:bigint,v:array<double>>>"
    )
    driver_samples = MessagepackDriver(url).get_iter().collect()
    with_partition = spark_samples(df.withColumn("p", spark_partition_id()))
    parts = [s.pop("p") for s in with_partition]
    assert parts == [0] * 12 + [1] * 8  # disjoint, contiguous key groups: shards 0-2, then 3-4
    for i, (got, want) in enumerate(zip(with_partition, driver_samples, strict=True)):
        same(got, want, f"sample {i}")
    only = read_store(spark, url, schema="i long, x array<array<float>>")
    assert [r.i for r in only.collect()] == list(range(20)) and only.columns == ["i", "x"]
    # a tensor column: each array's bytes, and back to arrays when written
    schema = StructType([StructField("i", LongType()), tensor_field("x", "float32", (3, 2))])
    tensors = read_store(spark, url, schema=schema, num_partitions=2)
    assert tensors.schema["x"].metadata == tensor_metadata("float32", (3, 2))
    keys = write_store(tensors, str(tmp_path / "again"), samples_per_shard=7)
    again = MessagepackDriver(str(tmp_path / "again")).get_iter().collect()
    assert len(keys) == 4 and [s["i"] for s in again] == list(range(20))
    for got, want in zip(again, driver_samples):
        same(got, {"i": want["i"], "x": want["x"]})
    core = spark_samples(read_store(spark, str(FIXTURE)))
    for i, (got, want) in enumerate(zip(core, MessagepackDriver(str(FIXTURE)).get_iter().collect(), strict=True)):
        same(got, want, f"squirrel-core sample {i}")
    assert len(core) == 40


# ------------------------------------------------------------------------------------------------ backend="spark"


def write_ids(url, shards, per):
    store = MessagepackDriver(url).store
    for k in range(shards):
        store.set([{"i": k * per + j} for j in range(per)], key=f"shard-{k:03d}")


def test_backend_spark_yields_what_threaded_yields_with_one_task_per_key(spark, tmp_path):
    url = str(tmp_path / "store")
    write_ids(url, 6, 5)
    local = MessagepackDriver(url).get_iter().map(with_task).filter(id_not_div3).batched(4)
    remote = local.compile(backend="spark", spark=spark)
    got, want = remote.collect(), local.collect()
    assert [[t[0] for t in b] for b in got] == [[t[0] for t in b] for b in want]
    assert all(t[1] is None for b in want for t in b)  # threaded: no Spark task
    tasks = {}
    for i, task, _ in (t for b in got for t in b):
        tasks.setdefault(i // 5, set()).add(task)
    assert len(tasks) == 6 and all(len(t) == 1 for t in tasks.values())  # one task per shard key
    assert len(set().union(*tasks.values())) == 6
    text = str(remote.explain())
    assert "[spark] spark per key[fetch(" in text and "one Spark task per shard key" in text
    assert "batched(4)" in text.split("[spark] spark per key")[1]  # batching stays local


def test_a_killed_python_worker_is_retried_without_loss_or_duplicates(spark, tmp_path):
    url, marks = str(tmp_path / "store"), tmp_path / "marks"
    marks.mkdir()
    write_ids(url, 4, 5)
    stream = MessagepackDriver(url).get_iter().map(killed_once_at_13, marks=str(marks))
    got = stream.compile(backend="spark", spark=spark).collect()
    assert len(list(marks.iterdir())) == 1  # the worker was killed once
    assert [i for i, _ in got] == list(range(20))  # in order, each once
    assert [a for i, a in got if 10 <= i < 15] == [1] * 5 and all(a == 0 for i, a in got if not 10 <= i < 15)


def test_an_error_on_an_executor_surfaces_as_itself_and_early_stops_cancel_jobs(spark, tmp_path):
    from squirrel_graph.backends.spark.jobs import RemoteTraceback

    url = str(tmp_path / "store")
    write_ids(url, 4, 5)
    stream = MessagepackDriver(url).get_iter(prefetch_buffer=1).map(sample_id).map(fail_on_7)
    stream = stream.compile(backend="spark", spark=spark)
    got = []
    with pytest.raises(ValueError, match="sample 7 is bad") as info:
        for x in stream:
            got.append(x)
    assert got == [0, 1, 2, 3, 4]  # the shard before
    assert stage_of(info.value) == "map(fail_on_7)"  # named on the executor, inside the per-key loop
    assert isinstance(info.value.__cause__, RemoteTraceback) and "fail_on_7" in str(info.value.__cause__)
    tracker = spark.sparkContext.statusTracker()
    it = iter(MessagepackDriver(url).get_iter(prefetch_buffer=4).compile(backend="spark", spark=spark))
    assert next(it)["i"] == 0
    it.close()
    deadline = time.monotonic() + 20
    while tracker.getActiveJobsIds() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not tracker.getActiveJobsIds()


# ------------------------------------------------------------------------------------------------ docs/spark.md


def docs_block(name):
    """The part of ``docs/examples/{name}.py`` shown on the page (between its markers)."""
    text = (ROOT / "docs" / "examples" / f"{name}.py").read_text()
    return text.split("# docs: begin\n", 1)[1].split("# docs: end\n", 1)[0]


def test_the_blocks_of_docs_spark_md_run_in_order_on_the_session(spark, tmp_path, monkeypatch):
    page = (ROOT / "docs" / "spark.md").read_text()
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "spark_docs_page"}  # not importable: cloudpickle ships its functions by value
    for name in ("spark_session", "spark_write", "spark_tensors", "spark_read", "spark_dataloader", "spark_whole_plan"):
        code = docs_block(name)
        assert f"```python\n{code}```" in page, f"docs/examples/{name}.py is not a block of docs/spark.md"
        exec(compile(code, f"docs/examples/{name}.py", "exec"), namespace)
    assert namespace["spark"] is spark  # getOrCreate() found the test session
    assert len(namespace["keys"]) == len(namespace["tensor_keys"]) == 4
    assert namespace["ids"] == list(range(64)) and namespace["loss"].item() >= 0


# ------------------------------------------------------------------------------------------------ without a JVM


def test_bad_arguments_name_the_argument(tmp_path):
    with pytest.raises(TypeError, match=r"write_store\(data=...\): expected a pyspark DataFrame or RDD, got list"):
        write_store([1, 2], str(tmp_path))
    with pytest.raises(ValueError, match=r"write_store\(samples_per_shard=...\)"):
        write_store(None, str(tmp_path), samples_per_shard=0)
    with pytest.raises(ValueError, match=r"write_store\(mode=...\).*'append'"):
        write_store(None, str(tmp_path), mode="replace")
    with pytest.raises(ValueError, match=r"write_store\(serializer=...\): unknown serializer 'json'"):
        write_store(None, str(tmp_path), serializer="json")
    with pytest.raises(TypeError, match=r"write_store\(to_sample=...\)"):
        write_store(None, str(tmp_path), to_sample=3)
    with pytest.raises(ValueError, match=r"write_store\(url=...\)"):
        write_store(None, "")
    with pytest.raises(TypeError, match=r"read_store\(spark=...\): expected a SparkSession"):
        read_store("local", str(tmp_path))
    with pytest.raises(TypeError, match=r"compile\(spark=...\): expected a pyspark.sql.SparkSession"):
        MessagepackDriver(str(tmp_path)).get_iter().compile(backend="spark", spark="local[2]")
    with pytest.raises(ValueError, match=r"compile\(spark=...\): backend 'threaded' takes no option 'spark'.*'spark'"):
        MessagepackDriver(str(tmp_path)).get_iter().compile(spark="local[2]")


def test_bad_read_store_arguments_name_the_argument(spark, tmp_path):
    url = str(tmp_path / "store")
    write_ids(url, 1, 2)
    with pytest.raises(ValueError, match=r"driver 'nope' not found"):
        read_store(spark, url, driver="nope")
    with pytest.raises(TypeError, match=r"read_store\(driver=...\)"):
        read_store(spark, url, driver=3)
    with pytest.raises(ValueError, match=r"read_store\(num_partitions=...\)"):
        read_store(spark, url, num_partitions=0)
    with pytest.raises(ValueError, match=r"read_store\(schema=...\): cannot parse"):
        read_store(spark, url, schema="i lonng,,")
    with pytest.raises(FileNotFoundError):
        read_store(spark, str(tmp_path / "missing"))


def test_column_mapping_without_spark():
    from squirrel_graph.spark.columns import array_values, samples_batch, to_arrow

    nested = pa.array([[[1, 2], [3, 4]], [[5, 6], [7, 8]]], pa.list_(pa.list_(pa.int16())))
    got = array_values(nested)
    assert [a.dtype for a in got] == [np.int16] * 2 and got[1].tolist() == [[5, 6], [7, 8]]
    got[0][0, 0] = 9  # the samples own writable memory
    ragged = array_values(pa.array([[1.0, 2.0], None, [3.0, None], [4.0]], pa.list_(pa.float32())))
    assert ragged[0].dtype == np.float32 and ragged[1] is None and ragged[2] == [3.0, None] and ragged[3].shape == (1,)
    arrays = [np.full((2, 3), i, dtype=np.float16) for i in range(3)]
    col = to_arrow(arrays, pa.list_(pa.list_(pa.float32())), "x")
    assert col.to_pylist()[2] == [[2.0] * 3] * 2 and col.type == pa.list_(pa.list_(pa.float32()))
    with pytest.raises(ValueError, match=r"field 'n': cannot convert str 'x'"):
        to_arrow(["x"], pa.int64(), "n")
    with pytest.raises(ValueError, match=r"shard 'k0': field 'big'"):
        big = [{"big": np.array([2**63], dtype=np.uint64)}]
        samples_batch(big, pa.schema([("big", pa.list_(pa.int64()))]), "shard 'k0'")


def test_tensor_columns_without_spark():
    from squirrel_graph.spark.columns import batch_samples, tensor_column
    from squirrel_graph.spark.tensors import tensor_metadata, tensor_of

    arrays = [np.arange(6, dtype=np.float16).reshape(2, 3) + i for i in range(3)]
    col = tensor_column(arrays, pa.binary(), np.dtype(np.float32), (2, 3))  # float16 widens without loss
    batch = pa.RecordBatch.from_arrays([col.slice(1)], names=["t"])
    got = batch_samples(batch, {"t": (np.dtype(np.float32), (2, 3))})
    assert [s["t"].dtype for s in got] == [np.float32] * 2 and got[1]["t"].tolist() == arrays[2].tolist()
    got[0]["t"][0, 0] = 7  # writable
    with pytest.raises(ValueError, match=r"is not a float16 array"):
        tensor_column([np.zeros((2, 3))], pa.binary(), np.dtype(np.float16), (2, 3))  # float64 -> float16 loses
    odd = pa.RecordBatch.from_arrays([pa.array([b"1234", b"12"], pa.binary())], names=["t"])
    with pytest.raises(ValueError, match=r"column 't': a value of 2 bytes is not a int32 array of shape \(1,\)"):
        batch_samples(odd, {"t": (np.dtype(np.int32), (1,))})
    assert tensor_of(tensor_metadata("float32", (32, 32))) == (np.dtype(np.float32), (32, 32))
    with pytest.raises(ValueError, match=r"tensor_metadata\(dtype=...\)"):
        tensor_metadata(object, (1,))


def test_schema_inference_names_the_field_it_cannot_map():
    from squirrel_graph.spark.schema import infer_schema

    with pytest.raises(TypeError, match=r"\['z'\]: numpy dtype complex64 has no Spark column type"):
        infer_schema([{"z": np.zeros(2, np.complex64)}], "read_store(X)")
    with pytest.raises(TypeError, match=r"\['a'\] holds both bigint and string"):
        infer_schema([{"a": 1}, {"a": "x"}], "read_store(X)")
    assert infer_schema([{"a": None, "b": 1}, {"b": 2.5}], "r").simpleString() == "struct<a:string,b:double>"
    assert infer_schema([np.zeros((2, 2), np.int32)], "r").simpleString() == "struct<value:array<array<int>>>"


def test_commit_protocol_in_one_process(tmp_path):
    """Two attempts of partition 0 at once (threads), a failed attempt, an abort: what the driver commits is exact."""
    url = str(tmp_path / "store")
    job = WriteJob(url, MessagepackSerializer(), samples_per_shard=3)
    assert job.prepare("error")
    results = {}

    def run(name, rows):
        results[name] = job.write_partition(0, rows, attempt=name)

    threads = [threading.Thread(target=run, args=(n, r)) for n, r in (("a", range(7)), ("b", range(6, -1, -1)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with pytest.raises(ZeroDivisionError):  # after staging a shard of 3
        job.write_partition(1, ({"i": 10 + i} if i < 4 else 1 // 0 for i in range(5)), attempt="dies")
    assert len(list(Path(job.staging).glob("00001-dies/*.shard"))) == 1
    late = job.write_partition(1, [{"i": 10}, {"i": 11}], attempt="retry")
    assert list(MessagepackDriver(url).store.keys()) == []  # nothing visible before the commit
    keys = job.commit([results["b"], late], "error")
    assert MessagepackDriver(url).get_iter().collect() == [6, 5, 4, 3, 2, 1, 0, {"i": 10}, {"i": 11}]
    assert len(keys) == 4 and not staging(url).exists()
    other = WriteJob(url, MessagepackSerializer(), samples_per_shard=3)
    with pytest.raises(FileExistsError):
        other.prepare("error")
    other.write_partition(0, [1])
    other.abort()
    assert not staging(url).exists() and len(list(MessagepackDriver(url).store.keys())) == 4


def test_the_core_imports_neither_pyspark_nor_pyarrow(tmp_path):
    code = (
        "import sys\n"
        "import squirrel_graph.spark, squirrel_graph.backends.spark\n"
        "from squirrel_graph import IterableSource\n"
        "assert IterableSource(range(3)).map(str).compile().collect() == ['0', '1', '2']\n"
        "print('LOADED', [m for m in ('pyspark', 'pyarrow', 'py4j') if m in sys.modules])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "LOADED []" in proc.stdout
