"""squirrel-core compatible path ``squirrel.iterstream.torch_composables`` (imports torch)."""

from squirrel_graph.errors import PyTorchSplittingException
from squirrel_graph.pytorch import SplitByRank, SplitByWorker, TorchIterable, skip_k

__all__ = ["PyTorchSplittingException", "SplitByRank", "SplitByWorker", "TorchIterable", "skip_k"]
