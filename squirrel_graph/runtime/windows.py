"""``sliding``: windows over the input, resumable by re-reading the current window.

squirrel-core's sequence (``ops.sliding_``) with the input's position kept for every item in the window: a
resumed run opens the input before the window's first item, reads the window again (no output: it was handed
over) and goes on with the next stride. One position per windowed item (``window_size`` of them) is the cost.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Iterator
from typing import Any

from squirrel_graph.runtime import resume
from squirrel_graph.runtime.context import RunContext


def sliding(ctx: RunContext, sid: str, inp: Any, node: Any) -> Iterator[Any]:
    """The windows of ``node`` (a Sliding node) over input ``inp``, keeping a position (see module docstring)."""
    size, stride = node.window_size, node.stride
    start = resume.taken(ctx, sid)
    resume.hand(ctx, inp, start["before"] if start else None)
    up = resume.reader(ctx, inp)
    source = inp()
    befores: deque[Any] = deque()  # the input's position before each windowed item
    window: deque[Any] = deque()
    phase = {"tail": bool(start and start["tail"]), "done": bool(start and start["done"])}

    def pull(n: int) -> list[Any]:
        got = []
        for _ in range(n):
            before = up()
            item = next(source, _END)
            if item is _END:
                break
            befores.append(before)
            got.append(item)
        return got

    def drop(n: int) -> None:
        for _ in range(n):
            window.popleft()
            befores.popleft()

    def emit() -> list[Any]:
        out = list(window)
        if node.fill_nan_on_partial:
            out += [None] * (size - len(out))
        return copy.deepcopy(out) if node.deepcopy else out

    def position() -> Any:
        if not emitted[0]:
            return start
        before = befores[0] if befores else up()
        return {"before": before, "tail": phase["tail"], "done": phase["done"]}

    emitted = [False]
    ctx.positions[sid] = position

    def run() -> Iterator[Any]:
        if phase["done"]:
            return
        if start:  # re-read the window handed over last, then go on after it
            window.extend(pull(size))  # in the tail too: the window handed over holds at most ``size`` items
            if phase["tail"]:
                drop(min(stride, len(window)))
                yield from tail()
                return
            yield from after_window()
            return
        window.extend(pull(size))
        if len(window) < size:  # the input ended before the first window was full: one partial window
            if window and not node.drop_last:
                phase["done"] = True
                emitted[0] = True
                yield emit()
            return
        emitted[0] = True
        yield emit()
        yield from after_window()

    def after_window() -> Iterator[Any]:
        while True:
            new = pull(stride)
            drop(stride)
            window.extend(new)
            if len(new) < stride:
                break
            emitted[0] = True
            yield emit()
        if node.drop_last:
            return
        phase["tail"] = True
        yield from tail()

    def tail() -> Iterator[Any]:
        while window and (node.fill_nan_on_partial or len(window) >= node.min_window_size):
            emitted[0] = True
            yield emit()
            drop(min(stride, len(window)))

    def windows() -> Iterator[Any]:
        yield from run()
        phase["done"] = True  # ran to its end: a state taken now resumes to an empty rest

    return windows()


_END = object()
