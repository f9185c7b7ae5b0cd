"""One-shot sources: iterators that ``iter()`` returns unchanged, so a second run finds them used up.

A run that opens such a source records it here, by identity; when a later run (or a ``loop()`` pass, or a
Multiplexer re-initialising its input) opens the same object again, it gets a :class:`OneShotSourceWarning` naming
the source stage, since what it will read is only what the earlier run left (nothing, if it read to the end).
The check happens when a run opens the source, so a compiled plan cached on a handle is checked on every run.
"""

from __future__ import annotations

import functools
import os
import sys
import warnings
import weakref
from collections import OrderedDict
from typing import Any

from squirrel_graph.errors import OneShotSourceWarning

_PIN_LIMIT = 64  # iterators that take no weak reference (map, zip, list iterators) are held, the newest only

# our modules, and the generated loops (their code objects are named "<squirrel_graph fused loop ...>")
_INTERNAL = (os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep, "<squirrel_graph")
_weak: dict[int, weakref.ref[Any]] = {}
_pinned: OrderedDict[int, Any] = OrderedDict()


def is_one_shot(source: Any) -> bool:
    """Is ``source`` an iterator (``iter(source) is source``) rather than a re-iterable collection or a callable?"""
    return not callable(source) and iter(source) is source


def opened(it: Any, stage: str, node_id: str) -> None:
    """Record that a run opened the one-shot iterator ``it``; warn if a run opened it before."""
    if _seen(it):
        warnings.warn(
            f"{stage} (node {node_id}): this one-shot {type(it).__name__} was already iterated (by an earlier run, "
            "or by an earlier pass of loop() or a Multiplexer), so this run reads only what was left of it "
            "(nothing, if it was used up). To iterate a stream again, pass a list, a range or a callable that "
            "returns a fresh iterator: IterableSource(make_items) rather than IterableSource(make_items()).",
            OneShotSourceWarning,
            stacklevel=_outside_package(),
        )


def _outside_package() -> int:
    """The ``stacklevel`` of the innermost caller outside squirrel_graph (the user's loop or ``collect()``)."""
    frame, level = sys._getframe(2), 2
    while frame is not None and frame.f_code.co_filename.startswith(_INTERNAL):
        frame, level = frame.f_back, level + 1
    return level


def _seen(it: Any) -> bool:
    key = id(it)
    ref = _weak.get(key)
    if ref is not None and ref() is it:
        return True
    if _pinned.get(key) is it:
        return True
    try:
        _weak[key] = weakref.ref(it, functools.partial(_forget, key))
    except TypeError:  # no weak references to it: hold it (an id is only reliable while the object lives)
        _pinned[key] = it
        if len(_pinned) > _PIN_LIMIT:
            _pinned.popitem(last=False)
    return False


def _forget(key: int, ref: weakref.ref[Any]) -> None:
    if _weak.get(key) is ref:
        del _weak[key]
