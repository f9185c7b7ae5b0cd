"""Stores and drivers: get_iter plans and arguments, atomic and concurrent writes, corrupt shards, bad input."""

from __future__ import annotations

import functools
import gzip
import logging
import os
import pickle
import signal
import subprocess
import sys
import time
from collections import Counter

import numpy as np
import pytest

from squirrel_graph import Composable, IterableSource
from squirrel_graph.io.drivers import FileDriver, MessagepackDriver
from squirrel_graph.io.serialization import CorruptShardError, SerializationError
from squirrel_graph.io.store import FilesystemStore, SquirrelStore
from squirrel_graph.iterstream.iterators import take_

N_SHARDS, PER_SHARD = 6, 5


def sample(i):
    return {"i": i, "x": np.full(3, i, dtype=np.float32)}


def write_store(url, n_shards=N_SHARDS, per_shard=PER_SHARD, **so):
    store = MessagepackDriver(url, storage_options=so).store
    for s in range(n_shards):
        store.set([sample(s * per_shard + j) for j in range(per_shard)], key=f"shard-{s:02d}")
    return url


def ids(samples):
    return [s["i"] for s in samples]


@pytest.fixture
def store_url(tmp_path):
    return write_store(str(tmp_path / "store"))


def test_get_iter_plan_has_keys_fetch_flatten_nodes_and_fuses_after_fetch(store_url):
    stream = MessagepackDriver(store_url).get_iter().map(dict).filter(bool)
    text = str(stream.explain())
    assert "0:keys" in text and "fetch(MessagepackDriver(" in text
    assert "[fuse_maps] fused 3:flatten, 5:map, 6:filter" in text  # flatten after the fetch fuses with maps
    assert ids(stream.collect()) == list(range(N_SHARDS * PER_SHARD))


@pytest.mark.parametrize("max_workers", [0, 1, None, 8])
@pytest.mark.parametrize("prefetch_buffer", [0, 1, 10])
def test_get_iter_worker_and_prefetch_combinations_keep_order(store_url, max_workers, prefetch_buffer):
    stream = MessagepackDriver(store_url).get_iter(max_workers=max_workers, prefetch_buffer=prefetch_buffer)
    assert ids(stream.collect()) == list(range(N_SHARDS * PER_SHARD))
    fetch = stream.explain().compiled.optimized
    fetch_nodes = [n for _, n in fetch.items() if n.kind == "fetch"]
    parallel = max_workers is None or max_workers > 1
    assert fetch_nodes[0].parallel == parallel
    assert ("decode_workers" in str(stream.explain())) == parallel  # I/O and decoding on separate pools


def drop_first_key(keys):
    it = iter(keys)
    next(it, None)
    yield from it


class EveryOtherKey(Composable):
    def __iter__(self):
        for i, k in enumerate(self.source):
            if i % 2 == 0:
                yield k


def test_key_hooks_as_functions_partials_and_composable_classes(store_url):
    driver = MessagepackDriver(store_url)
    assert ids(driver.get_iter(key_hooks=[drop_first_key]).collect()) == list(range(PER_SHARD, N_SHARDS * PER_SHARD))
    two = driver.get_iter(key_hooks=[functools.partial(take_, n=2)]).collect()
    assert ids(two) == list(range(2 * PER_SHARD))
    every_other = ids(driver.get_iter(key_hooks=[EveryOtherKey]).collect())
    assert every_other == [i for i in range(N_SHARDS * PER_SHARD) if (i // PER_SHARD) % 2 == 0]
    with pytest.raises(ValueError, match="key_hooks"):
        driver.get_iter(key_hooks=[42])


def test_keys_are_listed_lazily_and_sorted(tmp_path):
    url = str(tmp_path / "lazy")
    stream = MessagepackDriver(url).get_iter()  # nothing exists yet: building the stream touches nothing
    assert not os.path.exists(url)
    store = SquirrelStore(url, MessagepackDriver(url).serializer)
    for key in ("b", "10", "a", "2"):
        store.set([{"k": key}], key=key)
    assert list(store.keys()) == ["10", "2", "a", "b"]
    assert [s["k"] for s in stream.collect()] == ["10", "2", "a", "b"]


def test_flatten_false_yields_whole_shards_and_shuffles_are_seeded(store_url):
    driver = MessagepackDriver(store_url)
    shards = driver.get_iter(flatten=False).collect()
    assert [len(s) for s in shards] == [PER_SHARD] * N_SHARDS and isinstance(shards[0], list)
    kwargs = dict(
        shuffle_key_buffer=4, key_shuffle_kwargs={"seed": 1}, shuffle_item_buffer=8, item_shuffle_kwargs={"seed": 2}
    )
    a, b = driver.get_iter(**kwargs).collect(), driver.get_iter(**kwargs).collect()
    assert ids(a) == ids(b) != list(range(N_SHARDS * PER_SHARD))
    assert sorted(ids(a)) == list(range(N_SHARDS * PER_SHARD))


def test_memory_and_file_urls(tmp_path):
    for url in ("memory://sg-test-store", f"file://{tmp_path}/viafile"):
        write_store(url, n_shards=2)
        assert ids(MessagepackDriver(url).get_iter().collect()) == list(range(2 * PER_SHARD))


def test_documented_parallel_write_path_loses_nothing(tmp_path):
    url = str(tmp_path / "parallel")
    store = MessagepackDriver(url).store
    keys = (
        IterableSource(range(997))
        .map(sample)
        .batched(10, drop_last_if_not_full=False)
        .async_map(store.set, max_workers=8)
        .collect()
    )
    assert len(keys) == len(set(keys)) == 100
    assert sorted(store.keys()) == sorted(keys)
    assert Counter(ids(MessagepackDriver(url).get_iter().collect())) == Counter(range(997))


def test_failed_write_leaves_no_shard_and_keeps_earlier_ones(tmp_path):
    url = str(tmp_path / "atomic")
    store = MessagepackDriver(url).store
    store.set([sample(0)], key="good")
    bad = [sample(1), {"obj": np.array([None], dtype=object)}]
    with pytest.raises(SerializationError):
        store.set(bad, key="bad")
    with pytest.raises(SerializationError):
        store.set([{"s": {1, 2}}], key="bad2")
    assert list(store.keys()) == ["good"]
    files = sorted(os.path.relpath(os.path.join(d, f), url) for d, _, fs in os.walk(url) for f in fs)
    assert files == [".squirrel/counts/good", "good.gz"]  # no temporary file left behind either
    assert ids(MessagepackDriver(url).get_iter().collect()) == [0]


WRITER = """
import sys, numpy as np
from squirrel_graph.io.drivers import MessagepackDriver
store = MessagepackDriver(sys.argv[1]).store
i = 0
while True:
    store.set([{"i": i, "blob": np.random.default_rng(i).random(200_000)}], key=f"k{i:05d}")
    i += 1
"""


@pytest.mark.slow
def test_killed_writer_never_leaves_a_truncated_shard(tmp_path):
    url = str(tmp_path / "killed")
    proc = subprocess.Popen([sys.executable, "-c", WRITER, url])
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            if os.path.isdir(url) and len([n for n in os.listdir(url) if n.endswith(".gz")]) >= 3:
                break
            time.sleep(0.05)
        time.sleep(0.13)  # kill somewhere in the middle of a later write
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    keys = list(SquirrelStore(url, MessagepackDriver(url).serializer).keys())
    assert len(keys) >= 3
    out = MessagepackDriver(url).get_iter().collect()  # every listed shard reads completely
    assert [s["i"] for s in out] == list(range(len(keys)))
    assert all(s["blob"].shape == (200_000,) for s in out)


def corrupt(url, key, how):
    path = os.path.join(url, f"{key}.gz")
    data = open(path, "rb").read()
    if how == "truncated":
        data = data[: len(data) // 2]
    elif how == "garbage":
        data = b"this is not gzip at all"
    elif how == "bad-msgpack":
        data = gzip.compress(b"\xc1\xc1\xc1 not msgpack")
    elif how == "cut-msgpack":
        raw = gzip.decompress(data)
        data = gzip.compress(raw[:-7])
    with open(path, "wb") as f:
        f.write(data)
    return path


@pytest.mark.parametrize("how", ["truncated", "garbage", "bad-msgpack", "cut-msgpack"])
@pytest.mark.parametrize("max_workers", [0, 4])
def test_corrupt_shard_raises_naming_it_after_earlier_items(store_url, how, max_workers):
    corrupt(store_url, "shard-02", how)
    got = []
    with pytest.raises(CorruptShardError, match="shard-02.gz") as info:
        for s in MessagepackDriver(store_url).get_iter(max_workers=max_workers):
            got.append(s["i"])
    assert got == list(range(2 * PER_SHARD))
    assert store_url in str(info.value)


def test_skip_corrupt_logs_counts_and_reads_all_other_shards(store_url, caplog):
    corrupt(store_url, "shard-01", "garbage")
    corrupt(store_url, "shard-04", "truncated")
    stream = MessagepackDriver(store_url).get_iter(skip_corrupt=True)
    with caplog.at_level(logging.WARNING, logger="squirrel_graph"):
        got = ids(stream.collect())
    expected = [i for i in range(N_SHARDS * PER_SHARD) if i // PER_SHARD not in (1, 4)]
    assert got == expected
    assert [k for k, _ in stream.skipped_shards] == ["shard-01", "shard-04"]
    assert sum("skipping corrupt shard" in r.message for r in caplog.records) == 2
    assert "skip_corrupt" in str(stream.explain())


def test_missing_store_url_and_key_name_them(tmp_path):
    missing = str(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="nope"):
        MessagepackDriver(missing).get_iter().collect()
    with pytest.raises(ValueError, match="url"):
        MessagepackDriver("")
    url = write_store(str(tmp_path / "s"), n_shards=1)
    with pytest.raises(FileNotFoundError, match="'absent'") as info:
        list(MessagepackDriver(url).store.get("absent"))
    assert url in str(info.value)


def test_store_does_not_create_directories_until_written_and_clean_wipes(tmp_path):
    url = str(tmp_path / "later")
    store = SquirrelStore(url, MessagepackDriver(url).serializer)
    assert not os.path.exists(url)
    store.set([1], key="a")
    assert os.path.exists(url)
    SquirrelStore(url, MessagepackDriver(url).serializer, clean=True)
    assert not os.path.exists(url)


def test_tuple_is_one_sample_and_get_is_lazy(tmp_path):
    store = MessagepackDriver(str(tmp_path)).store
    store.set((1, 2), key="t")
    assert list(store.get("t")) == [(1, 2)]
    gen = store.get("missing-key")  # a generator: nothing read until advanced
    with pytest.raises(FileNotFoundError):
        next(gen)


def test_filesystem_store_creates_directories_and_round_trips(tmp_path):
    fs_store = FilesystemStore(str(tmp_path / "deep" / "er"))
    fs_store.set(b"payload", key="blob")
    assert fs_store.get("blob") == b"payload"
    assert list(fs_store.keys()) == ["blob"]


def test_file_driver_opens_and_creates(tmp_path):
    path = str(tmp_path / "sub" / "f.txt")
    with FileDriver(path).open("w", create_if_not_exists=True) as f:
        f.write("hi")
    with FileDriver(path).open() as f:
        assert f.read() == "hi"


def test_driver_streams_pickle_without_filesystem_handles(store_url):
    driver = MessagepackDriver(store_url)
    _ = driver.store.fs  # created in this process
    stream = driver.get_iter(max_workers=2).map(dict)
    clone = pickle.loads(pickle.dumps(stream))
    assert ids(clone.collect()) == ids(stream.collect()) == list(range(N_SHARDS * PER_SHARD))


def test_unknown_driver_kwargs_warn_instead_of_vanishing(tmp_path):
    with pytest.warns(UserWarning, match="max_worker"):
        MessagepackDriver(str(tmp_path), max_worker=4)
