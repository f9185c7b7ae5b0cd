"""squirrel.benchmark's helpers: shuffle randomness (real scipy Kendall tau, real MessagepackDriver stores, seeded
runs equal to squirrel-core's) and the msgpack caching benchmark and figure (real stores, simplecache, Agg)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("scipy")

from torch_helpers import sample_id, write_store  # noqa: E402

from squirrel_graph.benchmark import msgpack_caching  # noqa: E402
from squirrel_graph.benchmark.quantify_randomness import (  # noqa: E402
    DummyShardedDriver,
    kendalltau_metric,
    quantify_driver_randomness,
    quantify_randomness,
)
from squirrel_graph.driver import MessagepackDriver  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    url = str(tmp_path_factory.mktemp("bench") / "store")
    assert write_store(url, [40] * 5) == 200
    return url


def test_metric_is_kendalls_tau():
    assert kendalltau_metric([1, 2, 3, 4], [1, 2, 3, 4]) == pytest.approx(1.0)
    assert kendalltau_metric([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert kendalltau_metric([1, 2, 3, 4], [2, 1, 3, 4]) == pytest.approx(2 / 3)


def test_an_unshuffled_store_stream_is_deterministic(store):
    driver = MessagepackDriver(store)
    tau = quantify_driver_randomness(driver, 1, 1, n_samples=3, key_buffer=1, item_key=sample_id)
    assert tau == pytest.approx(1.0)


def test_a_well_shuffled_store_stream_is_close_to_random(store):
    driver = MessagepackDriver(store)
    tau = quantify_driver_randomness(driver, 200, 200, n_samples=15, item_key=sample_id)
    assert tau < 0.15
    # the same seed on both sides replays the same order, however well shuffled
    same = quantify_driver_randomness(driver, 200, 200, n_samples=2, seed1=5, seed2=5, item_key=sample_id)
    assert same == pytest.approx(1.0)


def test_a_key_shuffle_alone_keeps_much_of_the_order(store):
    driver = MessagepackDriver(store)
    keys_only = quantify_driver_randomness(driver, 1, 1, n_samples=1, seed1=1, seed2=3, item_key=sample_id)
    both = quantify_driver_randomness(driver, 200, 200, n_samples=1, seed1=1, seed2=3, item_key=sample_id)
    assert keys_only > both + 0.1


def test_seeded_runs_are_squirrel_cores():
    recorded = json.loads((FIXTURES / "squirrel-core-randomness.json").read_text())
    for case, expected in recorded.items():
        num_shard, shard_size, buffer_size, initial, seed = json.loads(case)
        runs = []

        def record(a, b, runs=runs):
            runs.append(([int(x) for x in a], [int(x) for x in b]))
            return kendalltau_metric(a, b)

        tau = quantify_randomness(num_shard, shard_size, buffer_size, initial, 2, record, seed, seed)
        assert tau == pytest.approx(1.0) and len(runs) == 2
        assert all(a == expected and b == expected for a, b in runs), case
    first, second = (recorded[k] for k in list(recorded)[:2])  # same shape (4 x 25), different shuffles
    assert kendalltau_metric(first, second) < 0.9


def test_quantify_randomness_unseeded_and_bad_arguments():
    assert quantify_randomness(4, 50, 200, 200, n_samples=10) < 0.2
    assert DummyShardedDriver(3, 4).get_iter().collect() == list(range(12))
    with pytest.raises(ValueError, match="n_samples"):
        quantify_randomness(2, 2, 1, 1, n_samples=0)
    with pytest.raises(TypeError, match="metric"):
        quantify_randomness(2, 2, 1, 1, n_samples=1, metric="tau")


@pytest.fixture
def agg(monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    import matplotlib.pyplot as plt

    plt.switch_backend("Agg")
    yield plt
    plt.close("all")


def test_benchmark_times_every_epoch_of_every_driver_type(store, tmp_path, agg):
    cache = tmp_path / "cache"
    cached = {"protocol": "simplecache", "target_protocol": "file", "cache_storage": str(cache)}
    types = {
        "Caching": lambda: MessagepackDriver(store, storage_options=cached),
        "No Caching": lambda: MessagepackDriver(store),
    }
    df = msgpack_caching.benchmark(types, num_epochs=2)
    assert list(df.columns) == ["Epoch", "Time (in s)", "Driver Type"]
    assert df["Epoch"].tolist() == [1, 2, 1, 2]
    assert df["Driver Type"].tolist() == ["Caching", "Caching", "No Caching", "No Caching"]
    assert (df["Time (in s)"] > 0).all()
    assert len([p for p in cache.iterdir() if p.is_file()]) >= 5  # the caching driver read through simplecache

    ax = msgpack_caching.plot(df, path=str(tmp_path / "fig.svg"))
    assert ax.get_title() == "Loading 2 shards (~ 100MB each) via MessagepackDriver"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("Epoch", "Time (in s)")
    bars = [p for p in ax.patches if p.get_height() > 0]
    assert sorted(round(b.get_height(), 9) for b in bars) == sorted(round(t, 9) for t in df["Time (in s)"])
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["Caching", "No Caching"]
    assert legend.get_title().get_text() == ""  # squirrel-core's re-placed legend has no title either
    assert (tmp_path / "fig.svg").read_text().lstrip().startswith("<?xml")


def test_main_runs_the_whole_script(store, tmp_path, agg, monkeypatch):
    monkeypatch.setattr(msgpack_caching, "driver_types", {"No Caching": lambda: MessagepackDriver(store)})
    df = msgpack_caching.main(path=str(tmp_path / "out.png"), num_epochs=1)
    assert len(df) == 1 and (tmp_path / "out.png").read_bytes()[:4] == b"\x89PNG"


def test_importing_the_benchmarks_runs_nothing_and_imports_no_extra():
    code = (
        "import sys, squirrel_graph.benchmark.msgpack_caching as m, squirrel_graph.benchmark.quantify_randomness\n"
        "heavy = {'pandas', 'matplotlib', 'seaborn', 'scipy'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
        "assert m.remote_path.startswith('gs://') and set(m.driver_types) == {'Caching', 'No Caching'}\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
