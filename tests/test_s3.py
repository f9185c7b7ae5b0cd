"""A real object-store round trip: moto's S3 server on 127.0.0.1, through s3fs (and simplecache)."""

from __future__ import annotations

import numpy as np
import pytest

from squirrel_graph import IterableSource
from squirrel_graph.io.drivers import MessagepackDriver
from squirrel_graph.io.serialization import CorruptShardError


def make(i):
    return {"i": i, "v": np.arange(4, dtype=np.int32) + i}


def test_write_and_read_a_store_on_s3(s3_options):
    bucket, options = s3_options
    url = f"s3://{bucket}/store"
    store = MessagepackDriver(url, storage_options=options).store
    keys = IterableSource(range(40)).map(make).batched(8).async_map(store.set, max_workers=4).collect()
    assert len(keys) == 5
    driver = MessagepackDriver(url, storage_options=options)
    assert sorted(driver.keys()) == sorted(keys)
    got = driver.get_iter(max_workers=4).collect()
    assert sorted(s["i"] for s in got) == list(range(40))
    assert all(np.array_equal(s["v"], np.arange(4, dtype=np.int32) + s["i"]) for s in got)


def test_chained_simplecache_url_caches_locally(s3_options, tmp_path):
    bucket, options = s3_options
    MessagepackDriver(f"s3://{bucket}/c", storage_options=options).store.set([make(1), make(2)], key="k")
    cache = tmp_path / "cache"
    so = {"s3": options, "simplecache": {"cache_storage": str(cache)}}
    got = MessagepackDriver(f"simplecache::s3://{bucket}/c", storage_options=so).get_iter().collect()
    assert [s["i"] for s in got] == [1, 2]
    assert any(cache.iterdir())  # the shard was cached on local disk


def test_squirrel_core_style_caching_storage_options(s3_options, tmp_path):
    bucket, options = s3_options
    MessagepackDriver(f"s3://{bucket}/d", storage_options=options).store.set([make(3)], key="k")
    so = {
        "protocol": "simplecache",
        "target_protocol": "s3",
        "target_options": options,
        "cache_storage": str(tmp_path / "c2"),
    }
    assert [s["i"] for s in MessagepackDriver(f"s3://{bucket}/d", storage_options=so).get_iter().collect()] == [3]


def test_corrupt_object_on_s3_names_its_url(s3_options):
    import s3fs

    bucket, options = s3_options
    url = f"s3://{bucket}/bad"
    MessagepackDriver(url, storage_options=options).store.set([make(0)], key="a")
    fs = s3fs.S3FileSystem(**options)
    fs.pipe(f"{bucket}/bad/b.gz", b"garbage")
    with pytest.raises(CorruptShardError, match=f"s3://{bucket}/bad/b.gz"):
        MessagepackDriver(url, storage_options=options).get_iter().collect()


def _read_in_child(stream, queue):
    queue.put(sorted(s["i"] for s in stream.collect()))


def test_a_stream_used_in_the_parent_still_reads_in_a_forked_child(s3_options):
    import multiprocessing

    bucket, options = s3_options
    url = f"s3://{bucket}/forked"
    driver = MessagepackDriver(url, storage_options=options)
    driver.store.set([make(1), make(2)], key="a")
    stream = driver.get_iter(max_workers=2)
    assert sorted(s["i"] for s in stream.collect()) == [1, 2]  # the parent has created its filesystem
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_read_in_child, args=(stream, queue))
    child.start()
    got = queue.get(timeout=60)
    child.join(timeout=60)
    assert got == [1, 2] and child.exitcode == 0
