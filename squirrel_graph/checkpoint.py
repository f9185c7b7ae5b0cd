"""Checkpoint and resume a stream mid-epoch: the public names (see ``docs/checkpointing.md``).

``stream.state_dict()`` / ``stream.load_state_dict(state)`` follow torchdata's ``Stateful`` protocol, so
``torchdata.stateful_dataloader.StatefulDataLoader`` checkpoints every worker of a ``to_torch_iterable()`` stream.
"""

import contextlib
from collections.abc import Iterator

from squirrel_graph.runtime.resume import set_tracking
from squirrel_graph.stream.checkpoint import (
    FORMAT,
    VERSION,
    NotResumableError,
    StateMismatchError,
    check_resumable,
    merge_states,
)


@contextlib.contextmanager
def track_positions(enabled: bool) -> Iterator[None]:
    """Runs opened inside keep (default) or do not keep positions; off, read-ahead stages skip their per-item
    snapshots and states say "not resumable". For measuring what keeping state costs; rarely worth it otherwise."""
    previous = set_tracking(enabled)
    try:
        yield
    finally:
        set_tracking(previous)


__all__ = [
    "FORMAT",
    "VERSION",
    "NotResumableError",
    "StateMismatchError",
    "check_resumable",
    "merge_states",
    "track_positions",
]
