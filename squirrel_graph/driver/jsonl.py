"""squirrel-core compatible path ``squirrel.driver.jsonl``."""

from squirrel_graph.io.drivers import JsonlDriver

__all__ = ["JsonlDriver"]
