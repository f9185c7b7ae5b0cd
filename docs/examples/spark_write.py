# ruff: noqa: E402, F821
"""docs/spark.md, "Writing a store from a DataFrame". The part between the ``docs: begin`` and ``docs: end`` markers is
the block shown on the page; it uses names from the page's earlier blocks, which the part before it runs (so the file
also runs on its own). tests/test_spark.py runs the page's blocks in order on its own session."""

import runpy
from pathlib import Path

globals().update(runpy.run_path(str(Path(__file__).with_name("spark_session.py"))))

# docs: begin
import numpy as np

from squirrel_graph.driver import MessagepackDriver
from squirrel_graph.spark import write_store

rows = [(i, (np.arange(16, dtype=np.float32).reshape(4, 4) + i).tolist()) for i in range(64)]
df = spark.createDataFrame(spark.sparkContext.parallelize(rows, 2), "y long, x array<array<float>>")

url = "spark-store"  # here a local folder; on a cluster a shared disk or an object store (s3://, gs://)
keys = write_store(df, url, samples_per_shard=16, mode="overwrite")
print(len(keys), "shards, e.g.", keys[0])

sample = MessagepackDriver(url).get_iter().take(1).collect()[0]
print(sample["y"], sample["x"].dtype, sample["x"].shape)
# docs: end
