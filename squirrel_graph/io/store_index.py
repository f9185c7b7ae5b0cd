"""The store index: one object, ``{url}/.squirrel/index.json.gzip``, listing every shard of a store with its sample
count and content binding, so that a reader gets its keys and counts with one request instead of listing the folder
and reading one count file per shard.

Format (version 1): gzip of one JSON object ``{"format": "squirrel_graph.store_index", "version": 1, "nested": bool,
"created_utc", "written_by", "shards", "samples", "keys": [...], "samples_per_shard": [...], "size": [...],
"crc32": [...], "isize": [...]}``: columns in listing order (sorted by file name, as ``keys()``), ``size`` the shard
file's bytes and ``crc32``/``isize`` its gzip trailer (the content binding of the count files). The name does not end
in ``.gz``, so squirrel-core's nested listing never takes it for a shard. A reader that finds another format or
version, or a file it cannot parse, ignores it and lists the folder instead.

Never stale through squirrel_graph: every write, overwrite or delete of a shard, and ``clean=True``, deletes the index
first (:func:`drop_index`), before the shard changes; readers check each shard they fetch against it.
"""

from __future__ import annotations

import datetime
import errno
import gzip
import json
import logging
import os
import struct
import threading
import zlib
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from squirrel_graph.constants import SQUIRREL_DIR
from squirrel_graph.io.fs import is_local, list_fs_sizes, path_exists
from squirrel_graph.io.serialization import CorruptShardError

if TYPE_CHECKING:
    from squirrel_graph.io.store import SquirrelStore

logger = logging.getLogger("squirrel_graph")

INDEX_NAME = "index.json.gzip"
FORMAT = "squirrel_graph.store_index"
VERSION = 1
GZIP_MIN = 18  # a gzip member's smallest size: 10 header bytes, an empty deflate stream (2), 8 trailer bytes
_COLUMNS = ("samples_per_shard", "size", "crc32", "isize")


class IndexUnreadable(ValueError):
    """An index object that this squirrel_graph cannot use (another format or version, or damaged)."""


@dataclass(frozen=True)
class ShardEntry:
    """One shard as the index records it: key, number of samples, file size and gzip trailer (CRC32, ISIZE)."""

    key: str
    samples: int
    size: int
    crc32: int
    isize: int


def entry_of(key: str, samples: int, payload: bytes) -> ShardEntry:
    """The entry of a shard whose file bytes are ``payload`` (its trailer is the last 8 bytes)."""
    crc, isize = struct.unpack("<II", payload[-8:])
    return ShardEntry(key, samples, len(payload), crc, isize)


def parse_count_record(data: bytes) -> tuple[int, int, int, int] | None:
    """``(samples, size, crc32, isize)`` of a count file ``"N SIZE CRC32 ISIZE"``; None for anything else (the
    older ``"N SIZE"`` format cannot be bound to the content, so it is not trusted)."""
    fields = data.split()
    if len(fields) != 4:
        return None
    try:
        n, size, crc, isize = (int(x) for x in fields)
    except ValueError:
        return None
    if n < 0 or size < GZIP_MIN or not (0 <= crc < 2**32 and 0 <= isize < 2**32):
        return None
    return n, size, crc, isize


class ShardTable:
    """The shard keys of a store in listing order, with their sample counts and content bindings when known (columns
    aligned with ``keys``, or None), and where they came from (what ``explain()`` reports): ``source`` is
    ``"index"``, ``"listing"`` or ``"rank 0"``."""

    def __init__(
        self,
        keys: list[str],
        columns: tuple[list[int], list[int], list[int], list[int]] | None = None,
        source: str = "listing",
        note: str = "",
        nested: bool = False,
    ) -> None:
        self.keys, self.columns, self.source, self.note, self.nested = keys, columns, source, note, nested
        self._at: dict[str, int] | None = None

    @classmethod
    def of(cls, entries: list[ShardEntry], source: str, note: str = "", nested: bool = False) -> ShardTable:
        """A table of ``entries`` (in listing order)."""
        columns = tuple([getattr(e, name) for e in entries] for name in ("samples", "size", "crc32", "isize"))
        return cls([e.key for e in entries], columns, source, note, nested)  # type: ignore[arg-type]

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_at": None}  # the lookup table is rebuilt on demand

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def has_counts(self) -> bool:
        return self.columns is not None

    @property
    def entries(self) -> list[ShardEntry] | None:
        """Every shard's entry, in listing order (None without counts)."""
        if self.columns is None:
            return None
        return [ShardEntry(*row) for row in zip(self.keys, *self.columns)]

    def _position(self, key: Any) -> int | None:
        if self._at is None:
            self._at = {k: i for i, k in enumerate(self.keys)}
        i = self._at.get(key)
        return i if i is not None or isinstance(key, str) else self._at.get(str(key))

    def count(self, key: Any) -> int | None:
        """The number of samples of ``key``; None if this table has no counts or does not hold the key."""
        if self.columns is None:
            return None
        i = self._position(key)
        return None if i is None else self.columns[0][i]

    def entry(self, key: Any) -> ShardEntry | None:
        """The entry of ``key``, None if this table has no counts or does not hold the key."""
        if self.columns is None:
            return None
        i = self._position(key)
        return None if i is None else ShardEntry(self.keys[i], *(col[i] for col in self.columns))

    def top_level(self) -> ShardTable:
        """The shards directly in the store folder (what ``keys(nested=False)`` lists)."""
        pick = [i for i, k in enumerate(self.keys) if "/" not in k]
        columns = None if self.columns is None else tuple([col[i] for i in pick] for col in self.columns)
        return ShardTable([self.keys[i] for i in pick], columns, self.source, self.note, nested=False)  # type: ignore[arg-type]

    def for_nested(self, nested: bool) -> ShardTable | None:
        """This table as ``keys(nested=nested)`` would list it, or None if it does not cover that."""
        if nested == self.nested:
            return self
        return self.top_level() if self.nested else None

    def describe(self) -> str:
        """How the keys were obtained, for explain: ``"index (1 read, 12 shards)"``, ``"listing (no index)"``."""
        if self.source == "index":
            return f"index ({INDEX_NAME}, 1 read, {len(self.keys)} shards)"
        if self.source == "listing":
            return f"listing ({self.note})" if self.note else "listing"
        return f"{self.source} ({self.note}, {len(self.keys)} shards)"


# ------------------------------------------------------------------------------------------------ the index object


def index_path(store: Any) -> str:
    """Where the index of ``store`` lives (inside its metadata folder, which no listing shows)."""
    return f"{store.root}/{SQUIRREL_DIR}/{INDEX_NAME}"


def index_url(store: Any) -> str:
    return f"{store.url}/{SQUIRREL_DIR}/{INDEX_NAME}"


def _version() -> str:
    try:
        from importlib.metadata import version

        return f"squirrel_graph {version('squirrel_graph')}"
    except Exception:  # not installed as a distribution: the name is enough
        return "squirrel_graph"


def encode_index(entries: list[ShardEntry], nested: bool) -> bytes:
    """The bytes of an index object holding ``entries`` (in listing order)."""
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "nested": nested,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "written_by": _version(),
        "shards": len(entries),
        "samples": sum(e.samples for e in entries),
        "keys": [e.key for e in entries],
        "samples_per_shard": [e.samples for e in entries],
        "size": [e.size for e in entries],
        "crc32": [e.crc32 for e in entries],
        "isize": [e.isize for e in entries],
    }
    return gzip.compress(json.dumps(doc, separators=(",", ":")).encode(), compresslevel=6, mtime=0)


def _valid_ints(values: Any, low: int, high: int) -> bool:
    return isinstance(values, list) and (
        not values or (set(map(type, values)) == {int} and low <= min(values) and max(values) < high)
    )


def decode_index(data: bytes, where: str) -> ShardTable:
    """The table an index object holds; IndexUnreadable naming ``where`` if it is not one this version can trust."""
    try:
        doc = json.loads(gzip.decompress(data))
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        raise IndexUnreadable(f"store index {where} cannot be read ({type(exc).__name__}: {exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise IndexUnreadable(f"{where} is not a squirrel_graph store index")
    if doc.get("version") != VERSION:
        raise IndexUnreadable(
            f"store index {where} has format version {doc.get('version')!r}; this squirrel_graph reads version "
            f"{VERSION}"
        )
    keys, nested = doc.get("keys"), doc.get("nested")
    limits = {"samples_per_shard": (0, 2**63), "size": (GZIP_MIN, 2**63), "crc32": (0, 2**32), "isize": (0, 2**32)}
    columns = tuple(doc.get(name) for name in _COLUMNS)
    ok = (
        isinstance(keys, list)
        and (not keys or set(map(type, keys)) == {str})
        and "" not in keys
        and len(set(keys)) == len(keys)
        and isinstance(nested, bool)
        and all(_valid_ints(col, *limits[name]) and len(col) == len(keys) for name, col in zip(_COLUMNS, columns))
    )
    if not ok:
        raise IndexUnreadable(f"store index {where} is damaged (its columns are not {len(_COLUMNS) + 1} lists alike)")
    return ShardTable(keys, columns, source="index", nested=nested)  # type: ignore[arg-type]


def read_index(store: Any) -> tuple[ShardTable | None, str]:
    """The index of ``store`` (one request) and ``""``, or None and why there is none to use. An index that cannot be
    trusted (another version, damaged) is logged and ignored; a permission or network error is raised."""
    try:
        # start=0: one (ranged) GET on object stores, where a plain cat_file first asks for the size
        data = store.fs.cat_file(index_path(store), start=0)
    except (FileNotFoundError, NotADirectoryError):
        return None, "no index"
    except PermissionError:
        if is_local(store.fs):  # say which folder refuses, as a listing would
            path_exists(store.fs, store.root, f"the store {store.url}")
        raise
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # S3's answer to a ranged read of an empty object: no index either
            raise
        data = b""
    try:
        return decode_index(data, index_url(store)), ""
    except IndexUnreadable as exc:
        logger.warning("%s; listing the store instead", exc)
        return None, f"index ignored: {exc}"


def drop_index(store: Any) -> None:
    """Delete the index of ``store`` if there is one: what every change of a shard does first, so that no reader
    trusts an index that no longer describes the store. Any failure other than "not found" is raised (and the
    change that wanted to follow does not happen)."""
    path = index_path(store)
    try:
        if is_local(store.fs):
            os.unlink(path)
        else:
            store.fs.rm_file(path)
    except (FileNotFoundError, NotADirectoryError):
        pass


def key_table(store: SquirrelStore, nested: bool, missing_ok: bool, use_index: bool = True) -> ShardTable:
    """The shard keys of ``store`` (and counts when they come from the index): from its index in one request when
    there is a usable one, else by listing the folder (``missing_ok`` as in ``keys()``)."""
    why = "use_index=False"
    if use_index:
        table, why = read_index(store)
        if table is not None:
            usable = table.for_nested(nested)
            if usable is not None:
                return usable
            why = "the index lists top-level shards only (built with nested=False)"
    keys = list(store.listed_keys(nested=nested, missing_ok=missing_ok))
    return ShardTable(keys, source="listing", note=why, nested=nested)


# ------------------------------------------------------------------------------------------------ building


def _read_count(store: SquirrelStore, key: str) -> tuple[int, int, int, int] | None:
    """The count record of ``key`` (one request), None if there is none usable (the shard is then decoded)."""
    try:
        return parse_count_record(store.fs.cat_file(store._count_path(key), start=0))
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        if exc.errno == errno.EINVAL:  # an empty count object on S3
            return None
        raise


def describe_shard(store: SquirrelStore, key: str, size: int | None = None) -> ShardEntry:
    """The entry of shard ``key`` as it is on disk: the count file's when its size and gzip trailer match the shard
    (two small reads), else by reading and decoding the shard (a corrupt one raises CorruptShardError naming it)."""
    shard = store._shard_path(key)
    record = _read_count(store, key)
    if record is not None:
        size = store.fs.size(shard) if size is None else size
        if record[1] == size:
            tail = store.fs.cat_file(shard, start=size - 8, end=size)
            if len(tail) == 8 and struct.unpack("<II", tail) == record[2:]:
                return ShardEntry(key, record[0], size, record[2], record[3])
    _, raw = store.read_shard(key)
    samples = store.decode_shard((key, raw))
    return entry_of(key, len(samples), raw)


def shard_files(store: SquirrelStore, nested: bool) -> list[tuple[str, int | None]]:
    """``(key, file size)`` of every shard the store lists (one listing request per folder, sizes included)."""
    prefix = store.root + "/"
    out = []
    for path, size in list_fs_sizes(store.fs, store.root, nested=nested):
        rel = path[len(prefix) :] if path.startswith(prefix) else path.rsplit("/", 1)[-1]
        if rel.endswith(".gz") and not rel.rsplit("/", 1)[-1].startswith("."):
            out.append((rel[: -len(".gz")], size))
    return out


def scan_shards(
    store: SquirrelStore,
    nested: bool = False,
    known: Mapping[str, ShardEntry] | None = None,
    max_workers: int | None = None,
) -> list[ShardEntry]:
    """The entries of every shard in ``store``, in listing order: one listing, then for each shard the entry in
    ``known`` if its size still matches, else :func:`describe_shard` (on ``max_workers`` threads)."""
    if not path_exists(store.fs, store.root, f"the store {store.url}"):
        raise FileNotFoundError(f"{type(store).__name__}: the store {store.url} does not exist (nothing written yet?)")
    files = shard_files(store, nested)
    known = known or {}

    def entry(item: tuple[str, int | None]) -> ShardEntry:
        key, size = item
        mine = known.get(key)
        if mine is not None and mine.size == size:
            return mine
        return describe_shard(store, key, size)

    workers = max_workers or (8 if is_local(store.fs) else 32)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(entry, files))


def build_index(
    store: SquirrelStore,
    nested: bool = False,
    known: Mapping[str, ShardEntry] | None = None,
    max_workers: int | None = None,
) -> ShardTable:
    """Scan ``store`` (see :func:`scan_shards`) and write its index atomically; returns what it holds."""
    entries = scan_shards(store, nested, known, max_workers)
    store._write_meta(index_path(store), encode_index(entries, nested))
    return ShardTable.of(entries, source="index", nested=nested)


class StoreWriter:
    """``with store.writer() as w: w.set(shard)``: writes shards as ``store.set`` does (thread-safe, e.g.
    ``async_map(w.set)``) and, when the block ends without an error, the store index, from what it wrote (no request
    per shard) plus a check of the shards it did not write. After an error the store has no index (readers list)."""

    def __init__(self, store: SquirrelStore, nested: bool = False, index: bool = True, max_workers: int | None = None):
        self.store, self.nested, self.index, self.max_workers = store, nested, index, max_workers
        self.table: ShardTable | None = None  # what the index holds, once written
        self._written: dict[str, ShardEntry] = {}
        self._lock = threading.Lock()
        self._open = False

    def __enter__(self) -> StoreWriter:
        drop_index(self.store)  # first: from here on the store changes
        self._open = True
        return self

    def set(self, value: Any, key: Any = None, compresslevel: int | None = None) -> Any:
        """Write one shard (see ``SquirrelStore.set``); returns its key."""
        if not self._open:
            raise RuntimeError(f"StoreWriter({self.store.url!r}).set: use it inside `with store.writer() as w:`")
        key, entry = self.store._write_shard(value, key, compresslevel)
        with self._lock:
            self._written[entry.key] = entry
        return key

    @property
    def keys(self) -> list[str]:
        """The keys written through this writer, in the order their writes finished."""
        with self._lock:
            return list(self._written)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self._open = False
        if exc_type is None and self.index:
            self.table = build_index(self.store, self.nested, self._written, self.max_workers)


def bindings_match(entry: ShardEntry, raw: bytes) -> str:
    """Why the shard bytes ``raw`` are not the shard ``entry`` describes ("" if they are)."""
    if len(raw) != entry.size:
        return f"{len(raw)} bytes, the index says {entry.size}"
    if struct.unpack("<II", raw[-8:]) != (entry.crc32, entry.isize):
        return "its gzip trailer (CRC32, length) differs from the index's"
    return ""


def check_on_disk(store: SquirrelStore, entry: ShardEntry) -> str:
    """Like :func:`bindings_match` from the shard's size and an 8-byte read of its trailer (for reads that do not
    hold the shard's bytes)."""
    path = store._shard_path(entry.key)
    size = store.fs.size(path)
    if size != entry.size:
        return f"{size} bytes, the index says {entry.size}"
    tail = store.fs.cat_file(path, start=size - 8, end=size)
    return "" if struct.unpack("<II", tail) == (entry.crc32, entry.isize) else "its gzip trailer differs"


def stale_advice(table: ShardTable) -> str:
    """What to do about a shard that does not match the table it was listed from."""
    if table.source == "index":
        return (
            "the store index; the shard changed after the index was written (by something other than squirrel_graph?): "
            "run store.build_index() again, or store.drop_index()"
        )
    return f"the key table from {table.source}; the shard changed since: call driver.list_on_rank0() again"


def corrupt_against(url: str, key: str, why: str, table: ShardTable) -> CorruptShardError:
    """The error for a shard that does not match the table (index or broadcast listing) it was read from."""
    head, _, advice = stale_advice(table).partition("; ")
    return CorruptShardError(f"corrupt shard {url}/{key}.gz: it does not match {head} ({why}); {advice}")


__all__ = [
    "FORMAT",
    "INDEX_NAME",
    "VERSION",
    "IndexUnreadable",
    "ShardEntry",
    "ShardTable",
    "StoreWriter",
    "build_index",
    "decode_index",
    "describe_shard",
    "drop_index",
    "encode_index",
    "index_path",
    "key_table",
    "parse_count_record",
    "read_index",
    "scan_shards",
]
