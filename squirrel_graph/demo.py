"""``python -m squirrel_graph.demo``: write a sharded store, stream it through a pipeline, explain and time it.

Generated samples are written to a messagepack store (the documented parallel write path), read back with
``MessagepackDriver(url).get_iter()``, and run through maps, a filter, an async_map and batched, with a monitor
after every stage. The demo prints ``.explain()`` as text and write and read throughput, streams the store through
a DataLoader, and ends with the bottleneck view of the first run: the per-stage table of ``stream.stats()``, the
plan as SVG drawn after the run (measured rates on the stages, the stage that bounds the pipeline in red) and the
throughput of every stage over the run as a PNG.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from squirrel_graph import IterableSource
from squirrel_graph.io.drivers import MessagepackDriver


def make_sample(i: int) -> dict:
    """A generated training sample: an id, a label and a small image."""
    rng = np.random.default_rng(i)
    return {"id": i, "label": i % 10, "image": rng.random((8, 8), dtype=np.float32)}


def normalize(sample: dict) -> dict:
    image = sample["image"]
    return {**sample, "image": (image - image.mean()) / (image.std() + 1e-6)}


def keep_even_labels(sample: dict) -> bool:
    return sample["label"] % 2 == 0


def add_flip(sample: dict) -> dict:
    return {**sample, "image": sample["image"][:, ::-1]}


def slow_lookup(sample: dict) -> dict:
    """Simulates an I/O-bound call (a 1 ms remote lookup), which async_map overlaps on a thread pool."""
    time.sleep(0.001)
    return {**sample, "weight": 1.0 + sample["id"] % 3}


def write_store(url: str, n: int, shard_size: int = 500) -> int:
    """Write ``n`` generated samples as shards of ``shard_size``; returns the number of shards."""
    store = MessagepackDriver(url).store
    keys = (
        IterableSource(range(n))
        .map(make_sample)
        .batched(shard_size, drop_last_if_not_full=False)
        .async_map(store.set)
        .collect()
    )
    return len(keys)


def build(url: str):
    return (
        MessagepackDriver(url)
        .get_iter(shuffle_key_buffer=8, key_shuffle_kwargs={"seed": 0})
        .map(normalize)
        .filter(keep_even_labels)
        .map(add_flip)
        .async_map(slow_lookup, max_workers=16)
        .batched(32)
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--out", default="demo-output", help="folder for the store, plan.svg and throughput.png")
    args = parser.parse_args(argv)

    out = Path(args.out)
    url = str(out / "store")
    shutil.rmtree(url, ignore_errors=True)
    start = time.perf_counter()
    shards = write_store(url, args.items)
    elapsed = time.perf_counter() - start
    print(
        f"wrote {args.items} samples in {shards} shards to {url} in {elapsed:.2f} s: "
        f"{args.items / elapsed:,.0f} samples/s\n"
    )

    stream = build(url).compile(monitor=True)  # a monitor after every physical stage, for stats()
    print(stream.explain())

    start = time.perf_counter()
    batches = items = 0
    for batch in stream:
        batches += 1
        items += len(batch)
    elapsed = time.perf_counter() - start
    print(
        f"read {args.items} samples and kept {items} in {batches} batches in {elapsed:.2f} s: "
        f"{args.items / elapsed:,.0f} samples/s read, {items / elapsed:,.0f} kept items/s"
    )
    stream_to_dataloader(url, args.items)
    show_bottleneck(stream, out)


def show_bottleneck(stream: Any, out: Path) -> None:
    """The first run seen stage by stage: the stats table, the plan drawn after the run, throughput over time."""
    from matplotlib.figure import Figure  # not pyplot: a file, whatever backend the terminal has

    stats = stream.stats()
    print("\nper-stage stats of the first run (what left each stage; own: the time spent in the stage itself):")
    print(stats)
    svg = stream.explain().render(out / "plan.svg")  # after the run: measured rates, the slowest stage in red
    figure = Figure(figsize=(10, 4.5), layout="constrained")
    stats.plot(figure.subplots())
    figure.savefig(out / "throughput.png", dpi=120)
    print(f"\nplan picture (after the run) written to {svg}, throughput over time to {out / 'throughput.png'}")


def image_and_label(sample: dict) -> dict:
    return {"image": sample["image"].copy(), "label": sample["label"]}


def stream_to_dataloader(url: str, n: int) -> None:
    """The same store through a 2-worker DataLoader: the split written after the fetch moves to the shard keys."""
    from torch.utils.data import DataLoader, default_collate
    from tqdm import tqdm

    dataset = (
        MessagepackDriver(url)
        .get_iter()
        .map(normalize)
        .map(image_and_label)
        .split_by_worker_pytorch()
        .batched(64, collation_fn=default_collate, drop_last_if_not_full=False)
        .to_torch_iterable()
    )
    landed = [r.reason for r in dataset.explain().rewrites if r.pass_name == "push_splits"]
    print(f"\nDataLoader(num_workers=2): the worker split {landed[0]}")
    start = time.perf_counter()
    seen = 0
    for batch in tqdm(DataLoader(dataset, num_workers=2, batch_size=None), desc="DataLoader, 2 workers", unit="batch"):
        seen += len(batch["label"])
    elapsed = time.perf_counter() - start
    print(f"{seen} of {n} samples through the DataLoader in {elapsed:.2f} s: {seen / elapsed:,.0f} samples/s")


if __name__ == "__main__":
    main()
