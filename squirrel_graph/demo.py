"""``python -m squirrel_graph.demo``: write a sharded store, stream it through a pipeline, explain and time it.

Generated samples are written to a messagepack store (the documented parallel write path), read back with
``MessagepackDriver(url).get_iter()``, and run through maps, a filter, an async_map and batched. The demo prints
``.explain()`` as text, writes the plan as SVG, and prints write and read throughput.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

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
    parser.add_argument("--out", default="demo-output", help="folder for the store and plan.svg")
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
    explanation = stream.explain()
    print(explanation)
    svg = explanation.render(out / "plan.svg")
    print(f"\nplan picture written to {svg}")

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
    print("\nper-stage stats of that run (what left each stage):")
    for stage, s in stream.stats().items():
        print(f"  {stage:<70.70} {s['items']:>7} items {s['items/s']:>12,.0f} items/s {s['MB/s']:>8} MB/s")
    stream_to_dataloader(url, args.items)


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
