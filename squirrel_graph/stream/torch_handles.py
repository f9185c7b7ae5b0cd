"""The ``torch.utils.data.IterableDataset`` end of a stream, built on first use so that importing
squirrel_graph never imports torch. The class is published as ``squirrel_graph.pytorch.TorchIterable``."""

from __future__ import annotations

import functools
from typing import Any

from squirrel_graph.graph import Node, TorchCheck


@functools.cache
def torch_iterable_class(base: type) -> type:
    """``TorchIterable``: a ``base`` (the Composable class) that is also an IterableDataset; one class per process."""
    import torch.utils.data

    class TorchIterable(base, torch.utils.data.IterableDataset):  # type: ignore[misc, valid-type]
        """A stream as a ``torch.utils.data.IterableDataset``. On the first item it checks that a multi-rank or
        multi-worker run splits the data upstream (else PyTorchSplittingException); the flags turn the checks
        off."""

        def __init__(self, enforce_rank_check: bool = True, enforce_worker_check: bool = True) -> None:
            base.__init__(self)
            self.enforce_rank_check = enforce_rank_check
            self.enforce_worker_check = enforce_worker_check

        def _builtin_node(self) -> Node:
            return TorchCheck(
                enforce_rank_check=self.enforce_rank_check, enforce_worker_check=self.enforce_worker_check
            )

        __iter__ = base.__iter__  # a built-in stage, not a custom one (IterableDataset must not shadow it)

        def compile(self, *args: Any, **kwargs: Any) -> Any:
            """Like ``Composable.compile``, but the result is still an IterableDataset for DataLoader."""
            compiled = base.compile(self.source, *args, **kwargs)
            return TorchIterable(self.enforce_rank_check, self.enforce_worker_check).source_(compiled)

    TorchIterable.__module__ = "squirrel_graph.pytorch"  # where pickle finds it (DataLoader workers)
    TorchIterable.__qualname__ = "TorchIterable"
    return TorchIterable
