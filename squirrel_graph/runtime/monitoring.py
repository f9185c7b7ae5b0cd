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
    stats.start = stats.last = start  # an empty run lasts 0 s, not (0 - start)
    stamps: deque[float] = deque([start], maxlen=window_size + 1)
    sizes: deque[int] = deque(maxlen=window_size)
    seen = reported = 0
    last_call: float | None = None

    def metrics(now: float) -> dict[str, Any]:  # called with at least window_size items seen
        duration = now - stamps[0] or 1e-9
        return {
            iops_key: round(window_size / duration, 2) if iops else 0,
            tp_key: round(sum(sizes) / scale / duration, 2) if throughput else 0.0,
        }

    beat = heartbeat if every > 1 and callback is not None else None  # per-item mode: a call per item anyway
    try:
        for item in iterable:
            now = clock()
            stamps.append(now)
            size = estimate_size(item) if throughput else 0
            sizes.append(size)
            seen += 1
            stats.items, stats.bytes, stats.last = seen, stats.bytes + size, now
            if seen >= window_size and (
                (seen - window_size) % every == 0
                or (beat is not None and now - (start if last_call is None else last_call) >= beat)
            ):
                if callback is not None and (interval is None or last_call is None or now - last_call >= interval):
                    last_call, reported = now, seen
                    try:
                        callback(metrics(now), **kwargs)
                    except Exception as exc:
                        annotate(exc, stage, node_id)
                        raise
            yield item
    finally:
        if every > 1 and callback is not None and seen >= window_size and seen > reported:
            now = clock()
            if _allowed(interval, last_call, now):
                _report(callback, metrics(now), kwargs, stage, node_id)


class MonitorProbe:
    """A sampled monitor inside a generated loop: the loop counts down the items the probe asked for and calls it
    with the item that reaches zero (one decrement per item: the cheapest check). The probe reports every ``every``
    items, or after ``heartbeat`` seconds on a slow stream (it asks to be called sooner when the rate says
    ``every`` items would take longer), and once at the end; metrics cover the items since the previous report
    (the latest sampled size stands for theirs). The node's fields are read once: a call costs a few microseconds.
    """

    def __init__(self, node: Any, node_id: str, ctx: Any) -> None:
        from squirrel_graph.metrics import DEFAULT_CLOCK, UNITS, estimate_size

        self.node_id = node_id
        self.clock = node.clock or DEFAULT_CLOCK
        self.sizer = estimate_size if node.throughput else None
        self.every, self.heartbeat, self.interval = node.every, node.heartbeat, node.interval
        self.callback = node.callback if node.iops or node.throughput else None
        self.iops, self.throughput, self.kwargs, self.stage = node.iops, node.throughput, node.kwargs, node.label()
        self.scale = UNITS[node.unit]
        self.iops_key = f"{node.prefix}IOPS number/s"
        self.tp_key = f"{node.prefix}throughput {node.unit}/s"
        name = node.prefix[:-2] if node.auto else self.stage
        self.stats = ctx.state.setdefault(node_id, MonitorStats(name)) if ctx is not None else MonitorStats(name)
        self.last_t = self.probe_t = self.stats.start = self.stats.last = self.clock()
        self.last_n = self.probe_n = 0  # the count at the last report, at the last probe call
        self.last_call: float | None = None
        self.size = 0
        self.due = 1  # items until the first call: the first item is sampled for its size (short runs get a rate)
        self.count = 0  # items counted up to the latest call

    def __call__(self, item: Any) -> int:
        """The ``due``-th item since the last call arrived: maybe report; returns the items until the next call."""
        count = self.count = self.count + self.due
        now = self.clock()
        if self.sizer is not None:
            self.size = self.sizer(item)
        self._account(count, now)
        every, heartbeat = self.every, self.heartbeat
        if count - self.last_n >= every or (
            heartbeat is not None and now - (self.last_t if self.last_call is None else self.last_call) >= heartbeat
        ):
            self._report(count, now)
        step = self.last_n + every - count
        if step <= 0:  # a report held back by ``interval``: ask again ``every`` items later
            step = every
        if heartbeat is not None and now > self.probe_t:  # a slow stream: be called again within about a heartbeat
            step = min(step, int((count - self.probe_n) / (now - self.probe_t) * heartbeat / 4))
        self.probe_t, self.probe_n = now, count
        self.due = step if step > 1 else 1
        return self.due

    def _account(self, count: int, now: float) -> None:
        stats = self.stats
        stats.bytes += self.size * (count - stats.items)
        stats.items, stats.last = count, now

    def _report(self, count: int, now: float) -> None:
        if self.callback is None or not _allowed(self.interval, self.last_call, now):
            return
        rate = (count - self.last_n) / (now - self.last_t or 1e-9)
        metrics = {
            self.iops_key: round(rate, 2) if self.iops else 0,
            self.tp_key: round(self.size * rate / self.scale, 2) if self.throughput else 0.0,
        }
        self.last_call, self.last_t, self.last_n = now, now, count
        _report(self.callback, metrics, self.kwargs, self.stage, self.node_id)

    def finish(self, remaining: int) -> None:
        """At the end of a run (exhausted or closed, ``remaining`` left of the countdown): count the items after the
        last call and report them."""
        count = self.count + self.due - remaining
        now = self.clock()
        if count > self.stats.items:
            self._account(count, now)
        if count > self.last_n:
            self._report(count, now)
