"""docs/spark.md, "A local session". The part between the ``docs: begin`` and ``docs: end`` markers is the block shown
on the page (it needs Java 17); tests/test_spark.py runs the page's blocks in order on its own session."""

# docs: begin
import os
import sys

from pyspark.sql import SparkSession

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # executors run this Python, which has squirrel_graph
spark = (
    SparkSession.builder.master("local[2]")
    .config("spark.driver.host", "127.0.0.1")
    .config("spark.driver.bindAddress", "127.0.0.1")
    .config("spark.ui.enabled", "false")
    .getOrCreate()
)
spark.sparkContext.setLogLevel("ERROR")
# docs: end
