"""state_dict()/load_state_dict() in one process: a resumed stream yields exactly the rest of the uninterrupted run.

Every pipeline is checkpointed after k items for many k (JSON round trip in between), resumed in a fresh handle,
and compared with the uninterrupted run; stages that cannot resume say so, naming themselves.
"""

from __future__ import annotations

import json
import re

import counting_fs as cf
import numpy as np
import pytest

from squirrel_graph import IterableSource, Multiplexer, MultiplexingStrategy
from squirrel_graph.checkpoint import NotResumableError, StateMismatchError, check_resumable
from squirrel_graph.io.drivers import MessagepackDriver
from tests.helpers import add_one, is_odd, not_div3, resume_section, sleepy, times_two


def second(pair):
    return pair[1]


def sample(i):
    return {"i": i, "x": np.full(3, i, dtype=np.float32)}


def ids(samples):
    return [s["i"] for s in samples]


def batch_ids(batches):
    return [ids(b) for b in batches]


def write_store(url, n_shards=8, per_shard=6):
    store = MessagepackDriver(url).store
    for s in range(n_shards):
        store.set([sample(s * per_shard + j) for j in range(per_shard)], key=f"shard-{s:02d}")
    return url


@pytest.fixture
def store_url(tmp_path):
    return write_store(str(tmp_path / "store"))


def resumed_after(make, k, view=lambda x: x):
    """Items of a run interrupted after ``k`` items plus the items of a fresh handle resumed from its state."""
    stream = make()
    it = iter(stream)
    head = [view(next(it)) for _ in range(k)]
    state = json.loads(json.dumps(stream.state_dict()))  # plain data: survives JSON
    assert state["resumable"], state["reason"]
    it.close()
    again = make()
    again.load_state_dict(state)
    return head + [view(x) for x in again], state


def check_every_position(make, view=lambda x: x, step=1):
    full = [view(x) for x in make()]
    assert full, "the pipeline yields nothing: the test would prove nothing"
    for k in range(0, len(full) + 1, step):
        got, _ = resumed_after(make, k, view)
        assert got == full, f"resumed after {k} items: {len(got)} items, expected {len(full)}"
    return full


ITEM_PIPELINES = {
    "map-filter fused": lambda: IterableSource(list(range(60))).map(add_one).filter(is_odd).map(times_two),
    "unoptimized": lambda: IterableSource(list(range(60))).map(add_one).filter(is_odd).compile(optimize=False),
    "not inlined": lambda: IterableSource(range(60)).map(add_one).filter(not_div3).compile(inline=False),
    "generator source": lambda: IterableSource(lambda: (i * i for i in range(40))).map(add_one),
    "seeded shuffle": lambda: IterableSource(list(range(90))).shuffle(16, initial=4, seed=7).map(add_one),
    "shuffle then batched": lambda: IterableSource(list(range(90))).shuffle(10, seed=1).batched(4),
    "batched keep last": lambda: IterableSource(list(range(23))).batched(5, drop_last_if_not_full=False),
    "flatten": lambda: IterableSource([[i] * (i % 4) for i in range(30)]).flatten().map(add_one),
    "take": lambda: IterableSource(list(range(50))).filter(is_odd).take(12),
    "zip_index": lambda: IterableSource(list(range(30))).filter(not_div3).zip_index(pad_length=3),
    "loop": lambda: IterableSource(list(range(7))).map(add_one).loop(3),
    "async_map": lambda: IterableSource(list(range(40))).async_map(sleepy, buffer=5).filter(is_odd),
    "prefetch": lambda: IterableSource(list(range(40))).map(add_one).prefetch(4).batched(3),
    "monitored": lambda: IterableSource(list(range(40))).map(add_one).compile(monitor=True),
}


@pytest.mark.parametrize("name", sorted(ITEM_PIPELINES))
def test_resuming_after_any_item_yields_exactly_the_rest(name):
    check_every_position(ITEM_PIPELINES[name])


def test_a_fresh_stream_state_starts_at_the_beginning_and_the_loaded_state_is_reported_until_it_runs():
    stream = IterableSource(list(range(10))).map(add_one)
    state = stream.state_dict()
    assert state["resumable"] and state["position"] is None
    it = iter(stream)
    next(it), next(it), next(it)
    taken = stream.state_dict()
    assert taken["position"] == {"n": 3}
    other = IterableSource(list(range(10))).map(add_one)
    other.load_state_dict(taken)
    assert other.state_dict() == taken  # a DataLoader worker asks before its first batch
    assert list(other) == list(range(4, 11))
    assert list(other) == list(range(1, 11))  # only the next run resumes; later runs start over


def pairs(items):
    """A user's iterator function (``to``): its own state is invisible to squirrel_graph."""
    it = iter(items)
    yield from zip(it, it)


def store_pipeline(url, **compile_kw):
    def make():
        stream = (
            MessagepackDriver(url)
            .get_iter(
                shuffle_key_buffer=4,
                key_shuffle_kwargs={"seed": 11},
                shuffle_item_buffer=9,
                item_shuffle_kwargs={"seed": 5, "initial": 3},
                max_workers=3,
                prefetch_buffer=2,
            )
            .map(dict)
            .filter(lambda s: s["i"] % 5 != 0)
            .async_map(dict, buffer=3)
            .batched(4)
        )
        return stream.compile(**compile_kw) if compile_kw else stream

    return make


@pytest.mark.parametrize("options", [{}, {"optimize": False}, {"inline": False}], ids=["optimized", "plain", "calls"])
def test_store_pipeline_with_key_and_item_shuffles_resumes_exactly(store_url, options):
    full = check_every_position(store_pipeline(store_url, **options), ids)
    flat = [i for b in full for i in b]
    assert len(flat) == len(set(flat)) == 36 and all(i % 5 for i in flat) and flat != sorted(flat)


def test_set_epoch_changes_the_order_and_a_state_resumes_its_own_epoch(store_url):
    make = store_pipeline(store_url)

    def epoch_run(e):
        s = make()
        s.set_epoch(e)
        return s

    one, two = batch_ids(epoch_run(1)), batch_ids(epoch_run(2))
    assert one != two
    stream = epoch_run(2)
    it = iter(stream)
    head = [ids(next(it)) for _ in range(4)]
    state = stream.state_dict()
    assert state["epoch"] == 2
    resumed = make()  # no set_epoch: the run takes the state's epoch
    resumed.load_state_dict(state)
    assert head + batch_ids(resumed) == two
    wrong = epoch_run(3)
    with pytest.raises(StateMismatchError, match=r"epoch 2.*set_epoch\(3\)"):
        wrong.load_state_dict(state)


def test_resuming_reads_no_shard_wholly_before_the_checkpoint(tmp_path):
    url = write_store(f"reqfile://{tmp_path}/s", n_shards=10, per_shard=5)

    def make():
        return MessagepackDriver(url).get_iter(max_workers=1).map(add_i)

    stream = make()
    it = iter(stream)
    for _ in range(37):  # into shard 7 (samples 35..39)
        next(it)
    state = stream.state_dict()
    assert state["position"] == {"item": {"n": 7}, "skip": 2}  # shard 7 begins after 7 keys; 2 samples taken
    it.close()
    resumed = make()
    resumed.load_state_dict(state)
    cf.LOG.clear()
    assert [s for s in resumed] == [i + 1 for i in range(37, 50)]
    assert shard_reads() == ["shard-07", "shard-08", "shard-09"]


def shard_reads():
    """The shards opened since the log was cleared, in order (``tests/counting_fs.py`` logs every request)."""
    return [
        path.rsplit("/", 1)[-1].split(".")[0]
        for _, op, path, _ in cf.LOG
        if op in ("open", "cat_file") and "/shard-" in path
    ]


def add_i(sample):
    return sample["i"] + 1


def test_a_seeded_item_shuffle_re_reads_only_the_shards_its_buffer_spans(tmp_path):
    url = write_store(f"reqfile://{tmp_path}/s", n_shards=20, per_shard=5)

    def make():
        return MessagepackDriver(url).get_iter(max_workers=1).shuffle(8, initial=8, seed=2).map(add_i)

    full = list(make())
    stream = make()
    it = iter(stream)
    head = [next(it) for _ in range(80)]
    state = stream.state_dict()
    it.close()
    resumed = make()
    resumed.load_state_dict(state)
    cf.LOG.clear()
    assert head + list(resumed) == full
    reads = shard_reads()
    # 80 of 100 samples were consumed: the 20 left are in shards 16-19; the 8 buffered samples reach back at most
    # two shards of 5 more, so no shard before 14 is read again, and none twice
    assert reads[0] >= "shard-14" and reads[-1] == "shard-19" and len(reads) == len(set(reads)), reads


def test_states_are_small_plain_data_and_versioned(store_url):
    stream = store_pipeline(store_url)()
    it = iter(stream)
    for _ in range(5):
        next(it)
    state = stream.state_dict()
    assert state["format"] == "squirrel_graph.stream_state" and state["version"] == 1
    assert json.loads(json.dumps(state)) == state
    assert len(json.dumps(state)) < 4096  # a few KB, whatever the shuffle buffers hold
    assert len(state["fingerprint"]) == 16


def test_a_state_of_another_pipeline_names_the_first_stage_that_differs():
    stream = IterableSource(list(range(10))).map(add_one).filter(is_odd)
    it = iter(stream)
    next(it)
    state = stream.state_dict()
    other = IterableSource(list(range(10))).map(times_two).filter(is_odd)
    with pytest.raises(StateMismatchError, match=r"stage 1 differs.*map\(times_two\).*map\(add_one\)"):
        other.load_state_dict(state)
    with pytest.raises(StateMismatchError, match="version 99"):
        stream.load_state_dict({**state, "version": 99})
    with pytest.raises(StateMismatchError, match="expected a state"):
        stream.load_state_dict({"n": 3})


@pytest.mark.parametrize(
    "make, stage",
    [
        (lambda: IterableSource(list(range(30))).shuffle(5), "shuffle"),
        (lambda: IterableSource(iter(range(30))).map(add_one), "one-shot"),
        (lambda: IterableSource(list(range(30))).to(pairs), r"to\(pairs\)"),
    ],
    ids=["unseeded shuffle", "one-shot source", "iterator function"],
)
def test_a_pipeline_that_cannot_resume_says_which_stage_and_loading_its_state_fails(make, stage):
    stream = make()
    it = iter(stream)
    next(it)
    state = stream.state_dict()  # answers (a DataLoader asks after every batch) ...
    assert state["resumable"] is False and re.search(stage, state["reason"])
    with pytest.raises(NotResumableError, match=stage):  # ... but loading it, or a strict check, fails
        make().load_state_dict(state)
    with pytest.raises(NotResumableError, match=stage):
        check_resumable({"loader": {"worker_states": [{"dataset_state": state}]}})
    check_resumable(IterableSource([1]).state_dict())  # a resumable one passes


def test_with_positions_turned_off_read_ahead_stages_say_so_and_items_are_unchanged():
    from squirrel_graph.checkpoint import track_positions

    def make():
        return IterableSource(list(range(20))).async_map(add_one, buffer=3)

    with track_positions(False):
        stream = make()
        it = iter(stream)
        head = [next(it) for _ in range(4)]
        state = stream.state_dict()
        rest = list(it)
    assert head + rest == list(range(1, 21))
    assert state["resumable"] is False
    assert state["reason"] == "1:async_map: positions are turned off (track_positions(False))"
    with track_positions(False):
        prefetched = IterableSource(list(range(20))).map(add_one).prefetch(3)
        it = iter(prefetched)
        assert [next(it) for _ in range(2)] == [1, 2]
        assert prefetched.state_dict()["reason"] == "2:prefetch: positions are turned off (track_positions(False))"
        it.close()
    stream = make()  # back on outside the block
    it = iter(stream)
    next(it)
    assert stream.state_dict()["resumable"] is True


def inc(x):
    return x + 1


def sample_id(s):
    return s["i"]


def odd(x):
    return x % 2 == 1


def check_positions(make, positions, view=lambda x: x):
    full = [view(x) for x in make()]
    for k in positions:
        got, _ = resumed_after(make, k, view)
        assert got == full, f"resumed after {k} items"
    return full


def test_the_dask_backend_resumes_per_key_tasks_and_dask_maps(store_url, dask_client):
    per_key = check_positions(
        lambda: (
            MessagepackDriver(store_url)
            .get_iter()
            .map(sample_id)
            .filter(odd)
            .map(inc)
            .compile(backend="dask", client=dask_client)
        ),
        [0, 1, 2, 3, 7, 12, 23, 24],
    )
    assert per_key == [i + 1 for i in range(48) if i % 2]
    maps = check_positions(
        lambda: IterableSource(list(range(30))).dask_map(inc).dask_map(inc).materialize_dask(), [0, 1, 9, 29, 30]
    )
    assert maps == list(range(2, 32))


@pytest.mark.parametrize(
    "items", ["ints", "dicts", "too big"], ids=["compiled chunks", "python fallback", "first chunk falls back"]
)
def test_the_numba_backend_resumes_inside_and_across_chunks(items):
    data = {
        "ints": list(range(9000)),
        "dicts": [{"v": i} for i in range(9000)],
        "too big": [2**70, *range(1, 9000)],  # the compiled first chunk is refused: Python re-reads it, then on
    }[items]
    fn = (lambda d: {"v": d["v"] + 1}) if items == "dicts" else inc
    keep = {"dicts": lambda d: d["v"] % 2 == 1, "too big": lambda x: x % 3 != 0}.get(items, odd)

    def make():
        return IterableSource(data).numba_map(fn).filter(keep)

    full = check_positions(make, [0, 1, 2047, 2048, 2049, 3000, 4499, 4500])
    assert len(full) == (6000 if items == "too big" else 4500)


def test_multiplexers_and_sampler_sources_resume_from_their_draws():
    from squirrel_graph.iterstream.multiplexer import Multiplexer, MultiplexingStrategy
    from squirrel_graph.iterstream.source import IterableSamplerSource

    def inputs():
        return [IterableSource(list(range(5))), IterableSource(list(range(100, 112))), IterableSource([7])]

    round_robin = check_every_position(lambda: Multiplexer(inputs(), mux_strategy=MultiplexingStrategy.ROUND_ROBIN))
    assert sorted(round_robin) == sorted([*range(5), *range(100, 112), 7])
    sampled = check_every_position(
        lambda: Multiplexer(
            inputs()[:2], mux_strategy=MultiplexingStrategy.SAMPLING, sampling_probas=[0.3, 0.7], seed=3, max_reinits=3
        )
    )
    assert set(sampled) <= {*range(5), *range(100, 112)} and len(sampled) > 12
    drawn = check_every_position(lambda: IterableSamplerSource(inputs(), probs=[0.2, 0.5, 0.3], seed=9))
    assert sorted(drawn) == sorted([*range(5), *range(100, 112), 7]) and drawn != sorted(drawn)


@pytest.mark.parametrize(
    "kw",
    [
        {"window_size": 3},
        {"window_size": 4, "stride": 2},
        {"window_size": 3, "drop_last_if_not_full": False, "min_window_size": 2},
        {"window_size": 5, "stride": 2, "drop_last_if_not_full": False, "fill_nan_on_partial": True},
    ],
)
def test_sliding_windows_resume_by_re_reading_the_current_window(kw):
    from squirrel_graph.runtime.ops import sliding_

    def make():
        return IterableSource(list(range(13))).filter(not_div3).sliding(deepcopy=False, **kw)

    full = check_every_position(make)
    reference = sliding_(
        [i for i in range(13) if i % 3],
        kw["window_size"],
        False,
        kw.get("stride", 1),
        kw.get("drop_last_if_not_full", True),
        kw.get("min_window_size", 1),
        kw.get("fill_nan_on_partial", False),
    )
    assert full == [list(w) for w in reference]


@pytest.mark.parametrize("mode", ["drop", "pad"])
def test_equalize_resumes_inside_its_padding_passes(monkeypatch, mode):
    torch = pytest.importorskip("torch")
    dist = torch.distributed
    monkeypatch.setattr(dist, "is_available", lambda: True)
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_rank", lambda group=None: 2)
    monkeypatch.setattr(dist, "get_world_size", lambda group=None: 3)

    def make():
        return IterableSource(list(range(8))).split_by_rank_pytorch(equalize=mode).map(add_one)

    full = check_every_position(make)
    assert full == ([3, 6] if mode == "drop" else [3, 6, 3])  # rank 2 of 3 holds 2 and 5; ranks 0 and 1 hold 3


def test_explain_says_where_a_loaded_state_resumes_and_what_replays(tmp_path):
    url = write_store(str(tmp_path / "s"), n_shards=6, per_shard=5)

    def make():
        return MessagepackDriver(url).get_iter(max_workers=1).shuffle(4, seed=1).map(add_i).batched(3)

    stream = make()
    it = iter(stream)
    for _ in range(4):
        next(it)
    resumed = make()
    assert "== Resume" not in str(resumed.explain())  # nothing loaded: nothing to say
    resumed.load_state_dict(stream.state_dict())
    text = str(resumed.explain())
    section = text[text.index("== Resume") :].split("\n== ")[0]
    position = stream.state_dict()["position"]
    shuffle = position  # the batched loop passes the shuffle's position on
    assert f"replays {shuffle['emitted']} picks from the seed" in section
    assert f"#{shuffle['from']}..#{shuffle['pulled'] - 1}" in section
    skip = shuffle["up"]["skip"]
    assert f"skips its first {skip} element(s) before any user function" in section
    assert f"[0:keys]: skips its first {shuffle['up']['item']['n']} item(s) without reading them" in section


@pytest.mark.parametrize("k", [7, 33, 45])
def test_explain_names_every_counting_stage_with_its_count(k):
    """take, zip_index, loop and the source each say their own count (30 items a pass)."""
    make = lambda: IterableSource(list(range(30))).loop(2).take(50).zip_index().map(second)  # noqa: E731
    position, lines = resume_section(make, k)
    assert position == {"index": k, "up": {"taken": k, "up": {"passes": k // 30, "up": {"n": k % 30}}}}
    assert lines == [
        f"zip_index [3:zip_index]: counts on from {k}",
        f"take(50) [2:take]: has taken {k}",
        f"loop(2) [1:loop]: has finished passes: {k // 30}",
        f"source(list) [0:source]: skips its first {k % 30} item(s) without reading them again",
    ]


@pytest.mark.parametrize("optimize", [True, False])
def test_explain_says_a_flatten_re_runs_the_item_it_was_inside(optimize):
    make = lambda: IterableSource([[1, 2, 3]] * 10).flatten().map(add_one).compile(optimize=optimize)  # noqa: E731
    position, lines = resume_section(make, 7)  # 2 whole lists and 1 element of the third
    assert position == {"item": {"n": 2}, "skip": 1}
    stage = "flatten → map(add_one) [1:fused]" if optimize else "flatten [1:flatten]"
    assert lines == [
        f"{stage}: re-runs the item it was inside (its input resumes right before it) and skips its first 1 "
        "element(s) before any user function after the flatten runs",
        "source(list) [0:source]: skips its first 2 item(s) without reading them again",
    ]


def test_explain_says_a_numba_stage_re_runs_its_chunk_and_a_shuffle_replays_its_picks():
    numba = lambda: IterableSource(list(range(30))).map(add_one).compile(backend="numba")  # noqa: E731
    position, lines = resume_section(numba, 7)
    assert position == {"chunk": None, "skip": 7}
    assert lines == [
        "map(add_one) [1:map]: re-reads and re-runs the chunk it was in, skips 7 output(s)",
        "source(list) [0:source] and the stages above it start at their beginning",
    ]
    shuffled = lambda: IterableSource(list(range(30))).shuffle(5, seed=3).map(add_one)  # noqa: E731
    position, lines = resume_section(shuffled, 7)
    pulled, emitted = position["pulled"], position["emitted"]
    assert emitted == 7 and position["from"] == 0 and position["up"] is None
    assert lines == [
        f"shuffle(5, seeded) [1:shuffle]: replays 7 picks from the seed (no items) and rebuilds its buffer from "
        f"input items #0..#{pulled - 1} ({pulled}): the recent ones re-read at once, older ones from the nearest "
        "saved position when the shuffle picks them",
        "source(list) [0:source] and the stages above it start at their beginning",
    ]


def test_explain_of_a_state_taken_before_the_first_item_says_it_starts_at_the_beginning(tmp_path):
    from squirrel_graph.io.paths import FilePathGenerator

    for i in range(5):
        (tmp_path / f"f{i}").write_text("x")
    position, lines = resume_section(lambda: FilePathGenerator(str(tmp_path)).map(len), 3)
    assert position == {"n": 3}
    assert lines == [f"file_paths('{tmp_path}') [0:file_paths]: skips its first 3 item(s) without reading them again"]
    position, lines = resume_section(lambda: IterableSource(list(range(5))).map(add_one), 0)
    assert position is None
    assert lines == ["starts at the beginning (the state was taken before the first item)"]


def test_a_state_resumes_on_a_copy_of_the_store_elsewhere(tmp_path):
    """A restarted job often finds its data at another path (copied to a node's local disk)."""
    import shutil

    first = write_store(str(tmp_path / "a"), n_shards=4, per_shard=5)
    shutil.copytree(tmp_path / "a", tmp_path / "b")

    def make(url):
        return MessagepackDriver(url).get_iter(max_workers=1).map(add_i)

    stream = make(first)
    it = iter(stream)
    head = [next(it) for _ in range(7)]
    moved = make(str(tmp_path / "b"))
    moved.load_state_dict(stream.state_dict())
    assert head + list(moved) == list(make(first))


@pytest.mark.parametrize(
    "n, kw",
    [
        (7, {"window_size": 3, "stride": 2, "drop_last_if_not_full": False}),  # the tail ends on a 1-item window
        (2, {"window_size": 3, "drop_last_if_not_full": False}),  # the input ends inside the first window
        (2, {"window_size": 3, "drop_last_if_not_full": False, "fill_nan_on_partial": True}),
        (250, {"window_size": 200, "stride": 100, "drop_last_if_not_full": False}),  # a 150-item tail window
    ],
    ids=["one-item tail", "partial first window", "padded first window", "long tail"],
)
def test_sliding_windows_resume_inside_their_tail_and_after_a_partial_first_window(n, kw):
    from squirrel_graph.runtime.ops import sliding_

    def make():
        return IterableSource(list(range(n))).sliding(deepcopy=False, **kw)

    full = check_every_position(make)
    reference = sliding_(
        range(n),
        kw["window_size"],
        False,
        kw.get("stride", 1),
        False,
        kw.get("min_window_size", 1),
        kw.get("fill_nan_on_partial", False),
    )
    assert full == [list(w) for w in reference]


def mux_inputs():
    return [IterableSource([1, 2, 3, 4]), IterableSource(["a", "b"]), IterableSource([10, 20, 30, 40])]


@pytest.mark.parametrize(
    "make",
    [
        lambda: Multiplexer(mux_inputs(), mux_strategy=MultiplexingStrategy.ROUND_ROBIN),
        lambda: Multiplexer(
            mux_inputs(), mux_strategy=MultiplexingStrategy.UNIFORM_WITH_REPLACEMENT, seed=4, max_reinits=4
        ),
    ],
    ids=["round robin", "uniform"],
)
def test_multiplexers_resume_after_an_input_ran_out_mid_cycle(make):
    """The second input runs out after 7 items: the cycle (or the uniform draws replayed) goes on from there."""
    full = check_every_position(make)
    assert {1, "a", 10} <= set(full)
    stream = make()
    iter(stream)
    assert stream.state_dict()["position"] is None  # nothing drawn yet: starts at the beginning


def resumed_twice(make, k1, k2):
    """Items of a run interrupted after ``k1`` items, resumed, interrupted again after ``k2`` items in all and
    resumed again; with the state of the first resumed run."""
    head, state = resumed_after(make, k1)
    again = make()
    again.load_state_dict(state)
    it = iter(again)
    middle = [next(it) for _ in range(k2 - k1)]
    second = json.loads(json.dumps(again.state_dict()))
    it.close()
    last = make()
    last.load_state_dict(second)
    return head[:k1] + middle + list(last), second


@pytest.mark.parametrize("k1", [1, 4, 9, 13])
def test_a_sampler_source_resumed_twice_replays_all_its_draws(k1):
    from squirrel_graph.iterstream.source import IterableSamplerSource

    def make():
        inputs = [IterableSource(list(range(5))), IterableSource(list(range(100, 112))), IterableSource([7])]
        return IterableSamplerSource(inputs, probs=[0.2, 0.5, 0.3], seed=9)

    full = list(make())
    for k2 in range(k1, len(full) + 1, 2):
        got, second = resumed_twice(make, k1, k2)
        assert got == full, f"resumed after {k1}, then after {k2}"
        assert second["position"]["draws"] >= k2  # a draw per item, and one per input that ran out


@pytest.mark.parametrize("k1", [1, 2049, 3001])
def test_a_numba_stage_resumed_twice_keeps_its_chunk_and_skip(k1):
    def make():
        return IterableSource(list(range(9000))).numba_map(inc).filter(odd)

    full = list(make())
    for k2 in (k1, k1 + 1, k1 + 1400):
        got, _ = resumed_twice(make, k1, k2)
        assert got == full, f"resumed after {k1}, then after {k2}"


def state_after(make, k):
    stream = make()
    it = iter(stream)
    for _ in range(k):
        next(it)
    state = json.loads(json.dumps(stream.state_dict()))
    it.close()
    return state


SHUFFLES = [(8, 8, 3, 60), (8, 2, 5, 90), (8, 8, 11, 90), (16, 4, 1, 120), (16, 16, 2, 120)]  # size, initial, seed, n


@pytest.mark.parametrize("size, initial, seed, n", SHUFFLES)
def test_a_seeded_shuffle_state_keeps_the_snapshots_from_the_one_before_its_oldest_buffered_item(
    size, initial, seed, n
):
    """``from`` is the last snapshot (one before every ``size // 8``-th pull) at or before the oldest buffered
    item; ``segments`` are the later ones before ``pulled``, every k-th of them when there are more than 24."""
    every = max(1, size // 8)

    def make():
        return IterableSource(list(range(n))).shuffle(size, initial=initial, seed=seed)

    full = list(make())
    thinned = 0
    for k in range(1, n + 1):
        position = state_after(make, k)["position"]
        pulled = position["pulled"]
        oldest = min(set(range(pulled)) - set(full[:k]), default=pulled)
        first = oldest - oldest % every
        assert position["emitted"] == k
        assert (position["from"], position["up"]) == (first, {"n": first} if first else None), k
        later = list(range(first + every, pulled, every))
        step = max(1, -(-len(later) // 24))
        thinned += step > 1
        assert position["segments"] == [[m, {"n": m}] for m in later[::step]], k
    assert thinned or size == 16  # the first sizes keep an item long enough for a state to thin its snapshots


READS: list[int] = []


def read(i):
    READS.append(i)
    return i


def planned_reads(position, rest, size):
    """The reads (ranges of input items) of a shuffle resumed from ``position`` that yields ``rest``: the last
    ``size`` items pulled (and after) at once, from the saved snapshot at or before them; then each older buffered
    item when it is picked, from the snapshot at or before it, with the buffered items close behind it (gaps up to
    4 snapshot intervals) in the same read."""
    every, pulled = max(1, size // 8), position["pulled"]
    marks = [position["from"]] + [m for m, _ in position["segments"]]
    cut = max((m for m in marks if m <= max(0, pulled - size)), default=position["from"])
    reads = [range(cut, pulled)]
    unread = {i for i in rest if i < cut}
    for item in rest:
        if item in unread:
            upto = item
            for later in sorted(u for u in unread if u > item):
                if later - upto > 4 * every:
                    break
                upto = later
            reads.append(range(max(m for m in marks if m <= item), upto + 1))
            unread -= set(reads[-1])
    return reads


@pytest.mark.parametrize("size, initial, seed, n", SHUFFLES)
def test_a_resumed_seeded_shuffle_re_reads_its_recent_items_once_and_older_ones_when_it_picks_them(
    size, initial, seed, n
):
    def make():
        return IterableSource(list(range(n))).map(read).shuffle(size, initial=initial, seed=seed)

    full = list(make())
    old = 0
    for k in range(1, n + 1, 2):
        stream = make()
        it = iter(stream)
        head = [next(it) for _ in range(k)]
        state = json.loads(json.dumps(stream.state_dict()))
        it.close()
        resumed = make()
        resumed.load_state_dict(state)
        READS.clear()
        assert head + list(resumed) == full
        pulled = state["position"]["pulled"]
        planned = [i for r in planned_reads(state["position"], full[k:], size) for i in r]
        assert [i for i in READS if i < pulled] == planned, k
        assert [i for i in READS if i >= pulled] == list(range(pulled, n))  # and the items after them once
        old += bool(planned) and len(planned) > pulled - planned[0]  # it read placeholders
    assert old  # some states hold items older than the recent part


@pytest.mark.parametrize("size, initial, seed, n", SHUFFLES[:2] + SHUFFLES[3:4] + [(32, 32, 6, 120)])
@pytest.mark.parametrize("k1", [1, 6, 23])
def test_a_seeded_shuffle_resumed_twice_yields_the_rest_and_points_where_the_uninterrupted_run_does(
    size, initial, seed, n, k1
):
    def make():
        return IterableSource(list(range(n))).shuffle(size, initial=initial, seed=seed)

    full = list(make())
    for k2 in range(k1, n + 1, 5):
        got, second = resumed_twice(make, k1, k2)
        assert got == full, f"resumed after {k1}, then after {k2}"
        here, there = second["position"], state_after(make, k2)["position"]
        assert {**here, "segments": None} == {**there, "segments": None}, (k1, k2)


def test_a_resumed_item_shuffle_reads_older_items_back_without_reading_ahead(tmp_path):
    """The shuffle's input fetches 4 shards at a time; reading a picked old item back fetches only its own."""
    from collections import Counter

    url = write_store(f"reqfile://{tmp_path}/s", n_shards=20, per_shard=5)

    def make():
        return MessagepackDriver(url).get_iter(max_workers=4).shuffle(8, initial=8, seed=2).map(add_i)

    full = [i - 1 for i in make()]
    for k in range(2, 100, 6):
        stream = make()
        it = iter(stream)
        head = [next(it) - 1 for _ in range(k)]
        state = json.loads(json.dumps(stream.state_dict()))
        it.close()
        resumed = make()
        resumed.load_state_dict(state)
        cf.LOG.clear()
        assert head + [i - 1 for i in resumed] == full
        recent, *back = planned_reads(state["position"], full[k:], 8)
        planned = Counter(range(recent.start // 5, 20))  # the recent part, and on to the end
        for r in back:
            planned.update(range(r.start // 5, (r.stop - 1) // 5 + 1))
        assert Counter(shard_reads()) == Counter({f"shard-{s:02d}": n for s, n in planned.items()}), k


def test_a_seeded_shuffle_below_a_worker_split_reads_its_older_items_back_through_the_split():
    full = check_every_position(lambda: IterableSource(list(range(60))).split_by_worker_pytorch().shuffle(8, seed=3))
    assert sorted(full) == list(range(60))  # one process, no DataLoader: the split keeps every item


def test_an_unseeded_shuffle_state_names_it_and_says_to_give_it_a_seed():
    stream = IterableSource(list(range(30))).shuffle(5)
    it = iter(stream)
    next(it)
    assert stream.state_dict()["reason"] == "shuffle(5): an unseeded shuffle cannot replay its order; give it a seed"


@pytest.mark.parametrize("n, initial", [(5, 2), (7, 2), (7, 8)])
def test_a_seeded_shuffle_of_an_input_shorter_than_its_buffer_resumes_at_every_item(n, initial):
    """The input ends while the buffer still fills (two pulls a pick, or none before the input ended)."""
    full = check_every_position(lambda: IterableSource(list(range(n))).shuffle(8, initial=initial, seed=5))
    assert sorted(full) == list(range(n))


@pytest.mark.parametrize(
    "kw",
    [{"stride": 2}, {"stride": 1}, {"stride": 2, "drop_last_if_not_full": False}, {"stride": 3, "min_window_size": 1}],
)
def test_a_sliding_state_taken_after_the_last_window_resumes_to_nothing(kw):
    """A state saved once the stream has ended (e.g. at the end of an epoch) resumes to an empty rest."""
    stream = IterableSource(list(range(4))).sliding(3 if kw["stride"] == 3 else 2, deepcopy=False, **kw)
    full = list(stream)
    assert full  # windows were produced
    state = json.loads(json.dumps(stream.state_dict()))
    again = IterableSource(list(range(4))).sliding(3 if kw["stride"] == 3 else 2, deepcopy=False, **kw)
    again.load_state_dict(state)
    assert list(again) == []


def test_a_resumed_shuffle_keeps_each_snapshot_once_in_its_next_state():
    """The marks a resumed shuffle starts from are not taken again while it re-reads its recent items."""

    def make():
        return IterableSource(list(range(400))).shuffle(40, seed=2).map(add_one)

    stream = make()
    it = iter(stream)
    head = [next(it) for _ in range(150)]
    resumed = make()
    resumed.load_state_dict(json.loads(json.dumps(stream.state_dict())))
    it = iter(resumed)
    more = [next(it) for _ in range(30)]
    numbers = [n for n, _ in resumed.state_dict()["position"]["segments"]]
    assert numbers == sorted(set(numbers)) and numbers  # strictly increasing: no snapshot twice
    assert head + more + list(it) == list(make())
