"""The Spark schema of a store's samples, inferred from its first samples (the mapping is in
:mod:`squirrel_graph.spark.columns`), or given as a ``StructType`` or a DDL string."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from pyspark.sql import types as T

from squirrel_graph.spark.columns import VALUE

_BY_DTYPE: dict[str, type[T.DataType]] = {
    "b1": T.BooleanType,
    "i1": T.ByteType,
    "i2": T.ShortType,
    "i4": T.IntegerType,
    "i8": T.LongType,
    "u1": T.ShortType,
    "u2": T.IntegerType,
    "u4": T.LongType,
    "u8": T.LongType,
    "f2": T.FloatType,
    "f4": T.FloatType,
    "f8": T.DoubleType,
}
_NUMERIC_RANK = [T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType]


def numpy_type(dtype: np.dtype, where: str) -> T.DataType:
    """The Spark type of one element of dtype ``dtype``; a TypeError naming ``where`` for dtypes with none."""
    if dtype.kind == "U":
        return T.StringType()
    if dtype.kind == "S":
        return T.BinaryType()
    found = _BY_DTYPE.get(f"{dtype.kind}{dtype.itemsize}")
    if found is None:
        raise TypeError(
            f"{where}: numpy dtype {dtype} has no Spark column type (numbers, booleans, strings and bytes do); "
            "give read_store(schema=...) with a type it converts to, or map the field first"
        )
    return found()


def infer_type(value: Any, where: str) -> T.DataType | None:
    """The Spark type of one value (None for None: decided by other samples)."""
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        t = numpy_type(value.dtype, where)
        for _ in range(value.ndim):
            t = T.ArrayType(t, containsNull=True)
        return t
    if isinstance(value, np.generic):
        return numpy_type(value.dtype, where)
    if isinstance(value, bool):
        return T.BooleanType()
    if isinstance(value, int):
        return T.LongType()
    if isinstance(value, float):
        return T.DoubleType()
    if isinstance(value, str):
        return T.StringType()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return T.BinaryType()
    if isinstance(value, (list, tuple)):
        element: T.DataType | None = None
        for i, item in enumerate(value):
            element = merge(element, infer_type(item, f"{where}[{i}]"), where)
        return T.ArrayType(element or T.StringType(), containsNull=True)
    if isinstance(value, Mapping):
        return _struct([value], where)
    raise TypeError(
        f"{where}: a {type(value).__name__} has no Spark column type; give read_store(schema=...) or map the field"
    )


def _rank(t: T.DataType) -> int:
    return next((i for i, cls in enumerate(_NUMERIC_RANK) if isinstance(t, cls)), -1)


def merge(a: T.DataType | None, b: T.DataType | None, where: str) -> T.DataType | None:
    """The type that holds values of types ``a`` and ``b`` (numbers widen; structs unite their fields)."""
    if a is None or a == b:
        return b
    if b is None:
        return a
    if _rank(a) >= 0 and _rank(b) >= 0:
        return _NUMERIC_RANK[max(_rank(a), _rank(b))]()
    if isinstance(a, T.ArrayType) and isinstance(b, T.ArrayType):
        return T.ArrayType(merge(a.elementType, b.elementType, where) or T.StringType(), containsNull=True)
    if isinstance(a, T.StructType) and isinstance(b, T.StructType):
        fields = {f.name: f.dataType for f in a.fields}
        for f in b.fields:
            fields[f.name] = merge(fields.get(f.name), f.dataType, f"{where}.{f.name}")  # type: ignore[assignment]
        return T.StructType([T.StructField(n, t, nullable=True) for n, t in fields.items()])
    raise TypeError(
        f"{where} holds both {a.simpleString()} and {b.simpleString()} in the inspected samples; "
        "give read_store(schema=...)"
    )


def _struct(samples: Iterable[Mapping[Any, Any]], where: str) -> T.StructType:
    fields: dict[str, T.DataType | None] = {}
    for sample in samples:
        for name, value in sample.items():
            if not isinstance(name, str):
                raise TypeError(f"{where}: key {name!r} is not a string; Spark column names are strings")
            fields[name] = merge(fields.get(name), infer_type(value, f"{where}[{name!r}]"), f"{where}[{name!r}]")
    return T.StructType([T.StructField(n, t or T.StringType(), nullable=True) for n, t in fields.items()])


def infer_schema(samples: list[Any], where: str) -> T.StructType:
    """The schema of ``samples``: dicts give a column per key (in first-seen order), other samples one ``value``
    column."""
    if not samples:
        raise ValueError(f"{where}: the store has no samples to infer a schema from; give read_store(schema=...)")
    if all(isinstance(s, Mapping) for s in samples):
        return _struct(samples, where)
    if any(isinstance(s, Mapping) for s in samples):
        raise TypeError(f"{where}: some samples are dicts and some are not; give read_store(schema=...)")
    t: T.DataType | None = None
    for i, s in enumerate(samples):
        t = merge(t, infer_type(s, f"{where} sample {i}"), where)
    return T.StructType([T.StructField(VALUE, t or T.StringType(), nullable=True)])


def given_schema(spark: Any, schema: Any) -> T.StructType:
    """``schema`` as a StructType: one already, or a DDL string such as ``"x array<array<float>>, y long"``."""
    if isinstance(schema, T.StructType):
        return schema
    if isinstance(schema, str):
        try:
            return spark.createDataFrame([], schema).schema
        except Exception as exc:
            raise ValueError(f"read_store(schema=...): cannot parse {schema!r} as a DDL schema ({exc})") from None
    raise TypeError(f"read_store(schema=...): expected a StructType or a DDL string, got {type(schema).__name__}")


__all__ = ["given_schema", "infer_schema", "infer_type", "merge", "numpy_type"]
