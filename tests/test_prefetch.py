"""prefetch(n): same items in the same order, bounded read-ahead, errors at the right item with the stage named,
the reader thread released on end, break, close and error; a fusion boundary that splits move across."""

from __future__ import annotations

import os
import pickle
import threading
import time

import pytest

from optimizers import optimize
from squirrel_graph import IterableSource
from squirrel_graph.errors import stage_of
from squirrel_graph.graph import Plan, Split

from helpers import add_one, fail_on_3, is_odd, sleepy, times_two


def _prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("squirrel_graph prefetch")]


def _wait_for(condition, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


class Counted:
    """A re-iterable source that counts the items it has produced and whether its iterator was closed."""

    def __init__(self, n: int) -> None:
        self.n, self.produced, self.closed_in = n, 0, None

    def __call__(self):
        return self._gen()

    def _gen(self):
        try:
            for i in range(self.n):
                self.produced += 1
                yield i
        finally:
            self.closed_in = threading.current_thread().name


@pytest.mark.parametrize("n", [1, 4])
def test_items_and_order_are_those_without_prefetch(n):
    def build(with_prefetch):
        s = IterableSource(range(200)).map(add_one).filter(is_odd)
        s = s.prefetch(n) if with_prefetch else s
        return s.async_map(sleepy, max_workers=4).map(times_two).batched(7)

    expected = [[(x + 1) * 2 for x in chunk] for chunk in [list(range(0, 200, 2))[i : i + 7] for i in range(0, 98, 7)]]
    assert build(False).collect() == expected
    assert build(True).collect() == expected
    assert build(True).compile(optimize=False).collect() == expected


@pytest.mark.parametrize("n", [1, 3])
def test_read_ahead_is_bounded_by_n(n):
    source = Counted(1000)
    it = iter(IterableSource(source).prefetch(n))
    assert next(it) == 0
    # one consumed, n queued, one more held by the reader waiting for room
    assert _wait_for(lambda: source.produced == n + 2)
    time.sleep(0.2)
    assert source.produced == n + 2
    it.close()
    assert source.closed_in is not None and source.closed_in.startswith("squirrel_graph prefetch")


def test_an_upstream_error_arrives_after_the_items_before_it_with_its_stage():
    got = []
    with pytest.raises(ValueError, match="item 3 is bad") as info:
        for x in IterableSource(range(10)).map(fail_on_3).prefetch(4):
            got.append(x)
    assert got == [0, 1, 2]
    assert stage_of(info.value) == "map(fail_on_3)"
    assert _wait_for(lambda: not _prefetch_threads())


def test_an_unnamed_upstream_error_is_named_after_the_prefetch_stage():
    def broken():
        yield 1
        raise OSError("the store went away")

    got = []
    with pytest.raises(OSError, match="went away") as info:
        for x in IterableSource(broken).prefetch(2):
            got.append(x)
    assert got == [1]
    assert stage_of(info.value) == "prefetch(2)"


@pytest.mark.parametrize("how", ["break", "close", "consumer error"])
def test_the_reader_thread_is_released_when_the_consumer_stops(how):
    source = Counted(10_000)
    stream = IterableSource(source).map(add_one).prefetch(2)
    if how == "break":
        for x in stream:
            if x == 5:
                break
    elif how == "close":
        it = iter(stream)
        next(it)
        it.close()
    else:
        with pytest.raises(ZeroDivisionError):
            for x in stream:
                if x == 5:
                    raise ZeroDivisionError("training step failed")
    assert _wait_for(lambda: not _prefetch_threads())
    assert source.closed_in is not None and source.produced < 100  # stopped early, input closed


def test_prefetch_is_a_fusion_boundary_that_splits_cross():
    stream = IterableSource(range(20)).map(add_one).map(times_two).prefetch(3).map(add_one)
    ex = stream.explain()
    assert [s.node_ids for s in ex.physical_stages] == [("0:source",), ("1:map", "2:map"), ("3:prefetch",), ("4:map",)]
    assert stream.collect() == [(x + 1) * 2 + 1 for x in range(20)]
    split_plan = Plan.combine("9:split", Split(axis="rank", index=0, parts=2), [stream.plan])
    optimized, log = optimize(split_plan)
    moved = [r for r in log if r.pass_name == "push_splits"]
    assert moved[0].action == "moved" and "prefetch(3)" in moved[0].reason


def test_bad_n_is_refused_when_the_chain_is_built():
    with pytest.raises(ValueError, match=r"prefetch\(n=...\): expected an int >= 1, got 0"):
        IterableSource([1]).prefetch(0)
    with pytest.raises(TypeError, match=r"prefetch\(n=...\)"):
        IterableSource([1]).prefetch("2")


def test_a_chain_with_prefetch_pickles_before_iteration():
    stream = IterableSource(range(5)).map(add_one).prefetch(2)
    assert pickle.loads(pickle.dumps(stream)).collect() == [1, 2, 3, 4, 5]
    assert not _prefetch_threads()  # nothing started by building or pickling


class ClosableIterator:
    """An iterator that is not a generator: only an explicit close() closes it (garbage collection does not)."""

    def __init__(self, n: int) -> None:
        self.i, self.n, self.closed_by = 0, n, None

    def __iter__(self):
        return self

    def __next__(self):
        if self.i >= self.n:
            raise StopIteration
        self.i += 1
        return self.i

    def close(self) -> None:
        self.closed_by = threading.current_thread().name


def test_the_reader_closes_an_input_iterator_that_has_close_in_its_own_thread():
    holder = {}

    def source():
        holder["it"] = ClosableIterator(1000)
        return holder["it"]

    it = iter(IterableSource(source).prefetch(3))
    assert [next(it) for _ in range(3)] == [1, 2, 3]
    threads = _prefetch_threads()
    assert threads and all(t.daemon for t in threads)  # never keeps the interpreter alive at exit
    it.close()
    assert _wait_for(lambda: not _prefetch_threads())
    assert holder["it"].closed_by is not None and holder["it"].closed_by.startswith("squirrel_graph prefetch")


def test_a_consumer_slower_than_the_reader_still_gets_every_item():
    got = []
    for x in IterableSource(range(6)).prefetch(1):  # the reader waits on a full queue for longer than its poll
        time.sleep(0.08)
        got.append(x)
    assert got == list(range(6))


def test_an_upstream_error_note_names_the_prefetch_node():
    def broken():
        yield 1
        raise OSError("gone")

    with pytest.raises(OSError) as info:
        list(IterableSource(broken).prefetch(2))
    assert any("(node 1:prefetch)" in str(n) for n in info.value.__notes__)


@pytest.mark.parametrize(("cpus", "workers"), [(None, 5), (4, 8), (28, 32), (64, 32)])
def test_the_default_task_pool_size_is_that_of_thread_pool_executor(monkeypatch, cpus, workers):
    from squirrel_graph.runtime.pool import default_workers

    monkeypatch.setattr(os, "cpu_count", lambda: cpus)
    assert default_workers() == workers  # min(32, cpus + 4); one CPU when the count is unknown


def test_a_task_pool_shrinks_twice_while_busy_to_one_worker_and_grows_again():
    from squirrel_graph.runtime.pool import TaskPool

    def workers() -> int:
        return sum(t.name.startswith("regrow-test") for t in threading.enumerate())

    pool = TaskPool(4, 4, "regrow-test")
    try:
        gate = threading.Event()
        busy = [pool.submit(lambda x: gate.wait(5) and x, i) for i in range(4)]
        assert workers() == 4 and pool._running() == 4
        pool.resize(2)  # two are told to stop after their current task ...
        assert pool._running() == 2
        pool.resize(0)  # ... and one more: at least one always runs
        assert pool._running() == 1
        gate.set()
        assert [t.result() for t in busy] == [0, 1, 2, 3]
        assert _wait_for(lambda: workers() == 1)
        pool.resize(3)
        together = threading.Barrier(3, timeout=5)  # passes only with three tasks running at once
        grown = [pool.submit(lambda x: together.wait() >= 0 and x, i) for i in range(3)]
        assert [t.result() for t in grown] == [0, 1, 2]
        assert workers() == 3 and pool._running() == 3
    finally:
        pool.shutdown()
    assert _wait_for(lambda: workers() == 0)


def test_a_stop_flag_wakes_every_waiter_and_waits_no_longer_than_asked():
    from squirrel_graph.runtime.pool import StopFlag

    flag = StopFlag()
    start = time.monotonic()
    assert flag.wait(0) is False and flag.wait(-1.0) is False and not flag.is_set()
    assert time.monotonic() - start < 1.0  # neither waited (a wait of 1 s each would be a bug)
    woken = []
    waiters = [threading.Thread(target=lambda: woken.append(flag.wait())) for _ in range(3)]
    for t in waiters:
        t.start()
    time.sleep(0.05)
    assert woken == []  # no timeout: they wait for the flag
    flag.set()
    flag.set()  # twice is harmless
    for t in waiters:
        t.join(5)
    assert woken == [True] * 3 and flag.is_set()
    assert flag.wait(0) is True and flag.wait() is True
