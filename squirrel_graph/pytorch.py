"""PyTorch integration: rank/worker splits, the IterableDataset end of a stream, and ``skip_k``.

``import squirrel_graph`` does not import torch; this module does (for ``TorchIterable``'s base class).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import torch
import torch.distributed
import torch.utils.data

from squirrel_graph.graph import Node, Split, TorchCheck
from squirrel_graph.stream.composable import Composable

LEVELS = ("auto", "item")
EQUALIZE = (None, "drop", "pad")


def _check_level(method: str, level: str) -> None:
    if level not in LEVELS:
        raise ValueError(f"{method}(level=...): expected one of {LEVELS}, got {level!r}")


class SplitByRank(Composable):
    """This rank's share of the stream (every world_size-th item). Rank and world size are read from
    torch.distributed now, when the stream is built, and travel with the stream into DataLoader workers.

    ``level="auto"`` lets the optimizer move the split up to the shard keys; ``"item"`` keeps it here.
    ``equalize="drop"|"pad"`` gives every rank the same number of items (dropping or repeating some), so DDP
    ranks run the same number of steps.
    """

    def __init__(
        self,
        torch_dist_group: Any = None,
        level: str = "auto",
        equalize: str | None = None,
        shard_counts: Mapping[Any, int] | Callable[[Any], int] | None = None,
    ) -> None:
        super().__init__()
        _check_level("split_by_rank_pytorch", level)
        if equalize not in EQUALIZE:
            raise ValueError(f"split_by_rank_pytorch(equalize=...): expected one of {EQUALIZE}, got {equalize!r}")
        if shard_counts is not None and not (isinstance(shard_counts, Mapping) or callable(shard_counts)):
            raise TypeError("split_by_rank_pytorch(shard_counts=...): expected a mapping key -> count or a callable")
        self.rank, self.size = 0, 1
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized():
            group = torch_dist_group or dist.group.WORLD
            self.rank, self.size = dist.get_rank(group), dist.get_world_size(group)
        self.level, self.equalize, self.shard_counts = level, equalize, shard_counts

    def _builtin_node(self) -> Node:
        return Split(
            axis="rank",
            index=self.rank,
            parts=self.size,
            level=self.level,
            equalize=self.equalize if self.size > 1 else None,
            shard_counts=self.shard_counts,
        )


class SplitByWorker(Composable):
    """This DataLoader worker's share of the stream (worker info is read when the stream is iterated)."""

    def __init__(self, level: str = "auto") -> None:
        super().__init__()
        _check_level("split_by_worker_pytorch", level)
        self.level = level

    def _builtin_node(self) -> Node:
        return Split(axis="worker", level=self.level)


class TorchIterable(Composable, torch.utils.data.IterableDataset):
    """A stream as a ``torch.utils.data.IterableDataset``. On the first item it checks that a multi-rank or
    multi-worker run splits the data upstream (else PyTorchSplittingException); the flags turn the checks off."""

    def __init__(self, enforce_rank_check: bool = True, enforce_worker_check: bool = True) -> None:
        Composable.__init__(self)
        self.enforce_rank_check = enforce_rank_check
        self.enforce_worker_check = enforce_worker_check

    def _builtin_node(self) -> Node:
        return TorchCheck(enforce_rank_check=self.enforce_rank_check, enforce_worker_check=self.enforce_worker_check)

    __iter__ = Composable.__iter__  # a built-in stage, not a custom one (IterableDataset must not shadow it)

    def compile(self, *args: Any, **kwargs: Any) -> TorchIterable:
        """Like :meth:`Composable.compile`, but the result is still an IterableDataset for DataLoader."""
        compiled = Composable.compile(self.source, *args, **kwargs)
        return TorchIterable(self.enforce_rank_check, self.enforce_worker_check).source_(compiled)


def _skip_k(it: Iterable[Any], start: int, step: int) -> Iterator[Any]:
    return itertools.islice(it, start, None, step) if step > 1 else iter(it)


def skip_k(rank: int, world_size: int) -> Callable[[Iterable[Any]], Iterator[Any]]:
    """A key hook keeping every ``world_size``-th key from ``rank`` on: ``get_iter(key_hooks=[skip_k(0, 2)])``."""
    return functools.partial(_skip_k, start=rank, step=world_size)


__all__ = ["SplitByRank", "SplitByWorker", "TorchIterable", "skip_k"]
