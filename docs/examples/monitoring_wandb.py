# ruff: noqa: E402, B007
"""docs/monitoring.md, "wandb": two monitors logging to one wandb run.

Not executed when the docs are built (a wandb run); tests/test_docs_examples.py runs this file offline. The part
between the ``docs: begin`` and ``docs: end`` markers is the block shown on the page; the part before it writes the
store it reads, the part after it checks what reached the run.
"""

import os

import numpy as np

from squirrel_graph import IterableSource
from squirrel_graph.driver import MessagepackDriver

os.environ.setdefault("WANDB_MODE", "offline")  # the run's files land in ./wandb, nothing is sent
os.environ.setdefault("WANDB_SILENT", "true")
setup_store = MessagepackDriver("store").store


def make(i):
    return {"id": i, "image": np.full((4, 4), i % 255, dtype=np.uint8)}


IterableSource(range(3000)).map(make).batched(500).map(setup_store.set).join()

# docs: begin
import wandb

from squirrel_graph.driver import MessagepackDriver


def augment(sample):
    return {**sample, "image": sample["image"][:, ::-1]}  # a horizontal flip


run = wandb.init(project="my-project")
stream = (
    MessagepackDriver("store").get_iter()
    .monitor(wandb.log, prefix="(after fetch) ")
    .map(augment)
    .monitor(wandb.log, prefix="(after augment) ")
    .batched(64)
)
for batch in stream:
    ...  # a training step
# docs: end

summary = dict(run.summary)
run.finish()
for prefix in ("(after fetch) ", "(after augment) "):
    assert summary[f"{prefix}IOPS number/s"] > 0, summary
print(sorted(k for k in summary if not k.startswith("_")))
