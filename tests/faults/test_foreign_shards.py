"""Fault: a file in place of a shard that is not a shard of the store's format (0 bytes, truncated, random bytes, a
gzipped log, CSV or JSON, a store of the other format), or a msgpack sample whose numpy array header lies.

Each must be a CorruptShardError naming the shard and the cause (or, with ``skip_corrupt=True``, a reported skip),
never fake samples; legal shards (empty ones, stores of ints, squirrel-core's own store) still read sample for
sample. The detection rule is documented in ``squirrel_graph/io/shard_check.py``.
"""

from __future__ import annotations

import csv
import gzip
import json
import logging
import random
import re
from collections.abc import Callable
from pathlib import Path

import msgpack
import numpy as np
import pytest

from squirrel_graph.io.drivers import JsonlDriver, MessagepackDriver
from squirrel_graph.io.serialization import CorruptShardError, SerializationError

FIXTURE = Path(__file__).parent.parent / "fixtures" / "squirrel-core-0.20.2-store"
N_SHARDS, PER_SHARD = 4, 3
BAD = "shard-02"


def sample(i: int) -> dict:
    return {"i": i, "x": np.full(3, i, dtype=np.float32)}


def write_store(url: str, n_shards: int = N_SHARDS, driver: type = MessagepackDriver) -> str:
    store = driver(url).store
    for s in range(n_shards):
        store.set([sample(s * PER_SHARD + j) for j in range(PER_SHARD)], key=f"shard-{s:02d}")
    return url


def ids(samples: list) -> list[int]:
    return [s["i"] for s in samples]


# ------------------------------------------------------------------------------ files put in place of a shard


def _gzipped_log(path: Path, good: bytes) -> None:
    """A real log written by the logging module (ANSI colours included), then gzipped, as ``build-log.gz`` is."""
    log_path = path.with_name("build.log")
    handler = logging.FileHandler(log_path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("fake-build")
    logger.addHandler(handler)
    try:
        for step in ("collecting", "building wheel", "\x1b[32mPASSED\x1b[0m tests", "installing"):
            logger.warning("step %s done", step)
    finally:
        logger.removeHandler(handler)
        handler.close()
    with open(log_path, "rb") as src, gzip.open(path, "wb") as dst:
        dst.write(src.read())
    log_path.unlink()


def _gzipped_csv(path: Path, good: bytes) -> None:
    with gzip.open(path, "wt", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "label", "score"])
        writer.writerows([i, f"class-{i % 3}", i / 7] for i in range(50))


def _gzipped_json(path: Path, good: bytes) -> None:
    with gzip.open(path, "wt") as f:
        json.dump({"name": "config", "layers": [64, 32], "dropout": 0.1}, f, indent=2)


def _stdlib_source(path: Path, good: bytes) -> None:
    """A real text file from disk (this Python's ``json`` package source), gzipped."""
    path.write_bytes(gzip.compress(Path(json.__file__).read_bytes()))


FAULTS: dict[str, tuple[Callable[[Path, bytes], None], str]] = {
    "zero bytes": (lambda p, good: p.write_bytes(b""), r"empty \(0 bytes\)"),
    "truncated": (lambda p, good: p.write_bytes(good[: len(good) // 2]), r"cannot gunzip .*truncated"),
    "random bytes": (
        lambda p, good: p.write_bytes(np.random.default_rng(0).bytes(500)),
        r"not a gzip file: looks like binary data",
    ),
    "plain text, not gzipped": (
        lambda p, good: p.write_bytes(b"2024-05-01 12:00:00 INFO started\n2024-05-01 12:00:01 INFO done\n"),
        r"not a gzip file: looks like text \('2024-05-01 12:00:00 INFO started'\)",
    ),
    "gzipped build log": (_gzipped_log, r"looks like text \('\d{4}-\d\d-\d\d .* WARNING fake-build: step collecting"),
    "gzipped csv": (_gzipped_csv, r"looks like CSV text \('id,label,score'\), not messagepack"),
    "gzipped json": (_gzipped_json, r"looks like JSON \('\{'\), not messagepack"),
    "gzipped python source": (_stdlib_source, r"looks like text .*, not messagepack"),
    "gzipped twice": (lambda p, good: p.write_bytes(gzip.compress(good)), r"looks like gzip data \(compressed twice"),
    "gzipped zip archive": (
        lambda p, good: p.write_bytes(gzip.compress(b"PK\x03\x04" + bytes(60))),
        r"looks like a zip archive, not messagepack",
    ),
}


def put_fault(url: str, key: str, fault: str) -> Path:
    path = Path(url) / f"{key}.gz"
    good = path.read_bytes()
    FAULTS[fault][0](path, good)
    return path


@pytest.mark.parametrize("max_workers", [0, 4])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_foreign_file_in_place_of_a_shard_is_an_error_naming_the_shard_and_cause(tmp_path, fault, max_workers):
    url = write_store(str(tmp_path / "store"))
    put_fault(url, BAD, fault)
    got = []
    with pytest.raises(CorruptShardError) as info:
        for s in MessagepackDriver(url).get_iter(max_workers=max_workers):
            got.append(s["i"])
    assert f"{url}/{BAD}.gz" in str(info.value)
    assert re.search(FAULTS[fault][1], str(info.value)), str(info.value)
    assert got == list(range(2 * PER_SHARD))  # the shards before it, and not one invented sample


@pytest.mark.parametrize("max_workers", [0, 4])
def test_skip_corrupt_skips_and_reports_every_foreign_shard_and_reads_the_rest(tmp_path, max_workers):
    faults = list(FAULTS)
    url = write_store(str(tmp_path / "store"), n_shards=2 * len(faults))
    bad = {f"shard-{2 * k + 1:02d}": fault for k, fault in enumerate(faults)}
    for key, fault in bad.items():
        put_fault(url, key, fault)
    stream = MessagepackDriver(url).get_iter(skip_corrupt=True, max_workers=max_workers)
    got = ids(stream.collect())
    assert got == [i for i in range(2 * len(faults) * PER_SHARD) if (i // PER_SHARD) % 2 == 0]
    assert sorted(key for key, _ in stream.skipped_shards) == list(bad)  # decoded in pool threads: any order
    for key, message in stream.skipped_shards:
        assert f"{key}.gz" in message and re.search(FAULTS[bad[key]][1], message), message


# ------------------------------------------------------------------------------ the wrong serializer


def test_a_jsonl_store_read_with_messagepack_is_refused_as_json_lines(tmp_path):
    url = write_store(str(tmp_path / "jsonl"), driver=JsonlDriver)
    assert len(JsonlDriver(url).get_iter().collect()) == N_SHARDS * PER_SHARD
    with pytest.raises(CorruptShardError, match=r"looks like JSON lines \('\{\"i\": 0, .*not messagepack") as info:
        MessagepackDriver(url).get_iter().collect()
    assert f"{url}/shard-00.gz" in str(info.value) and "JsonlDriver" in str(info.value)
    stream = MessagepackDriver(url).get_iter(skip_corrupt=True)
    assert stream.collect() == []
    assert sorted(key for key, _ in stream.skipped_shards) == [f"shard-{s:02d}" for s in range(N_SHARDS)]
    assert all("looks like JSON lines" in message for _, message in stream.skipped_shards)


def test_a_tiny_jsonl_shard_read_with_messagepack_is_refused_too(tmp_path):
    url = str(tmp_path / "tiny")
    JsonlDriver(url).store.set([{"a": 1}], key="k")  # 9 bytes: '{"a": 1}\n', nine valid msgpack ints
    with pytest.raises(CorruptShardError, match=r"tiny/k\.gz: looks like JSON lines \('\{\"a\": 1\}'\)"):
        MessagepackDriver(url).get_iter().collect()


@pytest.mark.parametrize("max_workers", [0, 4])
def test_a_messagepack_store_read_as_jsonl_is_refused_as_messagepack(tmp_path, max_workers):
    url = write_store(str(tmp_path / "mp"))
    with pytest.raises(CorruptShardError, match=r"looks like messagepack, not JSON lines") as info:
        JsonlDriver(url).get_iter(max_workers=max_workers).collect()
    assert f"{url}/shard-00.gz" in str(info.value) and "MessagepackDriver" in str(info.value)
    ints = str(tmp_path / "ints")
    MessagepackDriver(ints).store.set([1, 2, 3], key="k")
    with pytest.raises(CorruptShardError, match=r"ints/k\.gz: looks like messagepack, not JSON lines"):
        JsonlDriver(ints).get_iter(max_workers=max_workers).collect()


def test_a_foreign_text_read_as_jsonl_says_what_it_looks_like(tmp_path):
    url = write_store(str(tmp_path / "store"), driver=JsonlDriver)
    put_fault(url, BAD, "gzipped csv")
    with pytest.raises(CorruptShardError, match=r"looks like CSV text \('id,label,score'\), not JSON lines") as info:
        JsonlDriver(url).get_iter().collect()
    assert f"{url}/{BAD}.gz" in str(info.value)
    put_fault(url, BAD, "zero bytes")
    stream = JsonlDriver(url).get_iter(skip_corrupt=True)
    assert len(stream.collect()) == (N_SHARDS - 1) * PER_SHARD
    assert [(key, "empty (0 bytes)" in msg) for key, msg in stream.skipped_shards] == [(BAD, True)]


def test_squirrel_core_stores_still_read_and_are_refused_by_the_other_reader():
    assert len(MessagepackDriver(str(FIXTURE / "messagepack")).get_iter().collect()) == 40
    assert len(JsonlDriver(str(FIXTURE / "jsonl")).get_iter().collect()) == 40
    with pytest.raises(CorruptShardError, match=r"jsonl/shard-0\.gz: looks like JSON lines \('\{\"key\": \"s000\""):
        MessagepackDriver(str(FIXTURE / "jsonl")).get_iter().collect()
    with pytest.raises(CorruptShardError, match=r"messagepack/shard-0\.gz: looks like messagepack, not JSON lines"):
        JsonlDriver(str(FIXTURE / "messagepack")).get_iter().collect()


# ------------------------------------------------------------------------------ legal shards stay legal


@pytest.mark.parametrize("driver", [MessagepackDriver, JsonlDriver])
def test_an_empty_shard_is_legal_and_not_skipped(tmp_path, driver):
    url = write_store(str(tmp_path / "store"), n_shards=2, driver=driver)
    driver(url).store.set([], key="shard-01a")
    assert (Path(url) / "shard-01a.gz").stat().st_size > 0  # a gzip of nothing, not a 0-byte file
    stream = driver(url).get_iter(skip_corrupt=True)
    assert ids(stream.collect()) == list(range(2 * PER_SHARD))
    assert stream.skipped_shards == []


INT_STORES = {
    "1 2 3": [1, 2, 3],
    "0..255": list(range(256)),
    "10 100": [10, 100],
    "100 10": [100, 10],
    "'Hi\\n' as ints": [72, 105, 10],
    "100 x 5000": [100] * 5000,
    "'[' x 5000": [91] * 5000,
    "'{' x 5000": [123] * 5000,
    "printable ints x 5000": [random.Random(0).randrange(32, 127) for _ in range(5000)],
    "big and negative": [-1, 0, 2**64 - 1, -(2**63)],
}


@pytest.mark.parametrize("name", list(INT_STORES))
def test_stores_of_plain_ints_still_read_sample_for_sample(tmp_path, name):
    url = str(tmp_path / "ints")
    MessagepackDriver(url).store.set(INT_STORES[name], key="k")
    assert MessagepackDriver(url).get_iter().collect() == INT_STORES[name]
    assert MessagepackDriver(url).get_iter(max_workers=4).collect() == INT_STORES[name]


# ------------------------------------------------------------------------------ item 8: array headers that lie


def header(**changes: object) -> dict:
    """msgpack-numpy's header for ``np.zeros(2, "<f4")``, with ``changes`` (``...`` removes a key)."""
    out: dict = {b"nd": True, b"type": "<f4", b"kind": b"", b"shape": [2], b"data": bytes(8)}
    for key, value in changes.items():
        if value is ...:
            out.pop(key.encode())
        else:
            out[key.encode()] = value
    return out


def write_raw_shard(url: str, key: str, samples: list) -> None:
    """A shard built by hand with msgpack (not our encoder), gzipped, on disk."""
    payload = b"".join(msgpack.packb(s, use_bin_type=True) for s in samples)
    (Path(url) / f"{key}.gz").write_bytes(gzip.compress(payload))


LIES = {
    "negative shape": (header(shape=[-2]), r"shape \(-2,\) holds a negative"),
    "overflowing shape": (header(shape=[2**40, 2**40], data=b""), r"overflows"),
    "overflow hidden by a 0": (header(shape=[0, 2**63], data=b""), r"overflows"),
    "too many dims": (header(shape=[1] * 65, data=bytes(4)), r"at most 64"),
    "float size": (header(shape=[2.0]), r"negative or non-integer"),
    "shape not a list": (header(shape=2), r"is not a list"),
    "no shape": (header(shape=...), r"array without a shape"),
    "too few bytes": (header(shape=[3]), r"8 bytes of data for shape \[3\] of dtype <f4 \(12 expected\)"),
    "too many bytes": (header(shape=[1]), r"8 bytes of data for shape \[1\] of dtype <f4 \(4 expected\)"),
    "reshape lie": (header(shape=[2, 2]), r"8 bytes of data for shape \[2, 2\] .*16 expected"),
    "scalar with extra bytes": (
        {b"nd": False, b"type": "<i2", b"kind": b"", b"data": b"\x01\x00\x02\x00"},
        r"4 bytes of data for shape \[\] of dtype <i2 \(2 expected\)",
    ),
    "unknown dtype": (header(type="<q9"), r"unknown dtype '<q9'"),
    "dtype not a string": (header(type=7), r"type 7 is not a dtype string"),
    "sub-array dtype": (header(type="(2,)<f4", shape=[1]), r"sub-array dtype"),
    "unknown kind": (header(kind=b"Z"), r"unknown kind b'Z'"),
    "nd not a bool": (header(nd=1), r"nd is 1, not a bool"),
    "data not bytes": (header(data="abcdefgh"), r"data is str, not bytes"),
    "no type": (header(type=...), r"no type"),
}


@pytest.mark.parametrize("lie", list(LIES))
def test_an_array_header_that_lies_is_a_corrupt_shard_never_a_reinterpretation(tmp_path, lie):
    bad_header, cause = LIES[lie]
    url = write_store(str(tmp_path / "store"))
    write_raw_shard(url, BAD, [{"i": 100, "x": header()}, {"i": 101, "x": bad_header}])
    with pytest.raises(CorruptShardError) as info:
        MessagepackDriver(url).get_iter().collect()
    message = str(info.value)
    assert f"{url}/{BAD}.gz" in message and "sample 1: invalid numpy array header" in message, message
    assert re.search(cause, message), message
    stream = MessagepackDriver(url).get_iter(skip_corrupt=True, max_workers=4)
    assert ids(stream.collect()) == [i for i in range(N_SHARDS * PER_SHARD) if i // PER_SHARD != 2]
    assert [key for key, _ in stream.skipped_shards] == [BAD]


def test_true_hand_written_headers_decode_exactly(tmp_path):
    url = str(tmp_path / "store")
    Path(url).mkdir()
    values = np.arange(6, dtype=">i4").reshape(2, 3)
    write_raw_shard(
        url,
        "k",
        [
            {"a": header(type=">i4", shape=[2, 3], data=values.tobytes())},
            {"s": {b"nd": False, b"type": "<i2", b"kind": b"", b"data": b"\x07\x00"}},
            {"e": header(shape=[0, 5], data=b"")},
            {"user": {b"nd": 1, b"other": 2, b"x": 3}},  # not msgpack-numpy's keys: a user dict, kept as is
        ],
    )
    a, s, e, user = MessagepackDriver(url).get_iter().collect()
    assert a["a"].dtype == np.dtype(">i4") and np.array_equal(a["a"], values)
    assert s["s"] == 7 and s["s"].dtype == np.int16
    assert e["e"].shape == (0, 5) and e["e"].dtype == np.float32
    assert user["user"] == {b"nd": 1, b"other": 2, b"x": 3}


def test_edge_arrays_round_trip_through_the_validation(tmp_path):
    arrays = {
        "zero_d": np.array(3.5),
        "big_endian": np.arange(3, dtype=">f8"),
        "empty": np.zeros((2, 0, 2), np.uint8),
        "structured": np.array([(1, 2.0)], dtype=[("a", "<i4"), ("b", "<f8")]),
        "subarray_field": np.zeros(2, dtype=[("a", "<f4", (2,))]),
        "dates": np.arange(3).astype("M8[D]"),
        "strings": np.array(["ab", "c"]),
        "half": np.float16(1.5),
    }
    url = str(tmp_path / "store")
    MessagepackDriver(url).store.set([arrays], key="k")
    (out,) = MessagepackDriver(url).get_iter().collect()
    for name, value in arrays.items():
        assert out[name].dtype == value.dtype and out[name].shape == value.shape, name
        np.testing.assert_array_equal(out[name], value, err_msg=name)


def test_a_pickled_object_array_in_a_shard_is_refused_naming_the_shard(tmp_path):
    url = str(tmp_path / "store")
    Path(url).mkdir()
    write_raw_shard(url, "k", [{"x": header(type="|O", kind=b"O", data=b"\x80\x04K\x01.", shape=[1])}])
    with pytest.raises(SerializationError, match=r"store/k\.gz: sample 0: .*pickled object array"):
        MessagepackDriver(url).get_iter().collect()


@pytest.mark.parametrize(
    "array, cause",
    [
        ({"data": [1, 2, 3], "type": "nope", "shape": [3]}, r"unknown dtype 'nope'"),
        ({"data": [1, 2, 3], "type": "<i4", "shape": [2, 2]}, r"shape \[2, 2\] is invalid"),
        ({"data": [1, 2, 3], "type": "<i4", "shape": [-3]}, r"shape \[-3\] is invalid"),
    ],
)
def test_a_jsonl_array_that_lies_is_a_corrupt_shard(tmp_path, array, cause):
    url = str(tmp_path / "store")
    Path(url).mkdir()
    lines = [{"i": 0}, {"i": 1, "x": array}]
    (Path(url) / "k.gz").write_bytes(gzip.compress(b"".join(json.dumps(x).encode() + b"\n" for x in lines)))
    with pytest.raises(CorruptShardError, match=rf"store/k\.gz: line 2: array .*{cause}"):
        JsonlDriver(url).get_iter().collect()
