"""squirrel-core compatible path ``squirrel.catalog``."""

from squirrel_graph.io.catalog import Catalog, CatalogKey, Source

__all__ = ["Catalog", "CatalogKey", "Source"]
