"""The store index: one versioned object per store that readers fetch with one request instead of listing the store
and reading a count file per shard, on real fsspec filesystems (local disk, memory, S3 on a local moto server) behind
a wrapper that counts every request (``tests/counting_fs.py``)."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import struct
import subprocess
import sys
import uuid
from pathlib import Path

import counting_fs as cf
import pytest

from squirrel_graph import IterableSource
from squirrel_graph.graph import KeySource
from squirrel_graph.io.drivers import MessagepackDriver
from squirrel_graph.io.serialization import CorruptShardError, MessagepackSerializer
from squirrel_graph.io.store import SquirrelStore
from squirrel_graph.io.store_index import INDEX_NAME, ShardTable, decode_index
from squirrel_graph.iterstream.source import FilePathGenerator

SER = MessagepackSerializer()
ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "squirrel-core-0.20.2-store" / "messagepack"
CORE_PYTHON = ROOT / ".venv-squirrel-core" / "bin" / "python"


def write(url: str, sizes: list[int], start: int = 0, **so) -> SquirrelStore:
    """Shards ``s00, s01, ...`` of the given sizes holding consecutive ids ``{"i": ...}``; returns the store."""
    store = MessagepackDriver(url, storage_options=so).store
    for k, n in enumerate(sizes):
        store.set([{"i": start + j} for j in range(n)], key=f"s{k:02d}")
        start += n
    return store


def ids(samples) -> list[int]:
    return [s["i"] for s in samples]


@pytest.fixture(params=["local", "memory", "s3"])
def counted(request, tmp_path):
    """(URL, storage options) of a fresh store on a counting filesystem: local disk, memory, or S3 (moto)."""
    if request.param == "local":
        return f"reqfile://{tmp_path}/store", {}
    if request.param == "memory":
        return f"reqmemory://m-{uuid.uuid4().hex}/store", {}
    bucket, options = request.getfixturevalue("s3_options")
    return f"s3://{bucket}/store", {**options, "protocol": "reqs3"}


def index_file(url: str) -> str:
    """The path of the store's index as the filesystem names it (memory:// paths begin with "/", s3 ones do not)."""
    return url.split("://", 1)[-1].lstrip("/") + f"/.squirrel/{INDEX_NAME}"


def index_reads(log: list[tuple[str, str, bool]], url: str) -> list[tuple[str, str, bool]]:
    """The calls in ``log`` normalized for comparison with ``[("cat_file", index_file(url), True)]``."""
    return [(op, path.lstrip("/"), ranged) for op, path, ranged in log]


# ------------------------------------------------------------------------------------------------ the format


def test_build_index_writes_one_versioned_object_that_no_listing_shows(tmp_path):
    url = str(tmp_path / "store")
    store = write(url, [2, 3, 1])
    store.set([{"i": 9}], key="sub/deep")
    table = store.build_index()
    path = tmp_path / "store" / ".squirrel" / INDEX_NAME
    assert not path.name.endswith(".gz")  # squirrel-core's nested listing must never take it for a shard
    doc = json.loads(gzip.decompress(path.read_bytes()))
    assert (doc["format"], doc["version"], doc["nested"]) == ("squirrel_graph.store_index", 1, False)
    assert doc["keys"] == ["s00", "s01", "s02"] == table.keys and doc["samples_per_shard"] == [2, 3, 1]
    assert (doc["shards"], doc["samples"]) == (3, 6)
    raw = (tmp_path / "store" / "s01.gz").read_bytes()
    assert (doc["size"][1], doc["crc32"][1], doc["isize"][1]) == (len(raw), *struct.unpack("<II", raw[-8:]))
    assert list(store.keys()) == ["s00", "s01", "s02"] == list(store.listed_keys())
    assert list(store.keys(nested=True)) == ["s00", "s01", "s02", "sub/deep"]  # beyond this index: listed
    assert not any(".squirrel" in p for p in FilePathGenerator(url, nested=True).collect())
    assert ids(MessagepackDriver(url).get_iter().collect()) == list(range(6))


def test_an_index_of_another_version_or_damaged_is_ignored_and_the_store_listed(tmp_path, caplog):
    url = str(tmp_path / "store")
    store = write(url, [2, 2])
    store.build_index()
    path = tmp_path / "store" / ".squirrel" / INDEX_NAME
    doc = json.loads(gzip.decompress(path.read_bytes()))
    variants = {
        "version 2": gzip.compress(json.dumps({**doc, "version": 2, "keys": ["ghost"]}).encode()),
        "column too short": gzip.compress(json.dumps({**doc, "size": doc["size"][:1]}).encode()),
        "not gzip": b"{}",
        "another format": gzip.compress(json.dumps({**doc, "format": "webdataset"}).encode()),
        "negative count": gzip.compress(json.dumps({**doc, "samples_per_shard": [-1, 2]}).encode()),
    }
    for name, payload in variants.items():
        path.write_bytes(payload)
        caplog.clear()
        stream = MessagepackDriver(url).get_iter()
        assert ids(stream.collect()) == [0, 1, 2, 3], name
        assert "listing the store instead" in caplog.text, name
        plan = str(stream.explain(stage="optimized"))
        assert "'keys': " in plan and "listing (index ignored: " in plan, name
    with pytest.raises(ValueError, match="format version 2"):
        decode_index(variants["version 2"], "x")


def test_keys_of_squirrel_core_stores_and_nested_indexes(tmp_path):
    url = str(tmp_path / "core")
    shutil.copytree(FIXTURE, url)
    store = SquirrelStore(url, serializer=SER)
    table = store.build_index()  # no count files: each shard is decoded once to count it
    assert [e.samples for e in table.entries] == [len(store.get_shard(k)) for k in store.listed_keys()]
    nested = write(str(tmp_path / "nested"), [1, 1])
    nested.set([{"i": 5}], key="sub/x")
    nested.build_index(nested=True)
    cf.reset()
    assert list(nested.keys(nested=True)) == ["s00", "s01", "sub/x"]
    assert list(nested.keys()) == ["s00", "s01"]  # top-level shards, from the same index
    assert nested.read_index().nested is True


# ------------------------------------------------------------------------------------------------ requests


def test_a_reader_with_the_index_makes_one_request_at_epoch_start_whatever_the_store_size(counted):
    url, so = counted
    for n in (3, 12):
        store_url = f"{url}-{n}"
        write(store_url, [2] * n, **so).build_index()
        cf.reset()
        got = MessagepackDriver(store_url, storage_options=so).get_iter(max_workers=2).collect()
        assert sorted(ids(got)) == list(range(2 * n))
        start = cf.epoch_start(cf.calls())
        assert index_reads(start, store_url) == [("cat_file", index_file(store_url), True)], start
        if so.get("protocol") != "reqs3":  # (s3 shard reads go to s3fs's coroutine, to bound them in time)
            assert sum(cf.is_shard_read(*row) for row in cf.calls()) == n  # one read per shard, as without an index
        cf.reset()
        assert list(SquirrelStore(store_url, serializer=SER, **so).keys()) == [f"s{k:02d}" for k in range(n)]
        assert len(cf.calls()) == 1


def test_without_an_index_a_reader_lists_and_the_requests_grow_with_the_store(counted):
    url, so = counted
    store = write(url, [2] * 5, **so)
    cf.reset()
    assert len(MessagepackDriver(url, storage_options=so).get_iter().collect()) == 10
    start = cf.epoch_start(cf.calls())
    assert index_reads(start, url)[0] == ("cat_file", index_file(url), True)  # a look for an index, then a listing
    assert any(op == "ls" for op, _, _ in start) and len(start) >= 3
    cf.reset()
    counts = [SquirrelStore(url, serializer=SER, **so).count(f"s{k:02d}") for k in range(5)]
    assert counts == [2] * 5 and len(cf.calls()) >= 2 * 5  # a count file and a trailer per shard
    store.build_index()
    cf.reset()
    assert len(MessagepackDriver(url, storage_options=so).get_iter().collect()) == 10
    assert len(cf.epoch_start(cf.calls())) == 1


def test_s3_reader_with_the_index_sends_one_http_request_before_fetching(s3_options):
    bucket, options = s3_options
    url = f"s3://{bucket}/store"
    write(url, [3] * 6, **options).build_index()
    driver = MessagepackDriver(url, storage_options=options)
    fs = driver.store.fs
    fs.ls(bucket)  # connects the client
    sent: list[str] = []
    fs.s3.meta.events.register("before-send.s3", lambda request, **kw: sent.append(f"{request.method} {request.url}"))
    assert len(driver.get_iter(max_workers=0).collect()) == 18
    before_fetch = [r for r in sent if ".gz" not in r.split("?")[0] or INDEX_NAME in r]
    assert len(before_fetch) == 1 and before_fetch[0].startswith("GET ") and INDEX_NAME in before_fetch[0], sent
    fs.s3.meta.events.unregister("before-send.s3")


def _rank_stream(driver, rank: int, world: int, monkeypatch, **get_iter):
    torch = pytest.importorskip("torch")
    dist = torch.distributed
    monkeypatch.setattr(dist, "is_available", lambda: True)
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_rank", lambda group=None: rank)
    monkeypatch.setattr(dist, "get_world_size", lambda group=None: world)
    stream = driver.get_iter(**get_iter).split_by_rank_pytorch(equalize="drop")
    monkeypatch.undo()
    return stream


def test_equalize_counts_come_from_the_index_in_the_same_single_request(tmp_path, monkeypatch):
    url = f"reqfile://{tmp_path}/store"
    write(url, [3, 4, 5, 6, 7]).build_index()
    per_rank, starts = [], []
    for rank in (0, 1):
        stream = _rank_stream(MessagepackDriver(url), rank, 2, monkeypatch, max_workers=0)
        cf.reset()
        per_rank.append(ids(stream.collect()))
        starts.append(cf.epoch_start(cf.calls()))
        plan = str(stream.explain(stage="optimized"))
        assert "'counts': 'index'" in plan and "'keys': 'index (" in plan
    assert len(per_rank[0]) == len(per_rank[1]) == 10  # min(3 + 5 + 7, 4 + 6)
    assert set(per_rank[0]).isdisjoint(per_rank[1])
    assert [index_reads(s, url) for s in starts] == [[("cat_file", index_file(url), True)]] * 2  # keys and counts


def test_each_epoch_reads_the_index_again_and_sees_a_write_in_between(tmp_path, monkeypatch):
    url = f"reqfile://{tmp_path}/store"
    store = write(url, [2, 2, 2, 2])
    store.build_index()
    stream = _rank_stream(MessagepackDriver(url), 0, 2, monkeypatch, max_workers=0)
    cf.reset()
    assert len(stream.collect()) == 4 and len(stream.collect()) == 4
    assert len(cf.epoch_start(cf.calls())) == 2  # one per epoch, never a table kept from the epoch before
    store.set([{"i": 100}, {"i": 101}], key="s04")  # drops the index: the next epoch lists and counts
    store.set([{"i": 102}, {"i": 103}], key="s05")
    cf.reset()
    assert len(stream.collect()) == 6  # rank 0: s00 + s02 + s04, rank 1: s01 + s03 + s05
    plan = str(stream.explain(stage="optimized"))
    assert "'keys': 'listing (no index)'" in plan and "'counts': 'count files'" in plan
    assert any(op == "ls" for op, _, _ in cf.epoch_start(cf.calls()))


def test_a_table_serves_at_most_two_listings_and_then_is_read_again(tmp_path):
    url = f"reqfile://{tmp_path}/store"
    write(url, [1, 2, 3]).build_index()
    (listing,) = [n.source for _, n in MessagepackDriver(url).get_iter().plan.items() if isinstance(n, KeySource)]
    cf.reset()
    assert list(listing()) == ["s00", "s01", "s02"] and listing.count("s01") == 2
    assert list(listing()) == ["s00", "s01", "s02"]  # the stream's listing after equalize's: the same table
    assert len(cf.calls()) == 1
    list(listing())  # the next run reads again
    assert len(cf.calls()) == 2
    listing.count("s00")
    list(listing())  # reused once
    listing.count("s00")
    list(listing())  # never a third time, even right after counting
    assert len(cf.calls()) == 3


def test_explain_says_how_keys_and_counts_were_obtained(tmp_path):
    url = str(tmp_path / "store")
    write(url, [1, 2]).build_index()
    stream = MessagepackDriver(url).get_iter()
    assert "'keys'" not in str(stream.explain(stage="optimized"))  # before a run nothing is known
    stream.collect()
    assert "{'keys': 'index (index.json.gzip, 1 read, 2 shards)'}" in str(stream.explain(stage="optimized"))
    off = MessagepackDriver(url, use_index=False).get_iter()
    off.collect()
    assert "{'keys': 'listing (use_index=False)'}" in str(off.explain(stage="optimized"))
    assert list(SquirrelStore(url, serializer=SER, use_index=False).keys()) == ["s00", "s01"]


# ------------------------------------------------------------------------------------------------ bulk writes


def test_a_writer_context_writes_the_index_from_what_it_wrote_without_reading_shards(tmp_path):
    url = f"reqmemory://w-{uuid.uuid4().hex}/store"
    store = write(url, [2])  # a shard this writer did not write: checked against its count file and trailer
    with store.writer() as w:
        keys = IterableSource(range(40)).map(lambda i: {"i": i}).batched(8).async_map(w.set, max_workers=4).collect()
        cf.reset()
    reads = [row for row in cf.calls() if row[0] in cf.READS]
    assert not any(path.endswith(k + ".gz") and not ranged for k in keys for _, path, ranged in reads)
    assert not any("/counts/" + k in path for k in keys for _, path, _ in reads)  # its own shards: no request
    assert any(path.endswith("/counts/s00") for _, path, _ in reads)  # the other shard: its count file
    assert sorted(w.keys) == sorted(keys) and len(w.table.keys) == 6
    assert sum(e.samples for e in w.table.entries) == 42
    assert sorted(store.read_index().keys) == sorted([*keys, "s00"])
    with pytest.raises(RuntimeError, match="inside `with store.writer"):
        w.set([{"i": 1}])


def test_a_writer_that_raises_leaves_no_index(tmp_path):
    url = str(tmp_path / "store")
    store = write(url, [2])
    store.build_index()
    with pytest.raises(ZeroDivisionError), store.writer() as w:
        w.set([{"i": 7}], key="new")
        assert store.read_index() is None  # dropped when the writer opened
        1 / 0  # noqa: B018
    assert store.read_index() is None and list(store.keys()) == ["new", "s00"]


def test_build_index_refuses_a_corrupt_shard_naming_it_and_writes_nothing(tmp_path):
    url = str(tmp_path / "store")
    write(url, [2, 2])
    (tmp_path / "store" / "s01.gz").write_bytes(b"not gzip at all, and long enough")
    store = SquirrelStore(url, serializer=SER)
    with pytest.raises(CorruptShardError, match="s01.gz"):
        store.build_index()
    assert store.read_index() is None
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SquirrelStore(str(tmp_path / "absent"), serializer=SER).build_index()


# ------------------------------------------------------------------------------------------------ compatibility


@pytest.mark.skipif(not CORE_PYTHON.exists(), reason="no squirrel-core venv (.venv-squirrel-core)")
def test_squirrel_core_still_reads_a_store_with_an_index(tmp_path):
    url = str(tmp_path / "store")
    write(url, [2, 3]).build_index(nested=True)
    script = (
        "import sys\nfrom squirrel.driver import MessagepackDriver\n"
        "d = MessagepackDriver(sys.argv[1])\n"
        "print(sorted(d.store.keys(nested=True)), sorted(s['i'] for s in d.get_iter().collect()))\n"
    )
    out = subprocess.run([str(CORE_PYTHON), "-c", script, url], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['s00', 's01'] [0, 1, 2, 3, 4]"


def test_a_table_pickles_without_its_lookup_and_a_listing_without_its_run(tmp_path):
    import pickle

    url = str(tmp_path / "store")
    write(url, [1, 2]).build_index()
    stream = MessagepackDriver(url).get_iter()
    stream.collect()
    again = pickle.loads(pickle.dumps(stream))
    assert "'keys'" not in str(again.explain(stage="optimized"))  # no table travels: the worker reads its own
    table = ShardTable(["a", "b"])
    assert table.entry("a") is None and pickle.loads(pickle.dumps(table)).keys == ["a", "b"]


def test_use_listing_and_rank0_listing_without_a_process_group(tmp_path):
    url = f"reqfile://{tmp_path}/store"
    write(url, [2, 3, 4])  # no index: rank 0 lists and reads the count files
    driver = MessagepackDriver(url)
    cf.reset()
    table = driver.list_on_rank0()
    assert table.source == "rank 0" and [e.samples for e in table.entries] == [2, 3, 4]
    assert len(cf.calls()) >= 3
    cf.reset()
    stream = driver.get_iter(max_workers=0)
    assert ids(stream.collect()) == list(range(9))
    assert cf.epoch_start(cf.calls()) == []  # keys from the table: no request
    assert "'keys': 'rank 0 (broadcast by rank 0 of 1" in str(stream.explain(stage="optimized"))
    driver.use_listing(None)
    cf.reset()
    assert ids(driver.get_iter().collect()) == list(range(9)) and cf.epoch_start(cf.calls())


def test_dataloader_workers_read_keys_from_a_shared_table_with_no_request(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    url = f"reqfile://{tmp_path}/store"
    write(url, [2, 3, 4, 5])
    log = tmp_path / "requests.log"
    monkeypatch.setenv(cf.LOG_ENV, str(log))
    driver = MessagepackDriver(url)
    driver.list_on_rank0()
    log.unlink(missing_ok=True)
    ds = driver.get_iter(max_workers=0).map(lambda s: s["i"]).split_by_worker_pytorch().to_torch_iterable()
    got = [int(x) for x in torch.utils.data.DataLoader(ds, num_workers=2, batch_size=None)]
    assert sorted(got) == list(range(14))
    rows = cf.read_log_file(str(log))
    workers = {pid for pid, *_ in rows}
    assert len(workers) == 2 and os.getpid() not in workers
    assert [r for r in rows if r[1] in cf.READS and not cf.is_shard_read(*r[1:])] == []


def _rank0_main(rank: int, world: int, port: int, url: str, out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", rank=rank, world_size=world, init_method=f"tcp://127.0.0.1:{port}")
    try:
        driver = MessagepackDriver(url)
        cf.reset()
        driver.list_on_rank0()
        listing_calls = len(cf.calls())
        stream = driver.get_iter(max_workers=0).map(lambda s: s["i"]).split_by_rank_pytorch(equalize="drop")
        cf.reset()
        got = stream.collect()
        start = len(cf.epoch_start(cf.calls()))
        try:  # rank 0 fails to list: every rank raises, none waits forever for the table
            MessagepackDriver(url + "-absent").list_on_rank0()
            failure = "none"
        except (FileNotFoundError, RuntimeError) as exc:
            failure = f"{type(exc).__name__}: {exc}"
        Path(out, f"rank{rank}.json").write_text(json.dumps([listing_calls, start, got, failure]))
        dist.barrier()
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_ranks_only_rank0_lists(tmp_path):
    pytest.importorskip("torch")
    import multiprocessing
    import socket

    url = f"reqfile://{tmp_path}/store"
    write(url, [3, 4, 5, 6, 7])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_rank0_main, args=(r, 2, port, url, str(tmp_path))) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    (calls0, start0, got0, fail0), (calls1, start1, got1, fail1) = (
        json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)
    )
    assert calls0 >= 5 and calls1 == 0  # rank 0 listed and read the count files; rank 1 made no request
    assert start0 == start1 == 0  # and neither lists when its stream starts
    assert len(got0) == len(got1) == 10 and set(got0).isdisjoint(got1)
    assert fail0.startswith("FileNotFoundError: ") and "does not exist" in fail0
    assert fail1.startswith("RuntimeError: ") and "rank 0 could not list the store: FileNotFoundError" in fail1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
