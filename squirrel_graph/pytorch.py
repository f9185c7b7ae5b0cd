"""PyTorch integration: rank/worker splits, the IterableDataset end of a stream, and ``skip_k``.

``import squirrel_graph`` does not import torch; this module does (for ``TorchIterable``'s base class).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from squirrel_graph.stream.composable import EQUALIZE, LEVELS, Composable, SplitByRank, SplitByWorker
from squirrel_graph.stream.torch_handles import torch_iterable_class

#: ``stream.to_torch_iterable()``'s class: a Composable that is a ``torch.utils.data.IterableDataset``.
TorchIterable = torch_iterable_class(Composable)


def _skip_k(it: Iterable[Any], start: int, step: int) -> Iterator[Any]:
    return itertools.islice(it, start, None, step) if step > 1 else iter(it)


def skip_k(rank: int, world_size: int) -> Callable[[Iterable[Any]], Iterator[Any]]:
    """A key hook keeping every ``world_size``-th key from ``rank`` on: ``get_iter(key_hooks=[skip_k(0, 2)])``."""
    return functools.partial(_skip_k, start=rank, step=world_size)


__all__ = ["EQUALIZE", "LEVELS", "SplitByRank", "SplitByWorker", "TorchIterable", "skip_k"]
