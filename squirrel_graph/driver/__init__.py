"""squirrel-core compatible path ``squirrel.driver``."""

from squirrel_graph.io.dataframe import CsvDriver, DataFrameDriver, ExcelDriver, FeatherDriver, ParquetDriver
from squirrel_graph.io.drivers import (
    Driver,
    FileDriver,
    IterDriver,
    JsonlDriver,
    MapDriver,
    MessagepackDriver,
    StoreDriver,
)
from squirrel_graph.io.source_combiner import SourceCombiner
from squirrel_graph.io.zarr_driver import ZarrDriver

__all__ = [
    "CsvDriver",
    "DataFrameDriver",
    "Driver",
    "ExcelDriver",
    "FeatherDriver",
    "FileDriver",
    "IterDriver",
    "JsonlDriver",
    "MapDriver",
    "MessagepackDriver",
    "ParquetDriver",
    "SourceCombiner",
    "StoreDriver",
    "ZarrDriver",
]
