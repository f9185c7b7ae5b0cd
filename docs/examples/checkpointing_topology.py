# Two ranks (gloo on 127.0.0.1) with two DataLoader workers each take a few batches and checkpoint; the states are
# merged and the rest of the epoch runs on one rank with two, then with four workers: nothing lost, nothing twice.
import os
import pickle
import socket
import tempfile

import numpy as np
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import DataLoader
from torchdata.stateful_dataloader import StatefulDataLoader

from squirrel_graph.checkpoint import merge_states
from squirrel_graph.io.drivers import MessagepackDriver


def keep(sample):
    return sample["i"] % 7 != 3


# docs: begin
def pipeline(url):
    return (
        MessagepackDriver(url)
        .get_iter(
            shuffle_key_buffer=4,
            key_shuffle_kwargs={"seed": 3},
            shuffle_item_buffer=16,
            item_shuffle_kwargs={"seed": 4},
        )
        .split_by_rank_pytorch()  # rank and world size are read here, after init_process_group
        .split_by_worker_pytorch()
        .filter(keep)
        .batched(5)
        .to_torch_iterable()
    )


def rank_main(rank, world, port, url, out):
    dist.init_process_group("gloo", rank=rank, world_size=world, init_method=f"tcp://127.0.0.1:{port}")
    loader = StatefulDataLoader(pipeline(url), batch_size=None, num_workers=2)
    seen = []
    for step, batch in enumerate(loader, start=1):
        seen += [int(s["i"]) for s in batch]
        if step == 3:  # ... preempted here: every rank saves its loader's state
            break
    with open(f"{out}/rank{rank}.pkl", "wb") as f:
        pickle.dump({"seen": seen, "state": loader.state_dict()}, f)
    dist.destroy_process_group()


def resume_on(url, states, workers):
    """The rest of the epoch on one rank with ``workers`` DataLoader workers."""
    dataset = pipeline(url)
    dataset.load_state_dict(merge_states(*states))  # one global position: every old (rank, worker) share
    return [int(s["i"]) for batch in DataLoader(dataset, batch_size=None, num_workers=workers) for s in batch]


# docs: end


def whole_epoch(url, states):
    """Every old share from its start: the samples the 2 x 2 run would have read in this epoch."""
    dataset = pipeline(url)
    merged = merge_states(*states)
    dataset.load_state_dict({**merged, "shares": [{**s, "position": None} for s in merged["shares"]]})
    return sorted(int(s["i"]) for batch in dataset for s in batch)


if __name__ == "__main__":
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "GLOO_SOCKET_IFNAME": "lo"})
    out = tempfile.mkdtemp()
    url = f"{out}/store"
    store = MessagepackDriver(url).store
    for s in range(16):
        store.set([{"i": s * 8 + j, "x": np.zeros(4, np.float32)} for j in range(8)], key=f"shard-{s:02d}")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(rank_main, args=(2, port, url, out), nprocs=2, join=True)
    ranks = [pickle.load(open(f"{out}/rank{r}.pkl", "rb")) for r in range(2)]
    seen = [i for r in ranks for i in r["seen"]]
    states = [r["state"] for r in ranks]
    epoch = whole_epoch(url, states)
    print(f"the 2 ranks x 2 workers run consumed {len(seen)} of the epoch's {len(epoch)} samples before it stopped")
    for workers in (2, 4):
        if workers > (os.cpu_count() or 1):
            import warnings

            warnings.filterwarnings("ignore", message=".*worker processes in total.*")  # 4 workers on 2 cores
        rest = resume_on(url, states, workers)
        assert sorted(seen + rest) == epoch, "lost or duplicated samples"
        print(f"resumed on 1 rank x {workers} workers: {len(rest)} samples, none lost, none twice")
