"""Elastic determinism: the samples of every global step are the same for 1, 2 and 4 ranks and any number of
DataLoader workers (ranks and workers emulated in process: torch.distributed and torch's worker info answer as
that process would; one real DataLoader run checks the step order across worker processes)."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from squirrel_graph.io.drivers import MessagepackDriver

torch = pytest.importorskip("torch")

G = 12  # global batch size


def sample_id(s):
    return int(s["i"])


def keep_even(s):
    return s["i"] % 2 == 0


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    url = str(tmp_path_factory.mktemp("elastic") / "store")
    store = MessagepackDriver(url).store
    sizes = [7, 9, 5, 8, 6, 7, 10, 4, 8, 9]  # uneven shards: 73 samples, 6 global steps of 12
    start = 0
    for s, n in enumerate(sizes):
        store.set([{"i": start + j, "x": np.zeros(2, np.float32)} for j in range(n)], key=f"shard-{s:02d}")
        start += n
    return url


@contextlib.contextmanager
def as_process(monkeypatch, rank, world, worker, workers):
    """torch.distributed answers as rank ``rank`` of ``world`` while building; torch's worker info as ``worker``."""
    dist = torch.distributed
    with monkeypatch.context() as m:
        m.setattr(dist, "is_available", lambda: True)
        m.setattr(dist, "is_initialized", lambda: True)
        m.setattr(dist, "get_rank", lambda group=None: rank)
        m.setattr(dist, "get_world_size", lambda group=None: world)
        from torch.utils.data._utils import worker as torch_worker

        saved = torch_worker._worker_info
        torch_worker._worker_info = torch_worker.WorkerInfo(id=worker, num_workers=workers, seed=0, dataset=None)
        try:
            yield
        finally:
            torch_worker._worker_info = saved


def stream(url, world, epoch=None):
    s = MessagepackDriver(url).elastic_iter(G, seed=5, window=3).map(sample_id).batched(G // world)
    if epoch is not None:
        s.set_epoch(epoch)
    return s


def steps(monkeypatch, url, world, workers, epoch=None):
    """Global step -> the set of its samples, from every (rank, worker) of the topology."""
    out: dict[int, set[int]] = {}
    for rank in range(world):
        for worker in range(workers):
            with as_process(monkeypatch, rank, world, worker, workers):
                batches = list(stream(url, world, epoch))
            for j, batch in enumerate(batches):
                step = worker + j * workers  # a DataLoader hands out worker w's j-th batch at this step
                assert len(batch) == G // world
                assert out.setdefault(step, set()).isdisjoint(batch), "a sample twice in one step"
                out[step].update(batch)
    return out


def test_every_global_step_holds_the_same_samples_for_1_2_4_ranks_and_any_workers(monkeypatch, url):
    reference = steps(monkeypatch, url, 1, 1)
    assert len(reference) == 73 // G and all(len(s) == G for s in reference.values())
    assert sorted(set().union(*reference.values())) != list(range(72))  # shuffled: not simply the first 72
    for world, workers in ((2, 1), (4, 1), (2, 2), (1, 3), (4, 2)):
        assert steps(monkeypatch, url, world, workers) == reference, f"{world} ranks x {workers} workers"
    other_epoch = steps(monkeypatch, url, 2, 1, epoch=1)
    assert other_epoch != reference and steps(monkeypatch, url, 4, 1, epoch=1) == other_epoch


def test_a_real_dataloader_hands_out_the_steps_in_order(url):
    from torch.utils.data import DataLoader

    single = [sorted(b) for b in stream(url, 1)]
    loader = DataLoader(stream(url, 1).to_torch_iterable(), batch_size=None, num_workers=2)
    got = [sorted(int(i) for i in b) for b in loader]
    assert got == single


def test_elastic_streams_resume_and_refuse_what_would_break_global_steps(url):
    s = stream(url, 1)
    it = iter(s)
    head = [next(it) for _ in range(2)]
    state = s.state_dict()
    assert state["position"] == {"n": 2 * G}
    again = stream(url, 1)
    again.load_state_dict(state)
    assert head + list(again) == list(stream(url, 1))
    with pytest.raises(ValueError, match=r"filter\(keep_even\) between the elastic source and batched\(12\)"):
        list(MessagepackDriver(url).elastic_iter(G).filter(keep_even).batched(G))
    with pytest.raises(ValueError, match=r"needs batched\(12\).*found batched\(5\)"):
        list(MessagepackDriver(url).elastic_iter(G).batched(5))
    with pytest.raises(ValueError, match="global_batch_size"):
        MessagepackDriver(url).elastic_iter(0)
