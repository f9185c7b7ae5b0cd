"""squirrel-core compatible path ``squirrel.catalog.source``."""

from squirrel_graph.io.catalog_records import Source

__all__ = ["Source"]
