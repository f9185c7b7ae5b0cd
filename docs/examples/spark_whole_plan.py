# ruff: noqa: E402, F821
"""docs/spark.md, "Whole-plan mode". The part between the ``docs: begin`` and ``docs: end`` markers is the block shown
on the page; it uses names from the page's earlier blocks, which the part before it runs (so the file also runs on its
own). tests/test_spark.py runs the page's blocks in order on its own session."""

import runpy
from pathlib import Path

globals().update(runpy.run_path(str(Path(__file__).with_name("spark_write.py"))))

# docs: begin
from squirrel_graph.driver import MessagepackDriver


def summary(sample):
    return {"y": sample["y"], "mean": float(sample["x"].mean())}


stream = MessagepackDriver(url).get_iter().map(summary).batched(16)
on_spark = stream.compile(backend="spark", spark=spark)
batches = on_spark.collect()
ids = [s["y"] for batch in batches for s in batch]
print(ids == list(range(64)), batches[0][:2])
print(on_spark.explain(stage="physical"))
# docs: end
