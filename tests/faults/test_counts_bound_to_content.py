"""Fault: a count file that no longer describes its shard (a writer SIGKILLed between the shard rename and the count
write, a shard replaced by another of the same compressed size, an old-format or forged count).

``count()`` (what ``equalize`` and other len()-style uses read) must equal the real number of samples every time:
a count is trusted only when the shard's size and gzip trailer (CRC32, uncompressed length) match it.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import struct
from pathlib import Path

import pytest

from squirrel_graph.graph import KeySource
from squirrel_graph.io.drivers import MessagepackDriver
from squirrel_graph.io.serialization import CorruptShardError, MessagepackSerializer, gzip_compress
from squirrel_graph.io.store import SquirrelStore

FIXTURE = Path(__file__).parent.parent / "fixtures" / "squirrel-core-0.20.2-store" / "messagepack"
SER = MessagepackSerializer()


def _same_size_shards() -> tuple[list[bytes], list[bytes]]:
    """One sample and two samples whose shards, written with ``compresslevel=0`` (stored deflate blocks, so the gzip
    size is the packed size plus a constant), have exactly the same size in bytes."""
    two = [b"b" * 500, b"c" * 500]
    target = len(SER.pack_shard(two))
    for n in range(target - 20, target + 20):
        one = [b"a" * n]
        if len(SER.pack_shard(one)) == target:
            assert len(gzip_compress(SER.pack_shard(one), 0)) == len(gzip_compress(SER.pack_shard(two), 0))
            return one, two
    raise AssertionError("no padding gives shards of equal size")


def _fresh(url: str) -> SquirrelStore:
    """A new store object: nothing remembered from earlier calls in this process."""
    return SquirrelStore(url, serializer=SER)


def _equalize_count(url: str, key: str) -> int:
    """The count ``equalize`` uses for ``key``: the counter the driver's key listing carries in the plan."""
    (listing,) = [node for _, node in MessagepackDriver(url).get_iter().plan.items() if isinstance(node, KeySource)]
    return listing.counts(key)


def _writer(url: str, key: str, samples: list, kill_at: int) -> None:
    """Child process: write one shard, and SIGKILL itself at the ``kill_at``-th step of the write protocol:
    1 shard written to its temporary file, not renamed; 2 shard renamed, count not written; 3 count written to its
    temporary file, not renamed; 4 count renamed (set() not returned); larger: no kill."""
    real_replace = os.replace
    steps = [0]

    def step() -> None:
        steps[0] += 1
        if steps[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    def replace(src, dst, *args, **kwargs):
        step()
        real_replace(src, dst, *args, **kwargs)
        step()

    os.replace = replace  # this process only: the store's atomic writes rename through it
    _fresh(url).set(samples, key=key, compresslevel=0)
    os._exit(0)


def test_a_writer_killed_at_each_step_of_the_write_protocol_leaves_counts_that_match(tmp_path):
    one, two = _same_size_shards()
    ctx = multiprocessing.get_context("fork")
    for kill_at in range(1, 6):
        url = str(tmp_path / f"store-{kill_at}")
        _fresh(url).set(one, key="k", compresslevel=0)  # the shard (and count) a crashed rewrite may leave behind
        _fresh(url).set([b"m"] * 3, key="m")
        child = ctx.Process(target=_writer, args=(url, "k", two, kill_at))
        child.start()
        child.join(10)
        assert child.exitcode == (-signal.SIGKILL if kill_at <= 4 else 0), (kill_at, child.exitcode)
        store = _fresh(url)
        assert list(store.keys()) == ["k", "m"]  # no temporary or truncated file is listed
        shard = store.get_shard("k")
        assert shard == (one if kill_at == 1 else two), kill_at  # the old shard or the new one, whole
        assert _fresh(url).count("k") == len(shard), f"stale count trusted after a kill at step {kill_at}"
        assert _equalize_count(url, "k") == len(shard) and _equalize_count(url, "m") == 3
        assert MessagepackDriver(url).get_iter().collect() == shard + [b"m"] * 3


def test_a_shard_replaced_by_one_of_the_same_size_is_counted_again(tmp_path):
    one, two = _same_size_shards()
    url, other = str(tmp_path / "store"), str(tmp_path / "other")
    _fresh(url).set(one, key="k", compresslevel=0)
    _fresh(other).set(two, key="k", compresslevel=0)
    shard, replacement = tmp_path / "store" / "k.gz", tmp_path / "other" / "k.gz"
    assert shard.stat().st_size == replacement.stat().st_size  # the size alone cannot tell them apart
    os.replace(replacement, shard)  # e.g. a tool (or squirrel-core) that writes shards but no counts
    assert _fresh(url).count("k") == 2 == len(_fresh(url).get_shard("k"))
    assert _equalize_count(url, "k") == 2
    store = _fresh(url)
    store.set(two, key="k")  # written by us again: its count is trusted, without reading the shard
    fresh = _fresh(url)
    fresh.get_shard = None  # count() must not need to read a shard whose count matches
    assert fresh.count("k") == 2


def test_old_format_forged_and_missing_counts_are_never_trusted(tmp_path):
    url = str(tmp_path / "store")
    store = _fresh(url)
    store.set([1, 2, 3], key="k")
    count_file, shard = tmp_path / "store" / ".squirrel" / "counts" / "k", tmp_path / "store" / "k.gz"
    raw = shard.read_bytes()
    crc, isize = struct.unpack("<II", raw[-8:])
    assert count_file.read_text() == f"3 {len(raw)} {crc} {isize}"  # samples, size, gzip trailer CRC32 and ISIZE
    forged = [
        f"7 {len(raw)}",  # the old "N SIZE" format, here stale: it cannot be checked against the content
        f"7 {len(raw)} {crc ^ 1} {isize}",
        f"7 {len(raw)} {crc} {isize + 1}",
        f"7 {len(raw) + 1} {crc} {isize}",
        f"-7 {len(raw)} {crc} {isize}",
        f"7 {len(raw)} {crc} {2**40}",
        "garbage",
        "",
    ]
    for text in forged:
        count_file.write_text(text)
        assert _fresh(url).count("k") == 3, text
        assert _equalize_count(url, "k") == 3, text
    count_file.write_text(f"3 {len(raw)}")  # a correct old-format count still reads (by counting the shard)
    assert _fresh(url).count("k") == 3
    count_file.unlink()
    assert _fresh(url).count("k") == 3


@pytest.mark.skipif(not FIXTURE.is_dir(), reason="squirrel-core fixture store missing")
def test_stores_without_counts_are_counted_by_reading_and_a_truncated_shard_is_not_miscounted(tmp_path):
    store = _fresh(str(FIXTURE))
    for key in store.keys():
        assert store.count(key) == len(store.get_shard(key))
    url = str(tmp_path / "store")
    _fresh(url).set(list(range(100)), key="k", compresslevel=0)
    shard = tmp_path / "store" / "k.gz"
    data = shard.read_bytes()
    shard.write_bytes(data[:-8] + struct.pack("<II", 0, 0))  # same size, another trailer: a different shard
    with pytest.raises(CorruptShardError, match="k.gz"):  # it is read (and found corrupt), not counted from the file
        _fresh(url).count("k")
