"""Source handles: IterableSource and IterableSamplerSource (FilePathGenerator lives in ``io.paths``)."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from typing import Any

from squirrel_graph.graph import IterSource, Node, SamplerSource
from squirrel_graph.randomness import get_random_range
from squirrel_graph.stream.composable import Composable
from squirrel_graph.stream.validate import check_rng, check_seed


class IterableSource(Composable):
    """A stream over an iterable, or over what a callable returns (called again on every iteration)."""

    def __init__(self, source: Iterable[Any] | Any = ()) -> None:
        super().__init__(source)

    def _builtin_node(self) -> Node:
        return IterSource(source=self.source)

    def __repr__(self) -> str:
        return f"IterableSource({self.source!r:.60})"


class IterableSamplerSource(Composable):
    """Draws each next item from a randomly chosen iterable (weighted by ``probs``) until all are exhausted.

    The RNG is seeded once, here, and every iteration replays it from that state, so iterations (and
    DataLoader workers that received a pickled copy) see the same order.
    """

    def __init__(
        self,
        iterables: Sequence[Iterable[Any]],
        probs: Sequence[float] | None = None,
        rng: random.Random | None = None,
        seed: Any = None,
    ) -> None:
        check_seed("IterableSamplerSource", seed)
        check_rng("IterableSamplerSource", rng)
        super().__init__(source=())
        self.iterables = list(iterables)
        if probs is not None:
            probs = [float(p) for p in probs]
            if len(probs) != len(self.iterables):
                raise ValueError(
                    f"IterableSamplerSource(probs=...): expected {len(self.iterables)} probabilities, got {len(probs)}"
                )
            if any(p <= 0 for p in probs):
                raise ValueError(f"IterableSamplerSource(probs=...): every probability must be > 0, got {probs}")
            if not math.isclose(sum(probs), 1.0, rel_tol=1e-9, abs_tol=1e-9):
                raise ValueError(f"IterableSamplerSource(probs=...): probabilities must sum to 1, got {sum(probs)}")
        self.probs = probs
        self.rng = get_random_range(rng, seed)

    def _builtin_node(self) -> Node:
        probs = tuple(self.probs) if self.probs is not None else None
        return SamplerSource(probs=probs, rng_state=self.rng.getstate())

    def _inputs(self) -> list[Any]:
        return list(self.iterables)
