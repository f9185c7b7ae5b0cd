"""Stores: a folder of files behind an fsspec URL. Writes are atomic: a shard appears under its key complete or
not at all."""

from __future__ import annotations

import os
import random
import string
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from typing import Any

from squirrel_graph.constants import SQUIRREL_DIR, TMP_MARK
from squirrel_graph.io.fs import fs_and_path, list_fs
from squirrel_graph.io.serialization import CorruptShardError, SquirrelSerializer, gzip_compress


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
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    else:
        fs.pipe_file(final, payload)  # one call with the whole payload: an object appears complete or not at all


def _is_local(fs: Any) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol in ("file", "local")


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
        if clean and self.fs.exists(self.root):
            self.fs.rm(self.root, recursive=True)

    def _path(self, key: Any) -> str:
        return f"{self.root}/{key}"

    def _makedirs(self) -> None:
        self.fs.makedirs(self.root, exist_ok=True)

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
        payload = self.serializer.serialize(value) if self.serializer is not None else value
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        self._makedirs()
        _atomic_write(self.fs, self._path(key), payload)
        return key

    def _missing(self) -> str:
        return f"{type(self).__name__}: the store {self.url} does not exist (nothing written yet?)"

    def _check_parent_listable(self) -> None:
        """For a store folder that is absent: fine if its parent can be listed (a store never written, or emptied).
        On object stores the parent is the bucket (prefixes only exist while objects do). A parent that is missing
        too raises FileNotFoundError; a permission or network failure propagates as it is."""
        protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        head = self.root.rpartition("/")[0]
        if protocol not in ("file", "local"):
            head = self.root.split("/", 1)[0]  # the bucket ("" = the root of memory://)
        try:
            self.fs.ls(head or "/", detail=False)
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"{self._missing()}; its parent {head!r} does not exist either") from exc

    def _listing(self, nested: bool, missing_ok: bool) -> list[str]:
        if not self.fs.exists(self.root):
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


class SquirrelStore(FilesystemStore):
    """Shards of samples: one gzip file ``{url}/{key}.gz`` per shard (squirrel-core's on-disk layout)."""

    def __init__(self, url: str, serializer: SquirrelSerializer, clean: bool = False, **storage_options: Any) -> None:
        if serializer is None:
            raise ValueError("SquirrelStore(serializer=...): a serializer is required, e.g. MessagepackSerializer()")
        super().__init__(url, serializer=serializer, clean=clean, **storage_options)

    def _shard_path(self, key: Any) -> str:
        return f"{self.root}/{key}.gz"

    def set(self, value: Any, key: Any = None, compresslevel: int | None = None) -> Any:
        """Write one shard (a list of samples; any other value is one sample). Returns the key.

        The shard is serialized and compressed in memory first, so a bad sample raises before anything is
        written, and the file appears atomically. ``compresslevel=None`` is the fast default (see
        :func:`~squirrel_graph.io.serialization.gzip_compress`); an int is a zlib level.
        """
        samples = value if isinstance(value, list) else [value]
        key = get_random_key() if key is None else key
        raw = self.serializer.pack_shard(samples)
        payload = gzip_compress(raw, compresslevel)
        self._makedirs()
        _atomic_write(self.fs, self._shard_path(key), payload)
        self._counts.pop(key, None)
        # the count names the shard's size, so a count that does not belong to the shard on disk (a crash
        # between the two writes, two writers of one key) is detected and the shard is counted instead
        self.fs.makedirs(self._counts_dir(), exist_ok=True)
        _atomic_write(self.fs, self._count_path(key), f"{len(samples)} {len(payload)}".encode())
        return key

    def _counts_dir(self) -> str:
        return f"{self.root}/{SQUIRREL_DIR}/counts"

    def _count_path(self, key: Any) -> str:
        return f"{self._counts_dir()}/{key}"

    def count(self, key: Any) -> int:
        """The number of samples in shard ``key``: from the count written with it, else by reading the shard.

        Stores written by squirrel-core have no counts, so the first call per shard decodes it.
        """
        cached = self._counts.get(key)
        if cached is not None:
            return cached
        count = None
        try:
            with self.fs.open(self._count_path(key), "rb") as f:
                n, size = (int(x) for x in f.read().split())
            if self.fs.size(self._shard_path(key)) == size:
                count = n
        except (FileNotFoundError, ValueError):
            pass
        if count is None:
            count = len(self.get_shard(key))
        self._counts[key] = count
        return count

    def get(self, key: Any, **kwargs: Any) -> Iterator[Any]:
        """The samples of shard ``key``, read when the generator is first advanced."""
        path = self._shard_path(key)
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
        """Shard keys in sorted order (files ending in ``.gz``, without it); listed when iterated. A store folder
        never written has none (``missing_ok=False``, what ``get_iter()`` uses, raises FileNotFoundError)."""
        for rel in super().keys(nested=nested, missing_ok=missing_ok, **kwargs):
            if rel.endswith(".gz") and not rel.rsplit("/", 1)[-1].startswith("."):
                yield rel[: -len(".gz")]
