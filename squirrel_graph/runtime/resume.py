"""Positions: where a running stage's consumer is, as plain data, so a later run can start right there.

Every stage of a run registers in ``ctx.positions`` a function describing the position *after the last item its
consumer received*: a source counts its items, a synchronous one-to-one or filtering stage answers with its
input's position (at the moment it hands an item over, its input has just produced it), and a stage that reads
ahead (``async_map``, a parallel fetch, ``prefetch``) keeps, with every item it holds, its input's position at the
time it read that item, and answers with the one of the item it handed over last. Stages with their own counters
(``take``, ``zip_index``, ``loop``, ``shuffle``) wrap their input's position in a small dict.

A resumed run hands each stage its saved position through ``ctx.resume`` when the stage opens; the stage takes its
own part and leaves its input's part for the input's first open. ``None`` is the position before the first item.
Computing a position costs nothing until someone asks, except for read-ahead stages (one snapshot per item read).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from squirrel_graph.runtime.context import RunContext

NOT_RESUMABLE = "not_resumable"  # the key of a position that cannot be resumed; its value names the stage and why

_SEEKABLE = (type(iter([])), type(iter(())), type(iter(range(0))))  # iterators whose index can be set in O(1)


_TRACKING = [True]  # process-wide switch (see squirrel_graph.checkpoint.track_positions)


def set_tracking(enabled: bool) -> bool:
    """Turn the per-item position snapshots of read-ahead stages on or off for runs opened later; returns the
    previous setting. Off, such stages answer "not resumable" (a benchmark's "state off" side)."""
    previous, _TRACKING[0] = _TRACKING[0], bool(enabled)
    return previous


def not_resumable(stage: str, why: str) -> Callable[[], Any]:
    """The position function of a stage that keeps no position: every answer says so, naming the stage."""
    answer = {NOT_RESUMABLE: f"{stage}: {why}"}
    return lambda: answer


def taken(ctx: RunContext, sid: str) -> Any:
    """The position stage ``sid`` resumes from in this run (None: from the start); later opens start fresh."""
    return ctx.resume.pop(sid, None) if ctx.resume else None


def hand(ctx: RunContext, inp: Any, position: Any) -> None:
    """Leave ``position`` for the next open of input ``inp`` (a StageInput), so it resumes there."""
    if position is not None:
        ctx.resume[inp.sid] = position


def alias(ctx: RunContext, sid: str, inp: Any) -> None:
    """Stage ``sid`` hands over each item as soon as its input produced it: its position is its input's."""
    ctx.positions[sid] = reader(ctx, inp)


def reader(ctx: RunContext, inp: Any) -> Callable[[], Any]:
    """The position function of input ``inp`` (read when it is called: an input re-opened later registers anew)."""
    positions, up = ctx.positions, inp.sid

    def position() -> Any:
        found = positions.get(up)
        return found() if found is not None else None  # not opened yet: before its first item

    return position


def counted(ctx: RunContext, sid: str, items: Iterable[Any], label: str) -> Iterator[Any]:
    """The items of a source, starting after the count this stage resumes from; registers the count as its position.

    Lists, tuples and ranges are positioned in O(1) and counted without wrapping; other iterables are skipped by
    reading and counted by a thin generator.
    """
    start = taken(ctx, sid)
    skip = int(start["n"]) if start else 0
    it = iter(items)
    if type(items) in (list, tuple, range) and type(it) in _SEEKABLE:
        total = len(items)  # type: ignore[arg-type]
        if skip:
            it.__setstate__(min(skip, total))  # type: ignore[attr-defined]

        def position() -> Any:
            n = total - operator.length_hint(it)
            return {"n": n} if n else None

        ctx.positions[sid] = position
        return it
    box = [skip]
    for _ in range(skip):
        if next(it, _END) is _END:
            break
    ctx.positions[sid] = lambda: {"n": box[0]} if box[0] else None
    return _counting(it, box)


_END = object()


def _counting(it: Iterator[Any], box: list[int]) -> Iterator[Any]:
    try:
        for item in it:
            box[0] += 1
            yield item
    finally:
        close = getattr(it, "close", None)  # closing the count closes the source (a prefetch reader relies on it)
        if close is not None:
            close()


def counter_stage(ctx: RunContext, sid: str, inp: Any, key: str) -> tuple[int, Iterator[Any], list[int]]:
    """For a stage that counts what it handed over (``take``, ``zip_index``): the count it resumes from, its opened
    input (resumed where the saved position says) and the box holding the count, which the position reports."""
    start = taken(ctx, sid)
    done = int(start[key]) if start else 0
    if start:
        hand(ctx, inp, start.get("up"))
    box = [done]
    up = reader(ctx, inp)
    source = inp()
    ctx.positions[sid] = lambda: {key: box[0], "up": up()} if box[0] else None
    return done, source, box


def find_not_resumable(position: Any) -> str | None:
    """The reason (naming the stage) if any part of ``position`` cannot be resumed, else None."""
    todo = [position]
    while todo:
        p = todo.pop()
        if isinstance(p, dict):
            if NOT_RESUMABLE in p:
                return str(p[NOT_RESUMABLE])
            todo.extend(p.values())
        elif isinstance(p, (list, tuple)):
            todo.extend(p)
    return None


class ItemTracker:
    """For a generated loop that starts by flattening its input's items (a fetch's shards): where the item being
    flattened began (its input's position before it) and how many of its elements the loop has taken, so a resumed
    run re-reads only that item and skips its first elements before any user function sees them."""

    __slots__ = ("after", "before", "initial", "it", "seq", "skip", "up")

    def __init__(self, up: Callable[[], Any], start: Any) -> None:
        self.up = up
        self.initial = start
        self.after = start["item"] if start else None  # the input's position after the current item
        self.skip = int(start["skip"]) if start else 0
        self.before: Any = None
        self.seq: Any = None
        self.it: Any = None

    def item(self, seq: Any) -> Iterator[Any]:
        """The elements of ``seq`` to flatten (the first item of a resumed run without the ones already taken)."""
        self.before, self.after = self.after, self.up()
        it = iter(seq)
        if type(it) not in _SEEKABLE:
            seq = list(it)  # a generator or other one-pass item: counted by materializing it once
            it = iter(seq)
        if self.skip:
            it.__setstate__(min(self.skip, len(seq)))  # type: ignore[attr-defined]
            self.skip = 0
        self.seq, self.it = seq, it
        return it

    def position(self) -> Any:
        if self.it is None:
            return self.initial
        taken_ = len(self.seq) - operator.length_hint(self.it)
        if taken_ >= len(self.seq):
            return {"item": self.after, "skip": 0}
        return {"item": self.before, "skip": taken_}


def read_ahead(ctx: RunContext, sid: str, inp: Any) -> tuple[Callable[[], Any] | None, list[Any] | None]:
    """For a stage that reads its input ahead of its consumer: hands the input the saved position, registers the
    stage's position as ``box[0]`` (the input's position after the item handed over last, set by the stage) and
    returns the input's position function with the box."""
    start = taken(ctx, sid)
    hand(ctx, inp, start)
    if not _TRACKING[0]:
        ctx.positions[sid] = not_resumable(sid, "positions are turned off (track_positions(False))")
        return None, None  # type: ignore[return-value]
    box = [start]
    ctx.positions[sid] = lambda: box[0]
    return reader(ctx, inp), box


def passing(ctx: RunContext, sid: str, inp: Any) -> Iterator[Any]:
    """Open input ``inp`` for a stage that hands each item over as soon as its input produced it (resumed where
    the saved position says); the stage's position is its input's."""
    hand(ctx, inp, taken(ctx, sid))
    alias(ctx, sid, inp)
    return inp()


def read_ahead_lists(ctx: RunContext, sid: str, inp: Any) -> tuple[Any, list[Any] | None, ItemTracker | None]:
    """For a stage that reads its input ahead and yields the elements of one result list per input item (per-key
    tasks, partitions of items): (input position function, box, tracker). Pass the first two to the read-ahead and
    flatten each result through ``tracker.item(result)``: a resumed run re-runs only the item the checkpoint was
    inside, and skips its elements already handed over."""
    start = taken(ctx, sid)
    hand(ctx, inp, start["item"] if start else None)
    if not _TRACKING[0]:
        ctx.positions[sid] = not_resumable(sid, "positions are turned off (track_positions(False))")
        return None, None, None
    box = [start["item"] if start else None]
    tracker = ItemTracker(lambda: box[0], start)
    ctx.positions[sid] = tracker.position
    return reader(ctx, inp), box, tracker


def flatten_tracked(results: Iterator[Any], tracker: ItemTracker | None) -> Iterator[Any]:
    """The elements of every result list, through ``tracker`` when positions are kept."""
    if tracker is None:
        for result in results:
            yield from result
        return
    for result in results:
        yield from tracker.item(result)
