"""The one SparkSession of the Spark tests, and module-level functions their executors import by name.

The session: ``local[2,3]`` (2 cores; a failed task is tried 3 times, which local mode only does when the second
number is given), on 127.0.0.1 only, no UI. Its Python workers run this interpreter with the tests folder on their
path, so the functions below reach them by reference.
"""

from __future__ import annotations

import glob
import os
import signal
import sys
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


@pytest.fixture(scope="session", name="spark")
def spark_session():
    """A real local SparkSession shared by every Spark test (starting one takes ~15 s)."""
    pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    env = {
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
    }
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        session = (
            SparkSession.builder.master("local[2,3]")
            .appName("squirrel_graph tests")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.executorEnv.PYTHONPATH", os.pathsep.join([str(TESTS), str(ROOT)]))
            .getOrCreate()
        )
        session.sparkContext.setLogLevel("ERROR")
        try:
            yield session
        finally:
            session.stop()


# ------------------------------------------------------------------------------------------ run on executors


def sample_id(s):
    return s["i"]


def id_not_div3(t):
    return t[0] % 3 != 0


def with_task(s):
    """The sample's id and the Spark task attempt that processed it: (id, task attempt id, attempt number); no task
    outside Spark."""
    from pyspark import TaskContext

    tc = TaskContext.get()
    return (s["i"], None, None) if tc is None else (s["i"], tc.taskAttemptId(), tc.attemptNumber())


def killed_once_at_13(s, marks):
    """Kills its own Python worker (SIGKILL, as an executor crash would) at sample 13 on a task's first attempt,
    leaving a mark in the folder ``marks`` first."""
    from pyspark import TaskContext

    tc = TaskContext.get()
    if s["i"] == 13 and tc.attemptNumber() == 0:
        Path(marks, f"killed-{os.getpid()}").touch()
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(10)  # never reached
    return s["i"], tc.attemptNumber()


def fail_on_7(x):
    if x == 7:
        raise ValueError("sample 7 is bad")
    return x


class FailFirstAttempt:
    """``to_sample`` that fails partition ``partition``'s first attempt at row ``after``, once it has written shards;
    it records how many shards that attempt had staged."""

    def __init__(self, url: str, marks: str, partition: int, after: int) -> None:
        self.url, self.marks, self.partition, self.after = url, marks, partition, after
        self.seen = 0

    def __call__(self, row):
        from pyspark import TaskContext

        tc = TaskContext.get()
        if tc.partitionId() == self.partition and tc.attemptNumber() == 0:
            self.seen += 1
            if self.seen > self.after:
                staged = glob.glob(f"{self.url}/.squirrel/spark-staging/*/{self.partition:05d}-*/*.shard")
                Path(self.marks, "staged-before-failure").write_text(str(len(staged)))
                raise RuntimeError("first attempt fails after writing shards")
        return {"i": row["i"], "x": row["x"]}


def always_fails(row):
    raise RuntimeError("this job never succeeds")


class TwiceAtOnce:
    """``mapPartitionsWithIndex`` body that runs the partition writer of ``job`` for partition ``partition`` twice at
    the same time (rows in opposite orders), as a speculative duplicate would, and returns the attempt that finished
    first, as Spark keeps the first successful one; other partitions are written once."""

    def __init__(self, job, partition: int) -> None:
        self.job, self.partition = job, partition

    def __call__(self, index, items):
        import threading

        rows = list(items)
        if index != self.partition:
            yield self.job.write_partition(index, rows)
            return
        start = threading.Barrier(2)
        finished = []
        lock = threading.Lock()

        def attempt(order, name):
            start.wait()
            result = self.job.write_partition(index, order, attempt=name)
            with lock:
                finished.append(result)

        threads = [
            threading.Thread(target=attempt, args=(rows, "first")),
            threading.Thread(target=attempt, args=(rows[::-1], "duplicate")),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(finished) == 2, finished
        yield finished[0]
