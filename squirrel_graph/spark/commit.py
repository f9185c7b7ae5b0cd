"""The commit protocol of ``write_store``: every row of a Spark job in the store exactly once, whatever attempts ran.

Like Spark's own file committers, in three steps:

1. **Task attempts write where no reader looks.** Each attempt of partition ``p`` writes its shards and their count
   records into its own folder ``{url}/.squirrel/spark-staging/{job}/{p:05d}-{attempt}/`` (the store's metadata
   folder, which no listing shows, squirrel-core's included), under the final keys ``{job}-{p:05d}-{shard:05d}``,
   and returns what it wrote (:class:`Attempt`) to the driver. A failed attempt, a retried one or a duplicate
   (speculative) one writes into another folder, so no attempt ever touches another's files or the store.
2. **The driver picks one attempt per partition:** the one whose result Spark returned (``collect()`` keeps one
   successful attempt of each partition).
3. **The driver commits** (:meth:`WriteJob.commit`): it drops the store index, removes the old store for
   ``mode="overwrite"``, moves the chosen attempts' shards to ``{url}/{key}.gz`` (a rename on a local disk) and
   their counts to ``{url}/.squirrel/counts/{key}``, deletes the job's staging folder (every other attempt with
   it), and writes a new store index (``index=True``) from what the attempts reported.

A job that fails before step 3 is aborted (:meth:`WriteJob.abort`): its staging folder goes, the store is as it
was (index included). The commit itself is not atomic (nor is Spark's): a driver that dies in the middle of it
leaves part of the new shards visible. An attempt still running after its job committed (Spark kills them) can
leave files under the staging folder, which readers never list; the next ``mode="overwrite"`` removes them.
"""

from __future__ import annotations

import itertools
import os
import posixpath
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from fsspec.core import split_protocol

from squirrel_graph.constants import SQUIRREL_DIR
from squirrel_graph.io.fs import is_local, path_exists
from squirrel_graph.io.serialization import JsonSerializer, MessagepackSerializer, SquirrelSerializer, gzip_compress
from squirrel_graph.io.store import SquirrelStore, get_random_key
from squirrel_graph.io.store_index import ShardEntry, build_index, drop_index, entry_of

STAGING = "spark-staging"
MODES = ("error", "errorifexists", "overwrite", "append", "ignore")
SERIALIZERS: dict[str, type[SquirrelSerializer]] = {"messagepack": MessagepackSerializer, "jsonl": JsonSerializer}


@dataclass(frozen=True)
class Attempt:
    """What one task attempt wrote: its partition, its staging folder's name and one entry per shard."""

    partition: int
    name: str
    entries: tuple[ShardEntry, ...]

    def to_row(self) -> tuple[int, str, list[list[Any]]]:
        """Plain values for an Arrow row (partition, name, entries as lists)."""
        return self.partition, self.name, [[e.key, e.samples, e.size, e.crc32, e.isize] for e in self.entries]

    @classmethod
    def from_row(cls, partition: int, name: str, entries: Iterable[Sequence[Any]]) -> Attempt:
        shards = tuple(ShardEntry(str(k), int(n), int(s), int(c), int(i)) for k, n, s, c, i in entries)
        return cls(int(partition), str(name), shards)


def serializer_of(serializer: Any) -> SquirrelSerializer:
    """A serializer instance from a name (``"messagepack"``, ``"jsonl"``) or an instance."""
    if isinstance(serializer, str):
        if serializer not in SERIALIZERS:
            known = list(SERIALIZERS)
            raise ValueError(f"write_store(serializer=...): unknown serializer {serializer!r}; use one of {known}")
        return SERIALIZERS[serializer]()
    if isinstance(serializer, SquirrelSerializer):
        return serializer
    raise TypeError(
        "write_store(serializer=...): expected 'messagepack', 'jsonl' or a SquirrelSerializer, got "
        f"{type(serializer).__name__}"
    )


def chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive lists of ``size`` items (the last one shorter)."""
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def count_record(entry: ShardEntry) -> bytes:
    """The count file of a shard (``"N SIZE CRC32 ISIZE"``, as ``SquirrelStore.set`` writes it)."""
    return f"{entry.samples} {entry.size} {entry.crc32} {entry.isize}".encode()


def absolute_url(url: str) -> str:
    """A local path (or ``file://`` URL) made absolute: the executors' Python workers run in other working directories
    than the driver. Other URLs are returned as they are."""
    if "::" in url:
        return url
    protocol, path = split_protocol(url)
    if protocol in (None, "file", "local"):
        return os.path.abspath(path)
    return url


def new_job_id() -> str:
    """Sortable by start time (UTC, to the microsecond), then random: appended jobs list after earlier ones."""
    now = time.time_ns() // 1000
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now // 1_000_000))
    return f"{stamp}{now % 1_000_000:06d}-{get_random_key(6)}"


class WriteJob:
    """One ``write_store`` job: where it writes and how. Picklable; each process opens its own filesystem."""

    def __init__(
        self,
        url: str,
        serializer: SquirrelSerializer,
        samples_per_shard: int,
        storage_options: dict[str, Any] | None = None,
        job_id: str | None = None,
        compresslevel: int | None = None,
    ) -> None:
        self.url = absolute_url(url).rstrip("/")
        self.serializer = serializer
        self.samples_per_shard = samples_per_shard
        self.storage_options = dict(storage_options or {})
        self.job_id = job_id or new_job_id()
        self.compresslevel = compresslevel
        self.root_existed = True  # set by the driver before the job (see prepare)
        self._store: SquirrelStore | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_store": None}

    @property
    def store(self) -> SquirrelStore:
        if self._store is None:
            self._store = SquirrelStore(self.url, self.serializer, **self.storage_options)
        return self._store

    @property
    def staging(self) -> str:
        """The job's staging folder (a filesystem path)."""
        return f"{self.store.root}/{SQUIRREL_DIR}/{STAGING}/{self.job_id}"

    def key(self, partition: int, shard: int) -> str:
        return f"{self.job_id}-{partition:05d}-{shard:05d}"

    # ---------------------------------------------------------------------------------------- on the executors

    def write_partition(self, partition: int, samples: Iterable[Any], attempt: str | None = None) -> Attempt:
        """Write one attempt of ``partition``: shards of ``samples_per_shard`` samples into its own staging folder;
        returns what it wrote. Nothing becomes visible before the driver commits."""
        name = f"{partition:05d}-{attempt or uuid.uuid4().hex[:12]}"
        folder = f"{self.staging}/{name}"
        fs = self.store.fs
        fs.makedirs(folder, exist_ok=True)
        entries = []
        for shard, chunk in enumerate(chunks(samples, self.samples_per_shard)):
            payload = gzip_compress(self.serializer.pack_shard(chunk), self.compresslevel)
            entry = entry_of(self.key(partition, shard), len(chunk), payload)
            fs.pipe_file(f"{folder}/{entry.key}.shard", payload)
            fs.pipe_file(f"{folder}/{entry.key}.count", count_record(entry))
            entries.append(entry)
        return Attempt(partition, name, tuple(entries))

    # ---------------------------------------------------------------------------------------- on the driver

    def existing_keys(self) -> list[str]:
        """The shards the store holds now (listed, whatever an index says)."""
        return list(self.store.listed_keys(nested=False, missing_ok=True))

    def prepare(self, mode: str) -> bool:
        """On the driver, before the job: remember whether the store folder exists (an aborted job removes it if it
        created it), then :meth:`check_mode`."""
        store = self.store
        self.root_existed = path_exists(store.fs, store.root, f"the store {self.url}")
        return self.check_mode(mode)

    def check_mode(self, mode: str) -> bool:
        """Before the job: FileExistsError for ``mode="error"`` on a store holding shards; False if ``"ignore"``
        says to write nothing."""
        if mode in ("error", "errorifexists", "ignore") and self.existing_keys():
            if mode == "ignore":
                return False
            raise FileExistsError(
                f"write_store(mode={mode!r}): the store {self.url} already holds shards; use mode='append' to add "
                "to it or mode='overwrite' to replace it"
            )
        return True

    def commit(self, attempts: Sequence[Attempt], mode: str, index: bool = True) -> list[str]:
        """Make the chosen attempts' shards visible (one attempt per partition), then remove every staged file;
        returns the keys written, in key order. See the module docstring."""
        chosen: dict[int, Attempt] = {}
        for a in attempts:
            if a.partition in chosen:
                both = f"{chosen[a.partition].name}, {a.name}"
                raise RuntimeError(f"write_store: two results for partition {a.partition} ({both})")
            chosen[a.partition] = a
        if not self.check_mode(mode):  # checked again: another writer may have come in meanwhile
            self.abort()
            return []
        store, fs = self.store, self.store.fs
        drop_index(store)  # first: no reader trusts an index while the store changes
        if mode == "overwrite":
            self._remove_old()
        entries = [e for p in sorted(chosen) for e in chosen[p].entries]
        counts = f"{store.root}/{SQUIRREL_DIR}/counts"
        fs.makedirs(counts, exist_ok=True)
        moves = []
        for p in sorted(chosen):
            folder = f"{self.staging}/{chosen[p].name}"
            for e in chosen[p].entries:
                moves.append((f"{folder}/{e.key}.shard", f"{store.root}/{e.key}.gz"))
                moves.append((f"{folder}/{e.key}.count", f"{counts}/{e.key}"))
        workers = 8 if is_local(fs) else 32
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(lambda m: fs.mv(m[0], m[1]), moves))
        self.abort()
        if index:
            build_index(store, known={e.key: e for e in entries})
        return [e.key for e in entries]

    def _remove_old(self) -> None:
        """Everything in the store folder but this job's staging folder (other jobs' leftovers go too)."""
        fs, root = self.store.fs, self.store.root
        if not path_exists(fs, root, f"the store {self.url}"):
            return
        for path in fs.ls(root, detail=False):
            if posixpath.basename(path.rstrip("/")) != SQUIRREL_DIR:
                fs.rm(path, recursive=True)
                continue
            for sub in fs.ls(path, detail=False):
                if posixpath.basename(sub.rstrip("/")) != STAGING:
                    fs.rm(sub, recursive=True)
                    continue
                for job in fs.ls(sub, detail=False):
                    if posixpath.basename(job.rstrip("/")) != self.job_id:
                        fs.rm(job, recursive=True)

    def abort(self) -> None:
        """Remove the job's staging folder (every attempt's files), and the folders it created if left empty."""
        fs = self.store.fs
        try:
            fs.rm(self.staging, recursive=True)
        except FileNotFoundError:
            pass
        if is_local(fs):
            parent = os.path.dirname(self.staging)
            folders = [parent, os.path.dirname(parent)] + ([] if self.root_existed else [self.store.root])
            for folder in folders:
                try:
                    os.rmdir(folder)  # only if empty
                except OSError:
                    break


__all__ = [
    "MODES",
    "STAGING",
    "Attempt",
    "WriteJob",
    "absolute_url",
    "chunks",
    "count_record",
    "new_job_id",
    "serializer_of",
]
