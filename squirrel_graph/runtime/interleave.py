"""Stages that interleave several inputs (``Multiplexer``, ``IterableSamplerSource``), resumable from counters.

Their random draws are replayed from the seed on resume (the number of draws and the draws at which an input ran
out are kept, not the generator's state), and each input resumes from its own position. The random calls are
squirrel-core's, so seeded output matches it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any

from squirrel_graph.runtime import resume
from squirrel_graph.runtime.context import RunContext


def _open_inputs(ctx: RunContext, inputs: Sequence[Any], start: Any) -> list[Iterator[Any]]:
    saved = start["inputs"] if start else [None] * len(inputs)
    opened = []
    for inp, position in zip(inputs, saved):
        resume.hand(ctx, inp, position)
        opened.append(inp())
    return opened


def multiplex(
    ctx: RunContext,
    sid: str,
    inputs: Sequence[Any],
    strategy: str,
    probas: Sequence[float] | None,
    max_reinits: int,
    seed: Any,
    state: Any,
) -> Iterator[Any]:
    """Interleave inputs like squirrel-core's Multiplexer, keeping a position (see module docstring)."""
    import numpy as np

    start = resume.taken(ctx, sid)
    n = len(inputs)
    readers = [resume.reader(ctx, inp) for inp in inputs]
    if start:
        state.num_samples[:] = start["samples"]
        state.reinit_counts[:] = start["reinits"]
    iters = _open_inputs(ctx, inputs, start)
    alive = list(start["alive"]) if start else list(range(n))
    c = {"pos": start["pos"] if start else 0, "draws": start["draws"] if start else 0}

    def position() -> Any:
        if not any(state.num_samples) and not c["draws"]:
            return None
        return {
            "inputs": [r() for r in readers],
            "samples": list(state.num_samples),
            "reinits": list(state.reinit_counts),
            "alive": list(alive),
            **c,
        }

    ctx.positions[sid] = position
    if strategy == "RoundRobin":
        return _round_robin(iters, alive, c, state)
    rng = np.random.RandomState(np.random.MT19937(seed=seed))
    p = None if strategy == "uniform_with_replacement" else list(probas or ())
    for _ in range(c["draws"]):  # the draws of the run so far, without their items
        rng.choice(n, 1, replace=True, p=p)
    return _random(inputs, iters, rng, p, c, max_reinits, state)


def _round_robin(iters: list[Iterator[Any]], alive: list[int], c: dict[str, int], state: Any) -> Iterator[Any]:
    while alive:
        idx = alive[c["pos"] % len(alive)]
        try:
            item = next(iters[idx])
        except StopIteration:
            alive.remove(idx)
            c["pos"] = 0  # squirrel-core restarts the cycle at the first remaining input
            continue
        c["pos"] += 1
        state.num_samples[idx] += 1
        yield item


def _random(
    inputs: Sequence[Any], iters: list[Iterator[Any]], rng: Any, p: Any, c: dict[str, int], max_reinits: int, state: Any
) -> Iterator[Any]:
    n = len(inputs)
    while True:
        idx = int(rng.choice(n, 1, replace=True, p=p).squeeze())
        c["draws"] += 1
        try:
            item = next(iters[idx])
        except StopIteration:
            state.reinit_counts[idx] += 1
            counts = state.reinit_counts
            if all(k >= 1 for k in counts) or any(k >= max_reinits for k in counts):
                return
            iters[idx] = inputs[idx]()  # the draw that hit the end yields nothing (squirrel-core's RNG sequence)
            continue
        state.num_samples[idx] += 1
        yield item


def sampler(
    ctx: RunContext, sid: str, inputs: Sequence[Any], probs: Sequence[float] | None, rng_state: Any
) -> Iterator[Any]:
    """Each next item from a randomly chosen input until all are exhausted (squirrel-core's RNG calls), keeping a
    position: the draws so far and the draws at which an input ran out replay the generator on resume."""
    start = resume.taken(ctx, sid)
    readers = [resume.reader(ctx, inp) for inp in inputs]
    iters = _open_inputs(ctx, inputs, start)
    rng = random.Random()
    rng.setstate(rng_state)
    order = list(range(len(inputs)))  # which original input each live slot is
    weights = list(probs) if probs is not None else None
    ended: list[list[int]] = [list(e) for e in start["ended"]] if start else []  # [draw number, slot removed]
    c = {"draws": 0}

    def remove(slot: int) -> None:
        nonlocal weights
        del iters[slot], order[slot]
        if weights is not None:
            del weights[slot]
            total = sum(weights)
            weights = [w / total for w in weights] if total > 0 else None

    if start:  # replay the draws (and the removals between them) without reading any item
        removals = {d: slot for d, slot in ended}
        for d in range(int(start["draws"])):
            rng.choices(range(len(order)), weights=weights)
            if d in removals:  # that draw found its input exhausted
                slot = removals[d]
                del order[slot]
                if weights is not None:
                    del weights[slot]
                    total = sum(weights)
                    weights = [w / total for w in weights] if total > 0 else None
        iters[:] = [iters[i] for i in order]
        c["draws"] = int(start["draws"])

    def position() -> Any:
        if not c["draws"]:
            return None
        by_input = [None] * len(inputs)
        for i, r in enumerate(readers):
            by_input[i] = r()
        return {"inputs": by_input, "draws": c["draws"], "ended": [list(e) for e in ended]}

    ctx.positions[sid] = position

    def run() -> Iterator[Any]:
        while iters:
            slot = rng.choices(range(len(iters)), weights=weights)[0]
            try:
                item = next(iters[slot])
            except StopIteration:
                ended.append([c["draws"], slot])  # this draw number stands for the removal on replay
                c["draws"] += 1
                remove(slot)
                continue
            c["draws"] += 1
            yield item

    return run()
