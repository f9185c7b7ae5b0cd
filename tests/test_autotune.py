"""``"auto"`` settings: tuned while the stream runs, within the memory bound, items unchanged; explain shows the
choice. (How close "auto" gets to the best fixed setting is measured in benchmarks/autotune.py, not here.)"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from squirrel_graph import IterableSource
from squirrel_graph.io.drivers import MessagepackDriver
from squirrel_graph.runtime import autotune, ops
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
    # 2 ms sleeps: each doubling up to 8 threads doubles the rate on an idle machine; on a loaded one the
    # measured rates decide past 4 (the fake-clock tests pin those decisions exactly)
    assert workers >= 4, line
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
    assert tuner.settled and tuner.value == 4 and tuner.reason == "doubling to 8 did not raise the rate by 10%"
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


class Clock:
    """Stands in for the ``time`` module of autotune: ``perf_counter()`` is ``now``, which the test moves."""

    def __init__(self, now: float) -> None:
        self.now = now

    def perf_counter(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = Clock(100.0)
    monkeypatch.setattr(autotune, "time", fake)
    return fake


def window(tuner, clock, items, seconds):
    """``items`` deliveries, the last one ``seconds`` after the window opened (``items`` on the check schedule:
    8, 10, 12, 15, 18, 22, ..., each check after a too-early one a quarter further)."""
    for _ in range(items - 1):
        tuner.delivered()
    clock.now += seconds
    tuner.delivered()


def simulate(tuner, clock, rates, n):
    """``n`` deliveries, each ``1 / rates[knob]`` seconds after the one before; the delivery numbers at which the
    knob changed or the tuner settled, with the knob after it."""
    events = []
    for i in range(1, n + 1):
        clock.now += 1 / rates[tuner.value]
        before = (tuner.value, tuner.settled)
        tuner.delivered()
        if (tuner.value, tuner.settled) != before:
            events.append((i, tuner.value, tuner.settled))
    return events


def test_a_fresh_tuner_is_measuring_within_the_bound_it_was_given():
    """Nothing measured yet: explain says so; the bound is the one given, else ``memory_bound()``."""
    tuner = Tuner("async_map(f)", "max_workers", start=2, limit=64, bound=10_000)
    state = (tuner.value, tuner.limit, tuner.bound, tuner.item_bytes, tuner.settled, tuner.capped, tuner.best)
    assert state == (2, 64, 10_000, None, False, False, (0.0, 2))
    assert (tuner.reason, tuner.history) == ("measuring", [])
    assert tuner.line() == "async_map(f): max_workers=2 (measuring; no measurement yet)"
    with limit_memory(4096):
        assert Tuner("s", "n", start=1, limit=8).bound == 4096


def test_sized_caps_the_knob_at_what_the_memory_bound_holds():
    """cap = (bound // item size - the item handed over) // items held per unit, at least 1."""
    tuner = Tuner("s", "max_workers", start=16, limit=64, bound=10_000)
    tuner.sized(1_000)  # (10 - 1) // 1
    assert (tuner.item_bytes, tuner.limit, tuner.value, tuner.capped) == (1_000, 9, 9, True)
    assert tuner.line() == "s: max_workers=9 (measuring; no measurement yet; items ~1,000 B, bound 10,000 B)"
    pool = Tuner("s", "max_workers", start=16, limit=64, bound=10_000, held_per_unit=2)
    pool.sized(1_000)  # (10 - 1) // 2
    assert (pool.limit, pool.value, pool.capped) == (4, 4, True)
    huge = Tuner("s", "n", start=4, limit=64, bound=10_000)
    huge.sized(10_000)  # not even one item beyond the one handed over: still one
    assert (huge.limit, huge.value, huge.capped) == (1, 1, True)
    exact = Tuner("s", "n", start=2, limit=9, bound=10_000)
    exact.sized(1_000)  # the bound allows exactly the limit: the limit, not the bound, stops the climb
    assert (exact.limit, exact.value, exact.capped) == (9, 2, False)
    tiny = Tuner("s", "n", start=2, limit=64, bound=10)
    tiny.sized(1)  # (10 // 1 - 1) // 1
    assert (tiny.item_bytes, tiny.limit) == (1, 9)
    tiny.sized(0)  # an empty item counts as one byte
    assert tiny.item_bytes == 1


def test_the_tuner_climbs_while_doubling_pays_and_settles_at_its_limit(clock):
    """64, 128, 256 items/s at 1, 2, 4: a warm-up window (not measured), then a measured one, per setting."""
    tuner = Tuner("prefetch(auto)", "n", start=1, limit=4, bound=10_000)
    events = simulate(tuner, clock, {1: 64, 2: 128, 4: 256}, 80)
    # 1: warm-up 8 items, measured 8 (0.125 s); 2: 8 + 8 (8 >= 4 per unit); 4: 8 + 18 (4 per unit and 0.05 s)
    assert events == [(16, 2, False), (32, 4, False), (58, 4, True)]
    assert tuner.history == [(1, 64.0), (2, 128.0), (4, 256.0)]
    assert tuner.best == (256.0, 4)
    assert tuner.line() == "prefetch(auto): n=4 (at the limit of 4; 1: 64/s, 2: 128/s, 4: 256/s)"


def test_a_tuner_capped_by_the_memory_bound_says_so(clock):
    tuner = Tuner("prefetch(auto)", "n", start=1, limit=64, bound=3_000)
    tuner.sized(1_000)  # (3 - 1) // 1 = 2
    events = simulate(tuner, clock, {1: 64, 2: 128}, 40)
    assert events == [(16, 2, False), (32, 2, True)]
    assert tuner.reason == "at the memory bound"
    assert tuner.line() == "prefetch(auto): n=2 (at the memory bound; 1: 64/s, 2: 128/s; items ~1,000 B, bound 3,000 B)"


def test_windows_last_long_enough_and_cover_enough_items_per_unit(clock):
    """A warm-up window ends after WARM_S (not WINDOW_S), a measured one after WINDOW_S (not WARM_S)."""
    tuner = Tuner("s", "n", start=1, limit=2, bound=10_000)
    events = simulate(tuner, clock, {1: 256, 2: 512}, 80)
    # checks at 8, 10, 12, 15, 18, 22, 27 items; at 1: warm-up 8 items (0.031 s), measured 15 (0.059 s);
    # at 2: warm-up 12 (0.023 s), measured 27 (0.053 s)
    assert events == [(8 + 15, 2, False), (8 + 15 + 12 + 27, 2, True)]
    assert tuner.history == [(1, 256.0), (2, 512.0)]


def test_a_window_ends_once_exactly_its_time_has_passed(clock):
    clock.now = 0.0
    tuner = Tuner("s", "n", start=1, limit=64, bound=10_000)
    window(tuner, clock, 8, autotune.WARM_S)  # the warm-up window: elapsed == WARM_S is enough
    window(tuner, clock, 8, 0.5)
    assert tuner.history == [(1, pytest.approx(16.0))]
    assert tuner.value == 2


def test_even_a_slow_first_measurement_is_a_gain(clock):
    """One item per second is better than nothing measured: the knob doubles."""
    tuner = Tuner("s", "n", start=1, limit=2, bound=10_000)
    window(tuner, clock, 8, 8.0)  # warm-up
    window(tuner, clock, 8, 8.0)  # 1.0 items/s
    assert (tuner.value, tuner.history) == (2, [(1, 1.0)])


def test_a_gain_of_exactly_ten_percent_is_not_enough(clock):
    tuner = Tuner("s", "n", start=1, limit=64, bound=10_000)
    window(tuner, clock, 8, 1.0)  # warm-up
    window(tuner, clock, 10, 1.0)  # 10 items/s at 1
    window(tuner, clock, 8, 1.0)  # warm-up at 2
    window(tuner, clock, 22, 2.0)  # 11 items/s at 2: exactly GAIN times 10, not more
    window(tuner, clock, 22, 2.0)  # and once more
    assert tuner.history == [(1, 10.0), (2, 11.0), (2, 11.0)]
    assert (tuner.value, tuner.reason) == (1, "doubling to 2 did not raise the rate by 10%")


def test_a_settled_tuner_only_counts(clock):
    """After settling, deliveries no longer measure or move the knob, however the rate changes."""
    tuner = Tuner("s", "n", start=1, limit=1, bound=10_000)
    window(tuner, clock, 8, 1.0)  # warm-up
    window(tuner, clock, 8, 1.0)  # measured at the limit: settled
    assert (tuner.settled, tuner.history) == (True, [(1, 8.0)])
    for _ in range(5):
        window(tuner, clock, 8, 0.001)
    assert (tuner.value, tuner.history, tuner.reason) == (1, [(1, 8.0)], "at the limit of 1")


def make_lock(_):
    return threading.Lock()  # pickle cannot size it


def test_an_item_pickle_cannot_size_counts_as_one_byte():
    stream = IterableSource(range(10)).async_map(make_lock, max_workers="auto")
    assert len(stream.collect()) == 10
    (line,) = tuned_lines(stream)
    assert line.endswith("; items ~1 B, bound 536,870,912 B)"), line


def settled_count(pulled, expected):
    """len(pulled) once the reader has read ``expected`` items and then had a moment to read more."""
    deadline = time.monotonic() + 5
    while len(pulled) < expected and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.05)
    return len(pulled)


@pytest.mark.timeout(10)  # a consumer that granted places in a loop without end would spin here
def test_prefetch_auto_reads_ahead_as_far_as_its_tuner_grants(clock):
    """Knob 1: one item ready and one in the reader's hands; once the tuner doubles the knob, two ready."""
    pulled = []

    def source():
        for i in range(1000):
            pulled.append(i)
            yield bytes([i % 256]) * 100

    tuner = Tuner("prefetch(auto)", "n", start=1, limit=2, bound=10**6)
    it = ops.prefetch_(source, "auto", "prefetch(auto)", "1:prefetch", tuner=tuner)
    clock.now += 1 / 64
    assert next(it) == bytes(100)
    assert tuner.item_bytes == 100  # sized on the first item
    assert settled_count(pulled, 3) == 3  # 1 handed over, 1 ready, 1 in the reader's hands
    for _ in range(15):  # 64 items/s: a warm-up window of 8, a measured one of 8, then the knob doubles
        clock.now += 1 / 64
        next(it)
    assert tuner.value == 2 and tuner.history == [(1, 64.0)]
    assert settled_count(pulled, 16 + 2 + 1) == 16 + 2 + 1
    it.close()
