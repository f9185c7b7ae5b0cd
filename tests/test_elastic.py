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


def test_the_order_is_a_function_of_seed_and_epoch_and_keeps_windows_of_keys_together():
    from squirrel_graph.runtime.elastic import global_order

    counts = [7, 9, 5, 8, 6, 7, 10, 4, 8, 9]
    keys, offsets = global_order(counts, 5, None, 3)
    assert keys.dtype == offsets.dtype == np.int64
    pairs = sorted(zip(keys.tolist(), offsets.tolist()))
    assert pairs == [(k, o) for k, c in enumerate(counts) for o in range(c)]  # every sample exactly once
    seen = 0
    for start in range(0, len(counts), 3):  # each window of 3 keys fills one contiguous run of the order
        window: set[int] = set()
        i = seen
        while len(window) < min(3, len(counts) - start):  # the window's keys: the next 3 distinct ones
            window.add(int(keys[i]))
            i += 1
        size = sum(counts[k] for k in window)
        assert set(keys[seen : seen + size].tolist()) == window
        seen += size
    assert seen == sum(counts)
    same = global_order(counts, 5, None, 3)
    assert all(np.array_equal(a, b) for a, b in zip(same, (keys, offsets)))
    for other in (global_order(counts, 6, None, 3), global_order(counts, 5, 0, 3), global_order(counts, 5, 1, 3)):
        assert not np.array_equal(other[0] * 100 + other[1], keys * 100 + offsets)
    assert not np.array_equal(global_order(counts, 0, None, 3)[0], global_order(counts, "0", None, 3)[0])
    empty = global_order([], 5, None, 3)
    assert [a.shape for a in empty] == [(0,), (0,)] and [a.dtype for a in empty] == [np.int64, np.int64]
    zero = global_order([0, 0], 5, None, 1)
    assert [a.shape for a in zero] == [(0,), (0,)]


def test_seeds_that_are_not_non_negative_ints_are_hashed_stably():
    import zlib

    from squirrel_graph.runtime.elastic import _seed_int

    assert [_seed_int(0), _seed_int(5)] == [0, 5]
    assert _seed_int(-1) == zlib.crc32(b"-1") and _seed_int("run-7") == zlib.crc32(b"'run-7'")


def test_a_rank_takes_its_equal_part_of_its_step_grouped_by_shard():
    from squirrel_graph.runtime.elastic import global_order, step_part

    keys, offsets = global_order([7, 9, 5, 8, 6, 7, 10, 4, 8, 9], 5, None, 3)
    for step in (0, 1, 4):
        parts = [step_part(keys, offsets, step, 12, r, 3) for r in range(3)]
        assert all(len(p) == 4 and list(p) == sorted(p) for p in parts)
        assert sorted(np.concatenate(parts).tolist()) == list(range(12 * step, 12 * step + 12))
        by_shard = sorted(range(12 * step, 12 * step + 12), key=lambda p: (keys[p], offsets[p]))
        for r, part in enumerate(parts):  # rank r holds the r-th third of the step's samples ordered by shard
            assert sorted(part.tolist()) == sorted(by_shard[4 * r : 4 * r + 4])


def test_each_worker_of_each_rank_yields_its_steps_from_the_seeded_order():
    from squirrel_graph.runtime.elastic import global_order, schedule, step_part

    counts = [7, 9, 5, 8, 6, 7, 10, 4, 8, 9]
    keys, offsets = global_order(counts, 5, 2, 3)
    got = list(schedule(counts, 5, 2, 3, 12, 1, 2, 1, 2))  # rank 1 of 2, worker 1 of 2: steps 1, 3, 5
    want = [(int(keys[p]), int(offsets[p])) for step in (1, 3, 5) for p in step_part(keys, offsets, step, 12, 1, 2)]
    assert got == want and all(isinstance(k, int) and isinstance(o, int) for k, o in got)
    assert list(schedule(counts, 6, 2, 3, 12, 1, 2, 1, 2)) != got


def test_a_shard_in_use_is_read_once_and_the_cache_keeps_cache_size_shards():
    from squirrel_graph.runtime.elastic import samples

    reads = []

    def fetch(key):
        reads.append(key)
        return iter([f"{key}{i}" for i in range(3)])

    wanted = [(0, 0), (0, 1), (1, 0), (0, 2), (1, 2)]
    assert list(samples(iter(wanted), ["a", "b"], fetch, cache_size=2)) == ["a0", "a1", "b0", "a2", "b2"]
    assert reads == ["a", "b"]
    reads.clear()
    assert list(samples(iter(wanted), ["a", "b"], fetch, cache_size=1)) == ["a0", "a1", "b0", "a2", "b2"]
    assert reads == ["a", "b", "a", "b"]  # one shard kept: the one in use
    reads.clear()
    wanted = [(0, 0), (1, 0), (0, 1), (2, 0), (0, 2), (1, 1)]  # 'a' used last: 'b' is evicted when 'c' comes
    assert list(samples(iter(wanted), ["a", "b", "c"], fetch, cache_size=2)) == ["a0", "b0", "a1", "c0", "a2", "b1"]
    assert reads == ["a", "b", "c", "b"]


def test_elastic_errors_name_the_stage_and_what_is_expected(monkeypatch, url):
    with as_process(monkeypatch, 0, 5, 0, 1):
        with pytest.raises(ValueError) as err:
            list(MessagepackDriver(url).elastic_iter(G).batched(2))
    assert str(err.value).endswith(
        "global_batch_size=12 is not divisible by the world size 5: every rank takes an equal part of each global step"
    )
    assert str(err.value).startswith("elastic")
    with pytest.raises(ValueError) as err:
        list(MessagepackDriver(url).elastic_iter(G))
    assert str(err.value).startswith("elastic") and str(err.value).endswith(
        ": elastic mode needs .batched(12) after the source; none follows"
    )
    with pytest.raises(ValueError) as err:
        list(MessagepackDriver(url).elastic_iter(G).filter(keep_even).batched(G))
    assert str(err.value).endswith(
        ": filter(keep_even) between the elastic source and batched(12) changes the number of items (or splits "
        "them), so global steps would not be defined; move it after batched() or filter before writing the store"
    )


def test_the_global_order_of_a_seed_and_epoch_is_the_same_in_every_release():
    """A state saved by one release resumes by recomputing the order in another: the order is pinned here."""
    from squirrel_graph.runtime.elastic import global_order

    counts = [7, 9, 5, 8, 6, 7, 10, 4, 8, 9]
    pinned = {
        None: [(6, 0), (6, 6), (7, 2), (6, 3), (1, 5), (6, 7), (6, 8), (6, 2)],
        0: [(6, 2), (6, 4), (6, 6), (6, 3), (6, 5), (6, 0), (7, 2), (6, 1)],
    }
    for epoch, head in pinned.items():
        keys, offsets = global_order(counts, 5, epoch, 3)
        assert list(zip(keys[:8].tolist(), offsets[:8].tolist())) == head, f"epoch {epoch}"
