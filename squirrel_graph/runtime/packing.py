"""Packed batches for the DataLoader hand-off (``to_torch_iterable(pack=True)``).

A DataLoader worker sends every tensor of a batch through shared memory on its own: a list of 100 samples with one
array each costs 100 segments and 100 handle transfers. Packing stacks, per field, the batch's values that are
numpy arrays (or tensors) of one shape and dtype into one shared-memory tensor and gives each item a view of it.
The batch is a :class:`PackedBatch`: pickled to the main process it sends each packed tensor once and rebuilds the
views there, so the training loop receives a plain list whose items hold tensors, as DataLoader's default
conversion would have given it. Anything else (ragged shapes, mixed dtypes, other values, nested structures) is
left as it is.

Whether a plan qualifies (its batches come from ``batched(n)`` without ``collation_fn``) is read from the plan;
whether to pack is decided each time a run starts, in the process that runs it (a DataLoader worker packs, any
other process passes batches through), so a compilation cached in the parent before a fork decides nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from squirrel_graph.errors import annotate
from squirrel_graph.graph import Batched, Fused, Plan, TorchCheck
from squirrel_graph.runtime.context import Opener, RunContext, Runner

#: numpy dtype kinds torch can hold: bool, signed, unsigned, float, complex
_KINDS = frozenset("biufc")
_DICT, _SEQ, _WHOLE = "dict", "seq", "whole"  # how a batch's items hold their fields
_torch_dtypes: dict[np.dtype, Any] = {}


def batch_source(plan: Plan, nid: str) -> tuple[str | None, str]:
    """The ``batched(n)`` (without ``collation_fn``) whose batches reach ``nid`` through stages that keep items,
    as (its node id, why); (None, why not) if the items reaching ``nid`` are not such batches."""
    current = nid
    while True:
        ins = plan.inputs(current)
        if len(ins) != 1:
            return None, f"{plan.node(current).label()} reads {len(ins)} inputs, not one stream of batches"
        current = ins[0]
        node = plan.node(current)
        last = node.nodes[-1] if isinstance(node, Fused) and node.nodes else node
        if isinstance(last, Batched):
            if last.collation_fn is not None:
                return None, f"{last.label()} has a collation_fn, so its batches are whatever that returns"
            return current, f"its batches come from {last.label()} without collation_fn"
        if not (node.keeps_items and node.n_inputs == 1):
            return None, f"its input {node.label()} is not batched(n) without collation_fn"


def pack_hints(plan: Plan) -> list[str]:
    """Hints for explain: each ``to_torch_iterable()`` without ``pack=True`` that reads unpacked batches."""
    hints = []
    for nid, node in plan.items():
        if isinstance(node, TorchCheck):
            source, why = batch_source(plan, nid)
            if source is not None:
                hints.append(
                    f"{nid} ({node.label()}): {why}; to_torch_iterable(pack=True) would send each batch from a "
                    "DataLoader worker as one shared-memory tensor per field instead of one per array (same items; "
                    "see docs/pytorch.md)"
                )
    return hints


def runner(nid: str, plan: Plan) -> tuple[Runner, str]:
    """The runner of the ``pack_batches`` node ``nid`` and its note for explain."""
    source, why = batch_source(plan, nid)
    if source is None:
        return _passthrough, f"inactive, batches pass unchanged: {why}"

    def run(inputs: Sequence[Opener], ctx: RunContext) -> Iterator[Any]:
        if not in_dataloader_worker():  # decided now, in the process that runs it
            return inputs[0]()
        return _packed(inputs[0](), nid)

    note = (
        f"packs in DataLoader workers only (decided when each run starts): {why}; each field of same-shape, "
        "same-dtype arrays becomes one shared-memory tensor, each item a view of it"
    )
    return run, note


def _passthrough(inputs: Sequence[Opener], ctx: RunContext) -> Iterator[Any]:
    return inputs[0]()


def in_dataloader_worker() -> bool:
    """Is this process a DataLoader worker (asked without importing torch)?"""
    data = sys.modules.get("torch.utils.data")
    return data is not None and data.get_worker_info() is not None


def _packed(batches: Iterator[Any], nid: str) -> Iterator[Any]:
    for batch in batches:  # an upstream stage's error passes through as it is
        if type(batch) is not list:
            yield batch
            continue
        try:
            packed = pack_batch(batch)
        except Exception as exc:  # e.g. no shared memory left: name this stage
            annotate(exc, "pack_batches", nid)
            raise
        yield packed


# --------------------------------------------------------------------------------------------- one batch


def pack_batch(batch: list[Any]) -> list[Any]:
    """``batch`` with every packable field stacked into one shared-memory tensor (a :class:`PackedBatch`), or
    ``batch`` itself when no field qualifies."""
    if len(batch) < 2:
        return batch
    layout, keys = _layout(batch)
    if layout is None:
        return batch
    fields = []
    for key in keys:
        packed = _stack([_get(item, layout, key) for item in batch])
        if packed is not None:
            fields.append((key, packed, packed.unbind(0)))
    if not fields:
        return batch
    items = [_put(item, layout, [(key, views[i]) for key, _, views in fields]) for i, item in enumerate(batch)]
    return PackedBatch(items, layout, tuple(fields))


def _layout(batch: list[Any]) -> tuple[str | None, Sequence[Any]]:
    """How the items hold their fields (all alike: dicts, tuples/lists of one length, or bare arrays) and the
    field keys present in every item."""
    first = batch[0]
    kind = type(first)
    if kind is dict:
        if any(type(item) is not dict for item in batch):
            return None, ()
        return _DICT, [k for k in first if all(k in item for item in batch)]
    if _sequence(first):
        n = len(first)
        if any(type(item) is not kind or len(item) != n for item in batch):
            return None, ()
        return _SEQ, range(n)
    if _array(first) or _tensor(first):
        return _WHOLE, (None,)
    return None, ()


def _sequence(item: Any) -> bool:
    """A list, tuple or namedtuple (the sequences whose copies keep their type)."""
    kind = type(item)
    return kind is list or kind is tuple or (issubclass(kind, tuple) and hasattr(kind, "_fields"))


def _get(item: Any, layout: str, key: Any) -> Any:
    return item if layout == _WHOLE else item[key]


def _put(item: Any, layout: str, pairs: Sequence[tuple[Any, Any]]) -> Any:
    """A copy of ``item`` with the given (key, value) pairs set (the value itself for a bare item)."""
    if layout == _WHOLE:
        return pairs[0][1]
    if layout == _DICT:
        out = item.copy()
        for key, value in pairs:
            out[key] = value
        return out
    values = list(item)
    for key, value in pairs:
        values[key] = value
    kind = type(item)
    return kind(*values) if hasattr(kind, "_fields") else kind(values)


def _array(value: Any) -> bool:
    return (type(value) is np.ndarray or isinstance(value, np.generic)) and value.dtype.kind in _KINDS


def _tensor(value: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and type(value) is torch.Tensor


def _stack(values: list[Any]) -> Any:
    """One shared-memory tensor holding ``values`` (numpy arrays and scalars, or CPU tensors, all of one shape and
    dtype), or None when they are not all alike."""
    import torch

    first = values[0]
    if _array(first):
        dtype, shape = first.dtype, first.shape
        if not all(_array(v) and v.dtype == dtype and v.shape == shape for v in values):
            return None
        torch_dtype = _torch_dtype(dtype)
        if torch_dtype is None or 0 in shape:
            return None
        out = torch.empty((len(values), *shape), dtype=torch_dtype).share_memory_()
        np.stack(values, out=out.numpy())
        return out
    if _tensor(first) and _plain(first):
        dtype, shape = first.dtype, first.shape
        if not all(_tensor(v) and _plain(v) and v.dtype == dtype and v.shape == shape for v in values):
            return None
        if first.numel() == 0:
            return None
        out = torch.empty((len(values), *shape), dtype=dtype).share_memory_()
        torch.stack(values, out=out)
        return out
    return None


def _plain(t: Any) -> bool:
    """A dense CPU tensor that can cross processes as data (no autograd history to keep)."""
    return t.device.type == "cpu" and t.layout == sys.modules["torch"].strided and not t.requires_grad


def _torch_dtype(dtype: np.dtype) -> Any:
    """torch's dtype for a numpy dtype (None if torch cannot take such an array, e.g. non-native byte order)."""
    if dtype not in _torch_dtypes:
        import torch

        try:
            _torch_dtypes[dtype] = torch.from_numpy(np.empty(0, dtype=dtype)).dtype
        except (TypeError, ValueError, RuntimeError):
            _torch_dtypes[dtype] = None
    return _torch_dtypes[dtype]


# --------------------------------------------------------------------------------------------- crossing processes


class PackedBatch(list):
    """A batch (a list of items) whose packed fields are views of one shared-memory tensor per field.

    Pickled, each packed tensor travels once and the receiver rebuilds the views: it gets a plain list. A value
    that no longer is the view packing put there (a custom ``collate_fn`` replaced it) is sent as it is."""

    def __init__(self, items: list[Any], layout: str, fields: tuple[tuple[Any, Any, Sequence[Any]], ...]) -> None:
        super().__init__(items)
        self.layout = layout
        self.fields = fields  # (key, packed tensor, its views in item order)

    def __copy__(self) -> PackedBatch:  # DataLoader's default_convert copies the list, then converts its items
        return PackedBatch(list(self), self.layout, self.fields)

    def __reduce__(self) -> tuple[Callable[..., list[Any]], tuple[Any, ...]]:
        items = list(self)
        sent, blank = [], {}
        for key, packed, views in self.fields:
            hits = tuple(i for i, (item, view) in enumerate(zip(items, views)) if _holds(item, self.layout, key, view))
            if hits:
                sent.append((key, packed, hits))
                for i in hits:
                    blank.setdefault(i, []).append((key, None))
        for i, pairs in blank.items():
            items[i] = _put(items[i], self.layout, pairs)
        return _unpack, (items, self.layout, tuple(sent))


def _holds(item: Any, layout: str, key: Any, view: Any) -> bool:
    """Does ``item`` (as it is now, after the worker's collate_fn) still hold ``view`` where packing put it?"""
    if layout == _WHOLE:
        return item is view
    if not (type(item) is dict if layout == _DICT else _sequence(item)):
        return False
    try:
        return item[key] is view
    except (KeyError, IndexError):
        return False


def _unpack(items: list[Any], layout: str, sent: tuple[tuple[Any, Any, tuple[int, ...]], ...]) -> list[Any]:
    """(in the receiving process) the batch as a plain list, each packed value a view of its field's tensor."""
    pairs: dict[int, list[tuple[Any, Any]]] = {}
    for key, packed, hits in sent:
        views = packed.unbind(0)
        for i in hits:
            pairs.setdefault(i, []).append((key, views[i]))
    for i, found in pairs.items():
        items[i] = _put(items[i], layout, found)
    return items
