"""squirrel-core compatible path ``squirrel.driver.store``."""

from squirrel_graph.io.drivers import StoreDriver

__all__ = ["StoreDriver"]
