"""Generator functions that the threaded backend runs for the stateful, order-dependent node kinds.

They are plain functions over iterators (squirrel-core's ``iterators.py`` exports the public ones), so they
are easy to test on their own. Randomness follows squirrel-core's call sequence so seeded results match.
"""

from __future__ import annotations

import copy
import itertools
import logging
import pickle
import queue
import random
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from squirrel_graph.errors import CorruptShardError, annotate
from squirrel_graph.executors import is_dask_client
from squirrel_graph.randomness import get_random_range
from squirrel_graph.runtime.pool import TaskPool

logger = logging.getLogger("squirrel_graph")


def shuffle_(
    iterable: Iterable[Any],
    bufsize: int = 1000,
    initial: int = 100,
    rng: random.Random | None = None,
    seed: Any = None,
) -> Iterator[Any]:
    """Buffered shuffle with squirrel-core's fill and pick sequence (seeded output is identical)."""
    from squirrel_graph.runtime.shuffling import shuffled

    rng = get_random_range(rng, seed)
    return shuffled(iter(iterable), [], rng, [0, 0, 0, 0], bufsize, min(initial, bufsize))


def take_(iterable: Iterable[Any], n: int) -> Iterator[Any]:
    """The first ``n`` items; pulls no more than ``n`` from the iterator (safe to call twice on one iterator)."""
    return itertools.islice(iterable, n)


def map_(iterable: Iterable[Any], callback: Callable[[Any], Any]) -> Iterator[Any]:
    """``callback(item)`` for every item (usable as a key hook: ``partial(map_, callback=f)``)."""
    for item in iterable:
        yield callback(item)


def filter_(iterable: Iterable[Any], predicate: Callable[[Any], Any]) -> Iterator[Any]:
    """Items for which ``predicate`` is truthy."""
    for item in iterable:
        if predicate(item):
            yield item


def flatten_(iterable: Iterable[Any]) -> Iterator[Any]:
    """The elements of every item."""
    for item in iterable:
        yield from item


def batched_(
    iterable: Iterable[Any],
    batchsize: int = 20,
    collation_fn: Callable[[list[Any]], Any] | None = None,
    drop_last_if_not_full: bool = True,
) -> Iterator[Any]:
    """Lists of ``batchsize`` items (the last one dropped if short and ``drop_last_if_not_full``)."""
    if batchsize < 0:
        raise ValueError(f"batched_: batchsize must be >= 0, got {batchsize}")
    it = iter(iterable)
    while True:
        batch = list(itertools.islice(it, batchsize))
        if not batch or (len(batch) < batchsize and drop_last_if_not_full):
            return
        yield collation_fn(batch) if collation_fn is not None else batch


def getsize(item: Any) -> int:
    """Size of an item in bytes: ``nbytes`` for arrays and tensors, ``len`` for bytes, else its pickled size."""
    nbytes = getattr(item, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes
    if isinstance(item, (bytes, bytearray, memoryview)):
        return len(item)
    return len(pickle.dumps(item))


def tqdm_(iterable: Iterable[Any], **kwargs: Any) -> Iterator[Any]:
    """Items through a tqdm progress bar."""
    from tqdm import tqdm

    return iter(tqdm(iterable, **kwargs))


def zip_index_(iterable: Iterable[Any], pad_length: int | None = None, start: int = 0) -> Iterator[tuple[Any, Any]]:
    """``(index, item)`` counting from ``start``; with ``pad_length`` the index is a zero-padded string (never
    truncated)."""
    if pad_length is None:
        yield from enumerate(iterable, start)
        return
    for i, item in enumerate(iterable, start):
        yield str(i).zfill(pad_length), item


def sliding_(
    iterable: Iterable[Any],
    window_size: int,
    deepcopy: bool,
    stride: int = 1,
    drop_last_if_not_full: bool = True,
    min_window_size: int = 1,
    fill_nan_on_partial: bool = False,
) -> Iterator[list[Any]]:
    """Windows of ``window_size`` items advancing by ``stride`` (squirrel-core's ``sliding``).

    Partial windows at the end are yielded only when ``drop_last_if_not_full`` is False: padded with None up
    to the window size if ``fill_nan_on_partial``, otherwise while at least ``min_window_size`` long.
    """
    it = iter(iterable)
    window = deque(itertools.islice(it, window_size))

    def emit(items: Iterable[Any]) -> list[Any]:
        out = list(items)
        if fill_nan_on_partial:
            out += [None] * (window_size - len(out))
        return copy.deepcopy(out) if deepcopy else out

    if len(window) < window_size:  # the input ended before the first window was full: one partial window
        if window and not drop_last_if_not_full:
            yield emit(window)
        return
    while True:
        yield emit(window)
        new = list(itertools.islice(it, stride))
        for _ in range(stride):
            window.popleft()
        window.extend(new)
        if len(new) < stride:
            break
    if drop_last_if_not_full:
        return
    while window and (fill_nan_on_partial or len(window) >= min_window_size):
        yield emit(window)
        for _ in range(min(stride, len(window))):
            window.popleft()


class LoopState:
    """Runtime state of one ``loop``: ``counter`` counts completed passes of this run."""

    def __init__(self) -> None:
        self.counter = 0


def loop_(open_input: Callable[[], Iterator[Any]], n: int | None, state: LoopState) -> Iterator[Any]:
    """Re-open and drain the input ``n`` times (forever if None, but stop when a pass yields nothing)."""
    while n is None or state.counter < n:
        empty = True
        for item in open_input():
            empty = False
            yield item
        state.counter += 1
        if empty and n is None:
            return


class MuxState:
    """Runtime state of one Multiplexer run: samples drawn and re-initialisations per input."""

    def __init__(self, n: int) -> None:
        self.num_samples = [0] * n
        self.reinit_counts = [0] * n


def async_map_(
    open_input: Callable[[], Iterator[Any]],
    fn: Callable[[Any], Any],
    buffer: int,
    max_workers: int | None,
    executor: Any,
    stage: str,
    node_id: str,
    position: Callable[[], Any] | None = None,
    box: list[Any] | None = None,
    tuner: Any = None,
) -> Iterator[Any]:
    """``fn`` over the items on a pool, at most ``buffer`` in flight, results yielded in input order.

    With a ``tuner`` (``max_workers="auto"``, see :mod:`squirrel_graph.runtime.autotune`) the pool's threads and
    the items in flight (twice the threads) follow the tuner's value as it climbs, and shrink with it.

    With ``position`` (the input's position function) each item in flight keeps the input's position after it,
    and ``box[0]`` is set to the one of the result handed over last (see :mod:`squirrel_graph.runtime.resume`).

    Our own pool (:class:`~squirrel_graph.runtime.pool.TaskPool`) is created here, not at chain time, and stopped
    when the generator ends, fails or is closed: queued tasks are dropped and its threads joined, except after a
    ``KeyboardInterrupt`` (Ctrl-C), which never waits for a task in flight. A user's executor is never shut down.
    """
    own = executor is None
    if tuner is not None and own:
        max_workers, buffer = tuner.value, 2 * tuner.value
    elif max_workers == "auto":  # tuned only on our own pool: a user's executor or a dask client sizes itself
        max_workers = None
    pool = TaskPool(max_workers, buffer, f"squirrel_graph pool {node_id}") if own else executor
    if tuner is not None and own:
        pool.resize(tuner.value)
    submit = _dask_submit(pool) if not own and is_dask_client(pool) else pool.submit
    pending: deque[Any] = deque()
    upstream_error: BaseException | None = None
    interrupted = False
    try:
        source = open_input()
        while True:
            try:
                item = next(source)
            except StopIteration:
                break
            except Exception as exc:  # the input failed: the items before it come first, as without a pool
                upstream_error = exc
                break
            pending.append((submit(fn, item), position() if position is not None else None))
            if len(pending) >= buffer:
                fut, after = pending.popleft()
                if box is not None:
                    box[0] = after
                result = _result(fut, stage, node_id)
                if tuner is not None and own:
                    buffer = _tuned(tuner, pool, result)
                yield result
        while pending:
            fut, after = pending.popleft()
            if box is not None:
                box[0] = after
            yield _result(fut, stage, node_id)
        if upstream_error is not None:
            raise upstream_error
    except BaseException as exc:
        interrupted = _is_interrupt(exc)
        raise
    finally:
        if own:
            pool.shutdown(wait=not interrupted)
        else:
            for fut, _ in pending:
                fut.cancel()


def _tuned(tuner: Any, pool: TaskPool, result: Any) -> int:
    """Count a delivered result, follow the tuner's value; the items in flight allowed from now on."""
    if tuner.item_bytes is None:
        _size_for(tuner, result)
    tuner.delivered()
    pool.resize(tuner.value)
    return 2 * tuner.value  # in flight: twice the threads, as a fixed pool's default buffer keeps them busy


def _size_for(tuner: Any, item: Any) -> None:
    """Tell a tuner the size of the items its stage holds (measured on the first one): it caps the knob."""
    try:
        tuner.sized(getsize(item))
    except Exception:  # an item pickle cannot size: no cap from it
        tuner.sized(1)


def _is_interrupt(exc: BaseException) -> bool:
    """Ctrl-C or ``sys.exit()`` unwinding a stage (not an error, not a ``close()``): release without waiting."""
    return not isinstance(exc, (Exception, GeneratorExit))


_DONE = object()


def prefetch_(
    open_input: Callable[[], Iterator[Any]],
    n: int,
    stage: str,
    node_id: str,
    position: Callable[[], Any] | None = None,
    box: list[Any] | None = None,
    tuner: Any = None,
) -> Iterator[Any]:
    """The input's items, read ahead by a background thread that keeps up to ``n`` of them ready (with a
    ``tuner``, ``prefetch("auto")``: the tuner's value, granted as it climbs).

    Memory is bounded (``n`` items queued, one more in the reader's hands). An error of the input reaches the
    consumer after the items before it, with the stage named. When the consumer stops (end, ``break``, error,
    ``close()``), the reader is told to stop, closes the input in its own thread, and is joined (not after
    Ctrl-C, which never waits). Only C-level queues are shared with the reader, so Ctrl-C cannot leave a lock held.
    """
    ready: queue.SimpleQueue[tuple[Any, Any]] = queue.SimpleQueue()  # (item, input position) or (_DONE, error)
    slots: queue.SimpleQueue[None] = queue.SimpleQueue()  # one token per free place in ``ready``
    granted = tuner.value if tuner is not None else n
    for _ in range(granted):
        slots.put(None)
    stop: list[bool] = []  # non-empty once the consumer has gone (read without a lock)

    def offer(item: Any) -> bool:  # False once the consumer has gone
        after = position() if position is not None else None  # read in this thread, right after the item
        while not stop:
            try:
                slots.get(timeout=0.05)
            except queue.Empty:
                continue
            ready.put((item, after))
            return True
        return False

    def read() -> None:
        source = None
        try:
            source = open_input()
            for item in source:
                if not offer(item):
                    return
            ready.put((_DONE, None))
        except BaseException as exc:  # handed to the consumer, raised there at the right position
            ready.put((_DONE, exc))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    reader = threading.Thread(target=read, name=f"squirrel_graph prefetch {node_id}", daemon=True)
    reader.start()
    interrupted = False
    try:
        get, free = ready.get, slots.put
        while True:
            item, extra = get()
            if item is _DONE:
                if extra is not None:
                    raise annotate(extra, stage, node_id)
                return
            free(None)
            if box is not None:
                box[0] = extra
            if tuner is not None:
                if tuner.item_bytes is None:
                    _size_for(tuner, item)
                tuner.delivered()
                while granted < tuner.value:  # the tuner grew the buffer: more places for the reader
                    granted += 1
                    free(None)
            yield item
    except BaseException as exc:
        interrupted = _is_interrupt(exc)
        raise
    finally:
        stop.append(True)
        slots.put(None)  # wake a reader waiting for a free place
        if not interrupted:
            reader.join()


def _dask_submit(client: Any) -> Callable[..., Any]:
    def submit(fn: Callable[[Any], Any], item: Any) -> Any:
        return client.submit(fn, item, pure=False)

    return submit


def _result(fut: Any, stage: str, node_id: str) -> Any:
    try:
        return fut.result()
    except Exception as exc:
        annotate(exc, stage, node_id)
        raise


class FetchState:
    """Runtime state of one fetch stage run: the shards skipped as corrupt (URL or key, and the error)."""

    def __init__(self) -> None:
        self.skipped: list[tuple[Any, str]] = []


def skipping_corrupt(fn: Callable[[Any], Any], state: FetchState, stage: str) -> Callable[[Any], Any]:
    """``fn`` that logs, counts and skips (returns no samples for) a shard that raises CorruptShardError."""

    def fetch(key: Any) -> Any:
        try:
            return fn(key)
        except CorruptShardError as exc:
            key = key[0] if isinstance(key, tuple) else key  # a decode stage receives (key, raw bytes)
            logger.warning("%s: skipping corrupt shard %r: %s", stage, key, exc)
            state.skipped.append((key, str(exc)))
            return []

    return fetch


def map_annotated(iterable: Iterable[Any], fn: Callable[[Any], Any], stage: str, node_id: str) -> Iterator[Any]:
    """``fn(item)`` for every item in this thread; an error names the stage."""
    for item in iterable:
        try:
            out = fn(item)
        except Exception as exc:
            annotate(exc, stage, node_id)
            raise
        yield out


def annotated(iterable: Iterable[Any], stage: str, node_id: str) -> Iterator[Any]:
    """The items of a user iterator (``to()``, a custom stage); an error it raises names the stage."""
    try:
        yield from iterable
    except Exception as exc:
        annotate(exc, stage, node_id)
        raise
