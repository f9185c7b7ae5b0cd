"""squirrel-core compatible path ``squirrel.driver.excel``."""

from squirrel_graph.io.dataframe import ExcelDriver

__all__ = ["ExcelDriver"]
