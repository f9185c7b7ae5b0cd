"""Split placement judged by what real DataLoader worker processes yield (in one process a worker split does
nothing, so only workers can show a split that moved where it must not, or a shuffle that differs per worker)."""

from __future__ import annotations

from collections import Counter

import pytest
from torch.utils.data import DataLoader
from torch_helpers import times_two

from squirrel_graph import IterableSource


def per_worker(dataset, workers: int = 2) -> list[int]:
    return [int(x) for x in DataLoader(dataset, num_workers=workers, batch_size=None)]


def test_a_split_below_take_stays_below_it_so_workers_share_the_first_n_items():
    ds = IterableSource(range(20)).take(10).map(times_two).split_by_worker_pytorch().to_torch_iterable()
    got = per_worker(ds)
    assert Counter(got) == Counter(times_two(x) for x in range(10))  # 10 items in all, each once


def test_a_split_below_batched_keeps_whole_batches_per_worker():
    ds = IterableSource(range(12)).batched(3).split_by_worker_pytorch().to_torch_iterable()
    got = [list(map(int, b)) for b in DataLoader(ds, num_workers=2, batch_size=None)]
    assert sorted(got) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11]]


@pytest.mark.parametrize("epoch", [None, 3])
def test_a_seeded_shuffle_above_a_pinned_worker_split_shuffles_alike_in_every_worker(epoch):
    ds = IterableSource(range(60)).shuffle(16, seed=5).split_by_worker_pytorch(level="item").to_torch_iterable()
    if epoch is not None:
        ds.set_epoch(epoch)
    got = per_worker(ds)
    assert Counter(got) == Counter(range(60))  # a partition: every item exactly once over the two workers
    assert got != list(range(60))  # and really shuffled


def test_an_unseeded_shuffle_that_a_split_cannot_pass_is_refused_in_the_workers():
    ds = IterableSource(range(50)).shuffle(10).batched(2).split_by_worker_pytorch().to_torch_iterable()
    with pytest.raises(ValueError, match="unseeded shuffle"):
        per_worker(ds)
    moved = IterableSource(range(50)).shuffle(10).split_by_worker_pytorch().to_torch_iterable()
    assert Counter(per_worker(moved)) == Counter(range(50))  # the split moved above the unseeded shuffle
