"""squirrel-core's generator helpers (``squirrel.iterstream.iterators``) with its exact signatures, as thin wrappers
over squirrel_graph's runtime, for code that calls them directly on plain iterables.

Where the runtime's own function already has squirrel-core's signature it is used as it is; the others adapt it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from squirrel_graph.metrics import DEFAULT_CLOCK, MetricsConf, check_unit, metrics_iops, metrics_throughput
from squirrel_graph.randomness import get_random_range
from squirrel_graph.runtime import monitoring, ops
from squirrel_graph.runtime.ops import batched_, filter_, getsize, map_, shuffle_, sliding_, take_, tqdm_, zip_index_
from squirrel_graph.stream.validate import check_callable, check_int

__all__ = [
    "MetricsConf",
    "batched_",
    "dask_delayed_",
    "filter_",
    "flatten_",
    "get_random_range",
    "getsize",
    "map_",
    "metrics_iops",
    "metrics_throughput",
    "monitor_",
    "shuffle_",
    "sliding_",
    "take_",
    "tqdm_",
    "zip_index_",
]


def flatten_(iterables: Iterable[Iterable[Any]]) -> Iterator[Any]:
    """The elements of every iterable in ``iterables``, in order."""
    return ops.flatten_(iterables)


def dask_delayed_(iterable: Iterable[Any], callback: Callable[[Any], Any]) -> Iterator[Any]:
    """``dask.delayed(callback)(item)`` for every item: nothing is computed until the caller computes it."""
    check_callable("dask_delayed_", "callback", callback)
    try:
        import dask
    except ImportError as exc:
        raise ImportError("dask_delayed_ needs dask: pip install 'squirrel_graph[dask]'") from exc
    delayed = dask.delayed(callback)
    return (delayed(item) for item in iterable)


def monitor_(
    iterable: Iterable[Any],
    callback: Callable[..., Any],
    prefix: str | None = None,
    metrics_conf: MetricsConf | type[MetricsConf] = MetricsConf,
    *,
    window_size: int = 5,
    **kwargs: Any,
) -> Iterator[Any]:
    """The items unchanged; before each item from the ``window_size``-th on, ``callback(metrics, **kwargs)`` with
    ``{prefix}IOPS number/s`` and ``{prefix}throughput {unit}/s`` over the last ``window_size`` items.

    squirrel-core's per-item monitor (``stream.monitor(..., every=1)``); arguments are checked now, not when iterated.
    """
    check_callable("monitor_", "callback", callback)
    window_size = check_int("monitor_", "window_size", window_size, 1)
    conf = metrics_conf() if isinstance(metrics_conf, type) else metrics_conf
    check_unit("monitor_", conf.throughput_unit)
    return monitoring.monitor_(
        iterable,
        callback,
        prefix=prefix or "",
        iops=conf.iops,
        throughput=conf.throughput,
        unit=conf.throughput_unit,
        window_size=window_size,
        every=1,
        interval=None,
        clock=DEFAULT_CLOCK,
        kwargs=kwargs,
        stage="monitor_",
        node_id="",
        stats=monitoring.MonitorStats("monitor_"),
    )
