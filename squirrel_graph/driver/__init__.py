"""squirrel-core compatible path ``squirrel.driver``."""

from squirrel_graph.io.drivers import (
    Driver,
    FileDriver,
    IterDriver,
    JsonlDriver,
    MapDriver,
    MessagepackDriver,
    StoreDriver,
)

__all__ = ["Driver", "FileDriver", "IterDriver", "JsonlDriver", "MapDriver", "MessagepackDriver", "StoreDriver"]
