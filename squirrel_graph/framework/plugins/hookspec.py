"""squirrel-core compatible path ``squirrel.framework.plugins.hookspec``: the pluggy hook specifications."""

from squirrel_graph.io.catalog_records import CatalogKey, Source
from squirrel_graph.io.drivers import Driver
from squirrel_graph.io.pluggy_hookspec import PLUGGY_HOOKGROUP, hookspec, squirrel_drivers, squirrel_sources

__all__ = ["PLUGGY_HOOKGROUP", "CatalogKey", "Driver", "Source", "hookspec", "squirrel_drivers", "squirrel_sources"]
