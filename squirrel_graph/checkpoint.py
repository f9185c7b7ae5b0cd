"""Checkpoint and resume a stream mid-epoch: the public names (see ``docs/checkpointing.md``).

``stream.state_dict()`` / ``stream.load_state_dict(state)`` follow torchdata's ``Stateful`` protocol, so
``torchdata.stateful_dataloader.StatefulDataLoader`` checkpoints every worker of a ``to_torch_iterable()`` stream.
"""

from squirrel_graph.stream.checkpoint import (
    FORMAT,
    VERSION,
    NotResumableError,
    StateMismatchError,
    check_resumable,
)

__all__ = ["FORMAT", "VERSION", "NotResumableError", "StateMismatchError", "check_resumable"]
