# ruff: noqa: E402, F821
"""docs/spark.md, "Reading a store back". The part between the ``docs: begin`` and ``docs: end`` markers is the block
shown on the page; it uses names from the page's earlier blocks, which the part before it runs (so the file also runs
on its own). tests/test_spark.py runs the page's blocks in order on its own session."""

import runpy
from pathlib import Path

globals().update(runpy.run_path(str(Path(__file__).with_name("spark_write.py"))))

# docs: begin
from squirrel_graph.spark import read_store

df = read_store(spark, url)
df.printSchema()
print(df.count(), "rows in", df.rdd.getNumPartitions(), "partitions")
print(df.filter("y >= 60").select("y").collect())
# docs: end
