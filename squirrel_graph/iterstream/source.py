"""squirrel-core compatible path ``squirrel.iterstream.source``."""

from squirrel_graph.stream.sources import FilePathGenerator, IterableSamplerSource, IterableSource

__all__ = ["FilePathGenerator", "IterableSamplerSource", "IterableSource"]
