"""squirrel-core compatible path ``squirrel.store.store``."""

from squirrel_graph.io.store import AbstractStore

__all__ = ["AbstractStore"]
