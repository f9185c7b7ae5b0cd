"""squirrel-core compatible path ``squirrel.iterstream``."""

from squirrel_graph.io.paths import FilePathGenerator
from squirrel_graph.stream import (
    Composable,
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
