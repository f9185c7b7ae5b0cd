"""squirrel-core compatible path ``squirrel.driver.parquet``."""

from squirrel_graph.io.dataframe import ParquetDriver

__all__ = ["ParquetDriver"]
