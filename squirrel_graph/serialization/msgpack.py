"""squirrel-core compatible path ``squirrel.serialization.msgpack``."""

from squirrel_graph.io.serialization import MessagepackSerializer

__all__ = ["MessagepackSerializer"]
