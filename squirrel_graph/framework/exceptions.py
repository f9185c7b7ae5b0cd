"""squirrel-core compatible path ``squirrel.framework.exceptions`` (re-exports :mod:`squirrel_graph.errors`)."""

from squirrel_graph.errors import PyTorchSplittingException, SourceArgumentsCombinationException, SourceExistsError

__all__ = ["PyTorchSplittingException", "SourceArgumentsCombinationException", "SourceExistsError"]
