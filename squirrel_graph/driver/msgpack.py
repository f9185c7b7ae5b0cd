"""squirrel-core compatible path ``squirrel.driver.msgpack``."""

from squirrel_graph.io.drivers import MessagepackDriver

__all__ = ["MessagepackDriver"]
