"""The thread pool of our own ``async_map`` and fetch stages: ordered-result tasks that Ctrl-C cannot deadlock.

``concurrent.futures.ThreadPoolExecutor`` shares Python-level locks between the submitting thread and its workers
(each Future's condition, the pool's idle semaphore). A ``KeyboardInterrupt`` raised in the submitting thread just
after ``Condition.__enter__`` took such a lock leaves it held for good: the worker that next needs it blocks
forever, and so does ``shutdown(wait=True)`` or the interpreter-exit join that waits for that worker. Here the
submitting thread and the workers share only C-level primitives that are never left held: a ``SimpleQueue`` of
tasks and one plain lock per task, released by the worker when the result is ready. Workers are daemon threads, so
a process that is exiting never waits for a task still running.
"""

from __future__ import annotations

import os
import queue
import threading
from _thread import allocate_lock
from collections.abc import Callable
from concurrent.futures import CancelledError
from typing import Any

_IDLE_POLL_S = 1.0  # an idle worker re-checks ``stopped`` this often (in case its stop message never came)


def default_workers() -> int:
    """``ThreadPoolExecutor``'s default number of workers."""
    return min(32, (os.cpu_count() or 1) + 4)


class Task:
    """One call on the pool; :meth:`result` waits for it (call it once)."""

    __slots__ = ("fn", "item", "done", "value", "error")

    def __init__(self, fn: Callable[[Any], Any], item: Any) -> None:
        self.fn = fn
        self.item = item
        self.done = allocate_lock()
        self.done.acquire()  # released by the worker once value or error is set
        self.value: Any = None
        self.error: BaseException | None = None

    def result(self) -> Any:
        """The call's return value, or its exception raised here (the original traceback kept)."""
        self.done.acquire()
        error = self.error
        if error is None:
            return self.value
        self.error = None
        try:
            raise error
        finally:
            del error


class StopFlag:
    """A ``threading.Event`` look-alike (``set``, ``is_set``, ``wait``) on one C-level lock: setting it in a thread
    that Ctrl-C interrupts cannot leave a lock held (``Event.set`` enters a Python-level Condition)."""

    __slots__ = ("_flag", "_gate")

    def __init__(self) -> None:
        self._flag = False
        self._gate = allocate_lock()
        self._gate.acquire()  # held until the flag is set

    def set(self) -> None:
        """Set the flag and wake every waiter."""
        if not self._flag:
            self._flag = True
            _release(self._gate)

    def is_set(self) -> bool:
        return self._flag

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the flag is set or ``timeout`` seconds have passed; the flag."""
        if not self._flag and self._gate.acquire(timeout=-1 if timeout is None else max(timeout, 0.0)):
            _release(self._gate)  # hand the wake-up on to the next waiter
        return self._flag


def _release(lock: Any) -> None:
    try:
        lock.release()
    except RuntimeError:  # two threads set the flag at once: one release was enough
        pass


class TaskPool:
    """Up to ``max_workers`` daemon threads (started as tasks arrive, at most ``max_in_flight``) running tasks
    in submission order; :meth:`shutdown` drops the tasks not yet started."""

    def __init__(self, max_workers: int | None, max_in_flight: int, name: str) -> None:
        self.stopped = False  # read by the workers without a lock
        self._cap = max(1, min(max_workers or default_workers(), max_in_flight))
        self._tasks: queue.SimpleQueue[Task | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._started = 0
        self._retire_sent = 0  # stop messages sent by resize()
        self._name = name

    def submit(self, fn: Callable[[Any], Any], item: Any) -> Task:
        """Queue ``fn(item)``; a worker is started while fewer than the cap are running."""
        task = Task(fn, item)
        self._tasks.put(task)
        if len(self._threads) < self._cap or (self._retire_sent and self._running() < self._cap):
            self._start_worker()
        return task

    def resize(self, max_workers: int) -> None:
        """Run up to ``max_workers`` threads from now on (an autotuned stage grows and shrinks its pool): extra
        threads are told to stop after their current task."""
        max_workers = max(1, max_workers)
        if max_workers == self._cap:  # called after every item of a tuned stage: nothing to do most of the time
            return
        self._cap = max_workers
        for _ in range(self._running() - self._cap):
            self._tasks.put(None)
            self._retire_sent += 1

    def _running(self) -> int:
        """Threads alive and not yet told to stop (a thread exits only on a stop message before shutdown)."""
        self._threads = [t for t in self._threads if t.is_alive()]
        exited = self._started - len(self._threads)
        return len(self._threads) - (self._retire_sent - exited)

    def _start_worker(self) -> None:
        name = f"{self._name}-{len(self._threads)}"
        thread = threading.Thread(target=_work, args=(self._tasks, self), name=name, daemon=True)
        thread.start()
        self._threads.append(thread)
        self._started += 1

    def shutdown(self, wait: bool = True) -> None:
        """Stop: queued tasks are dropped, each worker ends after its current task; ``wait`` joins them."""
        self.stopped = True
        for _ in self._threads:
            self._tasks.put(None)
        if wait:
            me = threading.current_thread()  # a generator garbage-collected in one of our workers closes there
            for thread in self._threads:
                if thread is not me:
                    thread.join()


def _work(tasks: queue.SimpleQueue[Task | None], pool: TaskPool) -> None:
    get = tasks.get
    while True:
        try:
            task = get(timeout=_IDLE_POLL_S)
        except queue.Empty:
            if pool.stopped:
                return
            continue
        if task is None:
            return
        if pool.stopped:
            task.error = CancelledError()
        else:
            try:
                task.value = task.fn(task.item)
            except BaseException as exc:  # handed to the consumer, raised there at this item's position
                task.error = exc
        task.done.release()
        del task
