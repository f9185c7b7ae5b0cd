"""squirrel-core compatible path ``squirrel.driver.source_combiner``."""

from squirrel_graph.io.source_combiner import SourceCombiner

__all__ = ["SourceCombiner"]
