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


def _report(callback: Callable[..., Any], metrics: dict[str, Any], kwargs: Any, stage: str, node_id: str) -> None:
    try:
        callback(metrics, **kwargs)
    except Exception as exc:
        annotate(exc, stage, node_id)
        raise


def _allowed(interval: float | None, last_call: float | None, now: float) -> bool:
    """``interval`` means at most one call per ``interval`` seconds, end-of-stream reports included."""
    return interval is None or last_call is None or now - last_call >= interval


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
    heartbeat: float | None = None,
) -> Iterator[Any]:
    """Items unchanged; ``callback({prefix}IOPS number/s, {prefix}throughput {unit}/s)`` over the last
    ``window_size`` items, timed from the arrival of the item before the window (the start, for the first).

    ``every=1`` calls back per item (squirrel-core). Sampled (``every > 1``) also calls back when ``heartbeat``
    seconds passed since the last call, and once more when the stream ends or is closed with items not reported.
    """
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
    seen = reported = 0
    last_call: float | None = None

    def metrics(now: float) -> dict[str, Any]:
        duration = max(now - stamps[0], 1e-9)
        n = min(seen, window_size)
        return {
            iops_key: round(n / duration, 2) if iops else 0,
            tp_key: round(sum(sizes) / scale / duration, 2) if throughput else 0.0,
        }

    try:
        for item in iterable:
            now = clock()
            stamps.append(now)
            size = estimate_size(item) if throughput else 0
            sizes.append(size)
            seen += 1
            stats.items, stats.bytes, stats.last = seen, stats.bytes + size, now
            if seen >= window_size and callback is not None:
                due = (seen - window_size) % every == 0
                if not due and heartbeat is not None and every > 1:
                    due = now - (last_call if last_call is not None else start) >= heartbeat
                if due and _allowed(interval, last_call, now):
                    last_call, reported = now, seen
                    _report(callback, metrics(now), kwargs, stage, node_id)
            yield item
    finally:
        if every > 1 and callback is not None and seen >= window_size and seen > reported:
            now = clock()
            if _allowed(interval, last_call, now):
                _report(callback, metrics(now), kwargs, stage, node_id)


class MonitorProbe:
    """A sampled monitor inside a generated loop: the loop counts items and calls the probe when the count reaches
    the number the probe returned last. The probe reports every ``every`` items, or after ``heartbeat`` seconds
    on a slow stream (it asks to be called sooner when the rate says ``every`` items would take longer), and once
    at the end; metrics cover the items since the previous report (the latest sampled size stands for theirs)."""

    def __init__(self, node: Any, node_id: str, ctx: Any) -> None:
        from squirrel_graph.metrics import DEFAULT_CLOCK, UNITS

        self.node, self.node_id = node, node_id
        self.clock = node.clock or DEFAULT_CLOCK
        self.scale = UNITS[node.unit]
        self.iops_key = f"{node.prefix}IOPS number/s"
        self.tp_key = f"{node.prefix}throughput {node.unit}/s"
        name = node.prefix[:-2] if node.auto else node.label()
        self.stats = ctx.state.setdefault(node_id, MonitorStats(name)) if ctx is not None else MonitorStats(name)
        self.last_t = self.probe_t = self.stats.start = self.stats.last = self.clock()
        self.last_n = self.probe_n = 0  # the count at the last report, at the last probe call
        self.last_call: float | None = None
        self.size = 0
        self.due = 1  # the first item is sampled for its size, so short runs get a throughput too

    def __call__(self, item: Any, count: int) -> int:
        from squirrel_graph.metrics import estimate_size

        node = self.node
        now = self.clock()
        if node.throughput:
            self.size = estimate_size(item)
        self._account(count, now)
        since = now - (self.last_call if self.last_call is not None else self.last_t)
        heartbeat = node.heartbeat
        if count - self.last_n >= node.every or (heartbeat is not None and since >= heartbeat):
            self._report(count, now)
        step = self.last_n + node.every - count
        if step <= 0:  # a report held back by ``interval``: ask again ``every`` items later
            step = node.every
        elapsed = now - self.probe_t
        if heartbeat is not None and elapsed > 0:  # a slow stream: be called again within about a heartbeat
            step = min(step, int((count - self.probe_n) / elapsed * heartbeat / 4))
        self.probe_t, self.probe_n = now, count
        return count + max(step, 1)

    def _account(self, count: int, now: float) -> None:
        stats = self.stats
        stats.bytes += self.size * (count - stats.items)
        stats.items, stats.last = count, now

    def _report(self, count: int, now: float) -> None:
        node = self.node
        if node.callback is None or not (node.iops or node.throughput):
            return
        if not _allowed(node.interval, self.last_call, now):
            return
        rate = (count - self.last_n) / max(now - self.last_t, 1e-9)
        metrics = {
            self.iops_key: round(rate, 2) if node.iops else 0,
            self.tp_key: round(self.size * rate / self.scale, 2) if node.throughput else 0.0,
        }
        self.last_call, self.last_t, self.last_n = now, now, count
        _report(node.callback, metrics, node.kwargs, node.label(), self.node_id)

    def finish(self, count: int) -> None:
        """At the end of a run (exhausted or closed): count the items after the last sample and report them."""
        now = self.clock()
        if count > self.stats.items:
            self._account(count, now)
        if count > self.last_n:
            self._report(count, now)
