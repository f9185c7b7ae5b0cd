"""Argument checks shared by the fluent methods: each error names the method and the argument."""

from __future__ import annotations

import numbers
import random
from typing import Any

import numpy as np

from squirrel_graph.randomness import SEED_TYPES


def check_callable(method: str, arg: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not callable(value):
        raise TypeError(f"{method}({arg}=...): expected a callable, got {type(value).__name__} {value!r:.60}")


def check_int(method: str, arg: str, value: Any, minimum: int, allow_none: bool = False) -> Any:
    """``value`` as a Python int (numpy and other integral types accepted, ``bool`` refused), or None if allowed;
    an error names the method and the argument."""
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        kind = "an int or None" if allow_none else "an int"
        raise TypeError(f"{method}({arg}=...): expected {kind} >= {minimum}, got {type(value).__name__} {value!r:.60}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{method}({arg}=...): expected an int >= {minimum}, got {value}")
    return value


def check_seed(method: str, seed: Any) -> None:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, SEED_TYPES)):
        raise TypeError(
            f"{method}(seed=...): expected one of int, float, str, bytes, bytearray or None, got {type(seed).__name__}"
        )


def check_rng(method: str, rng: Any) -> None:
    if rng is not None and not isinstance(rng, random.Random):
        raise TypeError(f"{method}(rng=...): expected a random.Random or None, got {type(rng).__name__}")
