"""Positions of a numba stage: by chunks of input items counted from where the run started.

A compiled chunk computes all its outputs at once, after reading the whole chunk, so a position is the input's
position before the chunk and how many of the chunk's outputs were handed over; a resumed run re-reads that chunk
(its user functions run again, deterministically) and skips those outputs. Per-item paths (arrays, the Python
fallback) count chunks the same way, so every path resumes alike.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator
from typing import Any

_END = object()


class ChunkPositions:
    """Where a numba stage's consumer is: ``{"chunk": input position before the chunk, "skip": outputs taken}``."""

    def __init__(self, up: Callable[[], Any], start: Any, chunk: int) -> None:
        self.up = up
        self.size = chunk
        self.initial = start
        self.at = start["chunk"] if start else None
        self.skip = int(start["skip"]) if start else 0  # outputs of the resumed run's first chunk handed over before
        self.done = 0
        self.seq: list[Any] | None = None
        self.it: Iterator[Any] | None = None
        self.started = False

    def begin(self) -> None:
        """A new chunk is about to be read."""
        self.at, self.seq, self.done, self.started = self.up(), None, 0, True

    def emit(self, results: list[Any]) -> Iterator[Any]:
        """The outputs of the current chunk, computed at once (the resumed first chunk's taken ones skipped)."""
        it = iter(results)
        if self.skip:
            it.__setstate__(min(self.skip, len(results)))  # type: ignore[attr-defined]
            self.skip = 0
        self.seq, self.it = results, it
        return it

    def reading(self, items: Iterable[Any], already: int) -> Iterator[Any]:
        """``items`` (``already`` of them read in this chunk), beginning a chunk before every ``size``-th read."""
        it, n = iter(items), already
        while True:
            if n and not n % self.size:
                self.begin()
            item = next(it, _END)
            if item is _END:
                return
            n += 1
            yield item

    def counting(self, outputs: Iterable[Any]) -> Iterator[Any]:
        """Outputs of a per-item path, counted per chunk (the resumed first chunk's taken ones skipped)."""
        for out in outputs:
            self.done += 1
            if self.skip:
                self.skip -= 1
                continue
            yield out

    def position(self) -> Any:
        if not self.started:
            return self.initial
        taken = self.done if self.seq is None else len(self.seq) - operator.length_hint(self.it)
        return {"chunk": self.at, "skip": taken}
