"""squirrel-core compatible path ``squirrel.serialization.serializer``."""

from squirrel_graph.io.serialization import SquirrelSerializer

__all__ = ["SquirrelSerializer"]
