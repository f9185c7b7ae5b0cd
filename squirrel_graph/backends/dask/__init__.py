"""The dask backend: dask_map (delayed items), materialize_dask, and collapsed dask tasks.

dask and distributed are imported when a stage runs. With an active ``dask.distributed`` Client, tasks go to
it (never created or closed here); otherwise dask's local scheduler computes them.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from squirrel_graph.backends.lowering import Lowered, PhysicalStage
from squirrel_graph.backends.registry import BackendSpec
from squirrel_graph.executors import is_dask_client
from squirrel_graph.graph import DaskMap, DaskTasks, MaterializeDask, Node, PerKey, Plan
from squirrel_graph.runtime import ops, resume
from squirrel_graph.runtime.context import Opener, RunContext, Runner
from squirrel_graph.runtime.per_key import PerKeyTask


class Composed:
    """``fns[-1](...fns[1](fns[0](x)))``: the body of one collapsed task (picklable if the functions are)."""

    def __init__(self, fns: Sequence[Callable[[Any], Any]]) -> None:
        self.fns = tuple(fns)

    def __call__(self, item: Any) -> Any:
        for fn in self.fns:
            item = fn(item)
        return item


def run_partition(composed: Composed, items: list[Any]) -> list[Any]:
    """One task: the composed function over a partition of items."""
    return [composed(x) for x in items]


def active_client() -> Any:
    """The current dask.distributed Client, or None (distributed not installed, or no client)."""
    try:
        from distributed import default_client
    except ImportError:
        return None
    try:
        return default_client()
    except ValueError:
        return None


def _local(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``fn`` through dask's local scheduler (as squirrel-core's materializer did without a Client)."""

    def call(*args: Any) -> Any:
        import dask

        return dask.compute(dask.delayed(fn, pure=False)(*args))[0]

    return call


def _chunks(it: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(it)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


class DaskBackend:
    """Owns dask_map, materialize_dask, the collapsed dask tasks and per-key tasks for the dask engine."""

    name = "dask"

    def __init__(self, client: Any = None) -> None:
        self.client = client

    def lower_node(self, nid: str, node: Node, plan: Plan, built: Mapping[str, PhysicalStage]) -> Lowered | None:
        if isinstance(node, PerKey) and node.engine == ENGINE:
            note = "one task per shard key on the dask cluster; results stream back in order"
            return Lowered(_per_key(nid, node, self.client), note=note, needs_close=True)
        if isinstance(node, DaskMap):
            return Lowered(_dask_map(nid, node))
        if isinstance(node, MaterializeDask):
            return Lowered(_materialize(nid, node), needs_close=True)
        if isinstance(node, DaskTasks):
            return Lowered(_tasks(nid, node), note=_note(node), needs_close=True)
        return None


def _per_key(nid: str, node: PerKey, client: Any) -> Runner:
    label = node.label()
    task = PerKeyTask(node)

    def run(inputs: Sequence[Opener], ctx: RunContext) -> Iterator[Any]:
        target = client if client is not None else active_client()
        keys = lambda: ([k] for k in inputs[0]())  # noqa: E731 - one key per task
        fn = task if target is not None else _local(task)
        buffer = node.fetch.buffer
        position, box, tracker = resume.read_ahead_lists(ctx, nid, inputs[0])
        results = ops.async_map_(keys, fn, buffer, node.fetch.max_workers, target, label, nid, position, box)
        state = ctx.state.setdefault(node.node_ids[0], ops.FetchState())

        def items() -> Iterator[Any]:
            for shard, skipped in ctx.owns(results):
                state.skipped.extend(skipped)
                yield shard

        return resume.flatten_tracked(items(), tracker)

    return run


def _note(node: DaskTasks) -> str:
    per = "item" if node.partition_size == 1 else f"{node.partition_size} items"
    return f"{len(node.fns)} maps -> 1 task per {per}; at most {node.buffer} tasks in flight"


def _dask_map(nid: str, node: DaskMap) -> Runner:
    fn = functools.partial(node.fn, **node.kwargs) if node.kwargs else node.fn

    def run(inputs: Sequence[Opener], ctx: RunContext) -> Iterator[Any]:
        import dask

        wrapped = dask.delayed(fn)
        return (wrapped(item) for item in resume.passing(ctx, nid, inputs[0]))

    return run


def _compute_one(delayed: Any) -> Any:
    import dask

    return dask.compute(delayed)[0]


def _materialize(nid: str, node: MaterializeDask) -> Runner:
    label = node.label()

    def run(inputs: Sequence[Opener], ctx: RunContext) -> Iterator[Any]:
        position, box = resume.read_ahead(ctx, nid, inputs[0])
        computed = ops.async_map_(
            inputs[0], _compute_one, node.buffer, node.max_workers, None, label, nid, position, box
        )
        return ctx.owns(computed)

    return run


def _tasks(nid: str, node: DaskTasks) -> Runner:
    label = node.label()
    work = functools.partial(run_partition, Composed(node.fns))

    def run(inputs: Sequence[Opener], ctx: RunContext) -> Iterator[Any]:
        client = active_client()
        size = node.partition_size

        def chunks() -> Iterator[list[Any]]:
            return _chunks(inputs[0](), size)

        fn = work if client is not None else _local(work)
        position, box, tracker = resume.read_ahead_lists(ctx, nid, inputs[0])
        results = ops.async_map_(chunks, fn, node.buffer, node.max_workers, client, label, nid, position, box)
        return resume.flatten_tracked(ctx.owns(results), tracker)

    return run


ENGINE = "dask"


def check_client(client: Any) -> None:
    """Validate ``compile(backend="dask", client=...)``."""
    if client is not None and not is_dask_client(client):
        raise ValueError(
            f"compile(client=...): expected a dask.distributed.Client, with backend='dask'; got {type(client).__name__}"
        )


BACKEND = BackendSpec(
    "dask",
    "dask_map tasks, and a driver's per-key stages as one task per shard on a dask.distributed cluster",
    make=lambda options, chosen: DaskBackend(client=options.get("client")),
    options={"client": check_client},
    per_key_engine=ENGINE,
)

__all__ = ["BACKEND", "Composed", "DaskBackend", "PerKeyTask", "active_client", "run_partition"]
