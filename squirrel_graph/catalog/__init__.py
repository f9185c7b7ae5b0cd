"""squirrel-core compatible path ``squirrel.catalog``."""

from squirrel_graph.io.catalog import Catalog
from squirrel_graph.io.catalog_records import CatalogKey, Source

__all__ = ["Catalog", "CatalogKey", "Source"]
