"""squirrel-core compatible path ``squirrel.catalog.catalog``."""

from squirrel_graph.io.catalog import Catalog, CatalogKey, CatalogSource, DummyCatalogSource

__all__ = ["Catalog", "CatalogKey", "CatalogSource", "DummyCatalogSource"]
