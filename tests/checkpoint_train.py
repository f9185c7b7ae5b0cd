"""A training loop over a store pipeline with ``StatefulDataLoader(num_workers=2)``, checkpointing every ``--every``
batches (run by tests/test_checkpoint_torch.py in its own processes).

``--kill-after N`` SIGKILLs this process after consuming N batches (as a preemption would); ``--resume`` starts
from the last checkpoint. Every consumed batch is appended (as a JSON list of sample ids) to ``--log``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal

import torch
from torchdata.stateful_dataloader import StatefulDataLoader

from squirrel_graph.io.drivers import MessagepackDriver


def keep(sample):
    return sample["i"] % 7 != 3


def scale(sample):
    return {**sample, "x": sample["x"] * 2}


def pipeline(url: str, by_rank: bool = False):
    """Seeded key and item shuffles, fused maps with a filter, async_map and batched, split by worker (and by rank:
    the rank and world size of torch.distributed when it is built)."""
    stream = MessagepackDriver(url).get_iter(
        shuffle_key_buffer=4,
        key_shuffle_kwargs={"seed": 3},
        shuffle_item_buffer=16,
        item_shuffle_kwargs={"seed": 4},
        max_workers=2,
    )
    if by_rank:
        stream = stream.split_by_rank_pytorch()
    return (
        stream.split_by_worker_pytorch()
        .map(scale)
        .filter(keep)
        .async_map(scale, buffer=4)
        .batched(5)
        .to_torch_iterable()
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--every", type=int, default=2)
    ap.add_argument("--kill-after", type=int, default=None)
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args()
    loader = StatefulDataLoader(pipeline(args.url), batch_size=None, num_workers=2)
    if args.resume:
        loader.load_state_dict(torch.load(args.ckpt, weights_only=False)["loader"])
    with open(args.log, "a") as log:
        for step, batch in enumerate(loader, start=1):
            log.write(json.dumps([int(s["i"]) for s in batch]) + "\n")
            log.flush()
            if step % args.every == 0:
                tmp = args.ckpt + ".tmp"
                torch.save({"loader": loader.state_dict(), "step": step}, tmp)
                os.replace(tmp, args.ckpt)  # a kill during the save leaves the previous checkpoint whole
            if args.kill_after is not None and step == args.kill_after:
                os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    main()
