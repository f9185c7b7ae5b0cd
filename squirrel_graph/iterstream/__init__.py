"""squirrel-core compatible path ``squirrel.iterstream``."""

from squirrel_graph.stream import (
    Composable,
    FilePathGenerator,
    IterableSamplerSource,
    IterableSource,
    Multiplexer,
    MultiplexingStrategy,
)

__all__ = [
    "Composable",
    "FilePathGenerator",
    "IterableSamplerSource",
    "IterableSource",
    "Multiplexer",
    "MultiplexingStrategy",
]
