"""Each fluent method against squirrel-core 0.20.2's documented results (see docs/migration.md for fixes)."""

from __future__ import annotations

import functools
import logging
import random
import threading

import pytest

from squirrel_graph import Composable, IterableSource
from squirrel_graph.errors import CorruptShardError, OneShotSourceWarning
from squirrel_graph.iterstream.iterators import getsize, map_, shuffle_, sliding_, take_, zip_index_
from squirrel_graph.runtime import ops

from helpers import add, add_one, is_odd, times_two, to_pair, total


class IterableClass:
    def __init__(self, items):
        self.items = items

    def __iter__(self):
        return iter(self.items)


def gen(n=3):
    yield from range(n)


@pytest.mark.parametrize(
    "source",
    [
        range(3),
        [0, 1, 2],
        gen,
        "a generator object",  # made in the test, so a rerun of the test (mutmut) gets a fresh one
        functools.partial(IterableClass, [0, 1, 2]),
        functools.partial(gen, 3),
        IterableClass([0, 1, 2]),
    ],
)
def test_iterable_source_accepts_everything_squirrel_core_does(source):
    source = gen() if source == "a generator object" else source
    assert IterableSource(source).collect() == [0, 1, 2]


def test_callable_source_is_called_on_every_iteration_so_streams_reiterate():
    stream = IterableSource(gen).map(add_one)
    assert stream.collect() == [1, 2, 3]
    assert stream.collect() == [1, 2, 3]


def test_map_passes_kwargs_and_partials():
    assert IterableSource([1, 2]).map(add, offset=1).collect() == [2, 3]
    assert IterableSource([1, 2]).map(functools.partial(add, offset=2)).collect() == [3, 4]


def test_filter_flatten_and_order():
    assert IterableSource(range(6)).filter(is_odd).collect() == [1, 3, 5]
    assert IterableSource([1, 2]).map(to_pair).flatten().collect() == [1, -1, 2, -2]
    assert IterableSource(["ab", "c"]).flatten().collect() == ["a", "b", "c"]


def test_filter_takes_no_kwargs_like_squirrel_core():
    with pytest.raises(TypeError):
        IterableSource([1]).filter(is_odd, a=1)


def test_flatten_of_a_non_iterable_raises_type_error_at_that_item():
    it = iter(IterableSource([[1], 2]).flatten())
    assert next(it) == 1
    with pytest.raises(TypeError):
        next(it)


@pytest.mark.parametrize("drop_last, expected", [(True, [[0, 1, 2], [3, 4, 5]]), (False, [[0, 1, 2], [3, 4, 5], [6]])])
def test_batched_yields_lists_and_drops_short_last_batch_by_default(drop_last, expected):
    assert IterableSource(range(7)).batched(3, drop_last_if_not_full=drop_last).collect() == expected


def test_batched_applies_collation_fn():
    assert IterableSource(range(6)).batched(3, collation_fn=total).collect() == [3, 12]


@pytest.mark.parametrize(
    "w, s, drop, mn, fill, expected",
    [
        (5, 1, True, 1, False, [list(range(i, i + 5)) for i in range(6)]),
        (5, 2, True, 1, False, [[0, 1, 2, 3, 4], [2, 3, 4, 5, 6], [4, 5, 6, 7, 8]]),
        (5, 2, True, 1, True, [[0, 1, 2, 3, 4], [2, 3, 4, 5, 6], [4, 5, 6, 7, 8]]),
        (5, 2, False, 1, False, [[0, 1, 2, 3, 4], [2, 3, 4, 5, 6], [4, 5, 6, 7, 8], [6, 7, 8, 9], [8, 9]]),
        (
            5,
            2,
            False,
            3,
            True,
            [[0, 1, 2, 3, 4], [2, 3, 4, 5, 6], [4, 5, 6, 7, 8], [6, 7, 8, 9, None], [8, 9, None, None, None]],
        ),
        (
            5,
            2,
            False,
            1,
            True,
            [[0, 1, 2, 3, 4], [2, 3, 4, 5, 6], [4, 5, 6, 7, 8], [6, 7, 8, 9, None], [8, 9, None, None, None]],
        ),
        (20, 1, True, 1, False, []),
    ],
)
def test_sliding_matches_squirrel_core_table(w, s, drop, mn, fill, expected):
    out = IterableSource(range(10)).sliding(
        w, deepcopy=False, stride=s, drop_last_if_not_full=drop, min_window_size=mn, fill_nan_on_partial=fill
    )
    assert out.collect() == expected


def test_sliding_partial_tail_and_batched_equivalence():
    out = IterableSource(range(4)).sliding(3, deepcopy=False, stride=1, drop_last_if_not_full=False).collect()
    assert out == [[0, 1, 2], [1, 2, 3], [2, 3], [3]]
    for size in (2, 3, 5):
        assert (
            IterableSource(range(11)).sliding(size, deepcopy=False, stride=size).collect()
            == IterableSource(range(11)).batched(size).collect()
        )


def test_sliding_deepcopy_copies_items():
    items = [[1], [2], [3]]
    shared = IterableSource(items).sliding(2, deepcopy=False).collect()
    copied = IterableSource(items).sliding(2, deepcopy=True).collect()
    assert shared[0][0] is items[0]
    assert copied[0][0] == items[0] and copied[0][0] is not items[0]


def test_sliding_keeps_real_none_items_and_empty_input_yields_nothing():
    # squirrel-core stopped at an all-None window and yielded [None] for an empty input; both fixed.
    out = IterableSource([None, None, 1]).sliding(2, deepcopy=False).collect()
    assert out == [[None, None], [None, 1]]
    assert IterableSource([]).sliding(3, deepcopy=False, drop_last_if_not_full=False).collect() == []


def test_seeded_shuffle_matches_squirrel_core_and_repeats():
    stream = IterableSource(range(10)).shuffle(5, seed=42)
    assert stream.collect() == [0, 4, 2, 1, 7, 8, 5, 6, 3, 9]
    assert stream.collect() == [0, 4, 2, 1, 7, 8, 5, 6, 3, 9]


def test_shuffle_with_rng_and_no_seed_is_reproducible():
    a = IterableSource(range(100)).shuffle(10, rng=random.Random(7)).collect()
    b = IterableSource(range(100)).shuffle(10, rng=random.Random(7)).collect()
    assert a == b and sorted(a) == list(range(100)) and a != list(range(100))


def test_unseeded_shuffle_is_a_permutation_that_differs_between_iterations():
    stream = IterableSource(range(200)).shuffle(50)
    a, b = stream.collect(), stream.collect()
    assert sorted(a) == sorted(b) == list(range(200))
    assert a != b


def test_shuffle_size_none_means_1000_and_small_sizes_are_noops():
    assert sorted(IterableSource(range(50)).shuffle(None, seed=1).collect()) == list(range(50))
    assert IterableSource(range(5)).shuffle(1).collect() == [0, 1, 2, 3, 4]
    assert IterableSource(range(5)).shuffle(0).collect() == [0, 1, 2, 3, 4]


def test_take():
    assert IterableSource(range(5)).take(2).collect() == [0, 1]
    assert IterableSource(range(2)).take(5).collect() == [0, 1]
    assert IterableSource(range(5)).take(0).collect() == []
    assert IterableSource(range(3)).take(None).collect() == [0, 1, 2]


def test_take_helper_does_not_over_consume():
    it = iter([1, 2, 3, 4])
    assert list(take_(it, 2)) == [1, 2]
    assert list(take_(it, 2)) == [3, 4]


def test_map_helper_as_key_hook_and_getsize():
    assert list(functools.partial(map_, callback=times_two)([1, 2])) == [2, 4]
    for item in ({"a": 1}, [1, 2], 3, "abc"):
        assert getsize(item) > 0


def test_loop_counter_counts_passes_and_restarts_per_iteration():
    looped = IterableSource([1, 2, 3]).loop(3)
    assert [looped.counter for _ in looped] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert looped.counter == 3
    assert looped.collect() == [1, 2, 3] * 3
    assert looped.counter == 3  # squirrel-core kept counting (6); the counter now belongs to the run


def test_loop_edge_cases():
    assert IterableSource([]).loop().collect() == []
    assert IterableSource([1]).loop(0).collect() == []
    assert IterableSource([1, 2]).loop().take(7).collect() == [1, 2, 1, 2, 1, 2, 1]
    # a single-use source no longer spins forever after its first pass, and the re-open says so
    with pytest.warns(OneShotSourceWarning, match="one-shot list_iterator"):
        assert IterableSource(iter([1, 2])).loop().collect() == [1, 2]


def test_loop_replays_seeded_randomness_each_pass_like_a_deepcopy():
    out = IterableSource(range(6)).shuffle(3, seed=3).loop(2).collect()
    assert out[:6] == out[6:]


def test_zip_index_restarts_per_iteration_and_pads():
    stream = IterableSource("abc").zip_index()
    assert stream.collect() == [(0, "a"), (1, "b"), (2, "c")]
    assert stream.collect() == [(0, "a"), (1, "b"), (2, "c")]
    padded = IterableSource(range(101)).zip_index(pad_length=2).collect()
    assert padded[0][0] == "00" and padded[99][0] == "99" and padded[100][0] == "100"


def test_zip_index_inside_loop_restarts_per_pass():
    assert IterableSource("ab").zip_index().loop(2).collect() == [(0, "a"), (1, "b"), (0, "a"), (1, "b")]


def test_tqdm_passes_items_through(capsys):
    assert IterableSource(range(5)).tqdm(desc="x", disable=False).collect() == list(range(5))
    assert "x" in capsys.readouterr().err


def test_to_applies_an_iterator_function():
    def every_other(it, start=0):
        for i, x in enumerate(it):
            if i % 2 == start:
                yield x

    assert IterableSource(range(6)).to(every_other, start=1).collect() == [1, 3, 5]


def test_collect_join_and_source_chain():
    calls = []
    stream = IterableSource(range(3)).map(calls.append)
    assert stream.join() is None
    assert calls == [0, 1, 2]
    chained = IterableSource([1, 2]).map(add_one).map(times_two)
    assert chained.source.collect() == [2, 3]
    assert chained.source.source.collect() == [1, 2]


def test_nothing_runs_before_iteration():
    calls = []
    stream = IterableSource(gen).map(calls.append).async_map(add_one).batched(2)
    _ = stream.explain()
    assert calls == []


class TimesTen(Composable):
    def __iter__(self):
        for x in self.source:
            yield x * 10


class Offset(Composable):
    def __init__(self, offset):
        super().__init__()
        self.offset = offset

    def __iter__(self):
        for x in self.source:
            yield x + self.offset


class BadInitWithSource(Composable):
    def __init__(self, x, source=None):
        super().__init__(source)


def test_compose_custom_composables_read_their_compiled_source():
    stream = IterableSource([1, 2]).map(add_one).compose(TimesTen).compose(Offset, 1).map(times_two)
    assert stream.collect() == [42, 62]
    assert "opaque(Offset)" in str(stream.explain())


def test_compose_rejects_an_init_with_a_source_argument():
    with pytest.raises(ValueError, match="source"):
        IterableSource([1]).compose(BadInitWithSource, 1)
    with pytest.raises(AssertionError):
        IterableSource([1]).compose(Offset, 1, source=[2])


def test_bare_composable_has_no_stage():
    with pytest.raises(TypeError, match="defines no stage"):
        list(Composable([1, 2]))


def test_async_map_preserves_order_and_kwargs():
    import time

    def jitter(x, scale):
        time.sleep(random.random() * 0.003)
        return x * scale

    out = IterableSource(range(30)).async_map(jitter, buffer=5, max_workers=8, scale=2).collect()
    assert out == [2 * x for x in range(30)]


def test_shuffle_helper_matches_the_fluent_shuffle_and_reseeds_a_given_rng():
    assert list(shuffle_(range(10), 5, seed=42)) == [0, 4, 2, 1, 7, 8, 5, 6, 3, 9]  # squirrel-core's order
    assert (
        list(shuffle_(range(10), 5, 3, seed=42)) == IterableSource(range(10)).shuffle(5, initial=3, seed=42).collect()
    )
    # the defaults are the fluent method's: a buffer of 1000 (full after 2000 items), the first pick at 100
    assert list(shuffle_(range(2500), seed=1)) == IterableSource(range(2500)).shuffle(seed=1).collect()
    given, twin = random.Random(0), random.Random(42)
    out = list(shuffle_(range(10), 5, rng=given, seed=42))
    assert out == list(shuffle_(range(10), 5, rng=twin)) == [0, 4, 2, 1, 7, 8, 5, 6, 3, 9]
    assert given.getstate() == twin.getstate()  # the seed reseeded the given rng, which made the picks


def test_sliding_helper_yields_one_partial_window_for_a_short_input_only_when_asked():
    assert list(sliding_([1, 2], 3, deepcopy=False, drop_last_if_not_full=False)) == [[1, 2]]
    assert list(sliding_([1, 2], 3, deepcopy=False, drop_last_if_not_full=False, fill_nan_on_partial=True)) == [
        [1, 2, None]
    ]
    assert list(sliding_([1, 2], 3, deepcopy=False)) == []
    assert list(sliding_([], 3, deepcopy=False, drop_last_if_not_full=False, fill_nan_on_partial=True)) == []


def test_zip_index_helper_counts_from_start_with_and_without_padding():
    assert list(zip_index_("ab", start=5)) == [(5, "a"), (6, "b")]
    assert list(zip_index_("ab", pad_length=3, start=9)) == [("009", "a"), ("010", "b")]


def fails_at_2(items):
    for x in items:
        if x == 2:
            raise ValueError("bad 2")
        yield x


def test_an_error_of_a_to_function_names_its_stage_and_node():
    with pytest.raises(ValueError, match="bad 2") as info:
        IterableSource(range(5)).map(abs).to(fails_at_2).collect()
    assert info.value.__notes__ == ["squirrel_graph: raised in stage 'to(fails_at_2)' (node 2:to)"]


def test_map_annotated_names_the_stage_and_node_of_a_failing_item():
    out = ops.map_annotated(iter([1, 0]), lambda x: 1 // x, "fetch(shards)", "3:fetch")
    assert next(out) == 1
    with pytest.raises(ZeroDivisionError) as info:
        next(out)
    assert info.value.__notes__ == ["squirrel_graph: raised in stage 'fetch(shards)' (node 3:fetch)"]


def test_skipping_corrupt_logs_counts_and_skips_a_corrupt_shard(caplog):
    def read(key):
        if "bad" in str(key):
            raise CorruptShardError(f"cannot decode {key[0] if isinstance(key, tuple) else key}")
        return [key]

    state = ops.FetchState()
    fetch = ops.skipping_corrupt(read, state, "fetch(shards)")
    with caplog.at_level(logging.WARNING, logger="squirrel_graph"):
        assert [fetch("good"), fetch("bad-1"), fetch(("bad-2", b"raw"))] == [["good"], [], []]
    assert state.skipped == [("bad-1", "cannot decode bad-1"), ("bad-2", "cannot decode bad-2")]
    assert [r.getMessage() for r in caplog.records] == [
        "fetch(shards): skipping corrupt shard 'bad-1': cannot decode bad-1",
        "fetch(shards): skipping corrupt shard 'bad-2': cannot decode bad-2",
    ]


class SlowToClose:
    """An iterator (not a generator) whose close() takes a moment and records the thread that called it."""

    def __init__(self, n: int) -> None:
        self.i, self.n, self.closed_by = 0, n, None

    def __iter__(self):
        return self

    def __next__(self):
        if self.i >= self.n:
            raise StopIteration
        self.i += 1
        return self.i

    def close(self) -> None:
        threading.Event().wait(0.02)
        self.closed_by = threading.current_thread().name


def test_closing_or_draining_a_prefetch_returns_once_its_reader_has_closed_the_input():
    source = SlowToClose(1000)
    it = ops.prefetch_(lambda: source, 2, "prefetch(2)", "1:prefetch")
    assert [next(it), next(it)] == [1, 2]
    it.close()
    assert source.closed_by == "squirrel_graph prefetch 1:prefetch"
    drained = SlowToClose(3)
    assert list(ops.prefetch_(lambda: drained, 2, "prefetch(2)", "1:prefetch")) == [1, 2, 3]
    assert drained.closed_by == "squirrel_graph prefetch 1:prefetch"


def test_a_prefetch_over_an_input_without_close_ends_cleanly(monkeypatch):
    errors = []
    monkeypatch.setattr(threading, "excepthook", errors.append)  # an error in the reader thread would land here
    assert list(ops.prefetch_(lambda: iter([1, 2, 3]), 2, "prefetch(2)", "1:prefetch")) == [1, 2, 3]
    assert errors == []


def test_after_ctrl_c_a_prefetch_does_not_wait_for_its_reader():
    gate = threading.Event()

    def stuck():
        yield 0
        gate.wait(10)  # the reader is stuck in the input when Ctrl-C arrives
        yield 1

    it = ops.prefetch_(stuck, 2, "prefetch(2)", "1:prefetch")
    assert next(it) == 0
    with pytest.raises(KeyboardInterrupt):
        it.throw(KeyboardInterrupt)
    (reader,) = [t for t in threading.enumerate() if t.name == "squirrel_graph prefetch 1:prefetch"]
    assert reader.is_alive()  # not joined: still inside the input
    gate.set()
    reader.join(5)
    assert not reader.is_alive()
