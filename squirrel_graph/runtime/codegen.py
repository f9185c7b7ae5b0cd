"""Whole-stage code generation: one Python generator function for a run of map/filter/flatten(/batched).

The generated loop calls the user's functions through local variables and appends to batches in place, so a
fused stage costs about what a hand-written ``for`` loop making the same calls costs. Compiled code objects
are cached per generated source text (a process-level cache keyed by content). Exceptions raised by a user
function are annotated with the logical node they came from, found from the generated line that raised.
"""

from __future__ import annotations

import functools
import hashlib
import linecache
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from squirrel_graph.errors import annotate
from squirrel_graph.graph import Batched, Filter, Flatten, Map, Monitor, Node
from squirrel_graph.runtime.inline import inline_expression
from squirrel_graph.runtime.monitoring import MonitorProbe

_CODE_CACHE: dict[str, Callable[..., Any]] = {}


@dataclass(frozen=True)
class FusedLoop:
    """A generated loop: its source, the arguments to bind (user callables and error metadata), and which
    nodes had their function inlined."""

    source: str
    args: tuple[Any, ...]  # (meta, *user callables); meta = (line -> node index, labels, node ids)
    inlined: tuple[str, ...] = ()
    tracks_items: bool = False  # starts with a flatten: ``_st.item(x)`` records where each flattened item began

    def open(self, src: Iterator[Any], ctx: Any = None, tracker: Any = None) -> Iterator[Any]:
        tracker = tracker if tracker is not None else _UNTRACKED
        return _compiled(self.source)(src, self.args[0], ctx, tracker, *self.args[1:])


class _Untracked:
    """The tracker of a loop run without positions (a per-key task): flattens each item as it is."""

    item = staticmethod(iter)


_UNTRACKED = _Untracked()


def _bind(fn: Any, kwargs: Any) -> Any:
    return functools.partial(fn, **kwargs) if kwargs else fn


def generate(nodes: tuple[Node, ...], node_ids: tuple[str, ...], inline: bool = True) -> FusedLoop:
    """Generate the loop for ``nodes`` (map/filter/flatten, optionally ending with one batched).

    With ``inline``, simple pure functions are written into the loop instead of called (see :mod:`.inline`).
    """
    batched = nodes[-1] if isinstance(nodes[-1], Batched) else None
    body = nodes[:-1] if batched is not None else nodes
    params: list[str] = []
    args: list[Any] = []
    lines: list[str] = []
    owner: dict[int, int] = {}
    inlined: list[str] = []

    def call(fn: Any, kwargs: Any, node: Node) -> str:
        expr = inline_expression(fn, "_x") if inline and not kwargs else None
        if expr is None:
            return f"{arg(_bind(fn, kwargs))}(_x)"
        inlined.append(node.label())
        return expr

    def emit(text: str, node_index: int | None = None) -> None:
        lines.append(text)
        if node_index is not None:
            owner[len(lines)] = node_index

    def arg(value: Any) -> str:
        name = f"_a{len(args)}"
        params.append(name)
        args.append(value)
        return name

    emit("")  # the def line is filled in once all parameters are known
    probes = [i for i, n in enumerate(body) if isinstance(n, Monitor)]
    for i in probes:  # a sampled monitor: a countdown in the loop to the next probe call, a probe object per run
        emit(f"    _p{i} = {arg(functools.partial(MonitorProbe, body[i], node_ids[i]))}(_ctx)")
        emit(f"    _d{i} = _p{i}.due")
    if batched is not None:
        emit("    _b = []")
        emit("    _add = _b.append")
    emit("    try:")
    emit("        for _x in _src:")
    depth = 3
    tracks = bool(body) and isinstance(body[0], Flatten)
    for i, node in enumerate(body):
        pad = "    " * depth
        if i == 0 and tracks:  # the resumable position inside a flattened item: see runtime.resume.ItemTracker
            emit(f"{pad}for _x in _st.item(_x):", i)
            depth += 1
        elif isinstance(node, Map):
            emit(f"{pad}_x = {call(node.fn, node.kwargs, node)}", i)
        elif isinstance(node, Filter):
            emit(f"{pad}if not {call(node.predicate, None, node)}:", i)
            emit(f"{pad}    continue", i)
        elif isinstance(node, Flatten):
            emit(f"{pad}for _x in _x:", i)
            depth += 1
        elif isinstance(node, Monitor):
            emit(f"{pad}_d{i} -= 1", i)
            emit(f"{pad}if not _d{i}:", i)
            emit(f"{pad}    _d{i} = _p{i}(_x)", i)
            if i == len(body) - 1 and batched is None:  # it ends the loop: the probe times the wait for the next item
                emit(f"{pad}    yield _x", i)
                emit(f"{pad}    _p{i}.resumed()", i)
                emit(f"{pad}    continue", i)
        else:  # pragma: no cover - fuse_maps only builds runs of the kinds above
            raise TypeError(f"cannot generate a fused loop for {node.label()}")
    pad = "    " * depth
    if batched is None:
        emit(f"{pad}yield _x")
    else:
        bi = len(nodes) - 1
        out = f"{arg(batched.collation_fn)}(_b)" if batched.collation_fn is not None else "_b"
        emit(f"{pad}_add(_x)", bi)
        emit(f"{pad}if len(_b) == {int(batched.batchsize)}:", bi)
        emit(f"{pad}    yield {out}", bi)
        emit(f"{pad}    _b = []", bi)
        emit(f"{pad}    _add = _b.append", bi)
        if not batched.drop_last:
            emit("        if _b:", bi)
            emit(f"            yield {out}", bi)
    emit("    except Exception as _e:")
    emit("        _annotate_fused(_e, _meta)")
    emit("        raise")
    if probes:
        emit("    finally:")
        for i in probes:
            emit(f"        _p{i}.finish(_d{i})")
    lines[0] = f"def _fused(_src, _meta, _ctx, _st{''.join(', ' + p for p in params)}):"
    source = "\n".join(lines) + "\n"
    meta = (owner, tuple(n.label() for n in nodes), tuple(node_ids))
    return FusedLoop(source, (meta, *args), tuple(inlined), tracks)


def _compiled(source: str) -> Callable[..., Any]:
    fn = _CODE_CACHE.get(source)
    if fn is None:
        digest = hashlib.sha1(source.encode()).hexdigest()[:12]
        filename = f"<squirrel_graph fused loop {digest}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        namespace: dict[str, Any] = {"_annotate_fused": _annotate_from_traceback}
        exec(compile(source, filename, "exec"), namespace)
        fn = _CODE_CACHE[source] = namespace["_fused"]
    return fn


def _annotate_from_traceback(exc: BaseException, meta: tuple[dict[int, int], tuple[str, ...], tuple[str, ...]]) -> None:
    """Name the logical node whose generated line raised ``exc`` (not the upstream iterator's errors)."""
    owners, labels, node_ids = meta
    idx = owners.get(exc.__traceback__.tb_lineno)  # called inside the generated loop's except: never None
    if idx is not None:
        annotate(exc, labels[idx], node_ids[idx])
