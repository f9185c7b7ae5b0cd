"""squirrel-core compatible path ``squirrel.driver.file``."""

from squirrel_graph.io.drivers import FileDriver

__all__ = ["FileDriver"]
