"""Worker and rank splits run in this process under the worker/rank identity torch itself reports.

The real DataLoader and gloo tests (test_torch.py, test_worker_splits.py) show the splits work across processes;
these run the same runtime code where a test (and a mutation tool's coverage) can see every branch: torch's own
``WorkerInfo`` is installed as in a worker, and ``torch.distributed`` answers as one rank of a group.
"""

from __future__ import annotations

import contextlib
import functools

import pytest
import torch
import torch.utils.data._utils.worker as torch_worker
from torch_helpers import sample_id, write_store

from squirrel_graph import IterableSource, SplitByRank, SplitByWorker
from squirrel_graph.driver import MessagepackDriver
from squirrel_graph.errors import PyTorchSplittingException
from squirrel_graph.runtime import splits


@contextlib.contextmanager
def as_worker(worker: int, workers: int):
    """Run the body as DataLoader worker ``worker`` of ``workers`` (what torch sets in a worker process)."""
    saved = torch_worker._worker_info
    torch_worker._worker_info = torch_worker.WorkerInfo(id=worker, num_workers=workers, seed=0, dataset=None)
    try:
        yield
    finally:
        torch_worker._worker_info = saved


@pytest.fixture
def as_rank(monkeypatch):
    """``as_rank(rank, world)``: torch.distributed answers as rank ``rank`` of an initialized group of ``world``."""
    dist = torch.distributed

    def enter(rank: int, world: int) -> None:
        monkeypatch.setattr(dist, "is_available", lambda: True)
        monkeypatch.setattr(dist, "is_initialized", lambda: True)
        monkeypatch.setattr(dist, "get_rank", lambda group=None: rank)
        monkeypatch.setattr(dist, "get_world_size", lambda group=None: world)

    yield enter
    monkeypatch.undo()


def test_worker_info_reads_torchs_worker_identity():
    assert splits.worker_info() == (0, 1)
    with as_worker(2, 3):
        assert splits.worker_info() == (2, 3)
    assert splits.worker_info() == (0, 1)


@pytest.mark.parametrize("level", ["item", "auto"])
def test_each_worker_takes_every_nth_item_in_order(level):
    stream = IterableSource(list(range(23))).map(lambda x: x * 10).split_by_worker_pytorch(level=level)
    shares = []
    for w in range(3):
        with as_worker(w, 3):
            shares.append(stream.collect())
    assert shares == [[x * 10 for x in range(w, 23, 3)] for w in range(3)]


def test_a_pushed_down_worker_split_reads_every_nth_shard(tmp_path):
    url = str(tmp_path / "store")
    write_store(url, [2, 3, 4, 5, 6])
    keys = sorted(MessagepackDriver(url).store.keys())
    whole = MessagepackDriver(url).get_iter().map(sample_id)
    stream = MessagepackDriver(url).get_iter().map(sample_id).split_by_worker_pytorch()
    hooked = MessagepackDriver(url).get_iter(key_hooks=[SplitByWorker]).map(sample_id)
    for w in range(2):
        with as_worker(w, 2):
            expected = [sample_id(s) for k in keys[w::2] for s in MessagepackDriver(url).store.get(k)]
            assert sorted(stream.collect()) == sorted(expected)
            assert sorted(hooked.collect()) == sorted(expected)
    assert sorted(whole.collect()) == list(range(20))


def test_batches_stay_whole_and_partitioned_across_workers():
    stream = IterableSource(range(12)).batched(3).split_by_worker_pytorch()
    got = []
    for w in range(2):
        with as_worker(w, 2):
            got.append(stream.collect())
    assert got == [[[0, 1, 2], [6, 7, 8]], [[3, 4, 5], [9, 10, 11]]]


# ------------------------------------------------------------------------------------------------ torch checks


def test_a_multi_worker_run_without_a_worker_split_is_refused_by_name():
    ds = IterableSource(range(6)).map(lambda x: x + 1).to_torch_iterable()
    with as_worker(0, 2), pytest.raises(PyTorchSplittingException, match="multi-worker DataLoader"):
        list(ds)
    with as_worker(0, 1):
        assert list(ds) == [1, 2, 3, 4, 5, 6]  # one worker: nothing to split
    unchecked = IterableSource(range(6)).to_torch_iterable(enforce_worker_check=False)
    with as_worker(1, 2):
        assert list(unchecked) == list(range(6))  # the flag turns the check off
    split = IterableSource(range(6)).split_by_worker_pytorch().to_torch_iterable()
    with as_worker(1, 2):
        assert list(split) == [1, 3, 5]


def test_the_worker_check_wants_the_split_on_every_input_of_a_sampler():
    from squirrel_graph import IterableSamplerSource

    half = IterableSamplerSource(
        [IterableSource(range(5)).split_by_worker_pytorch(), IterableSource(range(5, 9))], seed=1
    ).to_torch_iterable()
    both = IterableSamplerSource(
        [IterableSource(range(5)).split_by_worker_pytorch(), IterableSource(range(5, 9)).split_by_worker_pytorch()],
        seed=1,
    ).to_torch_iterable()
    shares = []
    for w in range(2):
        with as_worker(w, 2):
            with pytest.raises(PyTorchSplittingException):
                list(half)
            shares.append(list(both))
    assert sorted(shares[0] + shares[1]) == list(range(9))
    assert set(shares[0]) == {0, 2, 4, 5, 7}


def test_a_multi_rank_run_needs_a_rank_split_built_for_its_world_size(as_rank):
    as_rank(0, 2)
    unsplit = IterableSource(range(8)).to_torch_iterable()
    with pytest.raises(PyTorchSplittingException, match="nothing upstream splits by rank"):
        list(unsplit)
    assert list(IterableSource(range(8)).to_torch_iterable(enforce_rank_check=False)) == list(range(8))
    as_rank(1, 2)
    split = IterableSource(range(8)).split_by_rank_pytorch().to_torch_iterable()
    assert list(split) == [1, 3, 5, 7]
    as_rank(1, 3)
    stale = IterableSource(range(8)).split_by_rank_pytorch()
    as_rank(1, 2)
    with pytest.raises(PyTorchSplittingException, match=r"built for \[3\] rank\(s\) but this run has 2"):
        list(stale.to_torch_iterable())


# ------------------------------------------------------------------------------------------------ equalize


def _per_process(url, equalize, as_rank, world=2, workers=2):
    """{(rank, worker): sample ids} for every rank and worker position of one store."""
    out = {}
    for rank in range(world):
        as_rank(rank, world)
        hook = functools.partial(SplitByRank, equalize=equalize)
        stream = MessagepackDriver(url).get_iter(key_hooks=[hook, SplitByWorker]).map(sample_id)
        for w in range(workers):
            with as_worker(w, workers):
                out[rank, w] = stream.collect()
    return out


def test_equalize_drop_gives_every_rank_the_same_count_per_worker_position(tmp_path, as_rank):
    url = str(tmp_path / "s")
    write_store(url, [1, 2, 3, 4, 5, 6, 7, 8])  # keys by rank: 0 -> 1,3,5,7 ; 1 -> 2,4,6,8 ; then by worker
    out = _per_process(url, "drop", as_rank)
    keys_of = {(r, w): [k for k in range(8)][r::2][w::2] for r in range(2) for w in range(2)}
    sizes = [1, 2, 3, 4, 5, 6, 7, 8]
    for w in range(2):
        target = min(sum(sizes[k] for k in keys_of[r, w]) for r in range(2))
        assert len(out[0, w]) == len(out[1, w]) == target
    ids = [i for v in out.values() for i in v]
    assert len(ids) == len(set(ids))  # drop never repeats a sample


def test_equalize_pad_repeats_a_process_s_own_items_from_its_start(tmp_path, as_rank):
    url = str(tmp_path / "s")
    write_store(url, [1, 2, 3, 4, 5, 6, 7, 8])
    out = _per_process(url, "pad", as_rank)
    sizes = [1, 2, 3, 4, 5, 6, 7, 8]
    keys_of = {(r, w): list(range(8))[r::2][w::2] for r in range(2) for w in range(2)}
    for w in range(2):
        own = {r: sum(sizes[k] for k in keys_of[r, w]) for r in range(2)}
        target = max(own.values())
        assert len(out[0, w]) == len(out[1, w]) == target
        short = min(own, key=own.get)
        items = out[short, w]
        n = own[short]
        assert items[n:] == (items[:n] * 2)[: target - n]  # the padding is this process's first items again
        assert len(set(items[:n])) == n


def test_equalize_over_an_item_source_counts_items_and_refuses_a_one_shot_iterator(as_rank):
    as_rank(1, 2)
    assert IterableSource(range(7)).split_by_rank_pytorch(equalize="drop").collect() == [1, 3, 5]
    assert IterableSource(range(7)).split_by_rank_pytorch(equalize="pad").collect() == [1, 3, 5, 1]
    with pytest.raises(ValueError, match="re-iterable source"):
        IterableSource(iter(range(7))).split_by_rank_pytorch(equalize="drop").collect()


def test_equalize_drop_with_counts_that_promise_more_than_the_shards_hold_names_the_counts(tmp_path, as_rank):
    url = str(tmp_path / "s")
    write_store(url, [2, 2])
    as_rank(0, 2)
    hook = functools.partial(SplitByRank, equalize="drop", shard_counts={"shard-000": 5, "shard-001": 5})
    stream = MessagepackDriver(url).get_iter(key_hooks=[hook])
    with pytest.raises(ValueError, match="shard_counts"):
        stream.collect()
