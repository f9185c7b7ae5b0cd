"""Multiplexer: interleave several streams by round robin, uniform or weighted sampling (squirrel-core's API)."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

from squirrel_graph.graph import Multiplex, Node
from squirrel_graph.stream.composable import Composable
from squirrel_graph.stream.validate import check_int


class MultiplexingStrategy(Enum):
    """How a Multiplexer picks the next input."""

    ROUND_ROBIN = "RoundRobin"
    UNIFORM_WITH_REPLACEMENT = "uniform_with_replacement"
    SAMPLING = "sampling"


@dataclass
class MuxIterator:
    """An input's iterator and how often it was re-initialised (kept for squirrel-core compatibility)."""

    index: int
    it: Iterator[Any]
    reinits: int


class Multiplexer(Composable):
    """Interleaves ``composables``. Sampling strategies re-start an exhausted input and stop once every input
    was re-started at least once, or one reached ``max_reinits``. ``num_samples`` and ``reinit_counts``
    describe the latest run in this process (they restart at zero on every iteration)."""

    def __init__(
        self,
        composables: Sequence[Any],
        mux_strategy: MultiplexingStrategy,
        sampling_probas: Sequence[float] | None = None,
        max_reinits: int | None = None,
        seed: int | None = None,
        proba_threshold: float = 1e-3,
        **kwargs: Any,
    ) -> None:
        if not isinstance(mux_strategy, MultiplexingStrategy):
            raise TypeError(
                f"Multiplexer(mux_strategy=...): expected a MultiplexingStrategy, got {type(mux_strategy).__name__}"
            )
        max_reinits = check_int("Multiplexer", "max_reinits", max_reinits, 1, allow_none=True)
        super().__init__(source=list(composables))
        self.mux_strategy = mux_strategy
        self.max_reinits = sys.maxsize if max_reinits is None else max_reinits
        # Without a seed, draw one now: every iteration (and every DataLoader worker, which gets a pickled copy)
        # then replays the same sequence, like squirrel-core's construction-time RNG did.
        self.seed = seed if seed is not None else int(np.random.SeedSequence().entropy % (2**63))
        composables = list(composables)
        probas = None if sampling_probas is None else [float(p) for p in sampling_probas]
        if mux_strategy is MultiplexingStrategy.SAMPLING and probas is None:
            raise ValueError("Multiplexer(sampling_probas=...): required with MultiplexingStrategy.SAMPLING")
        if probas is not None and len(probas) != len(composables):
            raise ValueError(
                f"Multiplexer(sampling_probas=...): expected {len(composables)} probabilities, got {len(probas)}"
            )
        if probas is not None and mux_strategy is not MultiplexingStrategy.ROUND_ROBIN:
            keep = [i for i, p in enumerate(probas) if p > proba_threshold]
            composables = [composables[i] for i in keep]
            total = sum(probas[i] for i in keep)
            probas = [probas[i] / total for i in keep]
        self.composables = composables
        self.sampling_probas = probas

    def _builtin_node(self) -> Node:
        probas = tuple(self.sampling_probas) if self.sampling_probas is not None else None
        return Multiplex(
            strategy=self.mux_strategy.value,
            probas=probas,
            max_reinits=self.max_reinits,
            seed=self.seed,
        )

    def _inputs(self) -> list[Any]:
        return list(self.composables)

    @property
    def num_samples(self) -> list[int]:
        state = self._state_here()
        return list(state.num_samples) if state is not None else [0] * len(self.composables)

    @property
    def reinit_counts(self) -> list[int]:
        state = self._state_here()
        return list(state.reinit_counts) if state is not None else [0] * len(self.composables)
