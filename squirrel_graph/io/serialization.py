"""Serializers for store shards: msgpack (msgpack-numpy's array encoding) and JSON lines, gzip-compressed.

Byte compatibility with squirrel-core 0.20.2: a msgpack shard is gzip of samples packed back to back, numpy
arrays encoded as msgpack-numpy does (``{b"nd": True, b"type": dtype.str, b"kind": b"", b"shape": [...],
b"data": raw bytes}``); a JSONL shard is gzip of one JSON object per line, arrays as
``{"data": nested lists, "type": dtype.str, "shape": [...]}``. Nothing is ever unpickled: object arrays are
refused on write and on read.

Reading checks the bytes before trusting them: a 0-byte, non-gzip or foreign file (text, JSON lines under a
messagepack reader, messagepack under a JSON reader) is a :class:`CorruptShardError` naming the shard and what it
looks like (the rule: :mod:`squirrel_graph.io.shard_check`), and so is a numpy array header whose dtype, shape
or byte count does not add up (see :func:`msgpack_decode`).
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import msgpack
import numpy as np

from squirrel_graph.errors import CorruptShardError, SquirrelGraphError
from squirrel_graph.io import shard_check


class SerializationError(SquirrelGraphError, ValueError):
    """A value cannot be serialized, or bytes cannot be deserialized, safely and exactly."""


try:  # ISA-L's gzip is 5-10x faster than zlib and writes standard gzip that every reader (squirrel-core too) reads
    from isal import igzip as _fast_gzip
except ImportError:  # pragma: no cover - isal is a dependency, but the stdlib works too
    _fast_gzip = None


def gzip_compress(raw: bytes, compresslevel: int | None = None) -> bytes:
    """Standard gzip of ``raw``. ``None``: the fast default (ISA-L level 1: about 10x faster than zlib; as small
    as zlib 6 on float tensors, larger on very repetitive data); an int: zlib's
    level, exactly as ``gzip.compress`` does it."""
    if compresslevel is None:
        return _fast_gzip.compress(raw, compresslevel=1) if _fast_gzip is not None else gzip.compress(raw, 6)
    return gzip.compress(raw, compresslevel=compresslevel)


def gzip_decompress(data: bytes) -> bytes:
    """Decompress a (possibly multi-member) gzip stream, with ISA-L when available."""
    return _fast_gzip.decompress(data) if _fast_gzip is not None else gzip.decompress(data)


def _check_dtype(dtype: np.dtype, where: str) -> None:
    if dtype.hasobject:
        raise SerializationError(
            f"{where}: numpy arrays of dtype object are refused: they would need pickle, which "
            "squirrel_graph never uses; convert to a numeric, bool, string or bytes dtype"
        )


# ------------------------------------------------------------------------------------------------ msgpack


def msgpack_encode(obj: Any) -> Any:
    """``default=`` hook for msgpack: numpy arrays and scalars in msgpack-numpy's layout."""
    if isinstance(obj, np.ndarray):
        _check_dtype(obj.dtype, "MessagepackSerializer.serialize")
        kind = b"V" if obj.dtype.kind == "V" else b""
        dtype = obj.dtype.descr if obj.dtype.kind == "V" else obj.dtype.str
        return {
            b"nd": True,
            b"type": dtype,
            b"kind": kind,
            b"shape": list(obj.shape),
            b"data": np.ascontiguousarray(obj).tobytes(),
        }
    if isinstance(obj, np.generic):
        _check_dtype(obj.dtype, "MessagepackSerializer.serialize")
        return {b"nd": False, b"type": obj.dtype.str, b"kind": b"", b"data": obj.tobytes()}
    if isinstance(obj, (set, frozenset)):
        raise SerializationError("MessagepackSerializer.serialize: sets are not serializable; use a list")
    raise SerializationError(f"MessagepackSerializer.serialize: cannot serialize {type(obj).__name__} {obj!r:.60}")


def _descr(value: Any) -> Any:
    """A dtype spec from msgpack as numpy wants it: a structured descr is lists of ``[name, format(, shape)]``."""
    if not isinstance(value, (list, tuple)):
        return value
    fields = []
    for name, spec, *shape in value:  # name may be [title, name]; spec a nested descr; shape a sub-array's shape
        name = name.decode() if isinstance(name, bytes) else name  # unpacked with raw=True
        field = (tuple(name) if isinstance(name, list) else name, _descr(spec))
        fields.append((*field, tuple(shape[0])) if shape else field)
    return fields


_HEADER_KEYS = frozenset({b"nd", b"type", b"kind", b"shape", b"data"})
_INTP_MAX = int(np.iinfo(np.intp).max)
_MAX_DIMS = 64  # numpy 2's limit; numpy 1 refuses more than 32 itself


def _bad_header(why: str) -> CorruptShardError:
    return CorruptShardError(f"invalid numpy array header: {why}")


def _header_dtype(obj: dict[Any, Any]) -> np.dtype:
    """The dtype a msgpack-numpy header names; an unknown or unsafe one is refused (never guessed)."""
    kind, spec = obj.get(b"kind", b""), obj[b"type"]
    key = (kind, spec) if isinstance(spec, (str, bytes)) and isinstance(kind, bytes) else None
    dtype = _DTYPES.get(key) if key is not None else None
    if dtype is not None:
        return dtype
    if kind == b"O":
        raise SerializationError("MessagepackSerializer.deserialize: refusing a pickled object array (kind 'O')")
    if kind not in (b"", b"V"):
        raise _bad_header(f"unknown kind {kind!r:.40} (msgpack-numpy writes b'' or b'V')")
    if not isinstance(spec, (str, bytes, list, tuple)):
        raise _bad_header(f"type {spec!r:.60} is not a dtype string or a structured dtype's descr")
    try:
        dtype = np.dtype(_descr(spec))
    except (TypeError, ValueError, KeyError, IndexError) as exc:  # unpacking a bad descr raises these too
        raise _bad_header(f"unknown dtype {spec!r:.60} ({exc})") from None
    _check_dtype(dtype, "MessagepackSerializer.deserialize")
    if dtype.shape:
        raise _bad_header(f"sub-array dtype {spec!r:.60} (numpy never writes one at the top level)")
    if key is not None:
        if len(_DTYPES) >= 1024:  # a bound against shards full of distinct dtype strings
            _DTYPES.clear()
        _DTYPES[key] = dtype
    return dtype


#: validated dtypes by ``(kind, type string)``: a shard repeats a few dtypes, parsing each costs microseconds
_DTYPES: dict[Any, np.dtype] = {}


def _header_count(shape: Any, itemsize: int) -> int:
    """The number of items of an array header's shape: at most 64 sizes, each an int >= 0, addressable in full."""
    if not isinstance(shape, (list, tuple)) or len(shape) > _MAX_DIMS:
        raise _bad_header(f"shape {shape!r:.60} is not a list of at most {_MAX_DIMS} sizes")
    count = nonzero = 1
    for d in shape:
        if type(d) is not int or d < 0:
            raise _bad_header(f"shape {shape!r:.60} holds a negative or non-integer size")
        count *= d
        nonzero *= d or 1
    if nonzero * max(itemsize, 1) > _INTP_MAX:
        raise _bad_header(f"shape {shape!r:.60} overflows (larger than any array can be)")
    return count


def msgpack_decode(obj: dict[Any, Any]) -> Any:
    """``object_hook=`` for msgpack: rebuild arrays/scalars written by msgpack-numpy or by us; refuse pickles.

    Only a map whose keys are all msgpack-numpy's binary keys (``b"nd"``...) is an array, so user dicts with str
    keys are safe; its dtype, shape and byte count must agree exactly, else CorruptShardError (never a reshape).
    """
    if b"nd" not in obj or len(obj) < 3 or not _HEADER_KEYS.issuperset(obj):
        return obj
    nd, data, shape = obj[b"nd"], obj.get(b"data"), obj.get(b"shape")
    if type(data) is bytes and b"type" in obj and (nd is True or nd is False):  # the fast path: a true header
        dtype = _header_dtype(obj)
        nbytes = dtype.itemsize
        if nd and type(shape) is tuple and len(shape) <= _MAX_DIMS:
            for d in shape:
                if type(d) is not int or d <= 0:
                    break
                nbytes *= d
            else:
                if nbytes and nbytes == len(data):
                    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()
        elif not nd and shape is None and nbytes and nbytes == len(data):
            return np.frombuffer(data, dtype=dtype)[0]
    return _decode_checked(obj, nd, data, shape)  # empty arrays, lists (use_list=True), and every lie


def _decode_checked(obj: dict[Any, Any], nd: Any, data: Any, shape: Any) -> Any:
    """The array or scalar of a header, checked in full: the error names what does not add up."""
    if nd is not True and nd is not False:
        raise _bad_header(f"nd is {nd!r:.40}, not a bool")
    if b"type" not in obj:
        raise _bad_header("no type")
    if type(data) is not bytes:
        raise _bad_header(f"data is {type(data).__name__}, not bytes")
    dtype = _header_dtype(obj)
    if nd:
        if shape is None:
            raise _bad_header("an array without a shape")
        expected = _header_count(shape, dtype.itemsize) * dtype.itemsize
    elif shape is not None:
        raise _bad_header("a scalar (nd false) with a shape")
    else:
        expected = dtype.itemsize
    if len(data) != expected:
        raise _bad_header(
            f"{len(data)} bytes of data for shape {list(shape or ())} of dtype {dtype.str} ({expected} expected)"
        )
    if dtype.itemsize == 0:  # e.g. np.str_(""): frombuffer refuses a zero itemsize
        out = np.zeros(tuple(shape or ()), dtype=dtype)
        return out if nd else out[()]
    if nd:
        return np.frombuffer(data, dtype=dtype).reshape(tuple(shape)).copy()
    return np.frombuffer(data, dtype=dtype)[0]


class SquirrelSerializer:
    """Turns one sample into bytes and back; shard methods read/write a whole gzip shard through fsspec."""

    file_extension = ""

    def serialize(self, obj: Any) -> Any:
        raise NotImplementedError

    def deserialize(self, obj: Any) -> Any:
        raise NotImplementedError

    def pack_shard(self, samples: Iterable[Any]) -> bytes:
        """The uncompressed bytes of a shard of ``samples``."""
        raise NotImplementedError

    def serialize_shard_to_file(
        self,
        shard: Iterable[Any],
        fp: str,
        fs: Any = None,
        mode: str = "wb",
        compresslevel: int | None = None,
        **open_kwargs: Any,
    ) -> None:
        """Write ``shard`` as one gzip file (serialized in full first, so a bad sample writes nothing)."""
        payload = gzip_compress(self.pack_shard(shard), compresslevel)
        open_kwargs.pop("compression", None)
        with _open(fs, fp, mode, **open_kwargs) as f:
            f.write(payload)

    def deserialize_shard_from_file(self, fp: str, fs: Any = None, mode: str = "rb", **open_kwargs: Any) -> Any:
        raise NotImplementedError


def _open(fs: Any, fp: str, mode: str, **open_kwargs: Any) -> Any:
    if fs is None:
        import fsspec

        return fsspec.open(fp, mode, **open_kwargs)
    return fs.open(fp, mode, **open_kwargs)


def _read_gzip(fp: str, fs: Any, mode: str, open_kwargs: dict[str, Any]) -> bytes:
    """The decompressed bytes of a shard; corrupt gzip raises CorruptShardError naming the shard."""
    open_kwargs.pop("compression", None)  # we decompress ourselves, in one call, to give a clear error
    with _open(fs, fp, mode, **open_kwargs) as f:
        raw = f.read()
    return _gunzip(raw, fp)


def _gunzip(raw: bytes, fp: str) -> bytes:
    """The decompressed bytes of a shard file; a 0-byte, non-gzip or broken gzip file is a CorruptShardError."""
    shard_check.check_gzip_file(raw, fp)
    try:
        return gzip_decompress(raw)
    except (OSError, EOFError, ValueError) as exc:
        hint = "; truncated?" if isinstance(exc, EOFError) else ""
        raise CorruptShardError(f"corrupt shard {fp}: cannot gunzip ({exc}{hint})") from exc


class MessagepackSerializer(SquirrelSerializer):
    """msgpack samples, gzip shards; readable by squirrel-core 0.20.2 and reading what it wrote."""

    file_extension = "gz"

    @staticmethod
    def serialize(obj: Any) -> bytes:
        return msgpack.packb(obj, use_bin_type=True, default=msgpack_encode)

    @staticmethod
    def deserialize(obj: bytes, **unpacker_kwargs: Any) -> Any:
        kwargs = {"object_hook": msgpack_decode, "strict_map_key": False, **unpacker_kwargs}
        return msgpack.unpackb(obj, **kwargs)

    @staticmethod
    def pack_shard(samples: Iterable[Any]) -> bytes:
        """Samples packed back to back (uncompressed), validated in full before anything is written."""
        packer = msgpack.Packer(use_bin_type=True, default=msgpack_encode)
        return b"".join(packer.pack(s) for s in samples)

    @classmethod
    def serialize_shard_to_file(cls, shard: Iterable[Any], fp: str, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """Callable on the class too, as in squirrel-core (whose methods here were static)."""
        SquirrelSerializer.serialize_shard_to_file(cls(), shard, fp, *args, **kwargs)

    @staticmethod
    def unpack_shard(payload: bytes, fp: str = "<bytes>", unpacker_kwargs: dict[str, Any] | None = None) -> list[Any]:
        """All samples of a decompressed shard; invalid msgpack, text (JSON lines, a log...) or a lying array
        header raises CorruptShardError naming ``fp``."""
        shard_check.check_msgpack_payload(payload, fp)  # first 4 KiB at most
        kwargs = {"use_list": False, "object_hook": msgpack_decode, "strict_map_key": False, "raw": False}
        kwargs.update(unpacker_kwargs or {})
        unpacker = msgpack.Unpacker(max_buffer_size=max(len(payload), 1), **kwargs)
        unpacker.feed(payload)
        out: list[Any] = []
        end = 0  # the offset after the last complete sample
        try:
            for sample in unpacker:
                out.append(sample)
                end = unpacker.tell()
        except CorruptShardError as exc:  # an array header that lies
            raise CorruptShardError(f"corrupt shard {fp}: sample {len(out)}: {exc}") from exc
        except SerializationError as exc:
            raise SerializationError(f"shard {fp}: sample {len(out)}: {exc}") from exc
        except Exception as exc:
            looks = shard_check.describe_failure(payload)
            raise CorruptShardError(
                f"corrupt shard {fp}: invalid msgpack ({type(exc).__name__}: {exc}){looks}"
            ) from exc
        if end != len(payload):
            raise CorruptShardError(
                f"corrupt shard {fp}: {len(payload) - end} trailing bytes are not a complete msgpack sample "
                f"(truncated shard?){shard_check.describe_failure(payload)}"
            )
        return out

    @classmethod
    def deserialize_shard_from_file(
        cls,
        fp: str,
        fs: Any = None,
        mode: str = "rb",
        unpacker_kwargs: dict[str, Any] | None = None,
        **open_kwargs: Any,
    ) -> Iterator[Any]:
        return iter(cls.unpack_shard(_read_gzip(fp, fs, mode, open_kwargs), fp, unpacker_kwargs))

    @classmethod
    def deserialize_shard_bytes(cls, raw: bytes, fp: str = "<bytes>") -> list[Any]:
        """The samples of a shard file's bytes (gzip of packed samples); errors name ``fp``."""
        return cls.unpack_shard(_gunzip(raw, fp), fp)


# --------------------------------------------------------------------------------------------------- json


class SquirrelJsonEncoder(json.JSONEncoder):
    """numpy scalars as Python numbers, arrays as ``{"data", "type", "shape"}`` (works on numpy 1 and 2)."""

    def default(self, o: Any) -> Any:
        if isinstance(o, np.ndarray):
            _check_dtype(o.dtype, "JsonSerializer.serialize")
            return {"data": o.tolist(), "type": o.dtype.str, "shape": list(o.shape)}
        if isinstance(o, np.bool_):
            return bool(o)
        if isinstance(o, np.integer):
            return int(o)
        if isinstance(o, np.floating):
            return float(o)
        if isinstance(o, (bytes, bytearray)):
            raise SerializationError("JsonSerializer.serialize: bytes are not JSON-serializable; use messagepack")
        raise SerializationError(f"JsonSerializer.serialize: cannot serialize {type(o).__name__} {o!r:.60}")


def json_array_hook(obj: dict[str, Any]) -> Any:
    """Turn ``{"data", "type", "shape"}`` back into an exact numpy array (a bad one is a ValueError)."""
    if len(obj) == 3 and "data" in obj and "type" in obj and "shape" in obj:
        try:
            dtype = np.dtype(obj["type"])
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(f"array with unknown dtype {obj['type']!r:.60} ({exc})") from None
        _check_dtype(dtype, "JsonSerializer.deserialize")
        shape = obj["shape"]
        if not isinstance(shape, list) or any(type(d) is not int or d < 0 for d in shape):
            raise ValueError(f"array of dtype {dtype.str} and shape {shape!r:.60} is invalid (sizes must be ints >= 0)")
        try:
            return np.asarray(obj["data"], dtype=dtype).reshape(shape)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"array of dtype {dtype.str} and shape {obj['shape']!r:.60} is invalid ({exc})") from None
    return obj


class SquirrelJsonDecoder(json.JSONDecoder):
    """A ``json.JSONDecoder`` that turns ``{"data", "type", "shape"}`` objects back into numpy arrays
    (``json.loads(text, cls=SquirrelJsonDecoder)``), as squirrel-core's did."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("object_hook", json_array_hook)
        super().__init__(*args, **kwargs)


class JsonSerializer(SquirrelSerializer):
    """JSON lines, gzip shards. ``deser_hook`` (a json ``object_hook``) replaces the array decoding."""

    file_extension = "gz"

    def __init__(self, deser_hook: Callable[[dict[str, Any]], Any] | None = None) -> None:
        self.deser_hook = deser_hook

    @staticmethod
    def serialize(obj: Any) -> bytes:
        try:
            return json.dumps(obj, cls=SquirrelJsonEncoder, allow_nan=True).encode("utf-8")
        except TypeError as exc:  # e.g. a non-string dict key json cannot express
            raise SerializationError(f"JsonSerializer.serialize: {exc}") from exc

    def deserialize(self, obj: bytes | str) -> Any:
        return json.loads(obj, object_hook=self.deser_hook or json_array_hook)

    def pack_shard(self, samples: Iterable[Any]) -> bytes:
        """Samples as JSON lines (uncompressed), validated in full before anything is written."""
        return b"".join(self.serialize(s) + b"\n" for s in samples)

    def deserialize_shard_from_file(
        self, fp: str, fs: Any = None, mode: str = "rb", **open_kwargs: Any
    ) -> Iterator[Any]:
        return iter(self._lines(_read_gzip(fp, fs, mode, open_kwargs), fp))

    def deserialize_shard_bytes(self, raw: bytes, fp: str = "<bytes>") -> list[Any]:
        """The samples of a shard file's bytes (gzip of JSON lines); errors name ``fp``."""
        return self._lines(_gunzip(raw, fp), fp)

    def _lines(self, payload: bytes, fp: str) -> list[Any]:
        out = []
        for lineno, line in enumerate(io.BytesIO(payload), 1):
            if not line.strip():
                continue
            try:
                out.append(self.deserialize(line))
            except SerializationError as exc:
                raise SerializationError(f"shard {fp}: line {lineno}: {exc}") from exc
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise shard_check.json_error(fp, lineno, exc, payload) from exc
            except ValueError as exc:  # valid JSON, but e.g. an array whose dtype or shape does not add up
                raise CorruptShardError(f"corrupt shard {fp}: line {lineno}: {exc}") from exc
        return out
