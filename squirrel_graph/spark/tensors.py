"""Tensor columns: a ``binary`` column whose field metadata names a numpy dtype and shape, so each value is one
array's raw bytes (C order). Spark moves such a column as one byte string per row, several times faster than the
same data as nested ``array`` columns (see ``benchmarks/spark.py``); ``write_store`` turns each value back into a
numpy array, and ``read_store`` with such a field in ``schema`` writes arrays into it.

    df = df.withMetadata("x", tensor_metadata("float32", (32, 32)))        # x: binary, 4096 bytes per row
    read_store(spark, url, schema=StructType([tensor_field("x", "float32", (32, 32)), StructField("y", LongType())]))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

TENSOR_KEY = "squirrel_graph.tensor"


def tensor_metadata(dtype: Any, shape: Sequence[int]) -> dict[str, Any]:
    """The field metadata of a tensor column of arrays of ``dtype`` and ``shape``."""
    dt = np.dtype(dtype)
    if dt.hasobject or dt.kind not in "biufc":
        raise ValueError(f"tensor_metadata(dtype=...): expected a numeric or bool dtype, got {dt}")
    dims = [int(s) for s in shape]
    if any(s < 0 for s in dims):
        raise ValueError(f"tensor_metadata(shape=...): expected non-negative sizes, got {tuple(shape)}")
    return {TENSOR_KEY: {"dtype": dt.str, "shape": dims}}


def tensor_of(metadata: Mapping[str, Any] | None, column: str = "") -> tuple[np.dtype, tuple[int, ...]] | None:
    """``(dtype, shape)`` of a tensor column's metadata, None for any other column; a ValueError naming ``column``
    if the metadata is malformed."""
    spec = (metadata or {}).get(TENSOR_KEY)
    if spec is None:
        return None
    try:
        return np.dtype(spec["dtype"]), tuple(int(s) for s in spec["shape"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"column {column!r}: metadata {TENSOR_KEY!r} is not {{'dtype', 'shape'}}: {spec!r}") from exc


def tensor_field(name: str, dtype: Any, shape: Sequence[int], nullable: bool = True) -> Any:
    """A ``StructField`` of a tensor column (binary, with :func:`tensor_metadata`), for ``read_store(schema=...)``."""
    from pyspark.sql.types import BinaryType, StructField

    return StructField(name, BinaryType(), nullable, metadata=tensor_metadata(dtype, shape))


__all__ = ["TENSOR_KEY", "tensor_field", "tensor_metadata", "tensor_of"]
