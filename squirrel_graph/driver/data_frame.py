"""squirrel-core compatible path ``squirrel.driver.data_frame``."""

from squirrel_graph.io.dataframe import ENGINE, DataFrameDriver

__all__ = ["ENGINE", "DataFrameDriver"]
