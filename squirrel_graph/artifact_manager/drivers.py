"""squirrel-core compatible path ``squirrel.artifact_manager.drivers``."""

from squirrel_graph.artifacts.drivers import DirectoryDriver

__all__ = ["DirectoryDriver"]
