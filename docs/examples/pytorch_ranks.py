import os
import socket

import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import DataLoader

from squirrel_graph.driver import MessagepackDriver


def get_id(sample):
    return sample["id"]


def main(rank, world_size, port):
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "GLOO_SOCKET_IFNAME": "lo"})
    dist.init_process_group("gloo", rank=rank, world_size=world_size, init_method=f"tcp://127.0.0.1:{port}")
    try:
        for equalize in (None, "drop", "pad"):
            ds = (
                MessagepackDriver("uneven")
                .get_iter()
                .map(get_id)
                .split_by_rank_pytorch(equalize=equalize)
                .split_by_worker_pytorch()
                .to_torch_iterable()
            )
            ids = [int(i) for i in DataLoader(ds, num_workers=2, batch_size=None)]
            everyone = [None] * world_size
            dist.all_gather_object(everyone, ids)
            if rank == 0:
                for r, got in enumerate(everyone):
                    print(f"equalize={equalize!r} rank {r}: {len(got)} items {sorted(got)}")
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    store = MessagepackDriver("uneven").store
    start = 0
    for k, n in enumerate([3, 4, 5, 6, 7]):  # uneven shards
        store.set([{"id": start + j} for j in range(n)], key=f"shard-{k}")
        start += n
    with socket.socket() as s:  # a free port
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(main, args=(2, port), nprocs=2, join=True)
