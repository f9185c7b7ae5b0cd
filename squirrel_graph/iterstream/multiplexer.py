"""squirrel-core compatible path ``squirrel.iterstream.multiplexer``."""

from squirrel_graph.stream.multiplexer import Multiplexer, MultiplexingStrategy, MuxIterator

__all__ = ["Multiplexer", "MultiplexingStrategy", "MuxIterator"]
