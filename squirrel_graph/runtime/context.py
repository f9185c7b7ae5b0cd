"""What a running stage sees: openers of its inputs and the :class:`RunContext` holding one run's state.

A runner is ``runner(inputs, ctx) -> Iterator`` where ``inputs`` are zero-argument callables that open a *fresh*
iterator over each input stage (so ``loop`` and ``Multiplexer`` can re-open their upstream).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

Opener = Callable[[], Iterator[Any]]
Runner = Callable[[Sequence[Opener], "RunContext"], Iterator[Any]]


@dataclass
class RunContext:
    """Mutable state of one run (one ``iter()`` of a stream): per-stage state objects keyed by stage id, and the
    epoch set with ``set_epoch`` (seeded shuffles derive their seed from it).

    ``positions`` maps each open stage to a function that describes, as plain data, where its consumer is (see
    :mod:`squirrel_graph.runtime.resume`); ``resume`` holds the positions stages start from when a run resumes
    (each stage takes its own on its first open and hands its inputs theirs)."""

    state: dict[str, Any] = field(default_factory=dict)
    epoch: int | None = None
    closers: list[Any] = field(default_factory=list)
    positions: dict[str, Callable[[], Any]] = field(default_factory=dict)
    resume: dict[str, Any] = field(default_factory=dict)
    shares: dict[str, tuple[int, int]] = field(default_factory=dict)  # axis -> (index, parts) replacing this process's
    serial: bool = False  # read nothing ahead (a resumed shuffle reading a few old items back: no wasted fetches)

    def owns(self, it: Iterator[Any]) -> Iterator[Any]:
        """Register a stage iterator that holds resources (a thread pool) to be closed when the run ends."""
        self.closers[:] = [c for c in self.closers if getattr(c, "gi_frame", True) is not None]  # drop finished
        self.closers.append(it)
        return it

    def release(self) -> None:
        """Close the registered stage iterators, last opened first. One still running in another thread (below a
        prefetch whose reader was not waited for after Ctrl-C) is left to that thread, which closes it itself."""
        for owned in reversed(self.closers):
            if getattr(owned, "gi_running", False):
                continue
            try:
                owned.close()
            except ValueError as exc:  # it started running in that other thread meanwhile
                if "already executing" not in str(exc):
                    raise
