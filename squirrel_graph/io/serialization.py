"""Serializers for store shards: msgpack (msgpack-numpy's array encoding) and JSON lines, gzip-compressed.

Byte compatibility with squirrel-core 0.20.2: a msgpack shard is gzip of samples packed back to back, numpy
arrays encoded as msgpack-numpy does (``{b"nd": True, b"type": dtype.str, b"kind": b"", b"shape": [...],
b"data": raw bytes}``); a JSONL shard is gzip of one JSON object per line, arrays as
``{"data": nested lists, "type": dtype.str, "shape": [...]}``. Nothing is ever unpickled: object arrays are
refused on write and on read.
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
    if isinstance(value, (list, tuple)):  # a structured dtype's descr
        return [tuple(_descr(v) if isinstance(v, (list, tuple)) else v for v in field) for field in value]
    return value


def msgpack_decode(obj: dict[Any, Any]) -> Any:
    """``object_hook=`` for msgpack: rebuild arrays/scalars written by msgpack-numpy or by us; refuse pickles.

    Only the binary keys msgpack-numpy writes (``b"nd"``...) mark an array, so user dicts with str keys are safe.
    """
    nd = obj.get(b"nd") if 4 <= len(obj) <= 5 else None
    if nd is None:
        return obj
    kind = obj.get(b"kind", b"")
    if kind == b"O":
        raise SerializationError("MessagepackSerializer.deserialize: refusing a pickled object array (kind 'O')")
    dtype = np.dtype(_descr(obj[b"type"]))
    _check_dtype(dtype, "MessagepackSerializer.deserialize")
    if nd:
        return np.frombuffer(obj[b"data"], dtype=dtype).reshape(tuple(obj[b"shape"])).copy()
    return np.frombuffer(obj[b"data"], dtype=dtype)[0]


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
    try:
        return gzip_decompress(raw)
    except (OSError, EOFError, ValueError) as exc:
        raise CorruptShardError(f"corrupt shard {fp}: cannot gunzip ({exc})") from exc


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
        """All samples of a decompressed shard; invalid msgpack raises CorruptShardError naming ``fp``."""
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
        except SerializationError:
            raise
        except Exception as exc:
            raise CorruptShardError(f"corrupt shard {fp}: invalid msgpack ({type(exc).__name__}: {exc})") from exc
        if end != len(payload):
            raise CorruptShardError(
                f"corrupt shard {fp}: {len(payload) - end} trailing bytes are not a complete msgpack sample "
                "(truncated shard?)"
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
    """Turn ``{"data", "type", "shape"}`` back into an exact numpy array."""
    if len(obj) == 3 and "data" in obj and "type" in obj and "shape" in obj:
        dtype = np.dtype(obj["type"])
        _check_dtype(dtype, "JsonSerializer.deserialize")
        return np.asarray(obj["data"], dtype=dtype).reshape(obj["shape"])
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
            except (ValueError, UnicodeDecodeError) as exc:
                if isinstance(exc, SerializationError):
                    raise
                raise CorruptShardError(f"corrupt shard {fp}: line {lineno} is not valid JSON ({exc})") from exc
        return out
