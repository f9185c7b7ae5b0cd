"""Real fsspec filesystems that count the requests made through them: ``reqfile://`` (local disk),
``reqmemory://`` (fsspec's memory filesystem) and the ``reqs3`` protocol (s3fs, for the moto server).

Every public call of ls/info/exists/isdir/isfile/size/open/cat_file/cat/pipe_file/rm_file/rm/find/makedirs is logged
as ``(pid, operation, path, ranged)``; a call made inside another counted call (``size`` asking ``info``) is not
counted again. The log is shared by every instance of a class in this process; DataLoader workers and other
processes append to a file when ``$SG_COUNT_LOG`` is set.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.memory import MemoryFileSystem

LOG_ENV = "SG_COUNT_LOG"
OPERATIONS = (
    "ls",
    "info",
    "exists",
    "isdir",
    "isfile",
    "size",
    "open",
    "cat_file",
    "cat",
    "pipe_file",
    "rm_file",
    "rm",
    "find",
    "makedirs",
)
READS = ("ls", "info", "exists", "isdir", "isfile", "size", "open", "cat_file", "cat", "find")

_depth = threading.local()
LOG: list[tuple[int, str, str, bool]] = []
_LOCK = threading.Lock()


def _record(op: str, path: Any, ranged: bool) -> None:
    row = (os.getpid(), op, str(path), ranged)
    with _LOCK:
        LOG.append(row)
    log_file = os.environ.get(LOG_ENV)
    if log_file:
        with open(log_file, "a") as f:
            f.write(f"{row[0]}\t{op}\t{row[2]}\t{int(ranged)}\n")


def _counted(op: str, method: Any) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        outer = getattr(_depth, "n", 0) == 0
        if outer:
            path = args[0] if args else kwargs.get("path", "")
            _record(op, path, kwargs.get("start") is not None or kwargs.get("end") is not None)
        _depth.n = getattr(_depth, "n", 0) + 1
        try:
            return method(*args, **kwargs)
        finally:
            _depth.n -= 1

    return call


class _Counting:
    """Mixin: wraps the public operations of this instance (after the filesystem set up its own sync methods)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if getattr(self, "async_impl", False):  # fsspec makes the sync methods after __init__: make them now
            from fsspec.asyn import mirror_sync_methods

            mirror_sync_methods(self)
        for op in OPERATIONS:
            setattr(self, op, _counted(op, getattr(self, op)))


class CountingLocal(_Counting, LocalFileSystem):
    protocol = ("reqfile",)
    root_marker = "/"

    @classmethod
    def _strip_protocol(cls, path: Any) -> str:
        path = str(path)
        if path.startswith("reqfile://"):
            path = path[len("reqfile://") :]
        return LocalFileSystem._strip_protocol(path)


class CountingMemory(_Counting, MemoryFileSystem):
    protocol = ("reqmemory",)
    store: dict[str, Any] = {}  # its own files, apart from memory://
    pseudo_dirs = [""]

    @classmethod
    def _strip_protocol(cls, path: Any) -> str:
        path = str(path)
        if path.startswith("reqmemory://"):
            path = path[len("reqmemory://") :]
        return MemoryFileSystem._strip_protocol(path)


def _counting_s3() -> type:
    import s3fs

    class CountingS3(_Counting, s3fs.S3FileSystem):
        protocol = ("reqs3", "s3", "s3a")

    return CountingS3


fsspec.register_implementation("reqfile", CountingLocal, clobber=True)
fsspec.register_implementation("reqmemory", CountingMemory, clobber=True)
try:
    fsspec.register_implementation("reqs3", _counting_s3(), clobber=True)
except ImportError:  # no s3fs: the S3 tests skip
    pass


def reset() -> None:
    with _LOCK:
        LOG.clear()


def calls(pid: int | None = None) -> list[tuple[str, str, bool]]:
    """``(operation, path, ranged)`` of every counted call in this process since :func:`reset`."""
    with _LOCK:
        return [(op, path, ranged) for p, op, path, ranged in LOG if pid is None or p == pid]


def is_shard_read(op: str, path: str, ranged: bool) -> bool:
    """A fetch: a whole shard file read (not a listing, an index or count read, nor an 8-byte trailer read)."""
    return op in ("open", "cat_file", "cat") and path.endswith(".gz") and not ranged and "/.squirrel/" not in path


def epoch_start(log: list[tuple[str, str, bool]]) -> list[tuple[str, str, bool]]:
    """The read requests that got keys and counts: every read but the shard fetches."""
    return [row for row in log if row[0] in READS and not is_shard_read(*row)]


def read_log_file(path: str) -> list[tuple[int, str, str, bool]]:
    if not os.path.exists(path):
        return []
    with open(path) as f:
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    return [(int(p), op, target, bool(int(r))) for p, op, target, r in rows]
