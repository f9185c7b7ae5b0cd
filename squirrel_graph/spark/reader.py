"""``read_store``: a squirrel store as a Spark DataFrame, each partition reading its own shard keys on an executor.

The keys are listed once, on the driver (from the store index when there is one), and cut into contiguous groups,
one per partition, so the DataFrame's rows come in the store's key order. Each task fetches its keys with a
squirrel_graph driver (the same decoding, retries of transient errors and corrupt-shard checks as a stream) and
hands the samples to Spark as Arrow batches (the mapping: :mod:`squirrel_graph.spark.columns`).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from typing import Any

from squirrel_graph.io.drivers import Driver, MapDriver, StoreDriver
from squirrel_graph.io.plugins import get_driver_class
from squirrel_graph.runtime import retry

INFER_SAMPLES = 1000  # at most this many samples of the first shards are inspected to infer the schema
BATCH_ROWS = 4096  # samples per Arrow batch handed to Spark


def make_driver(driver: Any, url: Any, driver_kwargs: dict[str, Any]) -> MapDriver:
    """The driver instance ``read_store`` reads with: from a registered name or a driver class."""
    if not isinstance(url, str) or not url:
        raise ValueError(f"read_store(url=...): expected a non-empty store URL, got {url!r}")
    if isinstance(driver, str):
        cls = get_driver_class(driver)
    elif isinstance(driver, type) and issubclass(driver, Driver):
        cls = driver
    else:
        raise TypeError(
            "read_store(driver=...): expected a driver name such as 'messagepack' or a driver class, got "
            f"{driver!r:.60}"
        )
    if not issubclass(cls, MapDriver):
        raise TypeError(f"read_store(driver=...): {cls.__name__} has no keys to read by (not a MapDriver)")
    from squirrel_graph.spark.commit import absolute_url

    return cls(absolute_url(url), **driver_kwargs)


def list_keys(drv: MapDriver) -> list[Any]:
    """Every key of the driver's store (a missing store raises FileNotFoundError)."""
    if isinstance(drv, StoreDriver):
        return list(drv.store.keys(missing_ok=False))
    return list(drv.keys())


def groups_of(keys: list[Any], parts: int) -> list[list[Any]]:
    """``keys`` cut into ``parts`` contiguous groups whose sizes differ by at most one."""
    size, extra = divmod(len(keys), parts)
    out, start = [], 0
    for p in range(parts):
        end = start + size + (1 if p < extra else 0)
        out.append(keys[start:end])
        start = end
    return out


def shard_samples(out: Any) -> list[Any]:
    """What a driver's fetch returned, as the list of samples (a non-list value is one sample)."""
    return list(out) if isinstance(out, (list, tuple)) else [out]


class ShardReader:
    """The task of one partition (``mapInArrow`` over ``range(partitions)``): the samples of its keys' shards as
    Arrow batches of the DataFrame's schema."""

    def __init__(self, driver: MapDriver, groups: list[list[Any]], schema: Any, large_types: bool) -> None:
        self.driver, self.groups, self.schema, self.large_types = driver, groups, schema, large_types

    def arrow_schema(self) -> Any:
        from pyspark.sql.pandas.types import to_arrow_schema

        if self.large_types:
            return to_arrow_schema(self.schema, prefers_large_types=True)
        return to_arrow_schema(self.schema)

    def __call__(self, batches: Iterable[Any]) -> Iterator[Any]:
        from squirrel_graph.spark.columns import samples_batch
        from squirrel_graph.spark.commit import chunks
        from squirrel_graph.spark.writer import tensor_columns

        tensors = tensor_columns(self.schema, "read_store(schema=...)")
        drv = self.driver
        label = f"read_store({drv._describe()})"
        fetch = retry.retrying(drv.fetch, drv.fetch_retries, drv.fetch_backoff, None, label) or drv.fetch
        schema = self.arrow_schema()
        for batch in batches:
            for part in batch.column(0).to_pylist():
                for key in self.groups[part]:
                    for chunk in chunks(shard_samples(fetch(key)), BATCH_ROWS):
                        yield samples_batch(chunk, schema, f"{label}: shard {key!r}", tensors)


def default_partitions(spark: Any, shards: int) -> int:
    """Three partitions per core of the session (as Spark's tuning guide advises), at most one per shard."""
    try:
        cores = int(spark.sparkContext.defaultParallelism)
    except Exception:  # Spark Connect has no SparkContext
        return shards
    return max(1, min(shards, 3 * cores))


def infer_from(drv: MapDriver, keys: list[Any]) -> Any:
    """The schema of the first samples (up to INFER_SAMPLES, from the first shards), read on the driver."""
    from squirrel_graph.spark.schema import infer_schema

    samples: list[Any] = []
    for key in keys:
        samples.extend(shard_samples(drv.fetch(key)))
        if len(samples) >= INFER_SAMPLES:
            break
    return infer_schema(samples[:INFER_SAMPLES], f"read_store({drv._describe()})")


def read_store(
    spark: Any,
    url: str,
    *,
    driver: Any = "messagepack",
    schema: Any = None,
    num_partitions: int | None = None,
    **driver_kwargs: Any,
) -> Any:
    """The samples of the store at ``url`` as a DataFrame whose partitions read disjoint, contiguous groups of shard
    keys on the executors (``num_partitions`` groups; default: three per core, at most one per shard), rows in key
    order.

    ``driver`` is a registered driver name (``"messagepack"``, ``"jsonl"``, a plugin's) or class, built as
    ``driver(url, **driver_kwargs)`` (e.g. ``storage_options={...}``). ``schema`` (a StructType or a DDL string)
    is inferred from the first samples when not given: numpy arrays become nested ``array`` columns of their element
    type (see :mod:`squirrel_graph.spark.columns`); a given schema may hold tensor columns instead
    (:func:`~squirrel_graph.spark.tensors.tensor_field`). The keys are listed now; the shards are read by each action.
    """
    if not callable(getattr(spark, "range", None)) or not callable(getattr(spark, "createDataFrame", None)):
        raise TypeError(f"read_store(spark=...): expected a SparkSession, got {type(spark).__name__}")
    drv = make_driver(driver, url, driver_kwargs)
    keys = list_keys(drv)
    if num_partitions is not None and (
        isinstance(num_partitions, bool) or not isinstance(num_partitions, int) or num_partitions < 1
    ):
        raise ValueError(f"read_store(num_partitions=...): expected an int >= 1 or None, got {num_partitions!r}")
    if schema is None:
        struct = infer_from(drv, keys)
    else:
        from squirrel_graph.spark.schema import given_schema

        struct = given_schema(spark, schema)
    from squirrel_graph.spark.writer import tensor_columns

    tensor_columns(struct, "read_store(schema=...)")  # a tensor field that is not binary fails now, not in a task
    if not keys:
        return spark.createDataFrame([], struct)
    parts = min(num_partitions or default_partitions(spark, len(keys)), len(keys))
    large = str(spark.conf.get("spark.sql.execution.arrow.useLargeVarTypes", "false")).lower() == "true"
    reader = ShardReader(drv, groups_of(keys, parts), struct, large)
    with warnings.catch_warnings():  # pyspark warns about pandas versions even though mapInArrow does not use pandas
        warnings.filterwarnings("ignore", message=".*pandas.*", category=FutureWarning)
        return spark.range(0, parts, 1, numPartitions=parts).mapInArrow(reader, struct)


__all__ = ["BATCH_ROWS", "INFER_SAMPLES", "ShardReader", "groups_of", "list_keys", "make_driver", "read_store"]
