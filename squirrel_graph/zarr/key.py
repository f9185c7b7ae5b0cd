"""squirrel-core compatible path ``squirrel.zarr.key``."""

from squirrel_graph.io.zarr.key import (
    ZARR_CHUNK_PATTERN,
    flatten,
    is_dir,
    is_squirrel_key,
    is_zarr_chunk,
    is_zarr_key,
    key_end,
    normalize_key,
)

__all__ = [
    "ZARR_CHUNK_PATTERN",
    "flatten",
    "is_dir",
    "is_squirrel_key",
    "is_zarr_chunk",
    "is_zarr_key",
    "key_end",
    "normalize_key",
]
