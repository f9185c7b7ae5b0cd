"""PyTorch: splits in real DataLoader worker processes, push-down to the shard keys, torch checks, and 2 real ranks."""

from __future__ import annotations

import os
import pickle
import socket
from collections import Counter

import pytest
import torch
import torch.multiprocessing as tmp
from torch.utils.data import DataLoader
from torch_helpers import OPEN_LOG_ENV, machine_workers, opens_per_process, sample_id, times_two, write_store

from squirrel_graph import IterableSource, SplitByRank, SplitByWorker, TorchIterable, skip_k
from squirrel_graph.driver import MessagepackDriver
from squirrel_graph.framework.exceptions import PyTorchSplittingException
from squirrel_graph.iterstream import torch_composables

#: 0 (in process), 2, and up to 4 workers where the machine has the cores (torch warns about more workers than cores)
WORKER_COUNTS = sorted({0, 2, machine_workers(4)})


def ids_from_loader(dataset, **kw):
    out = []
    for batch in DataLoader(dataset, **kw):
        if isinstance(batch, dict):
            batch = batch["i"]
        out.extend(batch.tolist() if isinstance(batch, torch.Tensor) else [int(batch)])
    return out


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    url = str(tmp_path_factory.mktemp("torch") / "store")
    total = write_store(url, [20] * 16)
    return url, total


def test_compat_module_and_top_level_exports():
    assert torch_composables.SplitByRank is SplitByRank and torch_composables.TorchIterable is TorchIterable
    assert issubclass(TorchIterable, torch.utils.data.IterableDataset)
    assert list(skip_k(1, 3)(iter(range(10)))) == [1, 4, 7]
    assert list(skip_k(0, 1)(iter(range(3)))) == [0, 1, 2]


@pytest.mark.parametrize("num_workers", WORKER_COUNTS)
def test_documented_item_pattern_gives_every_sample_once_as_tensors(num_workers):
    ds = (
        IterableSource(list(range(103)))
        .split_by_rank_pytorch()
        .async_map(times_two)
        .split_by_worker_pytorch()
        .batched(5, collation_fn=torch.tensor, drop_last_if_not_full=False)
        .to_torch_iterable()
    )
    batches = list(DataLoader(ds, num_workers=num_workers, batch_size=None))
    assert all(isinstance(b, torch.Tensor) for b in batches)
    assert Counter(torch.cat(batches).tolist()) == Counter(2 * i for i in range(103))


@pytest.mark.parametrize("num_workers", WORKER_COUNTS)
def test_driver_pattern_with_key_hook_and_default_collation(store, num_workers):
    url, total = store
    ds = MessagepackDriver(url).get_iter(key_hooks=[SplitByWorker]).to_torch_iterable()
    got = ids_from_loader(ds, num_workers=num_workers, batch_size=8)
    assert Counter(got) == Counter(range(total))


@pytest.mark.slow
def test_spawned_workers_with_module_level_functions(store):
    url, total = store
    ds = MessagepackDriver(url).get_iter().map(sample_id).split_by_worker_pytorch().to_torch_iterable()
    got = ids_from_loader(ds, num_workers=2, batch_size=16, multiprocessing_context="spawn")
    assert Counter(got) == Counter(range(total))


def test_item_level_split_after_the_fetch_is_pushed_to_the_keys(store, tmp_path, monkeypatch):
    url, total = store
    counting = "countfile://" + url
    workers = machine_workers(4)
    results = {}
    for level in ("auto", "item"):
        log = tmp_path / f"opens-{level}.log"
        monkeypatch.setenv(OPEN_LOG_ENV, str(log))
        ds = (
            MessagepackDriver(counting)
            .get_iter()
            .map(sample_id)
            .split_by_worker_pytorch(level=level)
            .to_torch_iterable()
        )
        got = ids_from_loader(ds, num_workers=workers, batch_size=10)
        assert Counter(got) == Counter(range(total))
        results[level] = opens_per_process(log)
    own = sorted(len(range(w, 16, workers)) for w in range(workers))  # worker w's shards: w, w + workers, ...
    assert sorted(results["auto"].values()) == own  # 16 shards over the workers: each opens only its own
    assert sorted(results["item"].values()) == [16] * workers  # pinned: every worker reads every shard


def test_optimized_and_unoptimized_plans_yield_the_same_multiset(store):
    url, total = store
    ds = MessagepackDriver(url).get_iter().map(sample_id).split_by_worker_pytorch().to_torch_iterable()
    for stream in (ds, ds.compile(optimize=False), ds.compile(disable=["push_splits"])):
        assert Counter(ids_from_loader(stream, num_workers=2, batch_size=None)) == Counter(range(total))


def test_multi_worker_run_without_worker_split_raises_and_flag_turns_it_off():
    ds = IterableSource(range(10)).to_torch_iterable()
    with pytest.raises(PyTorchSplittingException, match="split_by_worker_pytorch"):
        list(DataLoader(ds, num_workers=2, batch_size=None))
    unchecked = IterableSource(range(10)).to_torch_iterable(enforce_worker_check=False)
    assert sorted(DataLoader(unchecked, num_workers=2, batch_size=None)) == sorted(list(range(10)) * 2)
    assert list(DataLoader(ds, num_workers=0, batch_size=None)) == list(range(10))  # one process: no split needed


def test_split_below_an_unseeded_shuffle_is_refused_unless_it_can_move_above():
    moved = IterableSource(range(50)).shuffle(10).split_by_worker_pytorch().to_torch_iterable()
    assert sorted(moved.collect()) == list(range(50))  # the split moves above the shuffle
    text = str(moved.explain())
    assert "moved up past shuffle(10)" in text
    stuck = IterableSource(range(50)).shuffle(10).batched(2).split_by_worker_pytorch().to_torch_iterable()
    with pytest.raises(ValueError, match="unseeded shuffle"):
        stuck.collect()
    pinned = IterableSource(range(50)).shuffle(10, seed=1).split_by_worker_pytorch(level="item")
    assert sorted(pinned.collect()) == list(range(50))  # seeded: the same order in every process, so it is safe


def test_splits_do_not_cross_order_dependent_stages_and_explain_says_why():
    stream = IterableSource(range(20)).take(10).map(times_two).split_by_worker_pytorch()
    text = str(stream.explain())
    assert "depends on item order and count" in text and "↳" in text
    pinned = IterableSource(range(20)).map(times_two).split_by_worker_pytorch(level="item")
    assert "pinned by level='item'" in str(pinned.explain())


def test_bad_split_arguments():
    with pytest.raises(ValueError, match="level"):
        IterableSource([1]).split_by_worker_pytorch(level="keys")
    with pytest.raises(ValueError, match="equalize"):
        IterableSource([1]).split_by_rank_pytorch(equalize="trim")


# ------------------------------------------------------------------------------------------- two real ranks


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank, world, port, url, equalize, out_dir):
    import torch.distributed as dist

    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "GLOO_SOCKET_IFNAME": "lo"})
    dist.init_process_group("gloo", rank=rank, world_size=world, init_method=f"tcp://127.0.0.1:{port}")
    try:
        ds = (
            MessagepackDriver(url)
            .get_iter()
            .map(sample_id)
            .split_by_rank_pytorch(equalize=equalize)
            .split_by_worker_pytorch()
            .to_torch_iterable()
        )
        got = [int(x) for x in DataLoader(ds, num_workers=2, batch_size=None)]
        with open(os.path.join(out_dir, f"rank{rank}.txt"), "w") as f:
            f.write(" ".join(map(str, got)))
        dist.barrier()
    finally:
        dist.destroy_process_group()


def _run_ranks(url, equalize, out_dir):
    tmp.spawn(_rank_main, args=(2, _free_port(), url, equalize, str(out_dir)), nprocs=2, join=True)
    return [list(map(int, (out_dir / f"rank{r}.txt").read_text().split())) for r in range(2)]


@pytest.mark.slow
def test_two_gloo_ranks_with_two_workers_each_partition_the_store(tmp_path):
    url = str(tmp_path / "uneven")
    total = write_store(url, [3, 4, 5, 6, 7])
    rank0, rank1 = _run_ranks(url, None, tmp_path)
    assert Counter(rank0 + rank1) == Counter(range(total))  # exactly once over 2 ranks x 2 workers
    assert len(rank0) != len(rank1)  # uneven shards: uneven ranks without equalize

    drop0, drop1 = _run_ranks(url, "drop", tmp_path)
    assert len(drop0) == len(drop1) and set(drop0).isdisjoint(drop1)
    assert len(drop0) == 9  # per worker position: min(3+7, 4) + min(5, 6)
    pad0, pad1 = _run_ranks(url, "pad", tmp_path)
    assert len(pad0) == len(pad1) == 16  # max(3+7, 4) + max(5, 6)
    assert set(pad0) | set(pad1) == set(range(total))


def test_set_epoch_reshuffles_reproducibly_and_keeps_the_partition(store):
    url, total = store
    ds = (
        MessagepackDriver(url)
        .get_iter(
            shuffle_key_buffer=16,
            key_shuffle_kwargs={"seed": 7},
            shuffle_item_buffer=50,
            item_shuffle_kwargs={"seed": 3},
        )
        .map(sample_id)
        .split_by_worker_pytorch()
        .to_torch_iterable()
    )

    def epoch(e):
        ds.set_epoch(e)
        return ids_from_loader(ds, num_workers=2, batch_size=None)

    e0, e1, e0_again = epoch(0), epoch(1), epoch(0)
    assert e0 == e0_again and e0 != e1
    assert Counter(e0) == Counter(e1) == Counter(range(total))
    with pytest.raises(ValueError, match="set_epoch"):
        ds.set_epoch(-1)


def test_sampler_inputs_must_all_be_split_for_the_torch_check():
    from squirrel_graph import IterableSamplerSource

    half = IterableSamplerSource(
        [IterableSource(range(5)).split_by_worker_pytorch(), IterableSource(range(5, 9))], seed=1
    )
    with pytest.raises(PyTorchSplittingException):  # squirrel-core's check passed vacuously here
        list(DataLoader(half.to_torch_iterable(), num_workers=2, batch_size=None))
    both = IterableSamplerSource(
        [IterableSource(range(5)).split_by_worker_pytorch(), IterableSource(range(5, 9)).split_by_worker_pytorch()],
        seed=1,
    )
    assert sorted(int(x) for x in DataLoader(both.to_torch_iterable(), num_workers=2, batch_size=None)) == list(
        range(9)
    )


def test_rank_and_world_size_are_read_through_torch_distributed_when_built(monkeypatch):
    # squirrel-core users patch these module functions around construction; the values travel with the stream
    dist = torch.distributed
    monkeypatch.setattr(dist, "is_available", lambda: True)
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_rank", lambda group=None: 1)
    monkeypatch.setattr(dist, "get_world_size", lambda group=None: 3)
    stream = IterableSource(range(10)).split_by_rank_pytorch()
    monkeypatch.undo()
    assert (stream.rank, stream.size) == (1, 3)
    assert pickle.loads(pickle.dumps(stream)).collect() == [1, 4, 7]


def test_equalize_on_a_rank_split_given_as_key_hook_counts_samples(tmp_path, monkeypatch):
    import functools

    url = str(tmp_path / "hook")
    total = write_store(url, [3, 4, 5, 6, 7])
    dist = torch.distributed
    outs = []
    for rank in (0, 1):
        monkeypatch.setattr(dist, "is_available", lambda: True)
        monkeypatch.setattr(dist, "is_initialized", lambda: True)
        monkeypatch.setattr(dist, "get_rank", lambda group=None, r=rank: r)
        monkeypatch.setattr(dist, "get_world_size", lambda group=None: 2)
        hook = functools.partial(SplitByRank, equalize="drop")
        stream = MessagepackDriver(url).get_iter(key_hooks=[hook]).map(sample_id)
        monkeypatch.undo()
        outs.append(stream.collect())
    assert len(outs[0]) == len(outs[1]) == 10  # min(3 + 5 + 7, 4 + 6) samples, not keys
    assert set(outs[0]).isdisjoint(outs[1]) and set(outs[0]) | set(outs[1]) <= set(range(total))
