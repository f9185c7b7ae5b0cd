"""The per-key runtime (one task per shard key, as the dask backend runs it) without a cluster: dask's local
scheduler runs the tasks in this process, so every branch of the task body is visible to the tests."""

from __future__ import annotations

import pytest

from squirrel_graph.driver import MessagepackDriver

pytest.importorskip("dask")


def ident(d):
    return d["i"]


def plus_100(x):
    return x + 100


@pytest.fixture
def store_with_a_corrupt_shard(tmp_path):
    url = str(tmp_path / "store")
    store = MessagepackDriver(url).store
    for k in range(4):
        store.set([{"i": k * 10 + j} for j in range(3)], key=f"s{k}")
    (tmp_path / "store" / "s2.gz").write_bytes(b"not a gzip file")
    return url


def test_skip_corrupt_skips_and_reports_the_shard_in_a_per_key_task(store_with_a_corrupt_shard):
    stream = MessagepackDriver(store_with_a_corrupt_shard).get_iter(skip_corrupt=True).map(ident).map(plus_100)
    per_key = stream.compile(backend="dask")
    assert "dask per key[fetch" in str(per_key.explain(stage="optimized"))
    got = per_key.collect()
    assert got == [100, 101, 102, 110, 111, 112, 130, 131, 132]  # in key order, maps after the fetch applied
    ((key, reason),) = per_key.skipped_shards
    assert key == "s2" and "s2.gz" in reason
    assert got == stream.collect()  # the threaded backend agrees


def test_without_skip_corrupt_the_per_key_task_raises_naming_the_shard(store_with_a_corrupt_shard):
    from squirrel_graph.io.serialization import CorruptShardError

    stream = MessagepackDriver(store_with_a_corrupt_shard).get_iter().map(ident).compile(backend="dask")
    with pytest.raises(CorruptShardError, match="s2.gz"):
        stream.collect()
