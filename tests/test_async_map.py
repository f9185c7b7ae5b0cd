"""async_map: order, bounded read-ahead, executors we never shut down, errors at the failing item."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from squirrel_graph import IterableSource
from squirrel_graph.errors import stage_of

from helpers import fail_on_3, sleepy, square


def test_at_most_buffer_items_are_read_ahead():
    pulled = []

    def source():
        for i in range(100):
            pulled.append(i)
            yield i

    it = iter(IterableSource(source).async_map(square, buffer=4, max_workers=2))
    assert next(it) == 0
    assert len(pulled) <= 4
    assert list(it) == [i * i for i in range(1, 100)]


def test_in_flight_tasks_never_exceed_buffer():
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def tracked(x):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.002)
        with lock:
            state["now"] -= 1
        return x

    out = IterableSource(range(60)).async_map(tracked, buffer=3, max_workers=10).collect()
    assert out == list(range(60))
    assert 1 <= state["peak"] <= 3


def test_user_executor_is_shared_and_never_shut_down():
    with ThreadPoolExecutor(4) as pool:
        a = IterableSource(range(5)).async_map(square, executor=pool)
        b = a.async_map(sleepy, executor=pool, delay=0.001)
        assert b.collect() == [0, 1, 4, 9, 16]
        assert pool.submit(square, 3).result() == 9  # still usable: we did not shut it down


def test_own_pool_threads_end_with_the_stream():
    before = threading.active_count()
    IterableSource(range(50)).async_map(sleepy, max_workers=8).collect()
    deadline = time.time() + 2
    while threading.active_count() > before and time.time() < deadline:
        time.sleep(0.01)
    assert threading.active_count() <= before


def test_early_close_stops_submitting():
    calls = []

    def record(x):
        calls.append(x)
        return x

    it = iter(IterableSource(range(1000)).async_map(record, buffer=5, max_workers=1))
    assert [next(it) for _ in range(3)] == [0, 1, 2]
    it.close()
    assert len(calls) <= 3 + 5


def test_callback_error_surfaces_at_its_item_after_earlier_items_with_the_stage_name():
    it = iter(IterableSource(range(6)).async_map(fail_on_3, buffer=10))
    got = [next(it), next(it), next(it)]
    assert got == [0, 1, 2]
    with pytest.raises(ValueError, match="item 3 is bad") as info:
        next(it)
    assert stage_of(info.value) == "async_map(fail_on_3)"
    assert any("fail_on_3" in line for line in __import__("traceback").format_tb(info.value.__traceback__))


def test_auto_workers_keep_twice_their_threads_in_flight():
    """max_workers="auto" starts with 2 threads and 4 items in flight: one more item read per item handed over."""
    pulled = []

    def source():
        for i in range(100):
            pulled.append(i)
            yield i

    it = iter(IterableSource(source).async_map(square, max_workers="auto"))
    assert [next(it), next(it), next(it)] == [0, 1, 4]
    assert pulled == list(range(6))  # 4 in flight for the first, then one more each
