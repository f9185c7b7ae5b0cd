"""squirrel-core compatible path ``squirrel.driver.driver``."""

from squirrel_graph.io.drivers import Driver, IterDriver, MapDriver

__all__ = ["Driver", "IterDriver", "MapDriver"]
