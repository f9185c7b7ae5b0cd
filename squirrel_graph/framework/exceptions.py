"""squirrel-core compatible path ``squirrel.framework.exceptions``."""

from squirrel_graph.errors import SquirrelGraphError


class SourceExistsError(SquirrelGraphError):
    """A catalog source with this identifier and version already exists."""


class SourceArgumentsCombinationException(SquirrelGraphError):
    """Arguments that cannot be combined were given to a source."""


class PyTorchSplittingException(SquirrelGraphError):
    """A multi-rank or multi-worker PyTorch run has no split of the data upstream."""


__all__ = ["PyTorchSplittingException", "SourceArgumentsCombinationException", "SourceExistsError"]
