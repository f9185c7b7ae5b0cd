"""squirrel-core compatible path ``squirrel.framework.plugins.plugin_manager``: squirrel-core's pluggy plugin
manager beside squirrel_graph's registries (see :mod:`squirrel_graph.io.plugins` for the lookup order)."""

from squirrel_graph.io.catalog_records import CatalogKey
from squirrel_graph.io.pluggy_hooks import squirrel_plugin_manager
from squirrel_graph.io.plugins import (
    BUILTIN_DRIVERS,
    DRIVER_ENTRY_POINT_GROUP,
    LAZY_BUILTIN_DRIVERS,
    SOURCE_ENTRY_POINT_GROUP,
    BuiltinDriverImportError,
    clear_entry_point_cache,
    get_driver_class,
    list_driver_names,
    list_drivers,
    plugin_sources,
    register_driver,
    register_source,
)

__all__ = [
    "BUILTIN_DRIVERS",
    "DRIVER_ENTRY_POINT_GROUP",
    "LAZY_BUILTIN_DRIVERS",
    "SOURCE_ENTRY_POINT_GROUP",
    "BuiltinDriverImportError",
    "CatalogKey",
    "clear_entry_point_cache",
    "get_driver_class",
    "list_driver_names",
    "list_drivers",
    "plugin_sources",
    "register_driver",
    "register_source",
    "squirrel_plugin_manager",
]
