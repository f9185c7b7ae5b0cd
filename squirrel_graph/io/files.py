"""Read or write one object as a whole file through fsspec (squirrel-core's ``framework.io`` helpers)."""

from __future__ import annotations

from typing import Any

from squirrel_graph.io.fs import get_fs_from_url
from squirrel_graph.io.serialization import SquirrelSerializer


def write_to_file(fp: str, obj: Any, fs: Any = None, serializer: SquirrelSerializer | None = None, **open_kwargs: Any):
    """Write ``obj`` (serialized if a serializer is given, else bytes or str) to ``fp`` through fsspec."""
    fs = fs if fs is not None else get_fs_from_url(fp)
    data = serializer.serialize(obj) if serializer is not None else obj
    mode = "w" if isinstance(data, str) else "wb"
    with fs.open(fp, mode, **open_kwargs) as f:
        f.write(data)


def read_from_file(fp: str, fs: Any = None, serializer: SquirrelSerializer | None = None, **open_kwargs: Any) -> Any:
    """Read ``fp`` whole through fsspec, deserialized if a serializer is given (bytes otherwise)."""
    fs = fs if fs is not None else get_fs_from_url(fp)
    with fs.open(fp, "rb", **open_kwargs) as f:
        data = f.read()
    return serializer.deserialize(data) if serializer is not None else data


__all__ = ["read_from_file", "write_to_file"]
