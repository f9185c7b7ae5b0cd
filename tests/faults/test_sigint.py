"""Ctrl-C always ends the run in seconds, and closing a pooled stream early leaves no thread behind.

The race (issue 13, item 9): concurrent.futures' pool shares Python-level locks with the consumer's thread (each
Future's condition, the pool's idle semaphore). A KeyboardInterrupt raised right after ``Condition.__enter__``
took one of them leaves it held; a worker then blocks on it forever, and so does ``shutdown(wait=True)`` or the
join at interpreter exit (about one Ctrl-C in ten to forty here, one in two on the reporter's machine). Our own
pool shares only C-level primitives with the consumer, and a stage unwinding from Ctrl-C does not wait.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from squirrel_graph import IterableSource
from squirrel_graph.driver import MessagepackDriver
from squirrel_graph.runtime.pool import StopFlag

EXIT_WITHIN_S = 5.0  # a hang is for good; this leaves room for a loaded machine (typical: 0.3 s)

CHILD = textwrap.dedent(
    """
    import faulthandler, signal, sys, threading, time
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # the test dumps the stacks of a child that hangs
    from squirrel_graph.driver import MessagepackDriver

    def f(x):
        time.sleep(0.3)
        return x

    stream = MessagepackDriver(sys.argv[1]).get_iter(max_workers=8).loop().async_map(f, max_workers=16, buffer=64)
    if sys.argv[2] == "prefetch":
        stream = stream.prefetch(8)
    for i, _ in enumerate(stream):
        if i == 0:
            print("flowing", flush=True)
    """
)

# The race made certain: on the chosen Condition.__enter__ in the consumer's thread, the lock is taken and a
# KeyboardInterrupt raised before the `with` block starts, so the lock stays held, as CPython does on a badly timed
# Ctrl-C. A timer interrupts the run anyway if no Condition is entered (our pool enters none per item).
RACE_CHILD = textwrap.dedent(
    """
    import _thread, faulthandler, signal, sys, threading, time
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    from squirrel_graph.driver import MessagepackDriver

    enter = threading.Condition.__enter__
    armed = {"left": 0}
    main = _thread.get_ident()

    def leaky_enter(self):
        out = enter(self)
        if armed["left"] and _thread.get_ident() == main:
            armed["left"] -= 1
            if not armed["left"]:
                raise KeyboardInterrupt
        return out

    threading.Condition.__enter__ = leaky_enter

    def f(x):
        time.sleep(0.02)
        return x

    for mode, nths in (("plain", range(1, 7)), ("prefetch", (1, 2, 3))):
        for nth in nths:
            stream = MessagepackDriver(sys.argv[1]).get_iter(max_workers=8).loop().async_map(f, max_workers=16)
            stream = stream.prefetch(4) if mode == "prefetch" else stream
            it = iter(stream)
            next(it)
            fallback = threading.Timer(0.3, _thread.interrupt_main)
            fallback.start()
            armed["left"] = nth
            try:
                for _ in it:
                    pass
            except KeyboardInterrupt:
                pass
            armed["left"] = 0
            fallback.cancel()
            it.close()
            print(mode, nth, "ended", flush=True)
    print("ok", flush=True)
    """
)


@pytest.fixture(scope="module")
def store_url(tmp_path_factory) -> str:
    url = str(tmp_path_factory.mktemp("sigint_store"))
    store = MessagepackDriver(url).store
    for k in range(20):
        store.set([{"i": 10 * k + j} for j in range(10)], key=f"s{k:03d}")
    return url


def _dump_and_kill(proc: subprocess.Popen) -> str:
    if hasattr(signal, "SIGUSR1"):
        proc.send_signal(signal.SIGUSR1)
        time.sleep(0.5)
    proc.kill()
    _, err = proc.communicate()
    return err


def _spawn(script: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _interrupt(proc: subprocess.Popen, mode: str, delay: float) -> tuple[float, int, str]:
    """Wait until items flow, then ``delay`` seconds more; send SIGINT; the seconds until exit, exit code, stderr."""
    try:
        assert proc.stdout.readline().strip() == "flowing", proc.stderr.read()
        time.sleep(delay)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=EXIT_WITHIN_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {EXIT_WITHIN_S}s after SIGINT ({mode}); its threads:\n{_dump_and_kill(proc)}")
        return time.monotonic() - sent, proc.returncode, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigint_ends_a_looping_pooled_read_in_seconds_every_time(store_url):
    rng = random.Random(13)
    modes = ["prefetch" if attempt % 4 == 3 else "plain" for attempt in range(8)]
    waiting = [_spawn(CHILD, store_url, modes[0])]
    try:
        for attempt, mode in enumerate(modes):
            proc = waiting.pop(0)
            if attempt + 1 < len(modes):  # the next child imports while this one is interrupted
                waiting.append(_spawn(CHILD, store_url, modes[attempt + 1]))
            took, returncode, err = _interrupt(proc, mode, rng.uniform(0.0, 0.4))
            # Python re-raises an uncaught Ctrl-C as death by SIGINT, so a shell sees 130, as for any program
            assert returncode == -signal.SIGINT, (attempt, mode, returncode, err)
            assert "KeyboardInterrupt" in err, err
            assert took < EXIT_WITHIN_S
    finally:
        for proc in waiting:
            proc.kill()
            proc.communicate()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_right_after_a_lock_was_taken_does_not_hang(store_url):
    proc = _spawn(RACE_CHILD, store_url)
    try:
        out, err = proc.communicate(timeout=12)
    except subprocess.TimeoutExpired:
        err = _dump_and_kill(proc)
        pytest.fail(f"a run interrupted after a lock was taken did not end; its threads:\n{err}")
    assert proc.returncode == 0, err
    assert out.splitlines()[-1] == "ok", (out, err)


def slow(x):
    time.sleep(0.3)
    return x


def _pooled(url: str, prefetch: bool):
    stream = MessagepackDriver(url).get_iter(max_workers=8).loop().async_map(slow, max_workers=16, buffer=64)
    return stream.prefetch(8) if prefetch else stream


def _back_to(baseline: int, grace_s: float) -> bool:
    deadline = time.monotonic() + grace_s
    while threading.active_count() > baseline and time.monotonic() < deadline:
        time.sleep(0.02)
    return threading.active_count() <= baseline


@pytest.mark.parametrize("prefetch", [False, True], ids=["async_map", "prefetch"])
def test_closing_a_pooled_stream_early_leaves_no_thread_behind(store_url, prefetch):
    baseline = threading.active_count()
    it = iter(_pooled(store_url, prefetch))
    assert [next(it) for _ in range(3)]
    assert threading.active_count() > baseline + 16  # the pools are running
    started = time.monotonic()
    it.close()
    assert time.monotonic() - started < 2.0  # at most the tasks in flight (0.3 s) are waited for
    assert _back_to(baseline, 1.0), threading.enumerate()  # and every thread is gone


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("prefetch", [False, True], ids=["async_map", "prefetch"])
def test_an_interrupted_run_stops_at_once_and_its_threads_end_soon_after(store_url, prefetch):
    baseline = threading.active_count()
    it = iter(_pooled(store_url, prefetch))
    next(it)
    fired: list[float] = []

    def interrupt() -> None:
        fired.append(time.monotonic())
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    timer = threading.Timer(0.5, interrupt)
    with pytest.raises(KeyboardInterrupt):
        timer.start()
        for _ in it:  # endless (loop): only the interrupt ends it
            pass
    caught = time.monotonic()
    timer.join()
    it.close()
    assert caught - fired[0] < 1.0  # the stages unwind without waiting for the sleeping tasks
    assert _back_to(baseline, 3.0), threading.enumerate()  # each worker ends after its task in flight


def test_the_consumer_thread_enters_no_python_level_condition_per_item(monkeypatch):
    """What makes Ctrl-C safe: per item, the consumer's thread only uses C-level queues and locks (a Condition, as
    in Future.result or queue.Queue, is what a badly timed Ctrl-C leaves locked)."""
    entered = []
    enter = threading.Condition.__enter__
    main = threading.get_ident()

    def counting_enter(self):
        if threading.get_ident() == main:
            entered.append(self)
        return enter(self)

    stream = IterableSource(range(300)).async_map(slow_or_not, max_workers=4, buffer=8).prefetch(4)
    it = iter(stream)
    warm = [next(it) for _ in range(20)]  # every thread of the run has started by now
    monkeypatch.setattr(threading.Condition, "__enter__", counting_enter)
    rest = list(it)
    monkeypatch.undo()
    assert warm + rest == list(range(300))
    assert entered == []


def slow_or_not(x: int) -> int:
    if x % 50 == 0:
        time.sleep(0.01)
    return x


def test_stop_flag_works_like_an_event():
    flag = StopFlag()
    assert not flag.is_set() and flag.wait(0.01) is False
    woken: list[bool] = []
    waiters = [threading.Thread(target=lambda: woken.append(flag.wait(5))) for _ in range(4)]
    for t in waiters:
        t.start()
    time.sleep(0.05)
    started = time.monotonic()
    flag.set()
    flag.set()  # setting twice is harmless
    for t in waiters:
        t.join()
    assert woken == [True] * 4 and time.monotonic() - started < 1.0
    assert flag.is_set() and flag.wait() and flag.wait(0)
