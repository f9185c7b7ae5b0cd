"""Fault: a store index that no longer describes the store.

Through squirrel_graph this cannot happen: every write, overwrite or delete of a shard, ``clean=True`` and a bulk
writer delete the index first, before the shard changes, so readers list the store again. A change made outside
squirrel_graph (another tool replacing or deleting a shard) is caught when the shard is fetched: its bytes must match
the size and gzip trailer the index recorded, else CorruptShardError naming the shard (or skipped and reported with
``skip_corrupt=True``).
"""

from __future__ import annotations

import os
import uuid

import counting_fs as cf
import pytest

from squirrel_graph.io import store as store_module
from squirrel_graph.io.drivers import MessagepackDriver
from squirrel_graph.io.serialization import CorruptShardError, MessagepackSerializer, gzip_compress
from squirrel_graph.io.store import FilesystemStore, SquirrelStore
from squirrel_graph.io.store_index import INDEX_NAME

SER = MessagepackSerializer()
WRITES = ("pipe_file", "rm_file", "rm", "open")  # how a change reaches a counting memory filesystem


def indexed(url: str) -> SquirrelStore:
    """Shards s00, s01, s02 holding ids 0..5, and their index."""
    store = SquirrelStore(url, serializer=SER)
    for k in range(3):
        store.set([{"i": 2 * k}, {"i": 2 * k + 1}], key=f"s{k:02d}")
    store.build_index()
    assert store.read_index() is not None
    return store


def _writer(store: SquirrelStore) -> None:
    with store.writer(index=False) as w:  # a bulk write that does not rebuild the index at the end
        w.set([{"i": 100}], key="new")


CHANGES = {
    "set": (lambda st: st.set([{"i": 100}], key="new"), [100, 0, 1, 2, 3, 4, 5]),
    "overwrite": (lambda st: st.set([{"i": 100}, {"i": 101}, {"i": 102}], key="s01"), [0, 1, 100, 101, 102, 4, 5]),
    "delete": (lambda st: st.delete("s01"), [0, 1, 4, 5]),
    "clean_store": (lambda st: SquirrelStore(st.url, serializer=SER, clean=True), None),
    "writer": (_writer, [100, 0, 1, 2, 3, 4, 5]),
    "FilesystemStore.set of a .gz": (
        lambda st: FilesystemStore(st.url).set(gzip_compress(SER.pack_shard([{"i": 100}])), key="new.gz"),
        [100, 0, 1, 2, 3, 4, 5],
    ),
}


@pytest.mark.parametrize("name", list(CHANGES))
def test_every_change_through_squirrel_graph_drops_the_index_first_and_readers_then_list(name):
    url = f"reqmemory://stale-{uuid.uuid4().hex}/store"
    store = indexed(url)
    change, expected = CHANGES[name]
    cf.reset()
    change(store)
    changes = [(op, path) for op, path, _ in cf.calls() if op in WRITES and not (op == "open" and ".gz" in path)]
    assert changes and changes[0] == ("rm_file", f"{store.root}/.squirrel/{INDEX_NAME}"), changes
    assert store.read_index() is None
    cf.reset()
    if expected is None:  # the store is gone
        assert list(SquirrelStore(url, serializer=SER).keys()) == []
        with pytest.raises(FileNotFoundError, match="does not exist"):
            MessagepackDriver(url).get_iter().collect()
        return
    stream = MessagepackDriver(url).get_iter(max_workers=0)
    assert [s["i"] for s in stream.collect()] == expected
    assert any(op == "ls" for op, _, _ in cf.calls())  # listed, not read from an old index
    assert "'keys': 'listing (no index)'" in str(stream.explain(stage="optimized"))


@pytest.mark.parametrize("name", ["set", "overwrite", "delete"])
def test_a_change_that_fails_half_way_has_already_dropped_the_index(tmp_path, monkeypatch, name):
    store = indexed(str(tmp_path / "store"))

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(store_module, "_atomic_write", broken)
    monkeypatch.setattr(store.fs, "rm_file", broken)
    with pytest.raises(OSError, match="disk full"):
        CHANGES[name][0](store)
    assert store.read_index() is None  # the index went before the shard was touched
    assert not (tmp_path / "store" / ".squirrel" / INDEX_NAME).exists()


def _replace_outside(tmp_path, key: str, samples: list, compresslevel: int | None = None) -> None:
    """What another tool does: put a different shard under ``key`` without going through squirrel_graph."""
    payload = gzip_compress(SER.pack_shard(samples), compresslevel)
    tmp = tmp_path / "outside.tmp"
    tmp.write_bytes(payload)
    os.replace(tmp, tmp_path / "store" / f"{key}.gz")


@pytest.mark.parametrize("how", [{}, {"max_workers": 0}, {"get_kwargs": {"unpacker_kwargs": {"use_list": True}}}])
def test_a_shard_replaced_outside_squirrel_graph_is_a_corrupt_shard_naming_it(tmp_path, how):
    url = str(tmp_path / "store")
    indexed(url)
    _replace_outside(tmp_path, "s01", [{"i": 7}] * 5)
    with pytest.raises(CorruptShardError, match=r"store/s01\.gz: it does not match the store index") as info:
        MessagepackDriver(url).get_iter(**how).collect()
    assert "build_index()" in str(info.value)
    stream = MessagepackDriver(url).get_iter(skip_corrupt=True, **how)
    assert [s["i"] for s in stream.collect()] == [0, 1, 4, 5]
    assert [key for key, _ in stream.skipped_shards] == ["s01"]


def test_a_replacement_of_the_same_size_is_caught_by_its_gzip_trailer(tmp_path):
    url = str(tmp_path / "store")
    store = SquirrelStore(url, serializer=SER)
    store.set([b"a" * 100], key="k", compresslevel=0)
    store.build_index()
    size = (tmp_path / "store" / "k.gz").stat().st_size
    _replace_outside(tmp_path, "k", [b"b" * 100], compresslevel=0)  # stored blocks: same size, other content
    assert (tmp_path / "store" / "k.gz").stat().st_size == size
    with pytest.raises(CorruptShardError, match="gzip trailer"):
        MessagepackDriver(url).get_iter().collect()


def test_a_shard_deleted_or_added_outside_squirrel_graph(tmp_path):
    url = str(tmp_path / "store")
    store = indexed(url)
    (tmp_path / "store" / "s02.gz").unlink()
    with pytest.raises(FileNotFoundError, match="no shard 's02'.*listed by the store index"):
        MessagepackDriver(url).get_iter().collect()
    store.build_index()
    _replace_outside(tmp_path, "s03", [{"i": 6}])  # a new shard the index does not know: not read until rebuilt
    assert [s["i"] for s in MessagepackDriver(url).get_iter().collect()] == [0, 1, 2, 3]
    store.build_index()
    assert [s["i"] for s in MessagepackDriver(url).get_iter().collect()] == [0, 1, 2, 3, 6]
