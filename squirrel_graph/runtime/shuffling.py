"""The seeded buffered shuffle, resumable without storing its buffer.

The shuffle keeps squirrel-core's fill and pick sequence (seeded output is identical to ``ops.shuffle_``). Its
position is only counters: items pulled, items emitted, and its input's position at an item no later than the
oldest one still buffered. The buffer's contents follow from the seed and the counters: a *shadow* run of the same
algorithm over item numbers instead of items (advanced only when a position is asked for, so the normal run pays
for counting alone) tells which item numbers are buffered, in which order, and the random generator's state. A
resumed run replays the shadow, re-reads its input from the saved position up to the items pulled, keeps the
buffered ones and goes on.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from squirrel_graph.randomness import get_random_range
from squirrel_graph.runtime import resume
from squirrel_graph.runtime.context import RunContext

# counters shared by a run and its position function: [pulled, emitted, draining, input ended]
PULLED, EMITTED, DRAINING, ENDED = range(4)
MAX_SEGMENTS = 24  # snapshots a state keeps beyond ``from`` (where a resumed run reads placeholders from)


def _pick(buf: list[Any], rng: random.Random) -> Any:
    k = rng._randbelow(len(buf))  # what rng.randint(0, len(buf) - 1) draws (squirrel-core's call), without its checks
    item = buf[k]
    buf[k] = buf[-1]
    buf.pop()
    return item


def shuffled(
    it: Iterator[Any],
    buf: list[Any],
    rng: random.Random,
    c: list[int],
    bufsize: int,
    initial: int,
    snap: Callable[[int], None] | None = None,
    every: int = 1,
) -> Iterator[Any]:
    """squirrel-core's buffered shuffle continued from ``buf``/``rng``/counters ``c``; ``snap(n)`` is called before
    the ``n``-th pull whenever ``n`` is a multiple of ``every``."""
    if not c[DRAINING]:
        for item in it:
            c[PULLED] += 1
            buf.append(item)
            if len(buf) < bufsize:
                if snap is not None and not c[PULLED] % every:
                    snap(c[PULLED])
                try:
                    buf.append(next(it))
                    c[PULLED] += 1
                except StopIteration:
                    c[ENDED] = 1
            if len(buf) >= initial:
                c[EMITTED] += 1
                yield _pick(buf, rng)
            if snap is not None and not c[PULLED] % every:
                snap(c[PULLED])
        c[DRAINING] = c[ENDED] = 1
    while buf:
        c[EMITTED] += 1
        yield _pick(buf, rng)


class _Shadow:
    """The shuffle run over item numbers: which numbers are buffered after ``e`` items were emitted, and the oldest
    of them in O(log n) per item (a heap with lazy deletion), so asking for a position after every item (a
    read-ahead stage downstream does) stays cheap whatever the buffer size."""

    def __init__(self, rng_state: Any, bufsize: int, initial: int) -> None:
        self.rng = random.Random()
        self.rng.setstate(rng_state)
        self.bufsize, self.initial = bufsize, initial
        self.buf: list[int] = []
        self.c = [0, 0, 0, 0]
        self.limit: list[int | None] = [None]
        self.heap: list[int] = []
        self.gone: set[int] = set()
        self.run = self._run()

    def _run(self) -> Iterator[None]:
        """``shuffled`` step for step (the same random calls) on item numbers, keeping the heap."""
        buf, c, rng, heap = self.buf, self.c, self.rng, self.heap

        def pull() -> bool:
            if self.limit[0] is not None and c[PULLED] >= self.limit[0]:
                return False
            n = c[PULLED]
            c[PULLED] += 1
            buf.append(n)
            heapq.heappush(heap, n)
            return True

        def pick() -> None:
            c[EMITTED] += 1
            self.gone.add(_pick(buf, rng))

        while pull():
            if len(buf) < self.bufsize and not pull():
                c[ENDED] = 1
            if len(buf) >= self.initial:
                pick()
                yield
        c[DRAINING] = c[ENDED] = 1
        while buf:
            pick()
            yield

    def advance(self, emitted: int, pulled: int, ended: bool) -> None:
        if ended:
            self.limit[0] = pulled
        while self.c[EMITTED] < emitted:
            next(self.run)

    def oldest(self) -> int | None:
        heap, gone = self.heap, self.gone
        while heap and heap[0] in gone:
            gone.discard(heapq.heappop(heap))
        return heap[0] if heap else None


class _Snapshots:
    """Input positions taken before some pulls (every ``every``-th, by the caller), pruned to those a position
    can still need."""

    def __init__(self, first: tuple[int, Any]) -> None:
        self.taken: deque[tuple[int, Any]] = deque([first])

    def before(self, n: int, at: Any) -> None:
        self.taken.append((n, at))

    def at_or_before(self, n: int) -> tuple[int, Any]:
        """The latest snapshot at or before item ``n``; older ones can never be needed again (the oldest buffered
        item only moves forward) and are dropped."""
        taken = self.taken
        while len(taken) > 1 and taken[1][0] <= n:
            taken.popleft()
        return taken[0]


class _Segments:
    """The snapshots a position refers to beyond ``from``, read from the live list only when the state is taken
    (``plain()``), so asking for a position after every item costs no copy. Snapshots pruned meanwhile are older
    than the oldest buffered item of that later time: a resumed run then reads forward from an earlier one."""

    __slots__ = ("snaps", "lo", "hi")

    def __init__(self, snaps: _Snapshots, lo: int, hi: int) -> None:
        self.snaps, self.lo, self.hi = snaps, lo, hi

    def __plain__(self) -> list[list[Any]]:
        found = [[n, at] for n, at in list(self.snaps.taken) if self.lo < n < self.hi]
        if len(found) > MAX_SEGMENTS:  # a small state: every k-th (a resumed run reads longer segments)
            step = -(-len(found) // MAX_SEGMENTS)
            found = found[::step]
        return found


class _Later:
    """A buffered item of a resumed run not read yet (it lies well before the others): read when it is picked."""

    __slots__ = ("n",)

    def __init__(self, n: int) -> None:
        self.n = n


def _restore(ctx: RunContext, inp: Any, start: Any, shadow: _Shadow, snaps: _Snapshots, up: Any, every: int):
    """Rebuild the buffer of a resumed shuffle: the recent part (the last ``bufsize`` items pulled and after) is
    re-read in one pass from the snapshot before it; older buffered items become ``_Later`` placeholders, read from
    their own snapshot when the shuffle picks them (so the first items need only the shards of the recent part).
    Returns (the input iterator, the buffer, a function resolving placeholders)."""
    pulled = int(start["pulled"])
    marks = sorted([(int(start["from"]), start["up"])] + [(int(n), at) for n, at in start.get("segments") or []])
    recent_from = max(0, pulled - shadow.bufsize)
    cut = max((m for m in marks if m[0] <= recent_from), key=lambda m: m[0], default=marks[0])
    for mark in marks:
        snaps.before(*mark)
    ids = list(shadow.buf)
    slot = {n: i for i, n in enumerate(ids)}
    buf: list[Any] = [_Later(n) if n < cut[0] else None for n in ids]
    resume.hand(ctx, inp, cut[1])
    it = inp()
    for n in range(cut[0], pulled):  # re-read the recent part: keep the items still buffered
        item = next(it)
        if n in slot:
            buf[slot[n]] = item
        if not (n + 1) % every and n + 1 > marks[-1][0]:  # the state's own marks are snapshots already
            snaps.before(n + 1, up())
    unread = {n for n in ids if n < cut[0]}
    ready: dict[int, Any] = {}

    def resolve(placeholder: _Later) -> Any:
        n = placeholder.n
        if n not in ready:  # read from the snapshot before n once, keeping every placeholder up to a gap
            mark = max((m for m in marks if m[0] <= n), key=lambda m: m[0])
            ahead = sorted(k for k in unread if k >= n)
            upto = n
            for k in ahead:  # placeholders close behind each other share a read (and most likely the shard)
                if k - upto > 4 * every:
                    break
                upto = k
            side = RunContext(epoch=ctx.epoch, shares=dict(ctx.shares), serial=True)
            if mark[1] is not None:
                side.resume[inp.sid] = mark[1]
            reader = inp.stage.open(side)
            try:
                for k in range(mark[0], upto + 1):
                    item = next(reader)
                    if k in unread:
                        unread.discard(k)
                        ready[k] = item
            finally:
                close = getattr(reader, "close", None)
                if close is not None:
                    close()
                side.release()
        return ready.pop(n)

    return it, buf, resolve


def _resolving(items: Iterator[Any], resolve: Any) -> Iterator[Any]:
    for item in items:
        yield resolve(item) if type(item) is _Later else item


def resumable_shuffle(ctx: RunContext, sid: str, inp: Any, node: Any, rng: Any, seed: Any) -> Iterator[Any]:
    """The runner body of a shuffle stage: seeded shuffles keep a resumable position, unseeded ones say why not."""
    label = node.label()
    if rng is None and seed is None:
        ctx.positions[sid] = resume.not_resumable(label, "an unseeded shuffle cannot replay its order; give it a seed")
        return shuffled(inp(), [], get_random_range(), [0, 0, 0, 0], node.size, min(node.initial, node.size))
    rng = get_random_range(rng, seed)
    bufsize, initial = node.size, min(node.initial, node.size)
    every = max(1, bufsize // 8)  # a snapshot of the input's position before every ``every``-th pull
    shadow = _Shadow(rng.getstate(), bufsize, initial)
    start = resume.taken(ctx, sid)
    up = resume.reader(ctx, inp)
    c = [0, 0, 0, 0]
    buf: list[Any] = []
    resolve = None
    if start:
        pulled, emitted, ended = int(start["pulled"]), int(start["emitted"]), bool(start["ended"])
        shadow.advance(emitted, pulled, ended)
        snaps = _Snapshots((int(start["from"]), start["up"]))
        snaps.taken.clear()
        it, restored, resolve = _restore(ctx, inp, start, shadow, snaps, up, every)
        buf[:] = restored
        rng.setstate(shadow.rng.getstate())
        c[:] = [pulled, emitted, shadow.c[DRAINING], int(ended)]
    else:
        snaps = _Snapshots((0, None))
        it = inp()
    opened_at = c[EMITTED]

    def snap(n: int) -> None:
        snaps.before(n, up())
        if len(snaps.taken) > 64:  # nobody asked for a position lately: catch the shadow up and prune
            position()

    def position() -> Any:
        if c[EMITTED] == opened_at:
            return start
        shadow.advance(c[EMITTED], c[PULLED], bool(c[ENDED]))
        oldest = shadow.oldest()
        oldest = c[PULLED] if oldest is None else oldest
        first, at = snaps.at_or_before(oldest)
        return {
            "pulled": c[PULLED],
            "emitted": c[EMITTED],
            "ended": bool(c[ENDED]),
            "from": first,
            "up": at,
            "segments": _Segments(snaps, first, c[PULLED]),
        }

    ctx.positions[sid] = position
    out = shuffled(it, buf, rng, c, bufsize, initial, snap, every)
    return out if resolve is None else _resolving(out, resolve)
