"""What a store driver's ``get_iter()`` lists: the shard keys, the counts ``equalize`` reads and the content bindings
each fetched shard is checked against, from one source per run (the store index, a listing, or a table rank 0
broadcast), so that a reader makes one request at epoch start when the store has an index.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from squirrel_graph.io.fs import is_local
from squirrel_graph.io.store_index import (
    ShardEntry,
    ShardTable,
    bindings_match,
    check_on_disk,
    corrupt_against,
    describe_shard,
    key_table,
    shard_files,
    stale_advice,
)

#: ``equalize`` lists the keys, counts them, then the stream lists them again: that second listing reuses the table
#: (one request per reader, and one snapshot) if equalize counted it and it was read less than this many seconds ago
#: in this process. A table serves at most two listings: the next one reads the store again.
HANDOFF_S = 10.0


class StoreListing:
    """The key source of a store driver's ``get_iter()``: calling it returns this run's keys; :meth:`count` gives
    ``equalize`` their sample counts; :meth:`bind_fetchers` makes fetches check each shard against the table the keys
    came from. Picklable: a DataLoader worker gets it without any table and reads its own."""

    def __init__(self, driver: Any, nested: bool = False, missing_ok: bool = False) -> None:
        self.driver, self.nested, self.missing_ok = driver, nested, missing_ok
        self._reset()

    def _reset(self) -> None:
        self._current: ShardTable | None = None  # the table of this process's latest run
        self._loaded: tuple[int, float] = (0, 0.0)  # (pid, monotonic time) when _current was read
        self._reusable = False  # equalize counted _current, which no second listing has reused yet
        self._reused = False
        self._counted_from = ""

    def __getstate__(self) -> dict[str, Any]:
        return {"driver": self.driver, "nested": self.nested, "missing_ok": self.missing_ok}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset()

    def __repr__(self) -> str:
        return f"StoreListing({self.driver._describe()})"

    def __call__(self) -> Iterator[str]:
        table, reusable, self._reusable = self._current, self._reusable, False
        pid, read_at = self._loaded
        if table is not None and reusable and pid == os.getpid() and time.monotonic() - read_at < HANDOFF_S:
            self._reused = True  # the stream's listing right after equalize's: the same table
        else:
            table = self._load()
            self._loaded, self._reused, self._counted_from = (os.getpid(), time.monotonic()), False, ""
        self._current = table
        return iter(table.keys)

    def _load(self) -> ShardTable:
        shared = getattr(self.driver, "shared_listing", None)
        if shared is not None:
            table = shared.for_nested(self.nested)
            if table is not None:
                return table
        store = self.driver.store
        return key_table(store, self.nested, self.missing_ok, store.use_index)

    def count(self, key: Any) -> int:
        """The number of samples of shard ``key``: from this run's table when it has counts (index, rank 0), else
        from the store's count files (``SquirrelStore.count``)."""
        table = self._current
        if not self._reused:
            self._reusable = True
        n = table.count(key) if table is not None else None
        if n is not None:
            self._counted_from = table.source  # type: ignore[union-attr]
            return n
        self._counted_from = "count files"
        return self.driver.store.count(key)

    def explain_params(self) -> dict[str, Any]:
        """How the latest run in this process got its keys and counts (empty before one)."""
        table = self._current
        if table is None:
            return {}
        out = {"keys": table.describe()}
        if self._counted_from:
            out["counts"] = self._counted_from
        return out

    # ------------------------------------------------------------------------------------------- fetch checks

    def _entry(self, key: Any) -> tuple[ShardTable | None, ShardEntry | None]:
        table = self._current
        return table, (table.entry(key) if table is not None else None)

    def read(self, read: Any, key: Any) -> tuple[Any, bytes]:
        """``read(key)``; a shard the table lists but the store lacks says so."""
        try:
            return read(key)
        except FileNotFoundError as exc:
            table, entry = self._entry(key)
            if entry is None or table is None:
                raise
            raise FileNotFoundError(f"{exc}; it is listed by {stale_advice(table)}") from exc

    def decode(self, decode: Any, key_and_raw: tuple[Any, bytes]) -> list[Any]:
        """``decode((key, raw))`` once the bytes match the table's binding (else CorruptShardError naming them)."""
        key, raw = key_and_raw
        table, entry = self._entry(key)
        if entry is not None and table is not None:
            why = bindings_match(entry, raw)
            if why:
                raise corrupt_against(self.driver.store.url, entry.key, why, table)
        return decode(key_and_raw)

    def fetch(self, read: Any, decode: Any, key: Any) -> list[Any]:
        return decode(read(key))

    def fetch_checked_on_disk(self, fetch: Any, key: Any) -> Any:
        """``fetch(key)`` after checking the shard's size and trailer on disk (for fetches that decode as they read)."""
        table, entry = self._entry(key)
        if entry is not None and table is not None:
            why = check_on_disk(self.driver.store, entry)
            if why:
                raise corrupt_against(self.driver.store.url, entry.key, why, table)
        return fetch(key)

    def bind_fetchers(self, fetch: Any, read: Any, decode: Any) -> tuple[Any, Any, Any]:
        """``(fetch, read, decode)`` that check each shard against the table of its run (bytes read anyway; no extra
        request unless the fetch cannot hand over the shard's bytes)."""
        if read is None or decode is None:
            return functools.partial(self.fetch_checked_on_disk, fetch), read, decode
        read = functools.partial(self.read, read)
        decode = functools.partial(self.decode, decode)
        return functools.partial(self.fetch, read, decode), read, decode


# ------------------------------------------------------------------------------------------------ rank 0 listing


def scan_table(driver: Any, nested: bool, counts: bool, max_workers: int | None = None) -> ShardTable:
    """The keys (and counts and bindings, with ``counts``) of the driver's store as one process gets them: from the
    index if there is one (one request), else by listing and, with ``counts``, reading each shard's count file."""
    store = driver.store
    table = key_table(store, nested, missing_ok=False, use_index=store.use_index)
    if table.has_counts or not counts:
        return table
    sizes = dict(shard_files(store, nested))
    workers = max_workers or (8 if is_local(store.fs) else 32)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        entries = list(pool.map(lambda k: describe_shard(store, k, sizes.get(k)), table.keys))
    return ShardTable.of(entries, source="listing", note=table.note, nested=nested)


def list_on_rank0(driver: Any, nested: bool = False, counts: bool = True, group: Any = None) -> ShardTable:
    """A collective: rank 0 of ``group`` gets the store's keys (and counts) and broadcasts them; every rank's driver
    then lists from that table (see ``StoreDriver.list_on_rank0``). Without an initialised process group this
    process is rank 0 of 1."""
    dist = _dist()
    active = dist is not None and dist.is_available() and dist.is_initialized()
    rank, world = (dist.get_rank(group), dist.get_world_size(group)) if active else (0, 1)
    payload: Any = None
    error: BaseException | None = None
    if rank == 0:
        try:
            table = scan_table(driver, nested, counts)
            note = f"broadcast by rank 0 of {world}: {table.describe()}"
            payload = ("ok", ShardTable(table.keys, table.columns, source="rank 0", note=note, nested=nested))
        except Exception as exc:  # the other ranks must not wait forever for a table that never comes
            error, payload = exc, ("error", f"{type(exc).__name__}: {exc}")
    if active and world > 1:
        box = [payload]
        src = 0 if group is None else dist.get_global_rank(group, 0)
        dist.broadcast_object_list(box, src=src, group=group)
        payload = box[0]
    if error is not None:
        raise error
    if payload[0] == "error":
        raise RuntimeError(f"{driver._describe()}.list_on_rank0(): rank 0 could not list the store: {payload[1]}")
    driver.use_listing(payload[1])
    return payload[1]


def _dist() -> Any:
    """``torch.distributed`` if this process imported torch (a process group needs it), else None."""
    torch = sys.modules.get("torch")
    return None if torch is None else torch.distributed


__all__ = ["HANDOFF_S", "StoreListing", "list_on_rank0", "scan_table"]
