"""The fluent, squirrel-core compatible stream API (handles that build plans)."""

from squirrel_graph.stream.composable import Composable
from squirrel_graph.stream.multiplexer import Multiplexer, MultiplexingStrategy, MuxIterator
from squirrel_graph.stream.planning import build_plan
from squirrel_graph.stream.sources import IterableSamplerSource, IterableSource

__all__ = [
    "Composable",
    "IterableSamplerSource",
    "IterableSource",
    "Multiplexer",
    "MultiplexingStrategy",
    "MuxIterator",
    "build_plan",
]
