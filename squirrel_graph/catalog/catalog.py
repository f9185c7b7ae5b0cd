"""squirrel-core compatible path ``squirrel.catalog.catalog``."""

from squirrel_graph.io.catalog import Catalog, CatalogSource
from squirrel_graph.io.catalog_records import CatalogKey, DummyCatalogSource

__all__ = ["Catalog", "CatalogKey", "CatalogSource", "DummyCatalogSource"]
