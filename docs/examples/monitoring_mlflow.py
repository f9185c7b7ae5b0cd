# ruff: noqa: E402, B007
"""docs/monitoring.md, "mlflow": a monitor logging to an mlflow run, each call one step.

Not executed when the docs are built (an mlflow tracking store); tests/test_docs_examples.py runs this file against
a local SQLite store. The part between the ``docs: begin`` and ``docs: end`` markers is the block shown on the page;
the part before it writes the store it reads and picks the tracking store, the part after it reads the series back.
"""

import os

import mlflow

from squirrel_graph import IterableSource
from squirrel_graph.driver import MessagepackDriver

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
mlflow.set_tracking_uri(f"sqlite:///{os.path.abspath('mlflow.db')}")
setup_store = MessagepackDriver("store").store
IterableSource(range(3000)).map(lambda i: {"id": i}).batched(500).map(setup_store.set).join()

# docs: begin
import mlflow

from squirrel_graph.driver import MessagepackDriver
from squirrel_graph.tracking import WithStep

with mlflow.start_run():
    stream = MessagepackDriver("store").get_iter().monitor(WithStep(mlflow.log_metrics), prefix="load_")
    for batch in stream.batched(64):
        ...  # a training step
# docs: end

from mlflow.tracking import MlflowClient

history = MlflowClient().get_metric_history(mlflow.last_active_run().info.run_id, "load_IOPS number/s")
assert [m.step for m in history] == [0, 1, 2], history  # every=1000: one call per 1000 samples
print(len(history), "steps of load_IOPS number/s")
