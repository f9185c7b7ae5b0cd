"""squirrel-core compatible path ``squirrel.driver.feather``."""

from squirrel_graph.io.dataframe import FeatherDriver

__all__ = ["FeatherDriver"]
