"""How Spark columns and squirrel samples map onto each other, through Arrow batches (no row-by-row pickling).

Writing (a DataFrame's rows become samples):

- a column of numbers or booleans nested in arrays (``array<float>``, ``array<array<float>>``, ...) becomes one
  numpy array per row, of the column's element type (``float`` → float32, ``double`` → float64, ``byte`` →
  int8, ``short`` → int16, ``int`` → int32, ``long`` → int64, ``boolean`` → bool) and of the nesting's shape
  (``array<array<float>>`` of 32 lists of 32 → float32 ``(32, 32)``). A row whose arrays are ragged or hold nulls
  keeps nested Python lists; a null array stays None.
- ``binary`` becomes ``bytes``; ``string``, numbers and booleans Python values; a ``struct`` a dict of its fields,
  mapped alike (its number arrays become numpy arrays too); a ``map`` a dict; arrays of strings or structs lists.
  Other types (timestamps, decimals) arrive as Python objects that the messagepack serializer refuses: convert
  them in Spark or in ``to_sample``.

Reading (samples become a DataFrame's rows), the schema inferred from the first samples:

- a numpy array of ``ndim`` dimensions becomes ``ndim`` nested ``array`` types of the matching element type
  (float16 widens to ``float``, uint8/uint16/uint32 widen to ``short``/``int``/``long``, uint64 is ``long``:
  values above 2**63-1 fail); a 0-d array or numpy scalar its element type; string and bytes arrays ``array<string>``
  and ``array<binary>``. Complex, datetime, structured and object arrays are refused (give ``schema=``).
- ``bytes`` → ``binary``, ``str`` → ``string``, ``int`` → ``long``, ``float`` → ``double``, ``bool`` → ``boolean``,
  a list or tuple → ``array`` of its elements' type, a dict with string keys → ``struct``. A field that is None in
  every inspected sample becomes a (null) ``string``. Samples that are not dicts become one column, ``value``.

Tensor columns (:mod:`squirrel_graph.spark.tensors`): a ``binary`` column whose metadata names a dtype and shape
holds one array's bytes per row; writing turns each value into that numpy array, reading (with such a field in the
given schema) writes each array's bytes, cast to that dtype only where no precision is lost.

So a DataFrame written by ``write_store`` and read back by ``read_store`` has the same columns and values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

VALUE = "value"  # the column of samples that are not dicts
Tensors = Mapping[str, tuple[np.dtype, tuple[int, ...]]]  # column -> (dtype, shape) of its tensor metadata

# ------------------------------------------------------------------------------------------------ Arrow → samples


def _nesting(t: pa.DataType) -> tuple[int, pa.DataType]:
    """(number of list levels, leaf type) of an Arrow type."""
    depth = 0
    while pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        t = t.value_type
        depth += 1
    return depth, t


def _numeric_leaf(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)


def _rectangular(col: pa.Array, depth: int) -> np.ndarray | None:
    """``col`` (``depth`` list levels of numbers) as one array of shape ``(rows, d1, ..., d_depth)``, or None if a
    level holds nulls or lists of different lengths."""
    rows = len(col)
    dims: list[int] = []
    cur = col
    for _ in range(depth):
        if cur.null_count:
            return None
        if pa.types.is_fixed_size_list(cur.type):
            width = cur.type.list_size
        else:
            lengths = np.diff(np.asarray(cur.offsets))
            if len(lengths) and (lengths != lengths[0]).any():
                return None
            width = int(lengths[0]) if len(lengths) else 0
        dims.append(width)
        cur = cur.flatten()
    if cur.null_count:
        return None
    leaf = cur.to_numpy(zero_copy_only=False)
    # a copy: the samples own writable memory (Arrow's buffers are read-only and freed with the batch)
    return np.array(leaf, copy=True).reshape(rows, *dims)


def array_values(col: pa.Array) -> list[Any]:
    """One numpy array per row of a column of (nested) number lists; ragged or null-holding rows stay lists."""
    depth, _ = _nesting(col.type)
    whole = _rectangular(col, depth)
    if whole is not None:
        return list(whole)
    out: list[Any] = []
    for i in range(len(col)):
        row = col.slice(i, 1)
        if row.null_count:
            out.append(None)
            continue
        one = _rectangular(row, depth)
        out.append(one[0] if one is not None else row.to_pylist()[0])
    return out


def tensor_values(col: pa.Array, dtype: np.dtype, shape: tuple[int, ...], column: str) -> list[Any]:
    """One numpy array per row of a tensor column (None for a null); one copy for the whole column when every value
    has the array's size. A value of another size is a ValueError naming the column."""
    size = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
    rows = len(col)
    if col.null_count == 0 and (pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type)):
        width = np.int64 if pa.types.is_large_binary(col.type) else np.int32
        offsets = np.frombuffer(col.buffers()[1], dtype=width)[col.offset : col.offset + rows + 1]
        if rows and (np.diff(offsets) == size).all():
            data = np.frombuffer(col.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
            return list(data.view(dtype).reshape(rows, *shape).copy())
    out: list[Any] = []
    for value in col.to_pylist():
        if value is not None and len(value) != size:
            raise ValueError(
                f"column {column!r}: a value of {len(value)} bytes is not a {dtype} array of shape {shape} "
                f"({size} bytes), as the column's metadata says"
            )
        out.append(None if value is None else np.frombuffer(value, dtype=dtype).reshape(shape).copy())
    return out


def column_values(col: pa.Array) -> list[Any]:
    """The Python values of one Arrow column of a DataFrame, mapped as the module docstring says (a struct's fields
    too)."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    depth, leaf = _nesting(col.type)
    if depth and _numeric_leaf(leaf):
        return array_values(col)
    if pa.types.is_struct(col.type):
        names = [col.type.field(i).name for i in range(col.type.num_fields)]
        fields = [column_values(child) for child in col.flatten()]  # flatten: the struct's offset and nulls applied
        valid = col.is_valid().to_pylist()
        return (
            [dict(zip(names, row)) if ok else None for ok, row in zip(valid, zip(*fields))]
            if names
            else [{} if ok else None for ok in valid]
        )
    if pa.types.is_map(col.type) or depth:
        return col.to_pylist(maps_as_pydicts="strict")
    return col.to_pylist()


def batch_samples(batch: pa.RecordBatch, tensors: Tensors | None = None) -> list[dict[str, Any]]:
    """The rows of ``batch`` as sample dicts (column name → value); ``tensors`` names the tensor columns."""
    names = batch.schema.names
    tensors = tensors or {}
    columns = [
        tensor_values(batch.column(i), *tensors[n], n) if n in tensors else column_values(batch.column(i))
        for i, n in enumerate(names)
    ]
    return [dict(zip(names, values)) for values in zip(*columns)] if columns else [{} for _ in range(batch.num_rows)]


def rows_of(
    batches: Iterable[pa.RecordBatch], to_sample: Callable[[Any], Any] | None, tensors: Tensors | None = None
) -> Iterable[Any]:
    """The samples of a partition's Arrow batches: the row dicts, or ``to_sample(Row)`` of each."""
    row_cls = None
    if to_sample is not None:
        from pyspark.sql import Row

        row_cls = Row
    for batch in batches:
        for sample in batch_samples(batch, tensors):
            yield sample if row_cls is None else to_sample(row_cls(**sample))


# ------------------------------------------------------------------------------------------------ samples → Arrow


def _plain(value: Any, binary: bool = False) -> Any:
    """``value`` with numpy arrays and scalars, tuples and nested dicts turned into what ``pa.array`` converts."""
    if isinstance(value, np.ndarray):
        return value.tobytes() if binary else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return value


def _stacked(values: Sequence[Any], arrow_type: pa.DataType) -> pa.Array | None:
    """The fast path: every value an ndarray of one shape whose dimensions match the list levels of ``arrow_type``;
    one stacked copy and a cast of the flat values, with the list levels built from uniform offsets."""
    depth, leaf = _nesting(arrow_type)
    if not depth or not _numeric_leaf(leaf) or not values:
        return None
    first = values[0]
    if not isinstance(first, np.ndarray) or first.ndim != depth or first.dtype.kind not in "biuf":
        return None
    shape, kind = first.shape, first.dtype
    if any(not isinstance(v, np.ndarray) or v.shape != shape or v.dtype != kind for v in values):
        return None
    flat = np.stack(values).reshape(-1)
    arr: pa.Array = pa.array(flat).cast(leaf)  # a safe cast: an overflowing uint64 or a lossy cast raises
    types = []
    t = arrow_type
    for _ in range(depth):
        types.append(t)
        t = t.value_type
    count = len(values)
    for level in range(depth - 1, -1, -1):
        width = shape[level]
        n = count * int(np.prod(shape[:level], dtype=np.int64))
        offsets = pa.array(np.arange(n + 1, dtype=np.int32) * width)
        arr = pa.ListArray.from_arrays(offsets, arr, type=types[level])
    return arr


def _tensor_bytes(value: Any, dtype: np.dtype, shape: tuple[int, ...]) -> Any:
    if value is None or isinstance(value, (bytes, bytearray, memoryview)):
        return value
    arr = np.asarray(value)
    if arr.shape != shape or not np.can_cast(arr.dtype, dtype, "safe"):
        raise ValueError(f"a {arr.dtype} array of shape {arr.shape} is not a {dtype} array of shape {shape}")
    return arr.astype(dtype, copy=False).tobytes()


def tensor_column(values: Sequence[Any], arrow_type: pa.DataType, dtype: np.dtype, shape: tuple[int, ...]) -> pa.Array:
    """A tensor column: each array's bytes, cast to ``dtype`` where no precision is lost; one stacked copy when
    every value is an array of ``shape``."""
    first = values[0] if values else None
    if isinstance(first, np.ndarray) and all(isinstance(v, np.ndarray) and v.shape == shape for v in values):
        stacked = np.stack(values)
        if not np.can_cast(stacked.dtype, dtype, "safe"):
            raise ValueError(f"a {stacked.dtype} array is not a {dtype} array (a lossy cast)")
        data = stacked.astype(dtype, copy=False).tobytes()
        size = len(data) // len(values)
        width = np.int64 if pa.types.is_large_binary(arrow_type) else np.int32
        offsets = np.arange(len(values) + 1, dtype=width) * size
        return pa.Array.from_buffers(arrow_type, len(values), [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    return pa.array([_tensor_bytes(v, dtype, shape) for v in values], type=arrow_type)


def to_arrow(
    values: Sequence[Any], arrow_type: pa.DataType, field: str, tensor: tuple[np.dtype, tuple[int, ...]] | None = None
) -> pa.Array:
    """One Arrow column of ``arrow_type`` from sample values (a tensor column's when ``tensor`` gives its dtype and
    shape); a ValueError naming ``field`` if they do not fit."""
    binary = pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type)
    try:
        if tensor is not None and binary:
            return tensor_column(values, arrow_type, *tensor)
        fast = _stacked(values, arrow_type)
        if fast is not None:
            return fast
        return pa.array([_plain(v, binary) for v in values], type=arrow_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as exc:
        example = next((v for v in values if v is not None), None)
        shown = f"{type(example).__name__} {example!r:.80}"
        raise ValueError(f"field {field!r}: cannot convert {shown} to the column type {arrow_type} ({exc})") from None


def samples_batch(
    samples: Sequence[Any], arrow_schema: pa.Schema, where: str, tensors: Tensors | None = None
) -> pa.RecordBatch:
    """An Arrow batch of ``arrow_schema`` from samples (dicts: missing fields are null, extra fields dropped; other
    samples fill the one ``value`` column); ``tensors`` names the tensor columns."""
    names = arrow_schema.names
    if names == [VALUE] and samples and not isinstance(samples[0], Mapping):
        columns = {VALUE: list(samples)}
    else:
        bad = next((s for s in samples if not isinstance(s, Mapping)), None)
        if bad is not None:
            raise ValueError(f"{where}: a sample is a {type(bad).__name__}, not a dict like the schema's rows")
        columns = {n: [s.get(n) for s in samples] for n in names}
    arrays = []
    for field in arrow_schema:
        try:
            arrays.append(to_arrow(columns[field.name], field.type, field.name, (tensors or {}).get(field.name)))
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
    return pa.RecordBatch.from_arrays(arrays, schema=arrow_schema)


__all__ = [
    "VALUE",
    "Tensors",
    "array_values",
    "batch_samples",
    "column_values",
    "rows_of",
    "samples_batch",
    "tensor_column",
    "tensor_values",
    "to_arrow",
]
