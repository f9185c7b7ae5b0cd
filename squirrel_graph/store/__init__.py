"""squirrel-core compatible path ``squirrel.store``."""

from squirrel_graph.io.store import AbstractStore, FilesystemStore, SquirrelStore

__all__ = ["AbstractStore", "FilesystemStore", "SquirrelStore"]
