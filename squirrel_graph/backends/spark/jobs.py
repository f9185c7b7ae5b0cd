"""Per-key tasks on Spark: one Spark job of one task per shard key, submitted from an ordered, bounded pool.

Each key becomes ``sc.parallelize([key], 1).mapPartitions(task).collect()``, run from a pool thread; at most
``buffer`` (the driver's ``prefetch_buffer``) jobs are in flight and their results are yielded in key order, as the
threaded and dask backends do. Spark retries a task whose executor or Python worker died (up to
``spark.task.maxFailures`` attempts); an exception raised by the per-key stages comes back as a value and is raised
in the consuming process as itself, with the executor's traceback as its cause, instead of being retried.
Stopping early (``break``, an error, ``close()``) cancels the run's jobs still in flight (one job group per run).
"""

from __future__ import annotations

import os
import pickle
import traceback
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from squirrel_graph.graph import PerKey
from squirrel_graph.runtime import ops
from squirrel_graph.runtime.context import Opener, RunContext, Runner
from squirrel_graph.runtime.per_key import PerKeyTask


class RemoteTraceback(Exception):
    """The traceback of an exception raised on a Spark executor (the cause of the exception raised here)."""

    def __str__(self) -> str:
        return f"\n\nOn the Spark executor:\n{self.args[0]}"


def portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling (it travels back from the executor), else a RuntimeError with its text."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


class RemoteTask:
    """Runs on an executor: the shared per-key task body over the keys of its partition; yields
    ``("ok", items, skipped)`` or ``("error", exception, traceback text)``. It runs in the driver's working directory
    when the executor has that folder (local mode, a shared mount), so that relative store paths mean the same."""

    def __init__(self, task: PerKeyTask) -> None:
        self.task = task
        self.cwd = os.getcwd()

    def __call__(self, keys: Iterable[Any]) -> Iterator[tuple[Any, ...]]:
        here = os.getcwd()
        move = here != self.cwd and os.path.isdir(self.cwd)
        try:
            if move:
                os.chdir(self.cwd)
            items, skipped = self.task(list(keys))
        except Exception as exc:
            yield ("error", portable(exc), traceback.format_exc())
            return
        finally:
            if move:
                os.chdir(here)
        yield ("ok", items, skipped)


class KeyJob:
    """Called in a pool thread for one key: runs its Spark job and returns ``(items, skipped)``."""

    def __init__(self, sc: Any, remote: RemoteTask, group: str, label: str) -> None:
        self.sc, self.remote, self.group, self.label = sc, remote, group, label

    def __call__(self, key: Any) -> tuple[list[Any], list[tuple[Any, str]]]:
        sc = self.sc
        sc.setJobGroup(self.group, f"squirrel_graph {self.label}: key {key!r:.80}", interruptOnCancel=True)
        (result,) = sc.parallelize([key], 1).mapPartitions(self.remote).collect()
        if result[0] == "error":
            raise result[1] from RemoteTraceback(result[2])
        return result[1], result[2]


def spark_context(spark: Any) -> Any:
    """The SparkContext of ``spark``, or of the active session when None (a RuntimeError when there is none)."""
    if spark is None:
        from pyspark.sql import SparkSession

        spark = SparkSession.getActiveSession()
        if spark is None:
            raise RuntimeError(
                "compile(backend='spark'): no active SparkSession in this thread; create one first or pass "
                "compile(backend='spark', spark=session)"
            )
    return spark.sparkContext


def _results(
    results: Iterator[tuple[list[Any], list[tuple[Any, str]]]], sc: Any, group: str, state: ops.FetchState
) -> Iterator[Any]:
    done = False
    try:
        for items, skipped in results:
            state.skipped.extend(skipped)
            yield from items
        done = True
    finally:
        if not done:
            sc.cancelJobGroup(group)  # jobs still in flight fail fast; the pool then stops
        results.close()


def per_key_runner(nid: str, node: PerKey, spark: Any) -> Runner:
    """The runner of a ``PerKey`` node for the spark engine (see the module docstring)."""
    label = node.label()
    remote = RemoteTask(PerKeyTask(node))

    def run(inputs: Sequence[Opener], ctx: RunContext) -> Iterator[Any]:
        sc = spark_context(spark)
        group = f"squirrel_graph-{uuid.uuid4().hex[:12]}"
        buffer = max(1, node.fetch.buffer)
        job = KeyJob(sc, remote, group, label)
        results = ops.async_map_(inputs[0], job, buffer, buffer, None, label, nid)
        state = ctx.state.setdefault(node.node_ids[0], ops.FetchState())
        return ctx.owns(_results(results, sc, group, state))

    return run


__all__ = ["KeyJob", "RemoteTask", "RemoteTraceback", "per_key_runner", "portable", "spark_context"]
