"""stream.stats(): still the dict it was, a table in a terminal and in Jupyter, a throughput plot, and the stage
that bounds the pipeline (the most own time: upstream time at its monitor minus that of the monitors above)."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET

import matplotlib
import pytest

from squirrel_graph import IterableSource
from squirrel_graph.explain.stats_view import BOUND_MARK, OUTSIDE, StageStats, stage_stats
from squirrel_graph.runtime.monitoring import MonitorStats

matplotlib.use("Agg")


def plus(x):
    return x + 1


def double(x):
    return 2 * x


def slow(x):
    time.sleep(0.002)
    return x


def monitor_stats(label, items, upstream, start=0.0, last=2.0, waits=10):
    """A monitor's stats whose sampled waits make ``upstream_seconds == upstream`` (None: no samples)."""
    s = MonitorStats(label)
    s.items, s.start, s.last = items, start, last
    if upstream is not None:
        s.wait_seconds, s.waits = upstream / items * waits, waits
    for t in (0.5, 1.0, 1.5, 2.0):
        s.items = int(items * t / 2)
        s.sample(t)
    return s


def chain(*uppers):
    """State of a run with one monitor per stage, in plan order (node ids "0:...", "1:...", ...)."""
    return {f"{i}:m.monitor": monitor_stats(f"stage{i}", 100, up) for i, up in enumerate(uppers)}


def test_the_bound_is_the_stage_with_the_most_own_time():
    stats = stage_stats(chain(0.1, 0.9, 1.2))
    assert list(stats) == ["stage0", "stage1", "stage2"]
    assert stats.own == pytest.approx({"stage0": 0.1, "stage1": 0.8, "stage2": 0.3})
    assert stats.bound == "stage1"
    assert stats.wall == 2.0 and stats.outside == pytest.approx(0.8)  # the consumer kept the items 0.8 s
    assert stats.share("stage1") == pytest.approx(0.4)
    assert "bounds the pipeline: stage1 (40% of the run in it)" in stats.summary()


def test_own_time_is_never_negative_and_the_consumer_can_be_the_bound():
    stats = stage_stats(chain(0.3, 0.2, 0.4))  # noise: 0.2 < 0.3 cannot be, upstream time only grows
    assert stats.own["stage1"] == 0.0 and stats.own["stage2"] == pytest.approx(0.1)  # 0.4 - 0.3, not 0.4 - 0.2
    assert sum(stats.own.values()) == pytest.approx(0.4)  # never more than the largest upstream time
    assert stats.outside == pytest.approx(1.6) and stats.consumer_bound
    assert "went outside the pipeline: it keeps up" in stats.summary()


def test_a_monitor_without_wait_samples_folds_into_the_stage_below_it():
    stats = stage_stats(chain(0.2, None, 1.0))
    assert stats.own["stage1"] is None and stats.own["stage2"] == pytest.approx(0.8)
    assert stats.bound == "stage2"
    assert stage_stats(chain(None, None)).bound is None


def test_it_stays_the_dict_it_was():
    stats = stage_stats(chain(0.1, 0.2))
    assert isinstance(stats, dict)
    assert stats == {"stage0": stats["stage0"], "stage1": stats["stage1"]}
    assert set(stats["stage0"]) == {"items", "seconds", "items/s", "MB/s"}
    assert stage_stats({}) == {} and StageStats() == {}


def test_text_table_has_every_stage_and_marks_the_bound():
    stats = stage_stats(chain(0.1, 0.9, 1.2))
    text = str(stats)
    assert repr(stats) == text
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["stage", "items", "seconds"]
    assert [line.split()[0] for line in lines[1:4]] == ["stage0", "stage1", "stage2"]
    assert lines[2].endswith(BOUND_MARK) and BOUND_MARK not in lines[1] + lines[3]
    assert lines[4].startswith(OUTSIDE) and "40%" in lines[2]
    assert "no monitor ran" in str(StageStats())


def test_html_table_has_every_stage_and_marks_the_bound():
    stats = stage_stats(chain(0.1, 0.9, 1.2))
    root = ET.fromstring(stats._repr_html_())
    rows = root.findall("./tbody/tr")
    assert [r.findall("td")[0].text for r in rows] == ["stage0", "stage1", "stage2", OUTSIDE]
    marked = [r for r in rows if BOUND_MARK in "".join(r.itertext())]
    assert len(marked) == 1 and marked[0].findall("td")[0].text == "stage1" and marked[0].get("style")
    assert "bounds the pipeline: stage1" in "".join(root.find("caption").itertext())
    assert "&lt;" in stage_stats({"0:m": monitor_stats("map(<lambda>)", 10, 0.1)})._repr_html_()


def test_plot_draws_one_line_per_stage_and_marks_the_bound():
    stats = stage_stats(chain(0.1, 0.9, 1.2))
    ax = stats.plot()
    lines = ax.get_lines()
    assert len(lines) == 3
    widths = {line.get_label().splitlines()[0]: line.get_linewidth() for line in lines}
    assert widths["stage1"] > widths["stage0"] == widths["stage2"]
    bound_label = next(line.get_label() for line in lines if line.get_label().startswith("stage1"))
    assert BOUND_MARK in bound_label and "stage1" in ax.get_title()
    times, rates = stats.rates("stage0")
    assert times == [0.0, 0.5, 1.0, 1.5, 2.0] and rates == pytest.approx([50.0] * 5)  # 25 items per 0.5 s
    assert len(StageStats().plot().get_lines()) == 0


def test_a_real_run_with_per_item_monitors_names_the_slow_stage():
    stream = IterableSource(range(300)).map(plus).async_map(slow, max_workers=1).map(double)
    stream = stream.compile(monitor=True, monitor_every=1)
    assert stream.collect() == [2 * (x + 1) for x in range(300)]
    stats = stream.stats()
    assert list(stats) == ["source(range(0, 300))", "map(plus)", "async_map(slow)", "map(double)"]
    assert stats.bound == "async_map(slow)" and stats.share("async_map(slow)") > 0.5
    assert all(len(points) >= 2 for points in stats.series.values())
    assert "async_map(slow)" in str(stats) and BOUND_MARK in str(stats)


def test_a_real_run_with_sampled_monitors_names_the_slow_stage():
    stream = IterableSource(range(400)).map(plus).async_map(slow, max_workers=1).map(double).batched(8)
    stream = stream.compile(monitor=True)  # every=1000: probes in generated loops
    assert len(stream.collect()) == 50
    stats = stream.stats()
    assert stats.bound == "async_map(slow)" and stats.share("async_map(slow)") > 0.5
    assert all(len(points) >= 3 for points in stats.series.values())
