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
from squirrel_graph.graph import Equalize, Filter, IterSource, Plan, Split
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


def test_the_torch_checks_raise_with_their_full_advice_and_only_for_an_initialized_group_of_several(
    as_rank, monkeypatch
):
    def refusal(ds):
        with pytest.raises(PyTorchSplittingException) as err:
            list(ds)
        return str(err.value)

    as_rank(0, 1)
    assert list(IterableSource(range(3)).to_torch_iterable()) == [0, 1, 2]  # one rank: nothing to split
    as_rank(0, 2)
    assert refusal(IterableSource(range(3)).to_torch_iterable()) == (
        "to_torch_iterable(): this is a multi-rank run but nothing upstream splits by rank, so every rank would see "
        "every item; add split_by_rank_pytorch() (or pass enforce_rank_check=False)"
    )
    as_rank(1, 3)
    stale = IterableSource(range(8)).split_by_rank_pytorch()
    as_rank(1, 2)
    assert refusal(stale.to_torch_iterable()) == (
        "to_torch_iterable(): a rank split upstream was built for [3] rank(s) but this run has 2: build the stream "
        "after torch.distributed.init_process_group()"
    )
    assert list(stale.to_torch_iterable(enforce_rank_check=False)) == [1, 4, 7]  # the flag turns this check off too
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: False)  # available, not initialized
    assert list(IterableSource(range(3)).to_torch_iterable()) == [0, 1, 2]
    with as_worker(1, 2):
        assert refusal(IterableSource(range(3)).to_torch_iterable()) == (
            "to_torch_iterable(): this runs in a multi-worker DataLoader but nothing upstream splits by worker, so "
            "every worker would yield every item; add split_by_worker_pytorch() or key_hooks=[SplitByWorker] (or "
            "pass enforce_worker_check=False)"
        )


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


def test_equalize_drop_error_names_the_count_of_the_first_pass_and_the_promise(tmp_path, as_rank):
    url = str(tmp_path / "s")
    write_store(url, [2, 2])
    as_rank(0, 2)
    hook = functools.partial(SplitByRank, equalize="drop", shard_counts={"shard-000": 5, "shard-001": 5})
    with pytest.raises(ValueError) as err:
        MessagepackDriver(url).get_iter(key_hooks=[hook]).collect()
    assert str(err.value) == (
        "equalize('drop', rank 0/2): this process yielded 2 items but its shard counts promised at least 5; the "
        "counts are wrong (check shard_counts=)"
    )


def test_equalize_with_callable_shard_counts_uses_them_for_the_target(tmp_path, as_rank):
    url = str(tmp_path / "s")
    write_store(url, [3, 3])
    as_rank(0, 2)
    hook = functools.partial(SplitByRank, equalize="drop", shard_counts=lambda key: 2)
    assert MessagepackDriver(url).get_iter(key_hooks=[hook]).map(sample_id).collect() == [0, 1]


def test_equalize_pad_of_a_process_without_items_says_it_has_none_to_repeat(as_rank):
    as_rank(1, 2)  # range(1): rank 0 holds 0, rank 1 nothing
    assert IterableSource(range(1)).split_by_rank_pytorch(equalize="drop").collect() == []
    with pytest.raises(ValueError) as err:
        IterableSource(range(1)).split_by_rank_pytorch(equalize="pad").collect()
    assert str(err.value) == "equalize('pad', rank 1/2): cannot pad to 1 items: this process has none to repeat"


def test_equalize_counts_a_callable_source_and_refuses_a_one_shot_iterator_with_the_full_reason(as_rank):
    as_rank(1, 2)
    assert IterableSource(functools.partial(range, 7)).split_by_rank_pytorch(equalize="pad").collect() == [1, 3, 5, 1]
    with pytest.raises(ValueError) as err:
        IterableSource(iter(range(7))).split_by_rank_pytorch(equalize="drop").collect()
    assert str(err.value) == (
        "equalize('drop', rank 1/2): equal counts need a re-iterable source (a list, a range, a callable), not an "
        "iterator that counting would use up"
    )


def test_equalize_without_a_rank_split_at_the_listing_is_refused_naming_what_it_found():
    from squirrel_graph.backends.lowering import lower
    from squirrel_graph.backends.registry import backends_for

    source, eq = IterSource(source=range(6)), Equalize(world_size=2)
    unsplit = Plan.build([("0:source", source, ()), ("1:equalize", eq, ("0:source",))], "1:equalize")
    filtered = Plan.build(
        [
            ("0:source", source, ()),
            ("1:split", Split("rank", 0, 2), ("0:source",)),
            ("2:filter", Filter(predicate=bool), ("1:split",)),
            ("3:equalize", eq, ("2:filter",)),
        ],
        "3:equalize",
    )
    for plan, found in ((unsplit, "source(range(0, 6))"), (filtered, "filter(bool)")):
        with pytest.raises(ValueError) as err:
            lower(plan, backends_for("threaded", {}, {}))
        assert str(err.value) == (
            "equalize('drop', rank 0/2): equal counts per rank need the rank split at a driver's key listing (or "
            f"right below a source), with only count-preserving stages after it; found {found} instead"
        )


def test_equalize_reports_its_pass_and_counts_per_item_and_records_its_target(tmp_path, as_rank):
    """Shards of 3 and 1 items: rank 1 pads its one item to 3, one pass per item."""
    url = str(tmp_path / "s")
    write_store(url, [3, 1])
    as_rank(1, 2)
    stream = MessagepackDriver(url).get_iter(key_hooks=[functools.partial(SplitByRank, equalize="pad")])
    stream = stream.map(sample_id)
    it = iter(stream)
    assert stream.state_dict()["position"] is None  # before the first item
    positions = []
    for item in it:
        assert item == 3
        positions.append({k: v for k, v in stream.state_dict()["position"].items() if k != "up"})
    assert positions == [
        {"produced": 1, "pass": 0, "pass_start": 0},
        {"produced": 2, "pass": 1, "pass_start": 1},
        {"produced": 3, "pass": 2, "pass_start": 2},
    ]
    state = stream.__dict__["_last_state"][0]
    assert state["2:split.equalize"] == {"target": 3, "own": 1, "per_rank": [3, 1], "yielded": 3}


@pytest.mark.parametrize(
    ("mode", "world", "rest"),
    [
        ("drop", 2, [[4, 8, 5, 9], [6, 7]]),
        ("pad", 2, [[4, 8, 5, 9], [6, 10, 7, 3]]),
        ("drop", 3, [[4, 8, 7], [6], [5, 9]]),  # old shares 0 and 3, 1, 2: the old world size sets the counts
        ("pad", 3, [[4, 8, 7, 3], [6, 10], [5, 9]]),
    ],
)
def test_a_merged_equalize_state_resumes_each_old_share_with_its_old_worker_count(as_rank, mode, world, rest):
    """2 ranks x 2 workers each take one item of range(11); ``world`` ranks without workers resume the four
    shares."""
    from squirrel_graph.checkpoint import merge_states

    def make():
        return IterableSource(list(range(11))).split_by_rank_pytorch(equalize=mode).split_by_worker_pytorch()

    states = []
    for rank in range(2):
        as_rank(rank, 2)
        stream = make()
        for w in range(2):
            with as_worker(w, 2):
                it = iter(stream)
                assert next(it) == [0, 2, 1, 3][2 * rank + w]
                states.append(stream.state_dict())
    merged = merge_states(states)
    resumed = []
    for rank in range(world):
        as_rank(rank, world)
        stream = make()
        stream.load_state_dict(merged)
        resumed.append(stream.collect())
    assert resumed == rest
