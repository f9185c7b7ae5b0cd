"""squirrel-core compatible path ``squirrel.store.filesystem``."""

from squirrel_graph.io.store import FilesystemStore, get_random_key

__all__ = ["FilesystemStore", "get_random_key"]
