"""Stores: a folder of files behind an fsspec URL. Writes are atomic: a shard appears under its key complete or
not at all."""

from __future__ import annotations

import errno
import os
import random
import string
import struct
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from typing import Any

from squirrel_graph.constants import SQUIRREL_DIR, TMP_MARK
from squirrel_graph.io.fs import fs_and_path, is_local, list_fs, path_exists
from squirrel_graph.io.keys import check_key, check_local_write
from squirrel_graph.io.serialization import CorruptShardError, SquirrelSerializer, gzip_compress
from squirrel_graph.io.store_index import (
    ShardEntry,
    ShardTable,
    StoreWriter,
    build_index,
    drop_index,
    entry_of,
    key_table,
    parse_count_record,
    read_index,
)


def get_random_key(length: int = 16) -> str:
    """A random key of uppercase letters and digits, from the OS's entropy: seeding ``random`` does not change
    keys, and forked writer processes never draw the same ones (which would overwrite each other's shards)."""
    return "".join(_KEY_RNG.choices(string.ascii_uppercase + string.digits, k=length))


_KEY_RNG = random.SystemRandom()  # reads os.urandom: no state a fork could duplicate


class AbstractStore(ABC):
    """A key-value store of samples or shards."""

    @abstractmethod
    def set(self, value: Any, key: Any = None, **kwargs: Any) -> Any:
        """Store ``value`` under ``key`` (a random key if None)."""

    @abstractmethod
    def get(self, key: Any, **kwargs: Any) -> Any:
        """The value stored under ``key``."""

    @abstractmethod
    def keys(self, **kwargs: Any) -> Iterable[Any]:
        """All keys."""


def _atomic_write(fs: Any, final: str, payload: bytes) -> None:
    """Write ``payload`` so that ``final`` is either absent or complete, never truncated.

    Local disks get a hidden temporary file in the same folder, then a rename (atomic on POSIX): a writer that
    raises or is killed never leaves a partial shard under a key. There is no fsync (it would halve write speed),
    so after a power loss (not a process crash) the newest shards may be missing, or empty on some filesystems.
    Object stores (s3, gcs, memory, ...) publish an object only when its upload completes, so they are written
    directly.
    """
    if _is_local(fs):
        folder, name = final.rsplit("/", 1)
        os.makedirs(folder, exist_ok=True)  # keys may contain "/"
        tmp = f"{folder}/.{name}{TMP_MARK}{uuid.uuid4().hex}"
        try:
            with open(tmp, "wb") as f:
                f.write(payload)
            os.replace(tmp, final)  # atomic: readers see the old state or the complete file
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
    else:
        fs.pipe_file(final, payload)  # one call with the whole payload: an object appears complete or not at all


_is_local = is_local


class FilesystemStore(AbstractStore):
    """One file per key under ``url``; values are serialized whole if a serializer is given."""

    def __init__(
        self, url: str, serializer: SquirrelSerializer | None = None, clean: bool = False, **storage_options: Any
    ) -> None:
        if not isinstance(url, str) or not url:
            raise ValueError(f"{type(self).__name__}(url=...): expected a non-empty URL string, got {url!r}")
        self.url = url.rstrip("/")
        self.serializer = serializer
        self.storage_options = storage_options
        self.fs, self.root = fs_and_path(self.url, **storage_options)
        self._counts: dict[Any, int] = {}  # shard counts read in this process (shards are immutable once written)
        if clean and path_exists(self.fs, self.root, f"{type(self).__name__}(clean=True): the store {self.url}"):
            drop_index(self)  # first, so that no reader trusts it while the shards go
            self.fs.rm(self.root, recursive=True)

    def _where(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def _path(self, key: Any) -> str:
        """The path of ``key``'s file; a ValueError if the key would leave the store (see :mod:`..keys`)."""
        return f"{self.root}/{check_key(key, self._where())}"

    def _check_write(self, key: Any, path: str) -> None:
        """On a local disk, refuse a write that a symlinked folder inside the store would take outside it."""
        if _is_local(self.fs):
            check_local_write(self.root, path, key, self._where())

    def _makedirs(self) -> None:
        self.fs.makedirs(self.root, exist_ok=True)

    def _write_meta(self, path: str, payload: bytes) -> None:
        """Write a file of the metadata folder atomically (the store index)."""
        self.fs.makedirs(path.rpartition("/")[0], exist_ok=True)
        _atomic_write(self.fs, path, payload)

    def get(self, key: Any, mode: str = "rb", **open_kwargs: Any) -> Any:
        path = self._path(key)
        try:
            with self.fs.open(path, mode, **open_kwargs) as f:
                data = f.read()
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"{type(self).__name__}.get: no key {key!r} in store {self.url} ({path})") from exc
        return self.serializer.deserialize(data) if self.serializer is not None else data

    def set(self, value: Any, key: Any = None, mode: str = "wb", **open_kwargs: Any) -> Any:
        key = get_random_key() if key is None else key
        path = self._path(key)  # refuses a bad key before anything is written
        payload = self.serializer.serialize(value) if self.serializer is not None else value
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        self._check_write(key, path)
        if path.endswith(".gz"):  # a file a SquirrelStore on this folder lists as a shard: its index goes first
            drop_index(self)
        self._makedirs()
        _atomic_write(self.fs, path, payload)
        return key

    def _missing(self) -> str:
        return f"{type(self).__name__}: the store {self.url} does not exist (nothing written yet?)"

    def _check_parent_listable(self) -> None:
        """For a store folder that is absent: fine if its parent can be listed (a store never written, or emptied).
        On object stores the parent is the bucket (prefixes only exist while objects do). A parent that is missing
        too raises FileNotFoundError; a permission failure is a PermissionError naming the parent; a network
        failure propagates as it is."""
        head = self.root.rpartition("/")[0]
        if not _is_local(self.fs):
            head = self.root.split("/", 1)[0]  # the bucket ("" = the root of memory://)
        try:
            self.fs.ls(head or "/", detail=False)
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"{self._missing()}; its parent {head!r} does not exist either") from exc
        except PermissionError as exc:
            message = f"{type(self).__name__}: the store {self.url} is absent and its parent cannot be listed ({exc})"
            raise PermissionError(errno.EACCES, message, head or "/") from exc

    def _listing(self, nested: bool, missing_ok: bool) -> list[str]:
        # fsspec's exists() says False when a folder above the store cannot be searched (or on a network error):
        # path_exists raises those, so "does not exist" is only said of a store that is really absent
        if not path_exists(self.fs, self.root, f"{type(self).__name__}: the store {self.url}"):
            if missing_ok:
                self._check_parent_listable()
                return []
            raise FileNotFoundError(self._missing())
        return list_fs(self.fs, self.root, nested=nested)

    def keys(self, nested: bool = True, missing_ok: bool = True, **kwargs: Any) -> Iterator[str]:
        """Keys relative to ``url``, sorted (files only when ``nested``; top-level entries otherwise).

        A store folder that was never written (or was emptied) has no keys, as in squirrel-core, when its parent
        can be listed; a missing parent raises FileNotFoundError, as does any absent store with
        ``missing_ok=False`` (what reading a store uses). Our metadata folder and in-flight temporary files are
        never listed.
        """
        for path in self._listing(nested, missing_ok):
            yield path[len(self.root) :].lstrip("/")  # list_fs leaves out our metadata and temporary files


def _count_record(samples: int, payload: bytes) -> bytes:
    """The count file of a shard: ``"N SIZE CRC32 ISIZE"`` (samples, gzip bytes, and the gzip trailer's CRC32 and
    uncompressed length, which a reader checks with an 8-byte ranged read, without decompressing)."""
    crc, isize = struct.unpack("<II", payload[-8:])
    return f"{samples} {len(payload)} {crc} {isize}".encode()


class SquirrelStore(FilesystemStore):
    """Shards of samples: one gzip file ``{url}/{key}.gz`` per shard (squirrel-core's on-disk layout), and optionally
    a store index that readers use instead of listing (see :mod:`squirrel_graph.io.store_index`)."""

    def __init__(
        self,
        url: str,
        serializer: SquirrelSerializer,
        clean: bool = False,
        use_index: bool = True,
        **storage_options: Any,
    ) -> None:
        if serializer is None:
            raise ValueError("SquirrelStore(serializer=...): a serializer is required, e.g. MessagepackSerializer()")
        self.use_index = bool(use_index)
        super().__init__(url, serializer=serializer, clean=clean, **storage_options)

    def _shard_path(self, key: Any) -> str:
        """The path of shard ``key``; a ValueError if the key would leave the store (see :mod:`..keys`)."""
        return f"{self.root}/{check_key(key, self._where())}.gz"

    def set(self, value: Any, key: Any = None, compresslevel: int | None = None) -> Any:
        """Write one shard (a list of samples; any other value is one sample). Returns the key.

        The shard is serialized and compressed in memory first, so a bad sample raises before anything is
        written, and the file appears atomically. ``compresslevel=None`` is the fast default (see
        :func:`~squirrel_graph.io.serialization.gzip_compress`); an int is a zlib level.
        """
        return self._write_shard(value, key, compresslevel)[0]

    def _write_shard(self, value: Any, key: Any, compresslevel: int | None) -> tuple[Any, ShardEntry]:
        """:meth:`set`; returns the key and the shard's index entry. The store index is deleted first."""
        samples = value if isinstance(value, list) else [value]
        key = get_random_key() if key is None else key
        shard_path, count_path = self._shard_path(key), self._count_path(key)  # a bad key writes nothing
        raw = self.serializer.pack_shard(samples)
        payload = gzip_compress(raw, compresslevel)
        self._check_write(key, shard_path)
        self._check_write(key, count_path)
        drop_index(self)  # before the shard changes: a reader never trusts an index that misses this write
        self._makedirs()
        _atomic_write(self.fs, shard_path, payload)
        self._counts.pop(key, None)
        # the count names the shard's size and gzip trailer (CRC32 and length of the uncompressed data), so a count
        # that does not describe the shard on disk (a crash between the two writes, two writers of one key, a shard
        # replaced by another of the same size) is detected and the shard is counted by reading it instead
        self.fs.makedirs(count_path.rpartition("/")[0], exist_ok=True)
        _atomic_write(self.fs, count_path, _count_record(len(samples), payload))
        return key, entry_of(check_key(key, self._where()), len(samples), payload)

    def _counts_dir(self) -> str:
        return f"{self.root}/{SQUIRREL_DIR}/counts"

    def _count_path(self, key: Any) -> str:
        return f"{self._counts_dir()}/{check_key(key, self._where())}"

    def count(self, key: Any) -> int:
        """The number of samples in shard ``key``: from the count written with it if that count still describes the
        shard (same size, same gzip trailer), else by reading the shard.

        Stores written by squirrel-core have no counts, and counts of the older ``"N SIZE"`` format cannot be bound
        to the content, so those shards are decoded (once per store object).
        """
        shard_path, count_path = self._shard_path(key), self._count_path(key)
        cached = self._counts.get(key)
        if cached is not None:
            return cached
        count = self._verified_count(shard_path, count_path)
        if count is None:
            count = len(self.get_shard(key))
        self._counts[key] = count
        return count

    def _verified_count(self, shard_path: str, count_path: str) -> int | None:
        """The count recorded for the shard, or None when there is none or it does not match the shard's content."""
        try:
            with self.fs.open(count_path, "rb") as f:
                record = parse_count_record(f.read())  # None for the old "N SIZE" format: not bound to the content
            if record is None:
                return None
            n, size, crc, isize = record
            if self.fs.size(shard_path) != size:
                return None
            tail = self.fs.cat_file(shard_path, start=size - 8, end=size)
            return n if struct.unpack("<II", tail) == (crc, isize) else None
        except (FileNotFoundError, ValueError, struct.error):  # no count, a foreign one, or a shard just replaced
            return None

    def get(self, key: Any, **kwargs: Any) -> Iterator[Any]:
        """The samples of shard ``key``, read when the generator is first advanced (a bad key raises now)."""
        return self._samples(key, self._shard_path(key), **kwargs)

    def _samples(self, key: Any, path: str, **kwargs: Any) -> Iterator[Any]:
        try:
            samples = self.serializer.deserialize_shard_from_file(path, fs=self.fs, **kwargs)
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"SquirrelStore.get: no shard {key!r} in store {self.url} ({path})") from exc
        except CorruptShardError as exc:  # name the shard by its URL, as the user wrote it
            raise CorruptShardError(str(exc).replace(path, f"{self.url}/{key}.gz", 1)) from exc.__cause__
        yield from samples

    def read_shard(self, key: Any) -> tuple[Any, bytes]:
        """``(key, the shard file's raw bytes)``: the I/O half of a fetch (no decoding, so the GIL stays free)."""
        path = self._shard_path(key)
        try:
            with self.fs.open(path, "rb") as f:
                return key, f.read()
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"SquirrelStore.get: no shard {key!r} in store {self.url} ({path})") from exc

    def decode_shard(self, key_and_raw: tuple[Any, bytes]) -> list[Any]:
        """The samples of ``(key, raw bytes)`` from :meth:`read_shard`: the CPU half of a fetch."""
        key, raw = key_and_raw
        return self.serializer.deserialize_shard_bytes(raw, f"{self.url}/{key}.gz")

    def get_shard(self, key: Any, **kwargs: Any) -> list[Any]:
        """All samples of shard ``key`` as a list, read now (what a fetch stage runs in its worker thread)."""
        return list(self.get(key, **kwargs))

    def keys(self, nested: bool = False, missing_ok: bool = True, **kwargs: Any) -> Iterator[str]:
        """Shard keys in sorted order (files ending in ``.gz``, without it), read when iterated: from the store index
        in one request if there is one (and ``use_index``), else by listing the folder. A store folder never written
        has none (``missing_ok=False``, what ``get_iter()`` uses, raises FileNotFoundError)."""
        yield from key_table(self, nested, missing_ok, self.use_index).keys

    def listed_keys(self, nested: bool = False, missing_ok: bool = True) -> Iterator[str]:
        """Shard keys by listing the folder, whatever the index says (see :meth:`keys`)."""
        for rel in super().keys(nested=nested, missing_ok=missing_ok):
            if rel.endswith(".gz") and not rel.rsplit("/", 1)[-1].startswith("."):
                yield rel[: -len(".gz")]

    # ------------------------------------------------------------------------------------------ the store index

    def build_index(self, nested: bool = False, max_workers: int | None = None) -> ShardTable:
        """Write the store index: every shard's key, sample count, size and gzip trailer, checked against the shard
        (count file and trailer, or by decoding it), in one object readers fetch with one request. Run it after the
        writes: any later write through squirrel_graph deletes it. ``nested`` also indexes shards in subfolders."""
        return build_index(self, nested=nested, max_workers=max_workers)

    def read_index(self) -> ShardTable | None:
        """The store index (one request), or None if there is none this version can use."""
        return read_index(self)[0]

    def drop_index(self) -> None:
        """Delete the store index (readers list the folder again); nothing happens if there is none."""
        drop_index(self)

    def writer(self, index: bool = True, nested: bool = False, max_workers: int | None = None) -> StoreWriter:
        """``with store.writer() as w: w.set(shard)``: a bulk write that ends by writing the store index (without a
        request per shard it wrote); see :class:`~squirrel_graph.io.store_index.StoreWriter`."""
        return StoreWriter(self, nested=nested, index=index, max_workers=max_workers)

    def delete(self, key: Any) -> None:
        """Delete shard ``key`` and its count (the store index first); FileNotFoundError if there is no such shard."""
        shard_path, count_path = self._shard_path(key), self._count_path(key)
        if not path_exists(self.fs, shard_path, f"shard {key!r} of store {self.url}"):
            raise FileNotFoundError(f"SquirrelStore.delete: no shard {key!r} in store {self.url} ({shard_path})")
        drop_index(self)
        self.fs.rm_file(shard_path)
        self._counts.pop(key, None)
        try:
            self.fs.rm_file(count_path)
        except FileNotFoundError:
            pass
