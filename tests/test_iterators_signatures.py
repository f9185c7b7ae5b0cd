"""``squirrel_graph.iterstream.iterators`` against squirrel-core 0.20.2: every public callable with the same
parameter names, kinds and defaults (fixture from tests/fixtures/make_squirrel_core_signatures.py), and the
helpers added as wrappers (monitor_, dask_delayed_, flatten_) behaving as squirrel-core's did."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from squirrel_graph.iterstream import iterators
from squirrel_graph.iterstream.metrics import MetricsConf

FIXTURES = Path(__file__).parent / "fixtures"
EXPECTED = json.loads((FIXTURES / "squirrel_core_0_20_2_iterators_signatures.json").read_text())


def _generator():
    spec = importlib.util.spec_from_file_location(
        "make_squirrel_core_signatures", FIXTURES / "make_squirrel_core_signatures.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


describe = _generator().describe


def test_the_fixture_covers_squirrel_cores_helpers():
    assert {"monitor_", "dask_delayed_", "flatten_", "shuffle_", "take_", "getsize"} <= set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_signature_matches_squirrel_core(name):
    ours = getattr(iterators, name, None)
    assert ours is not None, f"squirrel_graph.iterstream.iterators lacks {name}"
    assert describe(ours) == EXPECTED[name], f"{name}: ours {describe(ours)}, squirrel-core {EXPECTED[name]}"


def test_monitor_calls_back_per_item_before_yielding_it():
    events = []

    def log(metrics, **kwargs):
        events.append(("call", metrics, kwargs))

    out = []
    for item in iterators.monitor_(range(7), log, "p ", window_size=3, step=1):
        events.append(("item", item))
        out.append(item)
    assert out == list(range(7))
    calls = [e for e in events if e[0] == "call"]
    assert len(calls) == 5  # one per item from the window_size-th on
    assert [e[0] for e in events[:4]] == ["item", "item", "call", "item"]  # the call comes before its item
    metrics, kwargs = calls[0][1], calls[0][2]
    assert set(metrics) == {"p IOPS number/s", "p throughput MB/s"} and kwargs == {"step": 1}
    assert metrics["p IOPS number/s"] > 0 and metrics["p throughput MB/s"] >= 0


def test_monitor_metrics_conf_switches():
    calls = []
    conf = MetricsConf(iops=False, throughput=True, throughput_unit="KB")
    assert list(iterators.monitor_(range(4), lambda m: calls.append(m), metrics_conf=conf, window_size=2)) == [
        0,
        1,
        2,
        3,
    ]
    assert len(calls) == 3 and all(m["IOPS number/s"] == 0 and "throughput KB/s" in m for m in calls)
    off = MetricsConf(iops=False, throughput=False)
    assert list(iterators.monitor_(range(4), lambda m: calls.append(m), metrics_conf=off)) == [0, 1, 2, 3]
    assert len(calls) == 3


def test_monitor_checks_its_arguments_when_called():
    with pytest.raises(ValueError, match="window_size"):
        iterators.monitor_([1], print, window_size=0)
    with pytest.raises(TypeError, match="callback"):
        iterators.monitor_([1], "print")
    with pytest.raises(ValueError, match="throughput_unit"):
        iterators.monitor_([1], print, metrics_conf=MetricsConf(throughput_unit="TB"))


def test_flatten_takes_squirrel_cores_argument_name():
    assert list(iterators.flatten_(iterables=[[1, 2], (), "ab"])) == [1, 2, "a", "b"]


def test_dask_delayed_wraps_each_item_lazily():
    dask = pytest.importorskip("dask")
    calls = []

    def square(x):
        calls.append(x)
        return x * x

    delayed = list(iterators.dask_delayed_([1, 2, 3], square))
    assert calls == [] and all(isinstance(d, dask.delayed(square)(0).__class__) for d in delayed)
    assert list(dask.compute(*delayed, scheduler="sync")) == [1, 4, 9]
