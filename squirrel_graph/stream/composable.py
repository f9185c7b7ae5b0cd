"""Fluent handles: squirrel-core's ``Composable`` API, where every chain call returns a new handle.

A handle keeps squirrel-core's object model (``.source`` is the upstream handle, ``compose``/``to``/``source_``)
but does not iterate anything itself: iterating it builds the logical :class:`~squirrel_graph.graph.Plan` by
walking ``.source``, compiles it (optimizers, then a backend) in the iterating process, and returns the
compiled iterator. Handles hold no threads, queues or files, so they pickle into DataLoader workers.
"""

from __future__ import annotations

import functools
import inspect
import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from squirrel_graph.graph import (
    AsyncMap,
    Barrier,
    Batched,
    DaskMap,
    Filter,
    Flatten,
    IteratorFn,
    IterSource,
    Loop,
    Map,
    MaterializeDask,
    Monitor,
    Node,
    NumbaMap,
    Opaque,
    Plan,
    Shuffle,
    Sliding,
    Take,
    Tqdm,
    ZipIndex,
)
from squirrel_graph.stream.validate import check_callable, check_int, check_rng, check_seed


class Composable:
    """A lazy stream. Subclass it and override ``__iter__`` (reading ``self.source``) to write a custom stage."""

    def __init__(self, source: Any = None) -> None:
        self.source = source

    # ------------------------------------------------------------------ plan and compilation
    def _node(self) -> Node:
        """The plan node this handle adds. Subclasses that override ``__iter__`` become opaque nodes."""
        return Opaque(handle=self) if _overrides_iter(self) else self._builtin_node()

    def _builtin_node(self) -> Node:
        """The node of this handle's own (library) stage, ignoring a subclass's ``__iter__``."""
        raise TypeError(
            f"{type(self).__name__} defines no stage: override __iter__ (reading self.source), "
            "or start a stream with IterableSource(...)"
        )

    def _inputs(self) -> list[Any]:
        """Upstream handles (or plain iterables) feeding this node, in port order."""
        return [self.source]

    def _compile_options(self) -> Any:
        src = self.source
        return src._compile_options() if isinstance(src, Composable) else None

    @property
    def plan(self) -> Plan:
        """The logical plan of this stream (built from the ``.source`` chain)."""
        return build_plan(self)

    def compile(
        self,
        optimize: bool = True,
        disable: Iterable[str] = (),
        backend: str = "threaded",
        inline: bool = True,
        monitor: Any = None,
        monitor_every: int = 1000,
        client: Any = None,
    ) -> Composable:
        """A new handle (same API) that runs this stream with the given optimizer and backend settings.

        ``disable`` names passes to skip (see ``optimizers.PASS_NAMES``); ``optimize=False`` runs the logical
        plan as written; ``inline=False`` keeps generated loops from inlining simple pure functions;
        ``monitor=callback`` (or ``True``) puts a monitor after every physical stage, named after it, reporting
        every ``monitor_every`` items (see :meth:`stats`); ``backend="dask"`` runs a driver's per-key
        fetch/decode/maps as one task per shard on ``client`` (or the active dask.distributed Client).
        Compilation happens at iteration, in the iterating process.
        """
        from squirrel_graph.compiler import CompileOptions

        options = CompileOptions.checked(optimize, disable, backend, inline, monitor, monitor_every, client)
        return _Compiled(self, options)

    def stats(self) -> dict[str, dict[str, float]]:
        """Per monitor (every stage with ``compile(monitor=...)``), for the latest run in this process, so far:
        items seen, seconds since the run started, items/s and MB/s of what reached it."""
        last = self.__dict__.get("_last_state")
        if last is None:
            return {}
        found = [(nid, s) for nid, s in last[0].items() if hasattr(s, "as_dict")]
        found.sort(key=lambda entry: int(entry[0].split(":", 1)[0].split(".", 1)[0]))  # source first
        return {s.label: s.as_dict() for _, s in found}

    def explain(self, stage: str | None = None) -> Any:
        """The logical, optimized and physical plans and every rewrite with its reason (text and graphviz)."""
        from squirrel_graph.explain import explain

        return explain(self, stage=stage)

    def __iter__(self) -> Iterator[Any]:
        from squirrel_graph.compiler import open_stream

        # reached through super().__iter__() from a subclass's own __iter__: run this class's built-in stage
        return open_stream(self, builtin_root=_overrides_iter(self))

    def _state_here(self) -> Any:
        """The runtime state this handle's node had in the latest run (in this process) that included it."""
        last = self.__dict__.get("_last_state")
        return last[0].get(last[1]) if last is not None else None

    def set_epoch(self, epoch: int) -> None:
        """Make seeded shuffles upstream differ per epoch, reproducibly from (seed, epoch, rank, worker), as
        ``DistributedSampler.set_epoch`` does. Call it before each epoch (DataLoader workers get it when they
        start, so it needs ``persistent_workers=False``)."""
        check_int("set_epoch", "epoch", epoch, 0)
        self._epoch = epoch

    def _epoch_of_chain(self) -> int | None:
        handle: Any = self
        while isinstance(handle, Composable):
            epoch = handle.__dict__.get("_epoch")
            if epoch is not None:
                return epoch
            handle = handle.source
        return None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for key in ("_last_state", "_compiled_cache"):  # belong to this process, never travel
            state.pop(key, None)
        return state

    # ------------------------------------------------------------------ squirrel-core object model
    def source_(self, source: Any) -> Composable:
        """Set ``.source`` and return self."""
        self.source = source
        return self

    def compose(self, constructor: Callable[..., Composable], *args: Any, **kw: Any) -> Composable:
        """``constructor(*args, **kw)`` with this stream as its source (its ``__init__`` must not take ``source``)."""
        assert "source" not in kw, "compose(): pass the stage's arguments, not source="
        own_init = getattr(constructor, "__dict__", {}).get("__init__")
        if own_init is not None and "source" in inspect.signature(own_init).parameters:
            raise ValueError(
                f"compose({getattr(constructor, '__name__', constructor)!r}): a composable's __init__ must not take a "
                "'source' argument; compose() sets .source itself"
            )
        return constructor(*args, **kw).source_(self)

    def to(self, f: Callable[..., Iterator[Any]], *args: Any, **kw: Any) -> Composable:
        """``f(iterator, *args, **kw)``: apply an iterator-to-iterator function (an opaque, unfusable stage)."""
        assert "source" not in kw, "to(): pass the function's arguments, not source="
        check_callable("to", "f", f)
        return Stage(IteratorFn(fn=f, args=args, kwargs=kw), self)

    # ------------------------------------------------------------------ per-item stages
    def map(self, callback: Callable[..., Any], **kw: Any) -> Composable:
        """``callback(item, **kw)`` for every item, in order."""
        check_callable("map", "callback", callback)
        return Stage(Map(fn=callback, kwargs=kw), self)

    def filter(self, predicate: Callable[[Any], Any]) -> Composable:
        """Keep the items for which ``predicate(item)`` is truthy."""
        check_callable("filter", "predicate", predicate)
        return Stage(Filter(predicate=predicate), self)

    def flatten(self) -> Composable:
        """Yield the elements of every item."""
        return Stage(Flatten(), self)

    def async_map(
        self,
        callback: Callable[..., Any],
        buffer: int = 100,
        max_workers: int | None = None,
        executor: Any = None,
        **kw: Any,
    ) -> Composable:
        """``callback(item, **kw)`` on a thread pool (or ``executor``), at most ``buffer`` in flight, in order."""
        from squirrel_graph.executors import is_executor

        check_callable("async_map", "callback", callback)
        check_int("async_map", "buffer", buffer, 1)
        check_int("async_map", "max_workers", max_workers, 1, allow_none=True)
        if executor is not None and not is_executor(executor):
            raise TypeError(
                "async_map(executor=...): expected a concurrent.futures.Executor or a dask.distributed.Client, "
                f"got {type(executor).__name__}"
            )
        return Stage(AsyncMap(fn=callback, kwargs=kw, buffer=buffer, max_workers=max_workers, executor=executor), self)

    # ------------------------------------------------------------------ order- and count-dependent stages
    def batched(
        self,
        batchsize: int,
        collation_fn: Callable[[list[Any]], Any] | None = None,
        drop_last_if_not_full: bool = True,
    ) -> Composable:
        """Lists of ``batchsize`` items (``collation_fn(list)`` if given); a short last batch is dropped by default."""
        check_int("batched", "batchsize", batchsize, 1)
        check_callable("batched", "collation_fn", collation_fn, allow_none=True)
        return Stage(Batched(batchsize=batchsize, collation_fn=collation_fn, drop_last=drop_last_if_not_full), self)

    def sliding(
        self,
        window_size: int,
        *,
        deepcopy: bool,
        stride: int = 1,
        drop_last_if_not_full: bool = True,
        min_window_size: int = 1,
        fill_nan_on_partial: bool = False,
    ) -> Composable:
        """Windows of ``window_size`` items advancing by ``stride`` (checked now, at chain time)."""
        check_int("sliding", "window_size", window_size, 2)
        check_int("sliding", "stride", stride, 1)
        check_int("sliding", "min_window_size", min_window_size, 1)
        if not window_size > min_window_size:
            raise ValueError(
                f"sliding(min_window_size=...): must be smaller than window_size={window_size}, got {min_window_size}"
            )
        if stride > window_size:
            raise ValueError(f"sliding(stride=...): must be <= window_size={window_size}, got {stride}")
        node = Sliding(
            window_size=window_size,
            deepcopy=bool(deepcopy),
            stride=stride,
            drop_last=drop_last_if_not_full,
            min_window_size=min_window_size,
            fill_nan_on_partial=fill_nan_on_partial,
        )
        return Stage(node, self)

    def shuffle(self, size: int | None = 1000, **kw: Any) -> Composable:
        """Buffered shuffle. ``initial=100`` items are buffered before the first pick; ``seed=`` or a seeded
        ``rng=`` make every iteration replay the same order."""
        unknown = set(kw) - {"initial", "rng", "seed"}
        if unknown:
            raise TypeError(f"shuffle(): unexpected keyword argument(s) {sorted(unknown)}; expected initial, rng, seed")
        size = 1000 if size is None else size
        initial = kw.get("initial", 100)
        rng, seed = kw.get("rng"), kw.get("seed")
        check_int("shuffle", "size", size, 0)
        check_int("shuffle", "initial", initial, 0)
        check_seed("shuffle", seed)
        check_rng("shuffle", rng)
        rng_state = rng.getstate() if rng is not None and seed is None else None
        if rng is not None and seed is not None:
            rng_state = None  # seed wins, as in squirrel-core
        return Stage(Shuffle(size=size, initial=initial, seed=seed, rng_state=rng_state), self)

    def take(self, n: int | None) -> Composable:
        """The first ``n`` items (all when None)."""
        check_int("take", "n", n, 0, allow_none=True)
        return Stage(Take(n=n), self)

    def loop(self, n: int | None = None) -> Composable:
        """Iterate the whole upstream ``n`` times (forever when None); ``.counter`` counts completed passes."""
        check_int("loop", "n", n, 0, allow_none=True)
        return _LoopStage(n, self)

    def zip_index(self, pad_length: int | None = None) -> Composable:
        """``(index, item)`` pairs; with ``pad_length`` the index is a zero-padded string."""
        check_int("zip_index", "pad_length", pad_length, 0, allow_none=True)
        return Stage(ZipIndex(pad_length=pad_length), self)

    def tqdm(self, **kw: Any) -> Composable:
        """A tqdm progress bar over the items (kwargs go to ``tqdm.tqdm``)."""
        return Stage(Tqdm(kwargs=kw), self)

    def monitor(
        self,
        callback: Callable[..., Any],
        prefix: str | None = None,
        metrics_conf: Any = None,
        window_size: int = 5,
        every: int = 1000,
        interval: float | None = None,
        clock: Callable[[], float] | None = None,
        **kw: Any,
    ) -> Composable:
        """Report ``{prefix}IOPS number/s`` and ``{prefix}throughput {unit}/s`` of the items reaching this point to
        ``callback(metrics, **kw)`` (e.g. ``wandb.log``, ``mlflow.log_metrics``). Items pass through unchanged.

        By default the callback runs every ``every=1000`` items, with metrics over the items since the previous
        call; the monitor then costs one counter per item and runs inside fused loops. ``every=1`` is
        squirrel-core's mode: a call per item over the last ``window_size`` items. ``interval`` (seconds) further
        limits how often the callback runs."""
        from squirrel_graph.metrics import MetricsConf, check_unit

        check_callable("monitor", "callback", callback)
        check_int("monitor", "window_size", window_size, 1)
        check_int("monitor", "every", every, 1)
        if interval is not None and not (isinstance(interval, (int, float)) and interval >= 0):
            raise ValueError(f"monitor(interval=...): expected seconds >= 0 or None, got {interval!r}")
        check_callable("monitor", "clock", clock, allow_none=True)
        conf = metrics_conf if metrics_conf is not None else MetricsConf()
        if isinstance(conf, type):  # squirrel-core's default was the class itself
            conf = conf()
        check_unit("monitor", conf.throughput_unit)
        node = Monitor(
            callback=callback,
            prefix=prefix or "",
            iops=conf.iops,
            throughput=conf.throughput,
            unit=conf.throughput_unit,
            window_size=window_size,
            every=every,
            interval=interval,
            clock=clock,
            kwargs=kw,
        )
        return Stage(node, self)

    def dask_map(self, callback: Callable[..., Any], **kw: Any) -> Composable:
        """Each item becomes ``dask.delayed(callback)(item, **kw)``; nothing runs until ``materialize_dask()``
        (or the user's ``.compute()``). Consecutive dask_maps are collapsed into one task per item."""
        check_callable("dask_map", "callback", callback)
        return Stage(DaskMap(fn=callback, kwargs=kw), self)

    def materialize_dask(self, buffer: int = 10, max_workers: int | None = None, partition_size: int = 1) -> Composable:
        """Compute the delayed items in order, at most ``buffer`` tasks in flight, on the active
        dask.distributed Client (dask's local scheduler without one). ``partition_size`` items share a task."""
        check_int("materialize_dask", "buffer", buffer, 1)
        check_int("materialize_dask", "max_workers", max_workers, 1, allow_none=True)
        check_int("materialize_dask", "partition_size", partition_size, 1)
        return Stage(MaterializeDask(buffer=buffer, max_workers=max_workers, partition_size=partition_size), self)

    def numba_map(self, callback: Callable[[Any], Any]) -> Composable:
        """``callback(item)`` for every item, compiled with numba (fused with the maps and filters around it)
        when numba can type it for the items seen; otherwise called as a plain map, with the reason in explain."""
        check_callable("numba_map", "callback", callback)
        return Stage(NumbaMap(fn=callback), self)

    def barrier(self) -> Composable:
        """An optimization boundary: no pass fuses or moves nodes across it. Free at run time."""
        return Stage(Barrier(), self)

    @property
    def skipped_shards(self) -> list[tuple[Any, str]]:
        """(key, reason) of every shard that an upstream fetch with ``skip_corrupt=True`` skipped in its latest run
        in this process."""
        found: list[tuple[Any, str]] = []
        handle: Any = self
        while isinstance(handle, Composable):
            found = list(handle._skipped_here()) + found
            handle = handle.source
        return found

    def _skipped_here(self) -> list[tuple[Any, str]]:
        return []

    # ------------------------------------------------------------------ PyTorch (imports torch when called)
    def split_by_rank_pytorch(
        self, torch_dist_group: Any = None, level: str = "auto", equalize: str | None = None, shard_counts: Any = None
    ) -> Composable:
        """This rank's share (rank and world size captured now); see :class:`squirrel_graph.pytorch.SplitByRank`."""
        from squirrel_graph.pytorch import SplitByRank

        return self.compose(SplitByRank, torch_dist_group, level=level, equalize=equalize, shard_counts=shard_counts)

    def split_by_worker_pytorch(self, level: str = "auto") -> Composable:
        """This DataLoader worker's share (read at iteration); see :class:`squirrel_graph.pytorch.SplitByWorker`."""
        from squirrel_graph.pytorch import SplitByWorker

        return self.compose(SplitByWorker, level=level)

    def to_torch_iterable(self, enforce_rank_check: bool = True, enforce_worker_check: bool = True) -> Composable:
        """This stream as a ``torch.utils.data.IterableDataset`` that checks for splits on its first item."""
        from squirrel_graph.pytorch import TorchIterable

        return self.compose(
            functools.partial(
                TorchIterable, enforce_rank_check=enforce_rank_check, enforce_worker_check=enforce_worker_check
            )
        )

    # ------------------------------------------------------------------ terminal
    def collect(self) -> list[Any]:
        """All items as a list."""
        return list(self)

    def join(self) -> None:
        """Consume the stream, discarding the items."""
        for _ in self:
            pass


class Stage(Composable):
    """A handle for one built-in node; ``.source`` is the upstream handle."""

    def __init__(self, op: Node, source: Any = None) -> None:
        super().__init__(source)
        self._op = op

    def _builtin_node(self) -> Node:
        return self._op

    def __repr__(self) -> str:
        return f"<{self._op.label()} stream>"


class _LoopStage(Composable):
    """The handle of ``loop(n)``; ``.counter`` reports the completed passes of the latest run in this process."""

    def __init__(self, n: int | None, source: Any = None) -> None:
        super().__init__(source)
        self.n = n

    def _builtin_node(self) -> Node:
        return Loop(n=self.n)

    @property
    def counter(self) -> int:
        state = self._state_here()
        return state.counter if state is not None else 0


class _Compiled(Composable):
    """A stream with explicit compile options; transparent in the plan."""

    def __init__(self, source: Composable, options: Any) -> None:
        super().__init__(source)
        self._options = options

    def _compile_options(self) -> Any:
        return self._options

    def __repr__(self) -> str:
        return f"<compiled stream {self._options}>"


def _overrides_iter(handle: Composable) -> bool:
    return type(handle).__iter__ is not Composable.__iter__


def build_plan(handle: Composable, builtin_root: bool = False, record: dict[str, Composable] | None = None) -> Plan:
    """Walk ``.source`` links from ``handle`` and build the logical plan (ids are ``"<n>:<kind>"``).

    ``builtin_root`` plans the root handle's own stage even if its class overrides ``__iter__``; ``record``
    receives node id -> handle, so a run can tell each handle where its state is.
    """
    counter = itertools.count()

    def visit(h: Any, root: bool = False) -> Plan:
        while isinstance(h, _Compiled):
            h = h.source
        if not isinstance(h, Composable):
            return Plan.single(f"{next(counter)}:source", IterSource(source=h))
        node = h._builtin_node() if root and builtin_root else h._node()
        if node.n_inputs == 0:
            out = Plan.single(f"{next(counter)}:{node.kind}", node)
        elif isinstance(node, Opaque):  # show (and let analyses see) what a custom stage reads
            upstream = [visit(h.source)] if isinstance(h.source, Composable) else []
            out = Plan.combine(f"{next(counter)}:{node.kind}", node, upstream)
        else:
            inputs = h._inputs()
            if node.n_inputs == 1 and (not inputs or inputs[0] is None):
                raise ValueError(f"{node.label()}: this stage has no source; build it with compose() or source_()")
            sub = [visit(x) for x in inputs]  # inputs first: ids grow from the sources to the output
            out = Plan.combine(f"{next(counter)}:{node.kind}", node, sub)
        if record is not None:
            record[out.output] = h
        return out

    return visit(handle, root=True)


def chain_fingerprint(handle: Composable) -> tuple[Any, ...]:
    """Identity of every handle and source link reachable from ``handle``: equal fingerprints, equal plans."""
    out: list[Any] = []
    todo: list[Any] = [handle]
    while todo:
        h = todo.pop()
        out.append(id(h))
        if isinstance(h, Composable):
            ins = h._inputs() if not _overrides_iter(h) else [h.source]
            out.append(tuple(id(x) for x in ins))
            todo.extend(x for x in ins if isinstance(x, Composable))
    return tuple(out)


__all__ = ["Composable", "Stage", "build_plan"]
