"""Runtime of monitors: what reached one monitor in a run, the per-item monitor, and the sampled probe that
generated loops call every ``every`` items."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from squirrel_graph.errors import annotate


class MonitorStats:
    """What reached one monitor in one run: items, bytes, and the clock at the start and at the last item."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.items = 0
        self.bytes = 0
        self.start = self.last = 0.0

    def as_dict(self) -> dict[str, float]:
        seconds = self.last - self.start
        return {
            "items": self.items,
            "seconds": round(seconds, 6),
            "items/s": round(self.items / seconds, 2) if seconds > 0 else 0.0,
            "MB/s": round(self.bytes / 2**20 / seconds, 2) if seconds > 0 else 0.0,
        }


def monitor_(
    iterable: Iterable[Any],
    callback: Callable[..., Any],
    prefix: str,
    iops: bool,
    throughput: bool,
    unit: str,
    window_size: int,
    every: int,
    interval: float | None,
    clock: Callable[[], float],
    kwargs: Any,
    stage: str,
    node_id: str,
    stats: MonitorStats,
) -> Iterator[Any]:
    """Items unchanged; ``callback({prefix}IOPS number/s, {prefix}throughput {unit}/s)`` over the last
    ``window_size`` items, timed from the arrival of the item before the window (the start, for the first)."""
    from squirrel_graph.metrics import UNITS, estimate_size

    if not (iops or throughput):
        yield from iterable
        return
    iops_key, tp_key = f"{prefix}IOPS number/s", f"{prefix}throughput {unit}/s"
    scale = UNITS[unit]
    start = clock()
    stats.start = start
    stamps: deque[float] = deque([start], maxlen=window_size + 1)
    sizes: deque[int] = deque(maxlen=window_size)
    seen = 0
    last_call: float | None = None
    for item in iterable:
        now = clock()
        stamps.append(now)
        size = estimate_size(item) if throughput else 0
        sizes.append(size)
        seen += 1
        stats.items, stats.bytes, stats.last = seen, stats.bytes + size, now
        if seen >= window_size and (seen - window_size) % every == 0:
            if interval is None or last_call is None or now - last_call >= interval:
                duration = now - stamps[0]
                metrics = {
                    iops_key: round(window_size / duration, 2) if iops and duration > 0 else 0,
                    tp_key: round(sum(sizes) / scale / duration, 2) if throughput and duration > 0 else 0.0,
                }
                last_call = now
                if callback is None:
                    yield item
                    continue
                try:
                    callback(metrics, **kwargs)
                except Exception as exc:
                    annotate(exc, stage, node_id)
                    raise
        yield item


class MonitorProbe:
    """A sampled monitor inside a generated loop: the loop counts items and calls the probe every ``every``-th;
    metrics cover the items since the previous call (the sampled item's size stands for theirs)."""

    def __init__(self, node: Any, node_id: str, ctx: Any) -> None:
        from squirrel_graph.metrics import DEFAULT_CLOCK, UNITS

        self.node, self.node_id = node, node_id
        self.clock = node.clock or DEFAULT_CLOCK
        self.scale = UNITS[node.unit]
        self.iops_key = f"{node.prefix}IOPS number/s"
        self.tp_key = f"{node.prefix}throughput {node.unit}/s"
        name = node.prefix[:-2] if node.auto else node.label()
        self.stats = ctx.state.setdefault(node_id, MonitorStats(name)) if ctx is not None else MonitorStats(name)
        self.last_t = self.stats.start = self.stats.last = self.clock()
        self.last_n = 0
        self.last_call: float | None = None
        self.size = 0
        self.due = 1  # the first item is sampled for its size (no callback), so short runs get a throughput too

    def __call__(self, item: Any, count: int) -> int:
        from squirrel_graph.metrics import estimate_size

        node = self.node
        if count < node.every:  # the first item: only its size
            self.size = estimate_size(item) if node.throughput else 0
            return node.every
        now = self.clock()
        items, seconds = count - self.last_n, now - self.last_t
        if node.throughput:
            self.size = estimate_size(item)
        stats = self.stats
        stats.items, stats.bytes, stats.last = count, stats.bytes + self.size * items, now
        if node.callback is not None and (node.iops or node.throughput):
            if node.interval is None or self.last_call is None or now - self.last_call >= node.interval:
                rate = items / seconds if seconds > 0 else 0.0
                metrics = {
                    self.iops_key: round(rate, 2) if node.iops else 0,
                    self.tp_key: round(self.size * rate / self.scale, 2) if node.throughput else 0.0,
                }
                self.last_call = now
                try:
                    node.callback(metrics, **node.kwargs)
                except Exception as exc:
                    annotate(exc, node.label(), self.node_id)
                    raise
        self.last_t, self.last_n = now, count
        return count + node.every

    def finish(self, count: int) -> None:
        """At the end of a run: count the items after the last sample (no callback)."""
        if count > self.stats.items:
            self.stats.bytes += self.size * (count - self.stats.items)
            self.stats.items = count
            self.stats.last = self.clock()
