"""``"auto"`` concurrency and buffers: tuned while a stream runs, from the rate each tuned stage delivers at.

A tuned stage counts what it hands over (one integer add per item) and, every ``window`` seconds, compares its
delivery rate with the best so far: while doubling its knob (threads in flight for ``async_map`` and fetches,
buffered items for ``prefetch``) raises the rate by more than ``GAIN``, it doubles again; the first doubling that
does not pay in two windows (the window right after a change, while new threads start, is not counted) is undone
and the knob stays at the best value found (tf.data's AUTOTUNE does the same kind of
climb on its own model). A knob never grows past what the memory bound allows: the bound divided by the size of
the items the stage holds (measured on its first item), so buffers stay within ``memory_bound()`` bytes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

AUTO = "auto"
GAIN = 1.10  # a doubling must raise the rate by 10% to be kept
WINDOW_S = 0.05  # at least this long per measurement, and at least 4 items per unit of the knob
WARM_S = 0.02  # the window after a change, while the new threads start (not measured)
EXTRA_HELD = 1  # the item the consumer holds last, beyond what the knob accounts for
_MEMORY = [512 * 2**20]  # bytes a tuned stage may hold in its buffers (process-wide default)


def memory_bound() -> int:
    """Bytes one tuned stage may hold in its buffers (its knob times its item size stays below it)."""
    return _MEMORY[0]


@contextlib.contextmanager
def limit_memory(nbytes: int) -> Iterator[None]:
    """Runs opened inside tune their ``"auto"`` stages within ``nbytes`` each (default 512 MiB)."""
    if not isinstance(nbytes, int) or isinstance(nbytes, bool) or nbytes < 1:
        raise ValueError(f"limit_memory(nbytes=...): expected an int >= 1, got {nbytes!r}")
    previous, _MEMORY[0] = _MEMORY[0], nbytes
    try:
        yield
    finally:
        _MEMORY[0] = previous


class Tuner:
    """One stage's knob, climbed by doubling from ``start`` up to ``limit`` while the delivery rate improves."""

    def __init__(
        self, stage: str, knob: str, start: int, limit: int, bound: int | None = None, held_per_unit: int = 1
    ) -> None:
        self.stage, self.knob = stage, knob
        self.held_per_unit = held_per_unit  # items the stage holds per unit of its knob (in flight, buffered)
        self.value = start
        self.limit = limit
        self.bound = memory_bound() if bound is None else bound
        self.item_bytes: int | None = None
        self.history: list[tuple[int, float]] = []  # (knob, items/s) per measurement
        self.best = (0.0, start)
        self.settled = False
        self.capped = False  # the memory bound, not ``limit``, stops the climb
        self.reason = "measuring"
        self._count = 0
        self._check = 8
        self._t0 = time.perf_counter()
        self._warming = True  # the first window after a change (threads starting) is not measured
        self._second_look = False  # a window that shows no gain is measured once more before the doubling is undone

    def sized(self, nbytes: int) -> None:
        """The size of one item the stage holds: caps the knob at the memory bound."""
        self.item_bytes = max(1, nbytes)
        cap = max(1, (self.bound // self.item_bytes - EXTRA_HELD) // self.held_per_unit)
        if cap < self.limit:
            self.limit, self.capped = cap, True
            self.value = min(self.value, cap)

    def delivered(self) -> None:
        """One item handed over (cheap: a count, and a clock read every few items)."""
        self._count += 1
        if self.settled or self._count < self._check:
            return
        now = time.perf_counter()
        elapsed = now - self._t0
        # the window while new threads start only has to cover their start (and every thread's first item)
        least = WARM_S if self._warming else WINDOW_S
        if elapsed < least or self._count < (2 if self._warming else 4) * self.value:
            self._check = self._count + max(1, self._count // 4)
            return
        rate = self._count / elapsed
        self._count, self._check, self._t0 = 0, 8, now
        if self._warming:  # new threads were starting in this window: measure the next one
            self._warming = False
            return
        self.history.append((self.value, rate))
        if rate > self.best[0] * GAIN:
            self.best = (rate, self.value)
            if self.value >= self.limit:
                self.settle("at the memory bound" if self.capped else f"at the limit of {self.limit}")
            else:
                self.value = min(self.value * 2, self.limit)
                self._warming, self._second_look = True, False
        elif not self._second_look:  # one window can be a transient (threads still filling): look once more
            self._second_look = True
        else:
            self.value = self.best[1]
            self.settle(f"doubling to {self.history[-1][0]} did not raise the rate by {GAIN - 1:.0%}")

    def settle(self, why: str) -> None:
        self.settled, self.reason = True, why

    def line(self) -> str:
        """What it chose and why, for explain."""
        steps = ", ".join(f"{k}: {r:,.0f}/s" for k, r in self.history) or "no measurement yet"
        size = f"; items ~{self.item_bytes:,} B, bound {self.bound:,} B" if self.item_bytes else ""
        return f"{self.stage}: {self.knob}={self.value} ({self.reason}; {steps}{size})"
