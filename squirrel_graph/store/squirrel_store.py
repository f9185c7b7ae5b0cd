"""squirrel-core compatible path ``squirrel.store.squirrel_store``."""

from squirrel_graph.io.store import SquirrelStore

__all__ = ["SquirrelStore"]
