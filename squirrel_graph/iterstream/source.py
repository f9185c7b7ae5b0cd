"""squirrel-core compatible path ``squirrel.iterstream.source``."""

from squirrel_graph.io.paths import FilePathGenerator
from squirrel_graph.stream.sources import IterableSamplerSource, IterableSource

__all__ = ["FilePathGenerator", "IterableSamplerSource", "IterableSource"]
