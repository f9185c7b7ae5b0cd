"""squirrel-core compatible path ``squirrel.driver.csv``."""

from squirrel_graph.io.dataframe import CsvDriver

__all__ = ["CsvDriver"]
