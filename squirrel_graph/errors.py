"""Exceptions and the helper that tells a user which stage an error came from."""

from __future__ import annotations

import re

NOTE_PREFIX = "squirrel_graph: raised in stage"


class SquirrelGraphError(Exception):
    """Base class of squirrel_graph's own errors."""


class CorruptShardError(SquirrelGraphError, OSError):
    """A shard file cannot be decompressed or decoded; the message names the shard URL."""


class LoweringError(SquirrelGraphError):
    """No backend can run a node of an optimized plan."""


class SourceExistsError(SquirrelGraphError):
    """A catalog source with this identifier and version already exists."""


class SourceArgumentsCombinationException(SquirrelGraphError):
    """Arguments that cannot be combined were given to a source."""


class PyTorchSplittingException(SquirrelGraphError):
    """A multi-rank or multi-worker PyTorch run has no split of the data upstream."""


class OneShotSourceWarning(UserWarning):
    """A run opened a one-shot source (a generator, an iterator) that an earlier run or pass already iterated."""


def annotate(exc: BaseException, stage: str, node_id: str | None = None) -> BaseException:
    """Attach the stage name to ``exc`` (once) as an exception note; the original traceback is kept."""
    notes = getattr(exc, "__notes__", None) or []
    if any(str(n).startswith(NOTE_PREFIX) for n in notes):
        return exc
    where = f" (node {node_id})" if node_id else ""
    note = f"{NOTE_PREFIX} '{stage}'{where}"
    if hasattr(exc, "add_note"):
        exc.add_note(note)
    else:  # Python 3.10: no add_note; keep the same attribute so tools that read it still see it
        try:
            exc.__notes__ = [*notes, note]  # type: ignore[attr-defined]
        except (AttributeError, TypeError):
            pass
    return exc


_NOTE = re.compile(re.escape(NOTE_PREFIX) + r" '(?P<stage>.*)'(?: \(node [^)]*\))?$")


def stage_of(exc: BaseException) -> str | None:
    """The stage name recorded on ``exc`` by :func:`annotate`, if any (labels may contain quotes)."""
    for note in getattr(exc, "__notes__", None) or []:
        match = _NOTE.match(str(note))
        if match:
            return match.group("stage")
    return None
