"""Serializers: exact round trips, byte compatibility with squirrel-core 0.20.2, no pickle, clear errors."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from squirrel_graph.io.drivers import JsonlDriver, MessagepackDriver
from squirrel_graph.io.serialization import JsonSerializer, MessagepackSerializer, SerializationError

FIXTURE = Path(__file__).parent / "fixtures" / "squirrel-core-0.20.2-store"


def decode_expected(obj):
    """The fixture's JSON encoding of what squirrel-core returned, back into Python values."""
    if isinstance(obj, dict):
        if obj.get("__ndarray__"):
            return np.asarray(obj["data"], dtype=np.dtype(obj["dtype"])).reshape(obj["shape"])
        if "__tuple__" in obj:
            return tuple(decode_expected(x) for x in obj["__tuple__"])
        if "__list__" in obj:
            return [decode_expected(x) for x in obj["__list__"]]
        if "__bytes__" in obj:
            return bytes(obj["__bytes__"])
        return {k: decode_expected(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [decode_expected(x) for x in obj]
    return obj


def assert_same(a, b, path="sample"):
    """Exact equality, arrays included (same dtype, shape and values), containers type-checked."""
    if isinstance(b, np.ndarray):
        assert isinstance(a, np.ndarray), path
        assert a.dtype == b.dtype and a.shape == b.shape, f"{path}: {a.dtype}{a.shape} != {b.dtype}{b.shape}"
        np.testing.assert_array_equal(a, b, err_msg=path)
    elif isinstance(b, dict):
        assert isinstance(a, dict) and a.keys() == b.keys(), path
        for k in b:
            assert_same(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(b, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), f"{path}: {type(a)} vs {type(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    else:
        assert type(a) is type(b) and a == b, f"{path}: {a!r} != {b!r}"


@pytest.mark.parametrize("fmt, driver", [("messagepack", MessagepackDriver), ("jsonl", JsonlDriver)])
def test_reads_a_store_written_by_squirrel_core_sample_for_sample(fmt, driver):
    expected = decode_expected(json.loads((FIXTURE / f"expected-{fmt}.json").read_text()))
    got = driver(str(FIXTURE / fmt)).get_iter().collect()
    assert len(got) == len(expected) == 40
    for i, (a, b) in enumerate(zip(got, expected)):
        assert_same(a, b, f"sample {i}")


def test_our_msgpack_bytes_equal_squirrel_cores_for_the_same_samples():
    for shard in sorted((FIXTURE / "messagepack").glob("*.gz")):
        payload = gzip.decompress(shard.read_bytes())
        samples = MessagepackSerializer.unpack_shard(payload)
        assert MessagepackSerializer.pack_shard(samples) == payload  # byte for byte what squirrel-core wrote


def test_a_store_we_write_is_in_squirrel_cores_format(tmp_path):
    samples = MessagepackDriver(str(FIXTURE / "messagepack")).get_iter().collect()
    MessagepackDriver(str(tmp_path)).store.set(samples[:10], key="shard-0")
    ours = gzip.decompress((tmp_path / "shard-0.gz").read_bytes())
    theirs = gzip.decompress((FIXTURE / "messagepack" / "shard-0.gz").read_bytes())
    assert ours == theirs


def test_jsonl_we_write_is_json_lines_in_squirrel_cores_array_layout(tmp_path):
    driver = JsonlDriver(str(tmp_path))
    driver.store.set([{"a": np.arange(4, dtype=np.int16).reshape(2, 2), "s": np.float32(0.5)}], key="k")
    line = json.loads(gzip.decompress((tmp_path / "k.gz").read_bytes()).splitlines()[0])
    assert line == {"a": {"data": [[0, 1], [2, 3]], "type": "<i2", "shape": [2, 2]}, "s": 0.5}


DTYPES = [
    np.bool_,
    np.int8,
    np.uint8,
    np.int16,
    np.uint16,
    np.int32,
    np.uint32,
    np.int64,
    np.uint64,
    np.float16,
    np.float32,
    np.float64,
    np.complex64,
    np.complex128,
]
arrays = st.sampled_from(DTYPES).flatmap(
    lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
)
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.binary(max_size=8),
    arrays,
)
samples = st.recursive(
    leaves,
    lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=5), kids, max_size=4)),
    max_leaves=12,
)


def lists_to_tuples(x):
    if isinstance(x, list):
        return tuple(lists_to_tuples(v) for v in x)
    if isinstance(x, dict):
        return {k: lists_to_tuples(v) for k, v in x.items()}
    return x


@settings(max_examples=150, deadline=None)
@given(st.lists(samples, min_size=1, max_size=5))
def test_msgpack_shards_round_trip_every_dtype_and_shape_exactly(shard):
    payload = MessagepackSerializer.pack_shard(shard)
    assert_same(MessagepackSerializer.unpack_shard(payload), [lists_to_tuples(s) for s in shard])
    as_lists = MessagepackSerializer.unpack_shard(payload, unpacker_kwargs={"use_list": True})
    assert_same(as_lists, shard)


json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.sampled_from([np.int32, np.int64, np.float32, np.float64, np.bool_, np.uint8]).flatmap(
        lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3))
    ),
)
json_samples = st.recursive(
    json_leaves,
    lambda kids: st.one_of(st.lists(kids, max_size=3), st.dictionaries(st.text(max_size=5), kids, max_size=3)),
    max_leaves=10,
)


@settings(max_examples=100, deadline=None)
@given(json_samples)
def test_json_round_trips_numpy_arrays_exactly_on_numpy_2(sample):
    ser = JsonSerializer()
    assert_same(ser.deserialize(ser.serialize(sample)), sample)


def test_zero_d_arrays_and_numpy_scalars_round_trip():
    sample = {"zero_d": np.array(3.5, dtype=np.float16), "scalar": np.int16(-7), "empty": np.zeros((0, 2), np.uint8)}
    out = MessagepackSerializer.deserialize(MessagepackSerializer.serialize(sample))
    assert out["zero_d"].shape == () and out["zero_d"].dtype == np.float16 and out["zero_d"] == 3.5
    assert out["scalar"] == -7 and out["scalar"].dtype == np.int16
    assert out["empty"].shape == (0, 2)
    assert out["zero_d"].flags.writeable  # decoded arrays own their memory


def test_non_string_map_keys_round_trip_in_msgpack_and_become_strings_in_json():
    sample = {1: "one", "two": 2}
    payload = MessagepackSerializer.pack_shard([sample])
    assert MessagepackSerializer.unpack_shard(payload) == [sample]  # squirrel-core raised here
    assert JsonSerializer().deserialize(JsonSerializer.serialize(sample)) == {"1": "one", "two": 2}


@pytest.mark.parametrize("ser", [MessagepackSerializer(), JsonSerializer()])
def test_object_arrays_are_refused_on_write(ser):
    with pytest.raises(SerializationError, match="object"):
        ser.serialize({"bad": np.array([{"a": 1}, None], dtype=object)})


def test_pickled_object_arrays_are_refused_on_read():
    crafted = msgpack.packb(
        {b"nd": True, b"type": "|O", b"kind": b"O", b"shape": [1], b"data": b"\x80\x04K\x01."}, use_bin_type=True
    )
    with pytest.raises(SerializationError, match="pickle"):
        MessagepackSerializer.deserialize(crafted)


def test_unserializable_values_get_a_clear_error():
    with pytest.raises(SerializationError, match="set"):
        MessagepackSerializer.serialize({"s": {1, 2}})
    with pytest.raises(SerializationError, match="object"):
        MessagepackSerializer.serialize({"o": object()})
    with pytest.raises(SerializationError, match="bytes"):
        JsonSerializer.serialize({"b": b"x"})


def test_user_dicts_that_look_like_arrays_stay_dicts():
    sample = {"nd": True, "type": "<f4", "kind": "", "shape": [1], "data": "x"}
    assert MessagepackSerializer.deserialize(MessagepackSerializer.serialize(sample)) == sample


def test_jsonl_deser_hook_is_applied_when_reading(tmp_path):
    calls = []

    def hook(d):
        calls.append(d)
        return {**d, "hooked": True} if "label" in d else d

    JsonlDriver(str(tmp_path)).store.set([{"label": 1}, {"label": 2}], key="a")
    out = JsonlDriver(str(tmp_path), deser_hook=hook).get_iter().collect()
    assert out == [{"label": 1, "hooked": True}, {"label": 2, "hooked": True}]
    assert len(calls) == 2  # squirrel-core ignored deser_hook when reading shards
