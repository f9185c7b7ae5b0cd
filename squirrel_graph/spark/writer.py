"""``write_store``: a Spark DataFrame or RDD into a squirrel store, written by the executors, exactly once.

A DataFrame reaches the Python workers as Arrow batches (``mapInArrow``): array columns become numpy arrays without
a Python object per number (the mapping: :mod:`squirrel_graph.spark.columns`). An RDD's items are pickled rows, as
Spark gives them. Each partition's task writes its shards through the commit protocol of
:mod:`squirrel_graph.spark.commit`.
"""

from __future__ import annotations

import json
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from squirrel_graph.spark.commit import MODES, Attempt, WriteJob, serializer_of
from squirrel_graph.spark.tensors import tensor_of

RESULT_SCHEMA = "partition int, attempt string, entries string"


def attempt_name(tc: Any) -> str:
    """A name no other attempt has: Spark's stage and task attempt numbers, and a random part (a duplicate that
    runs the same attempt twice, as a test does, still gets a folder of its own)."""
    if tc is None:
        return uuid.uuid4().hex[:12]
    return f"t{tc.taskAttemptId()}a{tc.attemptNumber()}-{uuid.uuid4().hex[:8]}"


class ArrowPartitionWriter:
    """The task of one DataFrame partition (``mapInArrow``): its rows as samples into one attempt's shards; yields
    one row describing the attempt."""

    def __init__(self, job: WriteJob, to_sample: Callable[[Any], Any] | None, tensors: Any = None) -> None:
        self.job, self.to_sample, self.tensors = job, to_sample, tensors

    def __call__(self, batches: Iterable[Any]) -> Iterator[Any]:
        import pyarrow as pa
        from pyspark import TaskContext

        from squirrel_graph.spark.columns import rows_of

        tc = TaskContext.get()
        samples = rows_of(batches, self.to_sample, self.tensors)
        attempt = self.job.write_partition(tc.partitionId(), samples, attempt_name(tc))
        partition, name, entries = attempt.to_row()
        yield pa.RecordBatch.from_arrays(
            [pa.array([partition], pa.int32()), pa.array([name], pa.string()), pa.array([json.dumps(entries)])],
            names=["partition", "attempt", "entries"],
        )


def row_as_dict(row: Any) -> Any:
    """The default ``to_sample`` of an RDD: a ``Row`` as ``row.asDict(recursive=True)``, anything else as it is."""
    as_dict = getattr(row, "asDict", None)
    return as_dict(recursive=True) if callable(as_dict) and isinstance(row, tuple) else row


class RDDPartitionWriter:
    """The task of one RDD partition (``mapPartitionsWithIndex``): its items as samples into one attempt's shards."""

    def __init__(self, job: WriteJob, to_sample: Callable[[Any], Any] | None) -> None:
        self.job, self.to_sample = job, to_sample or row_as_dict

    def __call__(self, index: int, items: Iterable[Any]) -> Iterator[Attempt]:
        from pyspark import TaskContext

        convert = self.to_sample
        yield self.job.write_partition(index, (convert(x) for x in items), attempt_name(TaskContext.get()))


def _kind(data: Any) -> str:
    try:
        from pyspark import RDD
        from pyspark.sql import DataFrame
    except ImportError as exc:
        raise ImportError("write_store needs pyspark: pip install 'squirrel_graph[spark]'") from exc
    if isinstance(data, DataFrame):
        return "dataframe"
    if isinstance(data, RDD):
        return "rdd"
    raise TypeError(f"write_store(data=...): expected a pyspark DataFrame or RDD, got {type(data).__name__}")


def _check(url: Any, samples_per_shard: Any, to_sample: Any, storage_options: Any, mode: Any, index: Any) -> None:
    if not isinstance(url, str) or not url:
        raise ValueError(f"write_store(url=...): expected a non-empty store URL, got {url!r}")
    if isinstance(samples_per_shard, bool) or not isinstance(samples_per_shard, int) or samples_per_shard < 1:
        raise ValueError(f"write_store(samples_per_shard=...): expected an int >= 1, got {samples_per_shard!r}")
    if to_sample is not None and not callable(to_sample):
        raise TypeError(f"write_store(to_sample=...): expected a function of a row, got {type(to_sample).__name__}")
    if storage_options is not None and not isinstance(storage_options, dict):
        raise TypeError(f"write_store(storage_options=...): expected a dict, got {type(storage_options).__name__}")
    if mode not in MODES:
        raise ValueError(f"write_store(mode=...): expected one of {list(MODES)}, got {mode!r}")
    if not isinstance(index, bool):
        raise TypeError(f"write_store(index=...): expected a bool, got {type(index).__name__}")


def tensor_columns(schema: Any, where: str) -> dict[str, Any]:
    """The tensor columns of a DataFrame schema: name -> (dtype, shape); a ValueError for one that is not binary."""
    from pyspark.sql.types import BinaryType

    out = {}
    for f in schema.fields:
        spec = tensor_of(f.metadata, f.name)
        if spec is None:
            continue
        if not isinstance(f.dataType, BinaryType):
            raise ValueError(
                f"{where}: column {f.name!r} has tensor metadata but is {f.dataType.simpleString()}, not binary"
            )
        out[f.name] = spec
    return out


def _run_dataframe(data: Any, job: WriteJob, to_sample: Callable[[Any], Any] | None) -> list[Attempt]:
    names = data.columns
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"write_store(data=...): duplicate column names {dup}; samples are dicts, rename them first")
    writer = ArrowPartitionWriter(job, to_sample, tensor_columns(data.schema, "write_store(data=...)"))
    with warnings.catch_warnings():  # pyspark warns about pandas versions even though mapInArrow does not use pandas
        warnings.filterwarnings("ignore", message=".*pandas.*", category=FutureWarning)
        rows = data.mapInArrow(writer, RESULT_SCHEMA).collect()
    return [Attempt.from_row(r["partition"], r["attempt"], json.loads(r["entries"])) for r in rows]


def write_store(
    data: Any,
    url: str,
    *,
    serializer: Any = "messagepack",
    samples_per_shard: int = 1000,
    to_sample: Callable[[Any], Any] | None = None,
    storage_options: dict[str, Any] | None = None,
    mode: str = "error",
    index: bool = True,
) -> list[str]:
    """Write ``data`` (a DataFrame or an RDD of samples) to the store at ``url`` from Spark's executors; returns the
    keys written, in key order (the rows' order: partition by partition).

    Each partition writes ``ceil(rows / samples_per_shard)`` shards in ``SquirrelStore``'s format (squirrel-core
    reads them), with count files, through a commit protocol that puts every row in the store exactly once whatever
    task attempts failed, were retried or ran twice; a failed job leaves the store as it was. ``mode`` as Spark's
    writers: ``"error"`` (``"errorifexists"``) refuses a store that holds shards, ``"append"`` adds to it,
    ``"overwrite"`` replaces the whole folder, ``"ignore"`` writes nothing if it holds shards. ``to_sample`` maps a
    ``Row`` (a DataFrame's, its array and tensor columns already numpy arrays) or an RDD item to a sample; by default
    a row becomes a dict (see :mod:`squirrel_graph.spark.columns`). ``index`` writes the store index after the
    commit. ``url`` must be reachable from the driver and every executor (a shared disk or an object store;
    ``storage_options`` go to fsspec).
    """
    _check(url, samples_per_shard, to_sample, storage_options, mode, index)
    job = WriteJob(url, serializer_of(serializer), samples_per_shard, storage_options)
    kind = _kind(data)
    if not job.prepare(mode):
        return []
    try:
        if kind == "dataframe":
            attempts = _run_dataframe(data, job, to_sample)
        else:
            attempts = data.mapPartitionsWithIndex(RDDPartitionWriter(job, to_sample)).collect()
        return job.commit(attempts, mode, index)
    except BaseException:
        job.abort()
        raise


__all__ = [
    "ArrowPartitionWriter",
    "RDDPartitionWriter",
    "attempt_name",
    "row_as_dict",
    "tensor_columns",
    "write_store",
]
