"""Random number generators shared by the fluent layer and the backends (seeds as squirrel-core accepts them)."""

from __future__ import annotations

import os
import random
import time
from typing import Any

SEED_TYPES = (int, float, str, bytes, bytearray)


def get_random_range(rng: random.Random | None = None, seed: Any = None) -> random.Random:
    """A seeded ``random.Random``: ``seed`` wins; a given ``rng`` is used as it is; otherwise seeded from pid+time.

    Unlike squirrel-core, an ``rng`` passed without ``seed`` is *not* reseeded, so it is reproducible.
    """
    if seed is not None:
        out = rng if rng is not None else random.Random()
        out.seed(seed)
        return out
    if rng is not None:
        return rng
    return random.Random(f"{os.getpid()}{time.time()}")
