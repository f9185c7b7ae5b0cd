# ruff: noqa: E402, F821
"""docs/spark.md, "Tensor columns". The part between the ``docs: begin`` and ``docs: end`` markers is the block shown
on the page; it uses names from the page's earlier blocks, which the part before it runs (so the file also runs on its
own). tests/test_spark.py runs the page's blocks in order on its own session."""

import runpy
from pathlib import Path

globals().update(runpy.run_path(str(Path(__file__).with_name("spark_write.py"))))

# docs: begin
from pyspark.sql.types import LongType, StructField, StructType

from squirrel_graph.spark import read_store, tensor_field, tensor_metadata, write_store

raw = [(i, (np.arange(16, dtype=np.float32).reshape(4, 4) + i).tobytes()) for i in range(64)]
tensor_df = spark.createDataFrame(raw, "y long, x binary").withMetadata("x", tensor_metadata("float32", (4, 4)))
tensor_keys = write_store(tensor_df, "tensor-store", samples_per_shard=16, mode="overwrite")
print(MessagepackDriver("tensor-store").get_iter().take(1).collect()[0]["x"].shape)

schema = StructType([StructField("y", LongType()), tensor_field("x", "float32", (4, 4))])
print(read_store(spark, url, schema=schema).schema["x"].metadata)
# docs: end
