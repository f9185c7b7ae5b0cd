"""Elastic determinism: which samples of a store this process yields, in which order, for any topology.

The epoch's global order is computed from the shard counts alone (no shard is read for it): the keys are
permuted, then the samples of every window of ``window`` consecutive (permuted) keys are permuted together, all from
``(seed, epoch)``. Global step ``t`` is the samples ``[t*G, (t+1)*G)`` of that order (a last partial step is
dropped, as ``drop_last`` would). Within a step the samples are grouped by shard and rank ``r`` of ``W`` takes the
``r``-th of ``W`` equal parts (so a rank reads few shards per step), in global order; DataLoader worker ``w`` of
``K`` produces the steps ``w, w + K, ...``, which a DataLoader hands out in step order. A resumed run skips the
samples already handed over by arithmetic: no shard before the position is read.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np


def _seed_int(seed: Any) -> int:
    return seed if isinstance(seed, int) and seed >= 0 else zlib.crc32(repr(seed).encode())


def global_order(counts: Sequence[int], seed: Any, epoch: int | None, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(key index, sample offset) of every sample of the epoch, in global order."""
    rng = np.random.default_rng(np.random.SeedSequence([_seed_int(seed), 0 if epoch is None else epoch + 1]))
    counts_arr = np.asarray(counts, dtype=np.int64)
    perm = rng.permutation(len(counts_arr))
    keys_out, offsets_out = [], []
    for start in range(0, len(perm), window):
        block = perm[start : start + window]
        key_idx = np.repeat(block, counts_arr[block])
        offsets = np.concatenate([np.arange(c, dtype=np.int64) for c in counts_arr[block]])  # block: >= 1 key
        shuffle = rng.permutation(len(key_idx))
        keys_out.append(key_idx[shuffle])
        offsets_out.append(offsets[shuffle])
    if not keys_out:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(keys_out), np.concatenate(offsets_out)


def step_part(keys: np.ndarray, offsets: np.ndarray, step: int, size: int, rank: int, world: int) -> np.ndarray:
    """Positions (in the global order) of rank ``rank``'s part of global step ``step``, in global order."""
    lo = step * size
    pos = np.arange(lo, lo + size)
    by_shard = pos[np.lexsort((offsets[pos], keys[pos]))]  # grouped by shard, so a rank reads few shards
    part = size // world
    return np.sort(by_shard[rank * part : (rank + 1) * part])


def schedule(
    counts: Sequence[int],
    seed: Any,
    epoch: int | None,
    window: int,
    size: int,
    rank: int,
    world: int,
    worker: int,
    workers: int,
) -> Iterator[tuple[int, int]]:
    """(key index, offset) of every sample this (rank, worker) yields this epoch, in order."""
    keys, offsets = global_order(counts, seed, epoch, window)
    for step in range(worker, len(keys) // size, workers):
        for p in step_part(keys, offsets, step, size, rank, world):
            yield int(keys[p]), int(offsets[p])


def samples(
    wanted: Iterator[tuple[int, int]], key_list: Sequence[Any], fetch: Callable[[Any], Any], cache_size: int
) -> Iterator[Any]:
    """The samples at ``wanted`` positions, reading each needed shard once while it is in use (an LRU of shards)."""
    cache: OrderedDict[int, Any] = OrderedDict()
    for key_index, offset in wanted:
        shard = cache.get(key_index)
        if shard is None:
            shard = list(fetch(key_list[key_index]))
            cache[key_index] = shard
            if len(cache) > cache_size:
                cache.popitem(last=False)
        else:
            cache.move_to_end(key_index)
        yield shard[offset]
