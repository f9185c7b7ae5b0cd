# ruff: noqa: E402, F821
"""docs/spark.md, "Training from it". The part between the ``docs: begin`` and ``docs: end`` markers is the block shown
on the page; it uses names from the page's earlier blocks, which the part before it runs (so the file also runs on its
own). tests/test_spark.py runs the page's blocks in order on its own session."""

import runpy
from pathlib import Path

globals().update(runpy.run_path(str(Path(__file__).with_name("spark_write.py"))))

# docs: begin
import numpy as np
import torch
from torch.utils.data import DataLoader

from squirrel_graph.driver import MessagepackDriver


def to_tensors(batch):
    x = torch.from_numpy(np.stack([s["x"] for s in batch])).flatten(1)
    y = torch.tensor([float(s["y"]) for s in batch])
    return x, y


ds = (
    MessagepackDriver(url)
    .get_iter()
    .split_by_worker_pytorch()
    .batched(16, collation_fn=to_tensors, drop_last_if_not_full=False)
    .to_torch_iterable()
)
model = torch.nn.Linear(16, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)
for x, y in DataLoader(ds, num_workers=2, batch_size=None):
    loss = torch.nn.functional.mse_loss(model(x).squeeze(1), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    print(tuple(x.shape), x.dtype, round(loss.item(), 1))
# docs: end
