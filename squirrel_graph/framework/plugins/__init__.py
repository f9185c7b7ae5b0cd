"""squirrel-core compatible path ``squirrel.framework.plugins`` (a plain registry; no pluggy)."""

from squirrel_graph.framework.plugins.plugin_manager import (
    BUILTIN_DRIVERS,
    DRIVER_ENTRY_POINT_GROUP,
    SOURCE_ENTRY_POINT_GROUP,
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
    "SOURCE_ENTRY_POINT_GROUP",
    "clear_entry_point_cache",
    "get_driver_class",
    "list_driver_names",
    "list_drivers",
    "plugin_sources",
    "register_driver",
    "register_source",
]
