"""Argument checks shared by the fluent methods: each error names the method and the argument."""

from __future__ import annotations

import difflib
import math
import numbers
import random
from collections.abc import Collection, Mapping
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


def check_auto_int(method: str, arg: str, value: Any, minimum: int, allow_none: bool = False) -> Any:
    """Like :func:`check_int`, but ``"auto"`` (tuned while the stream runs, see ``runtime.autotune``) is accepted."""
    if value == "auto" and isinstance(value, str):
        return "auto"
    try:
        return check_int(method, arg, value, minimum, allow_none)
    except TypeError as exc:
        raise TypeError(f'{exc} (or "auto")') from None


def check_seed(method: str, seed: Any) -> None:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, SEED_TYPES)):
        raise TypeError(
            f"{method}(seed=...): expected one of int, float, str, bytes, bytearray or None, got {type(seed).__name__}"
        )


def check_rng(method: str, rng: Any) -> None:
    if rng is not None and not isinstance(rng, random.Random):
        raise TypeError(f"{method}(rng=...): expected a random.Random or None, got {type(rng).__name__}")


def check_seconds(method: str, arg: str, value: Any, positive: bool, allow_none: bool = False) -> float | None:
    """``value`` as a finite float of seconds (> 0 if ``positive``, else >= 0), or None if allowed; NaN, infinity
    and bools are refused and the error names the method and the argument."""
    bound = "> 0" if positive else ">= 0"
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        kind = f"a number of seconds {bound}" + (" or None" if allow_none else "")
        raise TypeError(f"{method}({arg}=...): expected {kind}, got {type(value).__name__} {value!r:.60}")
    value = float(value)
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        none = " (None: no limit)" if allow_none else ""
        raise ValueError(f"{method}({arg}=...): expected a finite number of seconds {bound}{none}, got {value!r}")
    return value


def check_kwargs(method: str, arg: str, kwargs: Any, known: Collection[str] | None, target: str) -> dict[str, Any]:
    """``kwargs`` (a mapping or None) as a dict; with ``known``, a key not in it is a TypeError naming ``arg``, the
    key, the function ``target`` that would receive it and the keys it takes (``known`` None: not checked)."""
    if kwargs is None:
        return {}
    if not isinstance(kwargs, Mapping):
        kind = type(kwargs).__name__
        raise TypeError(f"{method}({arg}=...): expected a dict of keyword arguments or None, got {kind}")
    out = dict(kwargs)
    if known is not None:
        unknown = [k for k in out if k not in known]
        if unknown:
            hints = {k: difflib.get_close_matches(str(k), list(known), n=1) for k in unknown}
            hint = "; ".join(f"did you mean {h[0]!r} for {k!r}?" for k, h in hints.items() if h)
            names = ", ".join(sorted(known)) or "none"
            raise TypeError(
                f"{method}({arg}=...): unknown key(s) {unknown} for {target}; known: {names}"
                + (f" ({hint})" if hint else "")
            )
    return out
