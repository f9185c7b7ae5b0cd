"""Fluent handles: squirrel-core's ``Composable`` API, where every chain call returns a new handle.

A handle keeps squirrel-core's object model (``.source`` is the upstream handle, ``compose``/``to``/``source_``)
but does not iterate anything itself: iterating it builds the logical :class:`~squirrel_graph.graph.Plan` by
walking ``.source``, compiles it (optimizers, then a backend) in the iterating process, and returns the
compiled iterator. Handles hold no threads, queues or files, so they pickle into DataLoader workers.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from squirrel_graph.graph import (
    AsyncMap,
    Barrier,
    Batched,
    DaskMap,
    Filter,
    Flatten,
    IteratorFn,
    Loop,
    Map,
    MaterializeDask,
    Monitor,
    Node,
    NumbaMap,
    Opaque,
    Plan,
    Prefetch,
    Shuffle,
    Sliding,
    Split,
    Take,
    Tqdm,
    ZipIndex,
)
from squirrel_graph.stream.checkpoint import Resumable
from squirrel_graph.stream.validate import check_auto_int, check_callable, check_int, check_rng, check_seed


class Composable(Resumable):
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

    def _planned_inputs(self) -> list[Any]:
        """What the plan of this handle reads: a custom stage reads its ``.source``, a built-in one its inputs."""
        return [self.source] if _overrides_iter(self) else self._inputs()

    def _compile_options(self) -> Any:
        """The options of the nearest ``compile(...)`` on the chain (None: the defaults). Iterative."""
        handle: Any = self
        while isinstance(handle, Composable):
            options = handle._own_options()
            if options is not None:
                return options
            handle = handle.source
        return None

    def _own_options(self) -> Any:
        return None

    @property
    def plan(self) -> Plan:
        """The logical plan of this stream (built from the ``.source`` chain)."""
        from squirrel_graph.stream.planning import build_plan

        return build_plan(self)

    def compile(
        self,
        optimize: bool = True,
        disable: Iterable[str] = (),
        backend: str = "threaded",
        inline: bool = True,
        monitor: Any = None,
        monitor_every: int = 1000,
        **backend_options: Any,
    ) -> Composable:
        """A new handle (same API) that runs this stream with the given optimizer and backend settings.

        ``disable`` names passes to skip (see ``optimizers.PASS_NAMES``); ``optimize=False`` runs the logical
        plan as written; ``inline=False`` keeps generated loops from inlining simple pure functions;
        ``monitor=callback`` (or ``True``) puts a monitor after every physical stage, named after it, reporting
        every ``monitor_every`` items (see :meth:`stats`); ``backend="dask"`` runs a driver's per-key
        fetch/decode/maps as one task per shard on ``client=`` (or the active dask.distributed Client). Other
        keyword arguments are the chosen backend's own options, validated by it. Compilation happens at
        iteration, in the iterating process.
        """
        from squirrel_graph.compiler import CompileOptions

        options = CompileOptions.checked(optimize, disable, backend, inline, monitor, monitor_every, **backend_options)
        return _Compiled(self, options)

    def stats(self) -> dict[str, dict[str, float]]:
        """Per monitor (every stage with ``compile(monitor=...)``), for the latest run in this process, so far:
        items seen, seconds since the run started, items/s and MB/s of what reached it. A dict that prints as a
        table, shows as one in Jupyter, ``.plot()``-s throughput over time and names the ``.bound``-ing stage."""
        from squirrel_graph.explain.stats_view import stage_stats

        last, cached = self.__dict__.get("_last_state"), self.__dict__.get("_compiled_cache")
        return stage_stats(last[0] if last else {}, cached[1].optimized if cached else None)

    def explain(self, stage: str | None = None) -> Any:
        """The logical, optimized and physical plans and every rewrite with its reason (text and graphviz); it reads
        the same cached compilation a run of this stream uses."""
        from squirrel_graph.explain import Explanation
        from squirrel_graph.stream.planning import compiled_for

        last = self.__dict__.get("_last_state")
        numba = [s for s in last[0].values() if hasattr(s, "compile_seconds")] if last else []
        tuned = [s.line() for s in last[0].values() if hasattr(s, "knob")] if last else []
        return Explanation(compiled_for(self), stage, self.stats(), numba, self._resume_lines(), tuned)

    def __iter__(self) -> Iterator[Any]:
        from squirrel_graph.stream.planning import open_stream

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
        epoch = check_int("set_epoch", "epoch", epoch, 0)
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
        for key in ("_last_state", "_compiled_cache", "_last_run"):  # belong to this process, never travel
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
        buffer = check_int("async_map", "buffer", buffer, 1)
        max_workers = check_auto_int("async_map", "max_workers", max_workers, 1, allow_none=True)
        if executor is not None and not is_executor(executor):
            raise TypeError(
                "async_map(executor=...): expected a concurrent.futures.Executor or a dask.distributed.Client, "
                f"got {type(executor).__name__}"
            )
        return Stage(AsyncMap(fn=callback, kwargs=kw, buffer=buffer, max_workers=max_workers, executor=executor), self)

    def prefetch(self, n: int) -> Composable:
        """Keep up to ``n`` items ready in a background thread, so upstream work overlaps with the consumer's."""
        n = check_auto_int("prefetch", "n", n, 1)
        return Stage(Prefetch(n=n), self)

    # ------------------------------------------------------------------ order- and count-dependent stages
    def batched(
        self,
        batchsize: int,
        collation_fn: Callable[[list[Any]], Any] | None = None,
        drop_last_if_not_full: bool = True,
    ) -> Composable:
        """Lists of ``batchsize`` items (``collation_fn(list)`` if given); a short last batch is dropped by default."""
        batchsize = check_int("batched", "batchsize", batchsize, 1)
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
        window_size = check_int("sliding", "window_size", window_size, 2)
        stride = check_int("sliding", "stride", stride, 1)
        min_window_size = check_int("sliding", "min_window_size", min_window_size, 1)
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
        size = check_int("shuffle", "size", size, 0)
        initial = check_int("shuffle", "initial", initial, 0)
        check_seed("shuffle", seed)
        check_rng("shuffle", rng)
        rng_state = rng.getstate() if rng is not None and seed is None else None
        if rng is not None and seed is not None:
            rng_state = None  # seed wins, as in squirrel-core
        return Stage(Shuffle(size=size, initial=initial, seed=seed, rng_state=rng_state), self)

    def take(self, n: int | None) -> Composable:
        """The first ``n`` items (all when None)."""
        n = check_int("take", "n", n, 0, allow_none=True)
        return Stage(Take(n=n), self)

    def loop(self, n: int | None = None) -> Composable:
        """Iterate the whole upstream ``n`` times (forever when None); ``.counter`` counts completed passes."""
        n = check_int("loop", "n", n, 0, allow_none=True)
        return _LoopStage(n, self)

    def zip_index(self, pad_length: int | None = None) -> Composable:
        """``(index, item)`` pairs; with ``pad_length`` the index is a zero-padded string."""
        pad_length = check_int("zip_index", "pad_length", pad_length, 0, allow_none=True)
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
        heartbeat: float | None = 5.0,
        **kw: Any,
    ) -> Composable:
        """Report ``{prefix}IOPS number/s`` and ``{prefix}throughput {unit}/s`` of the items reaching this point to
        ``callback(metrics, **kw)`` (e.g. ``wandb.log``, ``mlflow.log_metrics``). Items pass through unchanged.

        By default the callback runs every ``every=1000`` items, with metrics over the items since the previous
        call; the monitor then costs one counter per item and runs inside fused loops. A sampled monitor also calls
        back when ``heartbeat`` seconds passed without a call (None: never) and once when the stream ends or is
        closed, so every stream of at least ``window_size`` items is reported. ``every=1`` is squirrel-core's mode:
        a call per item over the last ``window_size`` items. ``interval`` (seconds) means at most one call per
        ``interval``, whatever the reason."""
        from squirrel_graph.metrics import MetricsConf, check_unit

        check_callable("monitor", "callback", callback)
        window_size = check_int("monitor", "window_size", window_size, 1)
        every = check_int("monitor", "every", every, 1)
        if interval is not None and not (isinstance(interval, (int, float)) and interval >= 0):
            raise ValueError(f"monitor(interval=...): expected seconds >= 0 or None, got {interval!r}")
        check_callable("monitor", "clock", clock, allow_none=True)
        if heartbeat is not None and not (
            isinstance(heartbeat, (int, float)) and not isinstance(heartbeat, bool) and heartbeat > 0
        ):
            raise ValueError(f"monitor(heartbeat=...): expected seconds > 0 or None, got {heartbeat!r}")
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
            heartbeat=heartbeat,
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
        buffer = check_int("materialize_dask", "buffer", buffer, 1)
        max_workers = check_int("materialize_dask", "max_workers", max_workers, 1, allow_none=True)
        partition_size = check_int("materialize_dask", "partition_size", partition_size, 1)
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
        """This rank's share (rank and world size captured now); see :class:`SplitByRank`."""
        return self.compose(SplitByRank, torch_dist_group, level=level, equalize=equalize, shard_counts=shard_counts)

    def split_by_worker_pytorch(self, level: str = "auto") -> Composable:
        """This DataLoader worker's share (read at iteration); see :class:`SplitByWorker`."""
        return self.compose(SplitByWorker, level=level)

    def to_torch_iterable(
        self, enforce_rank_check: bool = True, enforce_worker_check: bool = True, pack: bool = False
    ) -> Composable:
        """This stream as a ``torch.utils.data.IterableDataset`` that checks for splits on its first item.
        ``pack=True``: a DataLoader worker sends each ``batched(n)`` batch as one shared-memory tensor per field."""
        from squirrel_graph.stream.torch_handles import torch_iterable_class

        cls = torch_iterable_class(Composable)
        dataset = cls(enforce_rank_check=enforce_rank_check, enforce_worker_check=enforce_worker_check, pack=pack)
        return dataset.source_(self)

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

    _transparent = True

    def __init__(self, source: Composable, options: Any) -> None:
        super().__init__(source)
        self._options = options

    def _planned_inputs(self) -> list[Any]:
        """What the plan of this handle reads: a custom stage reads its ``.source``, a built-in one its inputs."""
        return [self.source] if _overrides_iter(self) else self._inputs()

    def _own_options(self) -> Any:
        return self._options

    def __repr__(self) -> str:
        return f"<compiled stream {self._options}>"


def _overrides_iter(handle: Composable) -> bool:
    return type(handle).__iter__ is not Composable.__iter__


LEVELS = ("auto", "item")
EQUALIZE = (None, "drop", "pad")


def _check_level(method: str, level: str) -> None:
    if level not in LEVELS:
        raise ValueError(f"{method}(level=...): expected one of {LEVELS}, got {level!r}")


class SplitByRank(Composable):
    """This rank's share of the stream (every world_size-th item). Rank and world size are read from
    torch.distributed now, when the stream is built, and travel with the stream into DataLoader workers.

    ``level="auto"`` lets the optimizer move the split up to the shard keys; ``"item"`` keeps it here.
    ``equalize="drop"|"pad"`` gives every rank the same number of items (dropping or repeating some), so DDP
    ranks run the same number of steps.
    """

    def __init__(
        self,
        torch_dist_group: Any = None,
        level: str = "auto",
        equalize: str | None = None,
        shard_counts: Mapping[Any, int] | Callable[[Any], int] | None = None,
    ) -> None:
        super().__init__()
        _check_level("split_by_rank_pytorch", level)
        if equalize not in EQUALIZE:
            raise ValueError(f"split_by_rank_pytorch(equalize=...): expected one of {EQUALIZE}, got {equalize!r}")
        if shard_counts is not None and not (isinstance(shard_counts, Mapping) or callable(shard_counts)):
            raise TypeError("split_by_rank_pytorch(shard_counts=...): expected a mapping key -> count or a callable")
        self.rank, self.size = 0, 1
        import torch.distributed as dist  # the user asked for a torch rank split: torch is needed now

        if dist.is_available() and dist.is_initialized():
            group = torch_dist_group or dist.group.WORLD
            self.rank, self.size = dist.get_rank(group), dist.get_world_size(group)
        self.level, self.equalize, self.shard_counts = level, equalize, shard_counts

    def _builtin_node(self) -> Node:
        return Split(
            axis="rank",
            index=self.rank,
            parts=self.size,
            level=self.level,
            equalize=self.equalize if self.size > 1 else None,
            shard_counts=self.shard_counts,
        )


class SplitByWorker(Composable):
    """This DataLoader worker's share of the stream (worker info is read when the stream is iterated)."""

    def __init__(self, level: str = "auto") -> None:
        super().__init__()
        _check_level("split_by_worker_pytorch", level)
        self.level = level

    def _builtin_node(self) -> Node:
        return Split(axis="worker", level=self.level)


__all__ = ["Composable", "SplitByRank", "SplitByWorker", "Stage"]
