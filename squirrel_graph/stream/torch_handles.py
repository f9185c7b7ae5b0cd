"""The ``torch.utils.data.IterableDataset`` end of a stream, built on first use so that importing
squirrel_graph never imports torch. The class is published as ``squirrel_graph.pytorch.TorchIterable``."""

from __future__ import annotations

import functools
from typing import Any

from squirrel_graph.graph import Node, PackBatches, TorchCheck


@functools.cache
def torch_iterable_class(base: type) -> type:
    """``TorchIterable``: a ``base`` (the Composable class) that is also an IterableDataset; one class per process."""
    import torch.utils.data

    class PackStage(base):  # type: ignore[misc, valid-type]
        """The ``pack_batches`` stage a ``TorchIterable(pack=True)`` reads its source through (never pickled)."""

        def _builtin_node(self) -> Node:
            return PackBatches()

    class TorchIterable(base, torch.utils.data.IterableDataset):  # type: ignore[misc, valid-type]
        """A stream as a ``torch.utils.data.IterableDataset``. On the first item it checks that a multi-rank or
        multi-worker run splits the data upstream (else PyTorchSplittingException); the flags turn the checks
        off. ``pack=True`` packs each batch in DataLoader workers (see :mod:`squirrel_graph.runtime.packing`)."""

        def __init__(
            self, enforce_rank_check: bool = True, enforce_worker_check: bool = True, pack: bool = False
        ) -> None:
            base.__init__(self)
            if not isinstance(pack, bool):
                raise TypeError(f"to_torch_iterable(pack=...): expected a bool, got {type(pack).__name__}")
            self.enforce_rank_check = enforce_rank_check
            self.enforce_worker_check = enforce_worker_check
            self.pack = pack

        def _builtin_node(self) -> Node:
            return TorchCheck(
                enforce_rank_check=self.enforce_rank_check, enforce_worker_check=self.enforce_worker_check
            )

        def _inputs(self) -> list[Any]:
            """With ``pack=True``, a ``pack_batches`` stage between the source and this dataset (one per source)."""
            if not self.pack or self.source is None:
                return [self.source]
            stage = self.__dict__.get("_pack_stage")
            if stage is None or stage.source is not self.source:
                stage = self.__dict__["_pack_stage"] = PackStage(self.source)
            return [stage]

        __iter__ = base.__iter__  # a built-in stage, not a custom one (IterableDataset must not shadow it)

        def __getstate__(self) -> dict[str, Any]:
            state = base.__getstate__(self)
            state.pop("_pack_stage", None)  # rebuilt where it is needed
            return state

        def compile(self, *args: Any, **kwargs: Any) -> Any:
            """Like ``Composable.compile``, but the result is still an IterableDataset for DataLoader."""
            compiled = base.compile(self.source, *args, **kwargs)
            return TorchIterable(self.enforce_rank_check, self.enforce_worker_check, self.pack).source_(compiled)

    TorchIterable.__module__ = "squirrel_graph.pytorch"  # where pickle finds it (DataLoader workers)
    TorchIterable.__qualname__ = "TorchIterable"
    return TorchIterable
