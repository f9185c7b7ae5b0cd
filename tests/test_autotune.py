"""``"auto"`` settings: tuned while the stream runs, within the memory bound, items unchanged; explain shows the
choice. (How close "auto" gets to the best fixed setting is measured in benchmarks/autotune.py, not here.)"""

from __future__ import annotations

import time

import numpy as np
import pytest

from squirrel_graph import IterableSource
from squirrel_graph.io.drivers import MessagepackDriver
from squirrel_graph.runtime.autotune import Tuner, limit_memory


def sleepy(x):
    time.sleep(0.002)
    return x


def big(x):
    return np.full(2**18, x, dtype=np.float32)  # 1 MiB per item


def tuned_lines(stream):
    text = str(stream.explain())
    return [line.strip() for line in text.split("== Autotuned in the latest run ==\n")[1].split("\n==")[0].splitlines()]


def test_async_map_auto_climbs_while_more_threads_pay_and_keeps_the_order():
    stream = IterableSource(range(1500)).async_map(sleepy, max_workers="auto")
    assert stream.collect() == list(range(1500))
    (line,) = tuned_lines(stream)
    workers = int(line.split("max_workers=")[1].split(" ")[0])
    assert workers >= 8, line  # 2 ms sleeps: every doubling up to 8 threads doubles the rate
    assert "2: " in line and "4: " in line  # the measured steps are shown


def test_the_memory_bound_caps_what_an_auto_stage_holds():
    with limit_memory(7 * 2**20):  # 7 MiB of 1 MiB items: 3 threads, 6 in flight, 1 handed over at most
        stream = IterableSource(range(200)).async_map(big, max_workers="auto")
        out = stream.collect()
    assert [int(a[0]) for a in out] == list(range(200))
    (line,) = tuned_lines(stream)
    assert "max_workers=" in line and int(line.split("max_workers=")[1].split(" ")[0]) <= 3, line
    assert "bound 7,340,032 B" in line


def test_the_tuner_undoes_a_doubling_that_does_not_pay():
    tuner = Tuner("stage", "max_workers", start=2, limit=64)
    rates = {2: 100.0, 4: 200.0, 8: 205.0}

    def window(rate):
        tuner._t0 -= 1.0  # a full window has passed ...
        tuner._count = int(rate)  # ... in which the stage delivered ``rate`` items
        tuner._check = 0
        tuner.delivered()

    for _ in range(7):  # each setting: a window while its threads start (not counted), then measured ones
        window(rates[tuner.value])
    assert tuner.settled and tuner.value == 4 and "did not raise the rate" in tuner.reason
    assert [k for k, _ in tuner.history] == [2, 4, 8, 8]  # no gain at 8: looked at twice, then undone


def test_get_iter_and_prefetch_auto_yield_the_same_samples(tmp_path):
    url = str(tmp_path / "store")
    store = MessagepackDriver(url).store
    for s in range(6):
        store.set([{"i": s * 4 + j} for j in range(4)], key=f"shard-{s}")
    fixed = [s["i"] for s in MessagepackDriver(url).get_iter(max_workers=2)]
    stream = MessagepackDriver(url).get_iter(max_workers="auto").map(dict).prefetch("auto")
    assert [s["i"] for s in stream] == fixed
    lines = tuned_lines(stream)
    assert any(line.startswith("fetch(") for line in lines) and any(line.startswith("prefetch(auto)") for line in lines)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda s: s.async_map(sleepy, max_workers="fast"), r'async_map\(max_workers=\.\.\.\).*"auto"'),
        (lambda s: s.prefetch("many"), r'prefetch\(n=\.\.\.\).*"auto"'),
    ],
)
def test_anything_but_auto_or_an_int_is_refused_naming_the_argument(build, message):
    with pytest.raises(TypeError, match=message):
        build(IterableSource(range(3)))


def test_a_pool_shrinks_when_its_tuner_settles_lower():
    import threading

    from squirrel_graph.runtime.pool import TaskPool

    pool = TaskPool(8, 16, "shrink-test")
    gate = threading.Event()
    tasks = [pool.submit(lambda x: gate.wait(5) and x, i) for i in range(8)]
    assert sum(t.name.startswith("shrink-test") for t in threading.enumerate()) == 8
    pool.resize(3)  # five threads are told to stop after their current task
    gate.set()
    assert [t.result() for t in tasks] == list(range(8))
    deadline = time.time() + 5
    while time.time() < deadline and sum(t.name.startswith("shrink-test") for t in threading.enumerate()) > 3:
        time.sleep(0.01)
    assert sum(t.name.startswith("shrink-test") for t in threading.enumerate()) == 3
    more = [pool.submit(lambda x: x * 2, i) for i in range(10)]  # the three left do the work; none restarts
    assert [t.result() for t in more] == [i * 2 for i in range(10)]
    assert sum(t.name.startswith("shrink-test") for t in threading.enumerate()) == 3
    pool.shutdown()
