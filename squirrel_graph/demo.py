"""``python -m squirrel_graph.demo``: a small real pipeline, its explain(), a plan SVG, and its throughput."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from squirrel_graph import IterableSource


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


def build(n: int):
    return (
        IterableSource(range(n))
        .map(make_sample)
        .map(normalize)
        .filter(keep_even_labels)
        .map(add_flip)
        .async_map(slow_lookup, max_workers=16)
        .batched(32)
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--out", default="demo-output", help="folder for plan.svg")
    args = parser.parse_args(argv)

    stream = build(args.items)
    explanation = stream.explain()
    print(explanation)
    out = Path(args.out)
    svg = explanation.render(out / "plan.svg")
    print(f"\nplan picture written to {svg}")

    start = time.perf_counter()
    batches = items = 0
    for batch in stream:
        batches += 1
        items += len(batch)
    elapsed = time.perf_counter() - start
    print(
        f"{items} items in {batches} batches in {elapsed:.2f} s: {items / elapsed:,.0f} items/s "
        f"(source items: {args.items / elapsed:,.0f}/s)"
    )


if __name__ == "__main__":
    main()
