"""Runtime of monitors: what reached one monitor in a run, the per-item monitor, and the sampled probe that
generated loops call every ``every`` items.

Besides the totals, each monitor keeps, at its report points only (no extra cost per item), a bounded time series
of ``(seconds since the start, items)`` for ``stream.stats().plot()``, and samples of how long the consumer waited
for the next item after a report point (the time spent in the watched stage and everything upstream of it), from
which ``stream.stats()`` finds the stage that bounds the pipeline.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from squirrel_graph.errors import annotate

SERIES_POINTS = 128  # the most (seconds, items) points a monitor keeps per run
MIN_GAP = 0.02  # seconds: a sampled monitor adds a point to its series about this often, at least
WAIT_GAP = 0.002  # seconds: a sampled monitor samples the wait for an item about this often


class MonitorStats:
    """What reached one monitor in one run: items, bytes, and the clock at the start and at the last item; plus a
    bounded series of ``(seconds, items)`` and sampled waits for the next item (see the module's docstring)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.items = 0
        self.bytes = 0
        self.start = self.last = 0.0
        self.series: list[tuple[float, int]] = []
        self.gap = 0.0  # the least seconds between two points of the series (doubles as the series fills)
        self.wait_seconds = 0.0  # summed sampled waits (perf_counter seconds) ...
        self.waits = 0  # ... and how many

    def sample(self, now: float, last: bool = False) -> None:
        """Add ``(now - start, items)`` to the series: at most :data:`SERIES_POINTS` points; when full, every other
        point goes and the least gap grows, so the series spans the whole run at a bounded cost. ``last`` (the end
        of a run) is always kept; one point per instant."""
        t = now - self.start
        series = self.series
        if series and (t - series[-1][0] < self.gap or t == series[-1][0]):
            if not last:
                return
            series.pop()
        series.append((t, self.items))
        if len(series) >= SERIES_POINTS:
            del series[1:-1:2]
            self.gap = t / (SERIES_POINTS // 2)

    def waited(self, seconds: float) -> None:
        """One sample of the wait for the next item (in the watched stage and everything upstream of it)."""
        self.wait_seconds += seconds
        self.waits += 1

    @property
    def upstream_seconds(self) -> float | None:
        """Estimated seconds the consumer of this monitor waited for items in the run: the mean sampled wait times
        the items (None without samples)."""
        return self.wait_seconds / self.waits * self.items if self.waits else None

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
    perf = time.perf_counter  # waits are real time, whatever clock the metrics use
    resumed: float | None = None
    try:
        for item in iterable:
            now = clock()
            if resumed is not None:  # the item after a report point: how long did the upstream take?
                stats.waited(perf() - resumed)
                resumed = None
            stamps.append(now)
            size = estimate_size(item) if throughput else 0
            sizes.append(size)
            seen += 1
            stats.items, stats.bytes, stats.last = seen, stats.bytes + size, now
            if seen >= window_size and (
                (seen - window_size) % every == 0
                or (beat is not None and now - (start if last_call is None else last_call) >= beat)
            ):
                stats.sample(now)
                if callback is not None and (interval is None or last_call is None or now - last_call >= interval):
                    last_call, reported = now, seen
                    try:
                        callback(metrics(now), **kwargs)
                    except Exception as exc:
                        annotate(exc, stage, node_id)
                        raise
                yield item
                resumed = perf()
                continue
            yield item
    finally:
        stats.sample(stats.last, last=True)
        if every > 1 and callback is not None and seen >= window_size and seen > reported:
            now = clock()
            if _allowed(interval, last_call, now):
                _report(callback, metrics(now), kwargs, stage, node_id)


class MonitorProbe:
    """A sampled monitor inside a generated loop: the loop counts down the items the probe asked for and calls it
    with the item that reaches zero (one decrement per item: the cheapest check). The probe reports every ``every``
    items, or after ``heartbeat`` seconds on a slow stream (it asks to be called sooner when the rate says
    ``every`` items would take longer), and once at the end; metrics cover the items since the previous report
    (the latest sampled size, sampled at most once per ``every`` items, stands for theirs). The node's fields are
    read once: a call costs a microsecond or two.

    Each call adds a point to the stats' series; a slow stream is probed every :data:`MIN_GAP` seconds or so (less
    often as the run grows), so the series has points even when ``every`` items take the whole run. A loop that
    calls :meth:`resumed` after yielding a probed item (the generated loop of a monitor that ends its stage does)
    gets the probe called on the next item too, which samples how long the upstream took to produce it; such
    pairs of calls come about every :data:`WAIT_GAP` seconds, a jittered number of items apart (never in step
    with the other monitors or with a batch size): no cost per item, well under 0.1 % of the run per monitor.
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
        self.sized = -self.every  # the count at the latest size sample
        self.due = 1  # items until the first call: the first item is sampled for its size (short runs get a rate)
        self.count = 0  # items counted up to the latest call
        self.want = False  # the next call samples the wait for its item (resumed() starts the clock)
        self.hooked: bool | None = None  # does the loop call resumed()? (None: not known yet)
        self.resume_t: float | None = None
        self.due_next = 1  # the first call of a pair: the items it asked for after the pair
        self.jitter = random.Random(node_id)  # seeded: a run probes the same items again

    def resumed(self) -> None:
        """The consumer asked for the item after a probed one: start timing the wait for it, if wanted."""
        if self.want:
            self.resume_t = time.perf_counter()

    def __call__(self, item: Any) -> int:
        """The ``due``-th item since the last call arrived: maybe report; returns the items until the next call."""
        count = self.count = self.count + self.due
        now = self.clock()
        measured = self.want
        if measured:  # the item after a probed one: how long did the upstream take to produce it?
            self.want = False
            if self.resume_t is None:  # the loop never calls resumed(): no waits from this probe
                self.hooked = measured = False
            else:
                self.stats.waited(time.perf_counter() - self.resume_t)
                self.hooked, self.resume_t = True, None
        every, heartbeat = self.every, self.heartbeat
        if self.sizer is not None and count - self.sized >= every:
            self.size, self.sized = self.sizer(item), count
        self._account(count, now)
        self.stats.sample(now)
        if count - self.last_n >= every or (
            heartbeat is not None and now - (self.last_t if self.last_call is None else self.last_call) >= heartbeat
        ):
            try:
                self._report(count, now)
            except BaseException:
                self.due = 0  # this item is counted and reported: finish() must not count or report it again
                raise
        if measured:  # the second call of a pair: the schedule below was set by the first
            self.due = max(self.due_next - 1, 1)
            return self.due
        step = self.last_n + every - count
        if step <= 0:  # a report held back by ``interval``: ask again ``every`` items later
            step = every
        if now > self.probe_t:  # a slow stream: be called again within about a heartbeat, and for the series
            rate = (count - self.probe_n) / (now - self.probe_t)
            span = max(MIN_GAP, (now - self.stats.start) / (SERIES_POINTS // 2))
            if heartbeat is not None:
                span = min(span, heartbeat / 4)
            if self.hooked is not False:
                span = min(span, WAIT_GAP * (0.5 + self.jitter.random()))
            step = min(step, int(rate * span))
        self.probe_t, self.probe_n = now, count
        self.due = step if step > 1 else 1
        if self.hooked is not False:  # a pair: this call, then the next item's, timed from resumed()
            self.want, self.due_next, self.due = True, self.due, 1
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
        self.stats.sample(self.stats.last, last=True)
        if count > self.last_n:
            self._report(count, now)
