"""monitor(): exact metrics with an injected clock, squirrel-core's keys and calls, and real wandb / mlflow runs."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import pytest

from squirrel_graph import IterableSource
from squirrel_graph.iterstream.metrics import MetricsConf, metrics_iops, metrics_throughput
from squirrel_graph.metrics import estimate_size
from squirrel_graph.tracking import WithStep


def ticking(step=0.01):
    """A clock that advances ``step`` seconds on every call (one call at the start, one per item)."""
    counter = itertools.count()
    return lambda: next(counter) * step


def items(n, nbytes=1024):
    return [np.zeros(nbytes, np.uint8) for _ in range(n)]


def test_items_10ms_apart_give_exactly_100_iops_and_nbytes_throughput():
    calls = []
    stream = IterableSource(items(7)).monitor(
        lambda m, **kw: calls.append((m, kw)), prefix="p ", window_size=3, every=1, clock=ticking(), step=1
    )
    assert len(stream.collect()) == 7
    assert len(calls) == 5  # squirrel-core's count: one call per item once the window is full
    metrics, kwargs = calls[0]
    assert kwargs == {"step": 1}
    assert set(metrics) == {"p IOPS number/s", "p throughput MB/s"}
    assert all(m["p IOPS number/s"] == 100.0 for m, _ in calls)
    assert metrics["p throughput MB/s"] == round(3 * 1024 / 2**20 / 0.03, 2)


def test_window_size_1_works_and_units_change_the_key():
    calls = []
    conf = MetricsConf(throughput_unit="KB")
    IterableSource(items(4, 2048)).monitor(
        calls.append, metrics_conf=conf, window_size=1, every=1, clock=ticking(0.5)
    ).join()
    assert len(calls) == 4
    assert calls[-1] == {"IOPS number/s": 2.0, "throughput KB/s": 4.0}  # 1 item / 0.5 s; 2 KB / 0.5 s


def test_metrics_can_be_switched_off_and_the_class_default_works():
    calls = []
    conf = MetricsConf(throughput=False)
    IterableSource(items(6)).monitor(calls.append, metrics_conf=conf, every=1, clock=ticking()).join()
    assert calls[0]["throughput MB/s"] == 0.0 and calls[0]["IOPS number/s"] == 100.0
    off = []
    out = IterableSource([1, 2]).monitor(off.append, metrics_conf=MetricsConf(iops=False, throughput=False)).collect()
    assert out == [1, 2] and off == []
    assert MetricsConf().asdict() == {"iops": True, "throughput": True, "throughput_unit": "MB"}
    more = []
    IterableSource(items(5)).monitor(more.append, metrics_conf=MetricsConf, every=1).join()  # squirrel-core's default
    assert len(more) == 1


def test_every_and_interval_limit_the_calls():
    """Changed on purpose with the end-of-stream report: a sampled monitor also reports the items after its last
    call (21-22 below), so a stream's tail is never lost; ``interval`` still caps every kind of call."""
    every = []
    IterableSource(items(20)).monitor(every.append, window_size=2, every=5, clock=ticking()).join()
    assert len(every) == 4  # at items 5, 10, 15, 20: nothing left for the end
    tail = []
    IterableSource(items(22)).monitor(tail.append, window_size=2, every=5, clock=ticking()).join()
    assert len(tail) == 5  # and items 21-22 when the stream ends
    timed = []
    IterableSource(items(20)).monitor(timed.append, window_size=2, every=1, interval=0.05, clock=ticking()).join()
    assert len(timed) == 4  # one call per 50 ms of a 10 ms clock: items 2, 7, 12, 17 (per-item mode: no tail call)
    capped = []
    IterableSource(items(22)).monitor(capped.append, window_size=2, every=5, interval=10.0, clock=ticking()).join()
    assert len(capped) == 1  # the end-of-stream report respects interval too


def test_the_per_item_generator_reports_a_sampled_tail_and_a_heartbeat_too():
    """``monitor_`` (the unfused runtime, and squirrel-core's helper) follows the same rules as the fused probe."""
    from squirrel_graph.runtime.monitoring import MonitorStats, monitor_

    def run(n, step, every, heartbeat):
        calls = []
        gen = monitor_(items(n), calls.append, "", True, True, "MB", 2, every, None, ticking(step), {}, "m", "1:m",
                       MonitorStats("m"), heartbeat)  # fmt: skip
        assert len(list(gen)) == n
        return calls

    assert len(run(20, 0.01, 5, None)) == 5  # items 2, 7, 12, 17 and 18-20 at the end
    assert len(run(20, 0.01, 1, None)) == 19  # per item from the window on; nothing left at the end
    slow = run(30, 1.0, 1000, 5.0)
    assert len(slow) == 7  # the window is full at 2 s; then 7, 12, ..., 27 s, and the tail
    assert all(m["IOPS number/s"] == 1.0 for m in slow[:-1]) and slow[-1]["IOPS number/s"] > 0


def test_a_short_stream_is_reported_once_with_the_default_sampling():
    calls = []
    IterableSource(items(50)).monitor(calls.append, window_size=5).join()  # every=1000 by default
    assert len(calls) == 1
    (metrics,) = calls
    assert all(np.isfinite(v) and v > 0 for v in metrics.values())


def test_a_closed_stream_reports_what_it_yielded():
    calls = []
    it = iter(IterableSource(items(100)).monitor(calls.append, window_size=5, every=1000, clock=ticking()))
    for _ in range(30):
        next(it)
    assert calls == []
    it.close()
    assert len(calls) == 1 and calls[0]["IOPS number/s"] > 0


def test_a_slow_stream_reports_every_heartbeat():
    """At one item per (clock) second, every=1000 would report once in 1000 s: the heartbeat makes it ~every 5 s."""
    calls = []
    IterableSource(items(60)).monitor(calls.append, window_size=2, every=1000, clock=ticking(1.0)).join()
    assert 6 <= len(calls) <= 16  # 60 s of stream at a heartbeat of 5 s (the probe re-plans from the rate)
    assert all(m["IOPS number/s"] > 0 for m in calls)
    none = []
    IterableSource(items(60)).monitor(none.append, window_size=2, every=1000, heartbeat=None, clock=ticking(1.0)).join()
    assert len(none) == 1  # no heartbeat: only the end-of-stream report


@pytest.mark.parametrize(
    "kwargs, exc, word",
    [
        ({"metrics_conf": MetricsConf(throughput_unit="TB")}, ValueError, "throughput_unit"),
        ({"window_size": 0}, ValueError, "window_size"),
        ({"every": 0}, ValueError, "every"),
        ({"interval": -1}, ValueError, "interval"),
        ({"heartbeat": 0}, ValueError, "heartbeat"),
        ({"every": True}, TypeError, "every"),
    ],
)
def test_bad_monitor_arguments_fail_at_chain_time(kwargs, exc, word):
    with pytest.raises(exc, match=word):
        IterableSource([1]).monitor(print, **kwargs)
    with pytest.raises(TypeError, match="callback"):
        IterableSource([1]).monitor("wandb.log")


def test_helpers_and_cheap_sizes():
    assert metrics_iops(10, 2.0) == 5.0 and metrics_throughput(2**20, 2.0, "MB") == 0.5
    assert estimate_size(np.zeros((4, 4), np.float32)) == 64
    assert estimate_size({"a": np.zeros(10, np.uint8), "b": b"xyz"}) == 10 + 3 + 16
    assert estimate_size([1, "ab"]) == 10


def test_a_failing_callback_names_the_monitor_stage():
    def broken(metrics):
        raise RuntimeError("tracker down")

    with pytest.raises(RuntimeError) as info:
        IterableSource(items(6)).monitor(broken, prefix="train ", every=1).join()
    assert any("monitor('train ')" in n for n in info.value.__notes__)


def test_two_monitors_log_two_prefixed_series_to_a_real_offline_wandb_run(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = wandb.init(project="squirrel-graph-tests", dir=str(tmp_path), mode="offline")
    try:
        stream = (
            IterableSource(items(30, 4096))
            .monitor(wandb.log, prefix="(before map) ", every=1, clock=ticking(0.01))
            .map(lambda x: x[:1024])
            .monitor(wandb.log, prefix="(after map) ", every=1, clock=ticking(0.02))
        )
        assert len(stream.collect()) == 30
        summary = dict(run.summary)
    finally:
        run.finish()
    assert summary["(before map) IOPS number/s"] == 100.0
    assert summary["(after map) IOPS number/s"] == 50.0
    assert summary["(after map) throughput MB/s"] == round(5 * 1024 / 2**20 / 0.1, 2)
    files = list(Path(tmp_path).rglob("*.wandb"))
    assert files and files[0].stat().st_size > 0


def test_metrics_reach_a_real_mlflow_sqlite_store_with_steps(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    try:
        with mlflow.start_run() as run:
            log = WithStep(mlflow.log_metrics)
            IterableSource(items(12)).monitor(log, prefix="load_", every=1, clock=ticking()).join()
        history = MlflowClient(tracking_uri=uri).get_metric_history(run.info.run_id, "load_IOPS number/s")
    finally:
        mlflow.set_tracking_uri("")
    assert [m.step for m in history] == list(range(8))
    assert all(m.value == 100.0 for m in history)


def slow_double(x):
    import time

    time.sleep(0.0005)
    return 2 * x


def plus(x):
    return x + 1


def test_compile_monitor_inserts_one_monitor_per_physical_stage_without_breaking_fusion():
    calls = []
    base = IterableSource(range(2000)).map(plus).map(plus).async_map(slow_double, max_workers=8).batched(10)
    stream = base.compile(monitor=calls.append, monitor_every=100)
    assert stream.collect() == base.collect()
    text = str(stream.explain())
    assert "[fuse_maps] fused 1:map, 2:map" in text  # the two maps still run as one loop
    assert text.count("[insert_monitors] inserted") == 4
    prefixes = {k.split(": ")[0] for c in calls for k in c}
    assert prefixes == {"source(range(0, 2000))", "map(plus) → map(plus)", "async_map(slow_double)", "batched(10)"}
    stats = stream.stats()
    assert stats["async_map(slow_double)"]["items"] == 2000 and stats["batched(10)"]["items"] == 200
    assert stats["async_map(slow_double)"]["items/s"] > 0
    assert "== Measured in the latest run" in str(stream.explain())


def test_user_monitors_stay_and_are_never_doubled_and_the_pass_can_be_disabled():
    mine = []
    stream = IterableSource(range(50)).map(plus).monitor(mine.append, prefix="mine ", every=1).map(plus)
    auto = stream.compile(monitor=True)
    assert len(auto.collect()) == 50 and len(mine) == 46
    text = str(auto.explain(stage="optimized"))
    assert "monitor('mine ')" in text and "monitor(after monitor" not in text
    off = stream.compile(monitor=True, disable=["insert_monitors"])
    assert "insert_monitors] skipped" in str(off.explain()) and off.collect() == list(range(2, 52))
    with pytest.raises(TypeError, match="monitor"):
        stream.compile(monitor="yes")


class ItemClock:
    """Time driven by the items: a map before the monitor sets it to 10 ms x the item's index."""

    now = 0.0

    @classmethod
    def at(cls, i):
        cls.now = 0.01 * (i + 1)
        return i

    @classmethod
    def read(cls):
        return cls.now


def test_default_sampled_monitor_runs_inside_the_fused_loop_with_exact_rates():
    calls = []
    ItemClock.now = 0.0
    stream = (
        IterableSource(range(1000))
        .map(ItemClock.at)
        .monitor(calls.append, prefix="m ", every=100, clock=ItemClock.read)
        .map(plus)
    )
    assert stream.collect() == list(range(1, 1001))
    assert len(calls) == 10
    assert all(c["m IOPS number/s"] == 100.0 for c in calls)
    assert calls[0]["m throughput MB/s"] == round(8 * 100 / 2**20, 2)
    text = str(stream.explain())
    assert "fused 1:map, 2:monitor, 3:map" in text  # no stage boundary, no generator per item


def test_stats_count_every_item_even_between_samples():
    stream = IterableSource(range(1234)).map(plus).monitor(lambda m: None, prefix="x ", every=100).map(plus)
    assert len(stream.collect()) == 1234
    stats = stream.stats()
    assert stats["monitor('x ')"]["items"] == 1234


class ArrayClock(ItemClock):
    """ItemClock over 16 KiB arrays: item ``i`` arrives at 10 ms x (i + 1)."""

    @classmethod
    def at(cls, i):
        cls.now = 0.01 * (i + 1)
        return np.zeros(16 * 1024, np.uint8)


@pytest.mark.parametrize("every", [100, 1])
def test_stats_report_exact_items_seconds_and_rates(every):
    ArrayClock.now = 0.0
    stream = IterableSource(range(1000)).map(ArrayClock.at).monitor(lambda m: None, every=every, clock=ArrayClock.read)
    assert sum(len(a) for a in stream) == 1000 * 16 * 1024
    # 1,000 items of 16 KiB over 10 s (the clock reads 0 at the start, 10.0 at the last item)
    assert stream.stats() == {"monitor": {"items": 1000, "seconds": 10.0, "items/s": 100.0, "MB/s": 1.56}}
    idle = IterableSource([]).monitor(lambda m: None, every=every, clock=ArrayClock.read)
    assert idle.collect() == []
    assert idle.stats() == {"monitor": {"items": 0, "seconds": 0.0, "items/s": 0.0, "MB/s": 0.0}}


def test_the_series_is_bounded_and_spans_the_whole_run():
    from squirrel_graph.runtime.monitoring import SERIES_POINTS, MonitorStats

    stats = MonitorStats("m")
    for i in range(1, 100_001):
        stats.items = i
        stats.sample(i * 0.001)
        assert len(stats.series) < SERIES_POINTS
    stats.sample(100.0, last=True)
    times = [t for t, _ in stats.series]
    assert times == sorted(times) and times[0] < 1.0 and stats.series[-1] == (100.0, 100_000)
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert max(gaps) < 4 * 100.0 / SERIES_POINTS  # spread over the run, not bunched at its start


def test_the_series_keeps_one_point_per_instant():
    """The end of a run at the instant of the last sample replaces that point instead of repeating it."""
    from squirrel_graph.runtime.monitoring import MonitorStats

    stats = MonitorStats("m")
    stats.items = 1
    stats.sample(0.5)
    stats.sample(0.5, last=True)
    assert stats.series == [(0.5, 1)]
    stats.items = 3
    stats.sample(0.5)  # a later count at the same instant: the point already there stays
    assert stats.series == [(0.5, 1)]
    stats.sample(0.5, last=True)
    assert stats.series == [(0.5, 3)]
    stats.sample(0.75)
    assert stats.series == [(0.5, 3), (0.75, 3)]


def probe_loop(probe, items, upstream_s=0.0, hook=True, calls=None):
    """What a generated loop does around a probe that ends its stage (with the resumed() hook, or without);
    ``calls`` collects the item counts at which the probe was called."""
    due = probe.due
    for item in items:
        if upstream_s:
            time.sleep(upstream_s)  # the upstream producing the item
        due -= 1
        if not due:
            due = probe(item)
            if calls is not None:
                calls.append(probe.count)
            yield item
            if hook:
                probe.resumed()
            continue
        yield item
    probe.finish(due)


def test_a_probe_samples_the_upstream_wait_at_its_calls_only():
    from squirrel_graph.graph import Monitor
    from squirrel_graph.runtime.monitoring import MonitorProbe

    node = Monitor(every=1000, auto=True, prefix="stage: ")
    probe = MonitorProbe(node, "1:stage.monitor", None)
    start = time.perf_counter()
    assert sum(1 for _ in probe_loop(probe, range(300), upstream_s=0.001)) == 300
    wall = time.perf_counter() - start
    stats = probe.stats
    assert stats.items == 300 and probe.hooked is True and stats.waits >= 10
    assert 0.9 * 0.3 <= stats.upstream_seconds <= 1.2 * wall  # at least 1 ms per item upstream, and the run
    assert len(stats.series) >= 3 and stats.series[-1][1] == 300

    unhooked = MonitorProbe(node, "2:stage.monitor", None)
    assert sum(1 for _ in probe_loop(unhooked, range(300), hook=False)) == 300
    assert unhooked.hooked is False and unhooked.stats.waits == 0 and unhooked.stats.upstream_seconds is None


def test_per_item_monitors_sample_the_upstream_wait_at_every_report():
    stream = IterableSource(range(300)).map(slow_double).monitor(lambda m: None, every=1, window_size=10)
    assert len(stream.collect()) == 300
    stats = stream.__dict__["_last_state"][0]
    (monitor,) = [s for s in stats.values() if hasattr(s, "as_dict")]
    assert monitor.waits == 300 - 10  # one per report after the window filled: per item
    # every item waited for its 0.5 ms sleep upstream; nothing else ran, so the waits are most of the run
    assert 300 * 0.0005 * 0.9 <= monitor.upstream_seconds <= (monitor.last - monitor.start) * 1.2


class Timeline:
    """Item-driven time for a probe: item ``i`` arrives at ``origin + (i + 1) * step`` (exact binary fractions)."""

    def __init__(self, step, origin=1024.0):
        self.step, self.origin, self.now = step, origin, origin

    def items(self, n, nbytes=8):
        item = np.zeros(nbytes, np.uint8)
        for i in range(n):
            self.now = self.origin + (i + 1) * self.step
            yield item

    def count(self):
        """The items arrived so far, read from the clock."""
        return round((self.now - self.origin) / self.step)


def probed(timeline, n, hook=True, node_id="1:m", nbytes=8, **monitor):
    """Run a probe over ``n`` timeline items: (the counts it was called at, the counts it reported at, metrics)."""
    from squirrel_graph.graph import Monitor
    from squirrel_graph.runtime.monitoring import MonitorProbe

    reports, metrics = [], []

    def callback(m):
        reports.append(timeline.count())
        metrics.append(m)

    monitor = {"callback": callback, "clock": lambda: timeline.now, "heartbeat": None, **monitor}
    probe = MonitorProbe(Monitor(**monitor), node_id, None)
    calls = []
    assert sum(1 for _ in probe_loop(probe, timeline.items(n, nbytes), hook=hook, calls=calls)) == n
    return calls, reports, metrics, probe


def test_a_fast_probe_is_called_in_pairs_exactly_where_a_report_is_due():
    """At 2**20 items/s a WAIT_GAP takes >1000 items: the probe asks for the next report point, then its pair."""
    calls, reports, metrics, _ = probed(Timeline(2**-20), 3500, every=1000)
    assert calls == [1, 2, 1000, 1001, 2000, 2001, 3000, 3001]
    assert reports == [1000, 2000, 3000, 3500]  # and the 500 after the last report at the end
    assert all(m["IOPS number/s"] == 2**20 for m in metrics)


def test_a_fast_probe_samples_waits_about_every_wait_gap_at_seeded_items():
    from squirrel_graph.runtime.monitoring import WAIT_GAP

    calls, reports, _, probe = probed(Timeline(2**-20), 60_000, every=10**6)
    assert probe.hooked is True and reports == [60_000]  # no report point in the run but the end
    firsts, seconds = calls[0::2], calls[1::2]
    assert seconds == [c + 1 for c in firsts]  # each call is followed by the one that times the wait
    gaps = [b - a for a, b in zip(firsts, firsts[1:])]
    assert len(gaps) >= 15  # WAIT_GAP x (0.5 .. 1.5) at 2**20 items/s: 1048 .. 3145 items apart
    assert all(int(2**20 * WAIT_GAP * 0.5) <= g <= int(2**20 * WAIT_GAP * 1.5) for g in gaps), gaps
    assert len(set(gaps)) > 1  # jittered ...
    assert probed(Timeline(2**-20), 60_000, every=10**6)[0] == calls  # ... the same items in every run


def test_an_unhooked_probe_on_a_slow_stream_is_called_every_min_gap_then_less_often_as_the_run_grows():
    """No resumed() hook (the monitor does not end its loop): no wait pairs, calls spaced by the time alone."""
    from squirrel_graph.runtime.monitoring import MIN_GAP, SERIES_POINTS

    calls, reports, _, probe = probed(Timeline(2**-7), 1000, hook=False, every=10**6)
    assert probe.hooked is False and reports == [1000]
    assert calls[:2] == [1, 2]  # the first item (its size) and the one that finds no hook
    for a, b in zip(calls[1:], calls[2:]):  # at 128 items/s: MIN_GAP (2 items) first, 1/64 of the run from 1.28 s
        assert b - a == int(128 * max(MIN_GAP, a / 128 / (SERIES_POINTS // 2))), (a, b)
    assert calls[-1] >= 1000 - int(1000 / 64) - 1  # spread over the whole run


def test_a_heartbeat_shortens_the_gap_between_probe_calls():
    """At 1024 items/s and a heartbeat of 1/16 s (64 items), the probe is called every quarter beat (16 items)."""
    calls, reports, _, _ = probed(Timeline(2**-10), 400, hook=False, every=10**6, heartbeat=2**-4)
    assert calls[:2] == [1, 2] and {b - a for a, b in zip(calls[1:], calls[2:])} == {16}
    assert reports == [66, 130, 194, 258, 322, 386, 400]  # the first call at least 64 items after the last report


def test_a_slow_probe_reports_at_each_heartbeat_to_the_item():
    """At one item per second each item is probed: a heartbeat of 5 s reports at items 5, 10, 15, 20."""
    for hook in (True, False):
        calls, reports, metrics, _ = probed(Timeline(1.0), 20, hook=hook, every=1000, heartbeat=5.0)
        assert calls == list(range(1, 21))
        assert reports == [5, 10, 15, 20] and all(m["IOPS number/s"] == 1.0 for m in metrics)


def test_interval_holds_reports_back_to_the_item():
    """Reports are due every 10 items (1/128 s each); an interval of 20 items' time lets every other one through."""
    for hook in (True, False):
        _, reports, metrics, _ = probed(Timeline(2**-7), 65, hook=hook, every=10, interval=20 / 128)
        assert reports == [10, 30, 50], hook  # at the end, 60-65 are not 20 items after 50: nothing
        assert [m["IOPS number/s"] for m in metrics] == [128.0] * 3


@pytest.mark.parametrize("step", [2**-20, 2**-7, 1.0])
@pytest.mark.parametrize("hook", [True, False])
def test_a_probe_reports_on_every_every_th_item_at_any_rate(step, hook):
    calls, reports, metrics, _ = probed(Timeline(step), 23, hook=hook, every=5)
    assert reports == [5, 10, 15, 20, 23] and calls[-1] <= 23
    assert [m["IOPS number/s"] for m in metrics] == [1 / step] * 5


def test_a_clock_that_does_not_move_breaks_nothing():
    """A coarse clock can read the same time for a whole run: a zero duration counts as 1 ns."""
    calls = []
    stream = IterableSource(items(30)).monitor(calls.append, every=10, clock=lambda: 7.0)
    assert len(stream.collect()) == 30
    assert [c["IOPS number/s"] for c in calls] == [round(10 / 1e-9, 2)] * 3
    assert stream.stats()["monitor"] == {"items": 30, "seconds": 0.0, "items/s": 0.0, "MB/s": 0.0}


def test_probe_metrics_are_rounded_to_two_decimals_and_switched_off_by_kind():
    """10 items of 1 KiB per 30 ms: 333.33 items/s and KB/s; a kind switched off reports 0 (and counts no bytes)."""
    every = {"every": 10, "unit": "KB"}
    _, reports, metrics, probe = probed(Timeline(0.003), 20, nbytes=1024, **every)
    assert reports == [10, 20] and metrics == [{"IOPS number/s": 333.33, "throughput KB/s": 333.33}] * 2
    assert probe.stats.bytes == 20 * 1024
    _, _, metrics, probe = probed(Timeline(0.003), 20, nbytes=1024, iops=False, **every)
    assert metrics == [{"IOPS number/s": 0, "throughput KB/s": 333.33}] * 2
    _, _, metrics, probe = probed(Timeline(0.003), 20, nbytes=1024, throughput=False, **every)
    assert metrics == [{"IOPS number/s": 333.33, "throughput KB/s": 0.0}] * 2
    assert probe.stats.bytes == 0 and probe.stats.items == 20


def test_a_probe_samples_the_size_of_the_first_item_then_once_per_every_items():
    """Item k (1-based) holds k KiB; probed at each item (1 s apart), the sizes of items 1, 4, 7, 10 stand for
    the three items from each."""
    timeline = Timeline(1.0)

    def sized(n):
        for k, _ in enumerate(timeline.items(n), 1):
            yield np.zeros(k * 1024, np.uint8)

    from squirrel_graph.graph import Monitor
    from squirrel_graph.runtime.monitoring import MonitorProbe

    tp = []
    node = Monitor(callback=lambda m: tp.append(m["throughput KB/s"]), clock=lambda: timeline.now, every=3, unit="KB")
    probe = MonitorProbe(node, "1:m", None)
    assert probe.hooked is None and probe.stats.label == "monitor"  # nothing known before the first call
    assert sum(1 for _ in probe_loop(probe, sized(10))) == 10
    assert probe.stats.bytes == 1024 * (3 * 1 + 3 * 4 + 3 * 7 + 10)
    assert tp == [1.0, 4.0, 7.0, 10.0]  # reports at items 3, 6, 9, 10: one item/s of the sampled size


def test_sampled_reports_pass_the_kwargs_and_name_the_stage_and_node_of_a_failing_callback():
    from squirrel_graph.runtime.monitoring import MonitorStats, monitor_

    def failing_at(n):
        def callback(metrics, step):
            seen.append(step)
            if len(seen) == n:
                raise RuntimeError("tracker down")

        return callback

    note = "squirrel_graph: raised in stage 'monitor('train ')' (node 2:monitor)"
    seen = []
    with pytest.raises(RuntimeError) as info:  # the probe of a fused loop
        IterableSource(items(30)).map(plus_zero).monitor(failing_at(2), prefix="train ", every=5, step=7).join()
    assert seen[:2] == [7, 7] and info.value.__notes__ == [note]
    seen = []
    with pytest.raises(RuntimeError) as info:  # the unfused generator's end-of-stream report
        list(monitor_(items(9), failing_at(3), "", True, True, "MB", 2, 5, None, ticking(), {"step": 8},
                      "monitor('train ')", "2:monitor", MonitorStats("m")))  # fmt: skip
    assert seen == [8, 8, 8] and info.value.__notes__ == [note]  # items 2 and 7, then the end (8-9)


def plus_zero(x):
    return x + 0


def test_stats_of_a_fast_sampled_monitor_count_the_bytes_of_every_item_between_probes():
    """1024 items of 1 KiB, 2**-10 s apart: exactly 1 s, 1024 items/s and 1 MB/s (probes are >1 item apart)."""
    timeline = Timeline(2**-10)

    def at(i):
        timeline.now = timeline.origin + (i + 1) * timeline.step
        return np.zeros(1024, np.uint8)

    stream = IterableSource(range(1024)).map(at).monitor(lambda m: None, every=100, clock=lambda: timeline.now)
    assert len(stream.collect()) == 1024
    assert stream.stats()["monitor"] == {"items": 1024, "seconds": 1.0, "items/s": 1024.0, "MB/s": 1.0}


def test_stats_of_a_slow_sampled_monitor_end_at_its_last_item_and_so_does_its_series():
    """At one item per clock tick each item is probed; the end-of-run clock reading changes neither."""
    stream = IterableSource(items(300)).monitor(lambda m: None, every=1000, heartbeat=None, clock=ticking(1.0))
    assert len(stream.collect()) == 300
    stats = stream.stats()
    assert stats["monitor"] == {"items": 300, "seconds": 300.0, "items/s": 1.0, "MB/s": round(300 / 1024 / 300, 2)}
    series = stats.series["monitor"]
    assert series[0] == (1.0, 1) and series[-1] == (300.0, 300) and len(series) < 128


def test_stats_round_seconds_to_the_microsecond_and_rates_to_two_decimals():
    clock = iter([0.0, 0.5, 0.6543217]).__next__  # the start, then two items of 512 KiB
    stream = IterableSource(items(2, 2**19)).monitor(lambda m: None, every=1, window_size=1, clock=clock)
    assert len(stream.collect()) == 2
    assert stream.stats()["monitor"] == {"items": 2, "seconds": 0.654322, "items/s": 3.06, "MB/s": 1.53}


def test_per_item_metrics_are_rounded_to_two_decimals_and_switched_off_by_kind():
    """Items of 1 KiB 3 ms apart, a window of 3: 333.33 items/s and KB/s; a kind switched off reports 0."""

    def run(**conf):
        calls = []
        stream = IterableSource(items(5)).monitor(
            calls.append, metrics_conf=MetricsConf(throughput_unit="KB", **conf), window_size=3, every=1,
            clock=ticking(0.003),
        )  # fmt: skip
        assert len(stream.collect()) == 5
        return calls, stream.stats()["monitor"]

    calls, stats = run()
    assert calls == [{"IOPS number/s": 333.33, "throughput KB/s": 333.33}] * 3 and stats["MB/s"] > 0
    calls, stats = run(iops=False)
    assert calls == [{"IOPS number/s": 0, "throughput KB/s": 333.33}] * 3
    calls, stats = run(throughput=False)
    assert calls == [{"IOPS number/s": 333.33, "throughput KB/s": 0.0}] * 3 and stats["MB/s"] == 0.0


def test_a_per_item_window_that_took_no_time_counts_as_1_ns():
    calls = []
    IterableSource(items(6)).monitor(calls.append, window_size=5, every=1, clock=lambda: 3.0).join()
    assert [c["IOPS number/s"] for c in calls] == [round(5 / 1e-9, 2)] * 2


def test_the_unfused_sampled_generator_reports_at_each_heartbeat_between_report_points():
    """Every 2 items, items 6 s apart, a heartbeat of 5 s: every item is due for a report."""
    from squirrel_graph.runtime.monitoring import MonitorStats, monitor_

    calls, stats = [], MonitorStats("m")
    gen = monitor_(items(7), calls.append, "", True, False, "MB", 1, 2, None, ticking(6.0), {}, "m", "1:m", stats, 5.0)
    assert len(list(gen)) == 7
    assert calls == [{"IOPS number/s": round(1 / 6, 2), "throughput MB/s": 0.0}] * 7
    assert stats.items == 7 and stats.bytes == 0  # no throughput: no sizes


def test_the_unfused_generator_without_a_callback_keeps_stats_at_its_report_points_only():
    """No callback (stats only): the heartbeat does not apply; items 1, 6, 11 are the report points."""
    from squirrel_graph.runtime.monitoring import MonitorStats, monitor_

    stats = MonitorStats("m")
    gen = monitor_(items(11), None, "", True, True, "MB", 1, 5, None, ticking(6.0), {}, "m", "1:m", stats, 5.0)
    assert len(list(gen)) == 11
    assert [n for _, n in stats.series][:3] == [1, 6, 11] and stats.series[-1] == (66.0, 11)
    assert stats.waits == 2  # the waits for items 2 and 7 (nothing after the last)


def test_a_failing_callback_of_a_fused_sampled_monitor_is_called_once_and_counts_what_reached_it():
    calls = []

    def tracker(metrics, **kw):
        calls.append(metrics)
        raise RuntimeError(f"tracker down {len(calls)}")

    stream = IterableSource(range(30)).map(plus_one_item).monitor(tracker, every=5)
    with pytest.raises(RuntimeError, match="tracker down 1") as err:
        list(stream)
    assert err.value.__context__ is None and len(calls) == 1  # not called again while the run unwinds
    assert stream.stats()["monitor"]["items"] == 5


def plus_one_item(x):
    return x + 1
