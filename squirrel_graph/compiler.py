"""The one entry point from fluent handles to optimizers, backends and explain.

Handles call :func:`compile_plan` at iteration time; it imports the ``optimizers`` package and the backends
lazily, so the import graph stays a DAG although ``squirrel_graph`` and ``optimizers`` are two packages.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from squirrel_graph.graph import Plan

BACKENDS = ("threaded", "dask", "numba")


@dataclass(frozen=True)
class CompileOptions:
    """What ``stream.compile(...)`` asked for: whether to optimize, which passes to skip, which backend."""

    optimize: bool = True
    disable: tuple[str, ...] = ()
    backend: str = "threaded"
    inline: bool = True
    monitor: Any = None  # None; True (stats only); or a callback for every stage's metrics
    monitor_every: int = 1000
    client: Any = None  # backend="dask": this dask.distributed Client (None: the active one, else local scheduler)

    @classmethod
    def checked(
        cls,
        optimize: bool = True,
        disable: Iterable[str] = (),
        backend: str = "threaded",
        inline: bool = True,
        monitor: Any = None,
        monitor_every: int = 1000,
        client: Any = None,
    ) -> CompileOptions:
        """Validate at ``compile()`` time, so a typo fails before any data flows."""
        from optimizers import PASS_NAMES

        if isinstance(disable, str):
            disable = (disable,)
        disable = tuple(disable)
        unknown = sorted(set(disable) - set(PASS_NAMES))
        if unknown:
            raise ValueError(f"compile(disable=...): unknown pass name(s) {unknown}; known passes: {list(PASS_NAMES)}")
        if backend not in BACKENDS:
            raise ValueError(f"compile(backend=...): unknown backend {backend!r}; known backends: {list(BACKENDS)}")
        for name, value in (("optimize", optimize), ("inline", inline)):
            if not isinstance(value, bool):
                raise TypeError(f"compile({name}=...): expected a bool, got {type(value).__name__}")
        if monitor is not None and monitor is not True and not callable(monitor):
            raise TypeError(
                f"compile(monitor=...): expected a callback (e.g. wandb.log), True or None, got {monitor!r}"
            )
        if isinstance(monitor_every, bool) or not isinstance(monitor_every, int) or monitor_every < 1:
            raise ValueError(f"compile(monitor_every=...): expected an int >= 1, got {monitor_every!r}")
        if client is not None:
            from squirrel_graph.executors import is_dask_client

            if backend != "dask" or not is_dask_client(client):
                raise ValueError("compile(client=...): expected a dask.distributed.Client, with backend='dask'")
        return cls(optimize, disable, backend, inline, monitor, monitor_every, client)


@dataclass(frozen=True)
class Compiled:
    """The three plans of one compilation (logical, optimized, physical) and the rewrite log."""

    logical: Plan
    optimized: Plan
    rewrites: tuple[Any, ...]
    physical: Any  # squirrel_graph.backends.PhysicalPlan
    options: CompileOptions


def compile_plan(plan: Plan, options: CompileOptions | None = None) -> Compiled:
    """Optimize ``plan`` (unless told not to) and lower it to physical stages."""
    from optimizers import Rewrite, optimize
    from optimizers.push_splits import attach_equalize, check_split_safety
    from squirrel_graph.backends import lower
    from squirrel_graph.backends.threaded import ThreadedBackend

    options = options or CompileOptions()
    plan = attach_equalize(plan)  # part of the split's meaning, so also without optimization
    if options.optimize:
        from optimizers import DEFAULT_PASSES
        from optimizers.insert_monitors import make_insert_monitors

        passes = DEFAULT_PASSES
        if options.backend == "dask":  # before fuse_maps, so a batched after the per-key stages stays local
            from optimizers.offload_to_dask import PASS as offload

            at = [p.name for p in passes].index("fuse_maps")
            passes = (*passes[:at], offload, *passes[at:])
        if options.monitor is not None:
            callback = None if options.monitor is True else options.monitor
            passes = (*passes, make_insert_monitors(callback, every=options.monitor_every))
        optimized, rewrites = optimize(plan, options.disable, passes)
    else:
        optimized, rewrites = plan, (Rewrite("*", "skipped", (), "compile(optimize=False): no pass ran"),)
    check_split_safety(optimized)  # also without optimization: a split below an unseeded shuffle is never a partition
    from squirrel_graph.backends.dask import DaskBackend
    from squirrel_graph.backends.numba import NumbaBackend

    backends = [NumbaBackend(everything=options.backend == "numba"), ThreadedBackend(inline=options.inline)]
    physical = lower(optimized, [*backends, DaskBackend(client=options.client)])
    return Compiled(plan, optimized, rewrites, physical, options)


def open_stream(handle: Any, builtin_root: bool = False) -> Iterator[Any]:
    """Compile ``handle``'s plan (once per chain, per process) and open a run of it.

    The compiled plan is cached on the handle, keyed by the identity of every handle and link in the chain and
    by the compile options; runtime state lives in a fresh RunContext per run, which the handles of the chain
    can read afterwards (``loop.counter``, ``Multiplexer.num_samples``, ``skipped_shards``).
    """
    from squirrel_graph.backends import RunContext
    from squirrel_graph.stream.composable import build_plan, chain_fingerprint

    options = handle._compile_options()
    key = (chain_fingerprint(handle), options, builtin_root)
    cached = handle.__dict__.get("_compiled_cache")
    if cached is None or cached[0] != key:
        record: dict[str, Any] = {}
        compiled = compile_plan(build_plan(handle, builtin_root=builtin_root, record=record), options)
        cached = (key, compiled, tuple(record.items()))
        handle.__dict__["_compiled_cache"] = cached
    _, compiled, record_items = cached
    ctx = RunContext(epoch=handle._epoch_of_chain())
    for nid, h in record_items:
        h.__dict__["_last_state"] = (ctx.state, nid)
    handle.__dict__["_last_state"] = (ctx.state, compiled.logical.output)  # also a transparent compiled handle
    return compiled.physical.open(ctx)
