"""Module-level pieces for torch tests (importable by spawned DataLoader workers and torch.distributed ranks)."""

from __future__ import annotations

import os
from collections import Counter

import fsspec
import numpy as np
from fsspec.implementations.local import LocalFileSystem

OPEN_LOG_ENV = "SG_TEST_OPEN_LOG"


def machine_workers(wanted: int = 4) -> int:
    """``wanted`` DataLoader workers, or fewer: as many as this machine has cores for, counted the way torch's
    DataLoader counts them when it warns that a loader creates more workers than the system suggests."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(wanted, cores))


class CountingFileSystem(LocalFileSystem):
    """A real local filesystem that appends "<pid> <path>" to $SG_TEST_OPEN_LOG for every shard opened to read."""

    protocol = ("countfile",)

    @classmethod
    def _strip_protocol(cls, path):
        path = str(path)
        if path.startswith("countfile://"):
            path = path[len("countfile://") :]
        return super()._strip_protocol(path)

    def _open(self, path, mode="rb", **kwargs):
        log = os.environ.get(OPEN_LOG_ENV)
        if log and "r" in mode and str(path).endswith(".gz"):
            with open(log, "a") as f:
                f.write(f"{os.getpid()} {path}\n")
        return super()._open(path, mode, **kwargs)


fsspec.register_implementation("countfile", CountingFileSystem, clobber=True)


def opens_per_process(log_path):
    with open(log_path) as f:
        return Counter(line.split()[0] for line in f if line.strip())


def make_sample(i):
    return {"i": i, "x": np.full(2, i, dtype=np.float32)}


def write_store(url, sizes):
    """Shards of the given sizes with consecutive sample ids; returns the total."""
    from squirrel_graph.driver import MessagepackDriver

    store = MessagepackDriver(url).store
    start = 0
    for k, n in enumerate(sizes):
        store.set([make_sample(start + j) for j in range(n)], key=f"shard-{k:03d}")
        start += n
    return start


def sample_id(s):
    return s["i"]


def times_two(x):
    return x * 2
