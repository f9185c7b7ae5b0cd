import time

from torch.utils.data import DataLoader

from squirrel_graph import IterableSource


def double_plus(x):
    return x * 2 + 1


def not_div3(x):
    return x % 3 != 0


def epochs(loader, label):
    for epoch in range(2):
        start = time.perf_counter()
        n = sum(len(batch) for batch in loader)
        print(f"{label}, epoch {epoch}: {n} items in {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    stream = (
        IterableSource(range(200_000))
        .split_by_worker_pytorch()
        .numba_map(double_plus)
        .filter(not_div3)
        .barrier()  # keeps batched out of the compiled run
        .batched(1000)
    )
    ds = stream.to_torch_iterable()
    epochs(DataLoader(ds, num_workers=2, batch_size=None), "new workers")
    epochs(DataLoader(ds, num_workers=2, batch_size=None, persistent_workers=True), "persistent_workers=True")
    stream.take(1).collect()  # compiles in this process; the workers forked below inherit the kernel
    epochs(DataLoader(ds, num_workers=2, batch_size=None), "warmed up in the parent")
