"""The numba backend: fused runs of numba_map/map/filter compiled with ``numba.njit``, with a safe fallback.

A run is compiled for the items it actually sees:

- scalar items (Python or numpy ints and floats): items are gathered in chunks into a numpy array and one
  njit-compiled loop applies the whole run to the chunk. Integer chunks are computed twice, as int64 and as
  float64, and a chunk whose results disagree (int64 wrapped around, or a value beyond float precision) is
  computed in Python instead, so a wrong result is never returned. Results come back as Python ints/floats.
- numpy array items: one njit-compiled function applies the whole run to each array.
- anything else (dicts, strings, tensors), or any typing or compile error: the run falls back to the threaded
  backend's generated loop; the reason (the first line of numba's error) is logged once and shown by explain.

Compiled kernels are cached per process, keyed by the functions' code and the item type, so later iterations
(and later streams with the same functions) do not compile again.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from squirrel_graph.backends.lowering import Lowered, PhysicalStage
from squirrel_graph.backends.numba.positions import ChunkPositions
from squirrel_graph.backends.registry import BackendSpec
from squirrel_graph.graph import Filter, Fused, Map, Node, NumbaMap, Plan
from squirrel_graph.runtime import resume
from squirrel_graph.runtime.codegen import generate
from squirrel_graph.runtime.context import Opener, RunContext

logger = logging.getLogger("squirrel_graph")
CHUNK = 4096
_KERNELS: dict[tuple[Any, ...], Any] = {}  # process-level cache keyed by content (code objects, item kind)


class NumbaState:
    """What the numba stage did in a run: compiled or fell back (why), and compile seconds."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.mode = "not run"
        self.reason = ""
        self.compile_seconds = 0.0
        self.compilations = 0


def _members(nid: str, node: Node) -> tuple[tuple[Node, ...], tuple[str, ...]]:
    return (node.nodes, node.node_ids) if isinstance(node, Fused) else ((node,), (nid,))


def _compilable(nodes: Sequence[Node]) -> bool:
    return all(isinstance(n, (Map, Filter)) and not (isinstance(n, Map) and n.kwargs) for n in nodes)


class NumbaBackend:
    """Claims fused runs that contain a numba_map (all fused map/filter runs with ``backend="numba"``)."""

    name = "numba"

    def __init__(self, everything: bool = False) -> None:
        self.everything = everything

    def lower_node(self, nid: str, node: Node, plan: Plan, built: Mapping[str, PhysicalStage]) -> Lowered | None:
        nodes, ids = _members(nid, node)
        if not isinstance(node, (Fused, NumbaMap, Map, Filter)):
            return None
        if not (self.everything or any(isinstance(n, NumbaMap) for n in nodes)):
            return None
        if not _compilable(nodes):
            return None  # flatten/batched/kwargs in the run: the threaded backend runs it (numba_map as a call)
        fallback = generate(nodes, ids, inline=False)
        label = node.label()

        def run(inputs: Sequence[Opener], ctx: RunContext) -> Iterator[Any]:
            state = ctx.state.setdefault(nid, NumbaState(label))
            start = resume.taken(ctx, nid)
            resume.hand(ctx, inputs[0], start["chunk"] if start else None)
            tracker = ChunkPositions(resume.reader(ctx, inputs[0]), start, CHUNK)
            ctx.positions[nid] = tracker.position
            return _run(inputs[0](), nodes, fallback, state, tracker)

        return Lowered(run, note="numba: compiled on first items (see explain after a run)")


def _jit(fn: Any) -> Any:
    import numba

    return fn if hasattr(fn, "py_func") else numba.njit(cache=False)(fn)


def _fn(node: Node) -> Any:
    return node.predicate if isinstance(node, Filter) else node.fn


def _item_source(nodes: Sequence[Node]) -> str:
    """``_item(x) -> (keep, x)``: the whole run for one item."""
    lines = ["def _item(x):"]
    for i, node in enumerate(nodes):
        if isinstance(node, Filter):
            lines.append(f"    if not _f{i}(x):")
            lines.append("        return False, x")
        else:
            lines.append(f"    x = _f{i}(x)")
    lines.append("    return True, x")
    return "\n".join(lines) + "\n"


_CHUNK_SOURCE = """
def _chunk(xs, out):
    n = 0
    for i in range(xs.shape[0]):
        keep, x = _item(xs[i])
        if keep:
            out[n] = x
            n += 1
    return n, True
"""

# integers: the same run in float64 next to int64, in one pass; any disagreement (a wrapped int64, a value beyond
# float precision, a different filter decision) makes the caller compute the chunk in Python
_INT_CHUNK_SOURCE = """
def _chunk(xs, out):
    n = 0
    ok = True
    for i in range(xs.shape[0]):
        keep, x = _item(xs[i])
        keep_f, x_f = _item(np.float64(xs[i]))
        if keep != keep_f:
            ok = False
        if keep:
            if abs(np.float64(x) - x_f) > 1e-9 * abs(x_f):
                ok = False
            out[n] = x
            n += 1
    return n, ok
"""


def _kernels(nodes: Sequence[Node], kind: str, state: NumbaState) -> tuple[Any, Any, Any]:
    """(item function, chunk function, output dtype) for ``nodes``, compiled once per process per (functions,
    item kind); typing errors are raised here, where the caller falls back."""
    import numba

    # the function objects themselves: two closures share a code object but not their captured values
    key = (tuple(_fn(n) for n in nodes), tuple(type(n) for n in nodes), kind)
    cached = _KERNELS.get(key)
    if cached is not None:
        return cached
    namespace: dict[str, Any] = {f"_f{i}": _jit(_fn(n)) for i, n in enumerate(nodes)}
    exec(compile(_item_source(nodes), "<squirrel_graph numba item>", "exec"), namespace)
    item = numba.njit(namespace["_item"])
    namespace["_item"] = item
    namespace["np"] = np
    out_dtype = None
    chunk = None
    if kind in ("int", "float"):
        from numba.np.numpy_support import as_dtype

        scalar = numba.int64 if kind == "int" else numba.float64
        item.compile((scalar,))
        returned = next(s.return_type for s in item.nopython_signatures if tuple(s.args) == (scalar,))
        out_dtype = as_dtype(returned[1])
        source = _INT_CHUNK_SOURCE if kind == "int" else _CHUNK_SOURCE
        exec(compile(source, "<squirrel_graph numba chunk>", "exec"), namespace)
        chunk = numba.njit(namespace["_chunk"])
        chunk.compile((numba.types.Array(scalar, 1, "C"), numba.types.Array(numba.from_dtype(out_dtype), 1, "C")))
    _KERNELS[key] = (item, chunk, out_dtype)
    state.compilations += 1
    return item, chunk, out_dtype


def _kind(item: Any) -> str | None:
    """ "int"/"float" for Python ints/floats, "array:<dtype>:<ndim>" for numeric numpy arrays, else None.

    numpy scalars are not compiled: Python arithmetic keeps their numpy types, which the kernel would not."""
    import numpy as np

    if type(item) is int:
        return "int"
    if type(item) is float:
        return "float"
    if type(item) is np.ndarray and item.dtype.kind in "biuf":
        return f"array:{item.dtype.str}:{item.ndim}"
    return None


def _reason(exc: BaseException) -> str:
    """The informative part of a numba error, whole (never cut inside a sentence): its first two distinct lines,
    the line after them when the second ends with ``:`` (the signature numba could not type, ``>>> f(int64)``),
    and the first ``TypingError:`` line of the candidates' explanations, when there is one."""
    lines = list(dict.fromkeys(line.strip() for line in str(exc).splitlines() if line.strip()))  # distinct
    if not lines:
        return type(exc).__name__
    keep = lines[:2]
    if keep[-1].endswith(":") and len(lines) > 2:
        keep.append(lines[2])
    typing = next((line for line in lines[len(keep) :] if line.startswith("TypingError:")), None)
    return " ".join(keep + ([f"({typing})"] if typing else []))


def _fall_back(state: NumbaState, reason: str) -> None:
    if state.mode != "python":
        logger.info("%s: not compiled with numba, running in Python: %s", state.label, reason)
    state.mode, state.reason = "python", reason


def _same(a: list[Any], b: list[Any]) -> bool:
    """Equal values of equal types (arrays: equal dtype, shape and values)."""
    import numpy as np

    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if type(x) is not type(y):
            return False
        if isinstance(x, np.ndarray):
            if x.dtype != y.dtype or x.shape != y.shape or not np.array_equal(x, y, equal_nan=True):
                return False
        elif x != y and not (x != x and y != y):  # NaN == NaN here
            return False
    return True


def _run(
    src: Iterator[Any], nodes: Sequence[Node], fallback: Any, state: NumbaState, tracker: ChunkPositions
) -> Iterator[Any]:
    it = iter(src)
    tracker.begin()
    first = next(it, _END)
    if first is _END:
        return
    kind = _kind(first)
    if kind is None:
        _fall_back(state, f"items of type {type(first).__name__} are not Python numbers or numeric numpy arrays")
        yield from tracker.counting(fallback.open(tracker.reading(itertools.chain([first], it), 0)))
        return
    if kind.startswith("array"):
        yield from tracker.counting(_run_arrays(first, tracker.reading(it, 1), nodes, fallback, state))
        return
    head = [first, *itertools.islice(it, CHUNK - 1)]
    start = time.perf_counter()
    try:  # compile, then check the first chunk against Python: values and types must be identical
        _, chunk_fn, out_dtype = _kernels(nodes, kind, state)
        compiled = _scalar_chunk(head, kind, chunk_fn, out_dtype)
        python = list(fallback.open(iter(head)))
        if compiled is None:
            raise _Mismatch("the first chunk cannot be computed as int64/float64 (values beyond int64, mixed types)")
        if not _same(compiled, python):
            raise _Mismatch("compiled results differ from Python's in value or type (numba's typing rules)")
    except Exception as exc:
        state.compile_seconds += time.perf_counter() - start
        _fall_back(state, _reason(exc))
        yield from tracker.counting(fallback.open(tracker.reading(itertools.chain(head, it), 0)))
        return
    state.compile_seconds += time.perf_counter() - start
    state.mode, state.reason = f"numba (chunks of {kind})", ""
    yield from tracker.emit(python)
    while True:
        tracker.begin()
        chunk = list(itertools.islice(it, CHUNK))
        if not chunk:
            return
        result = _scalar_chunk(chunk, kind, chunk_fn, out_dtype)
        yield from tracker.emit(result if result is not None else list(fallback.open(iter(chunk))))


def _run_arrays(first: Any, it: Iterator[Any], nodes: Sequence[Node], fallback: Any, state: NumbaState):
    start = time.perf_counter()
    try:
        item_fn, _, _ = _kernels(nodes, f"array:{first.dtype.str}:{first.ndim}", state)
        keep, y = item_fn(first)
        compiled = [y] if keep else []
        python = list(fallback.open(iter([first])))
        if not _same(compiled, python):
            raise _Mismatch("compiled results differ from Python's in dtype or value (numba's dtype rules)")
    except Exception as exc:
        state.compile_seconds += time.perf_counter() - start
        _fall_back(state, _reason(exc))
        yield from fallback.open(itertools.chain([first], it))
        return
    state.compile_seconds += time.perf_counter() - start
    state.mode, state.reason = "numba (per array)", ""
    yield from python
    dtype, ndim = first.dtype, first.ndim
    for x in it:
        if type(x) is np.ndarray and x.dtype == dtype and x.ndim == ndim:
            keep, y = item_fn(x)
            if keep:
                yield y
        else:  # an item unlike the first: Python, for this item
            yield from fallback.open(iter([x]))


class _Mismatch(Exception):
    pass


def _scalar_chunk(chunk: list[Any], kind: str, chunk_fn: Any, out_dtype: Any) -> list[Any] | None:
    """The compiled results of a chunk, or None when it must be computed in Python (mixed types, overflow)."""
    if not set(map(type, chunk)) <= _SCALAR_TYPES[kind]:
        return None
    try:
        xs = np.asarray(chunk, dtype=np.int64 if kind == "int" else np.float64)
    except (OverflowError, TypeError, ValueError):  # a Python int beyond int64
        return None
    out = np.empty(len(chunk), dtype=out_dtype)
    n, ok = chunk_fn(xs, out)
    if not ok:  # int64 and float64 disagree: never return a wrapped value
        return None
    return out[:n].tolist()


_END = object()
_SCALAR_TYPES = {"int": {int}, "float": {float}}


BACKEND = BackendSpec(
    "numba",
    "numba_map, and (when chosen) every fused map/filter run: numba.njit, or Python with the reason",
    make=lambda options, chosen: NumbaBackend(everything=chosen),
)

__all__ = ["BACKEND", "NumbaBackend", "NumbaState"]
