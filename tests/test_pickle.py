"""Streams pickle before iteration (for DataLoader workers) and yield the same items afterwards."""

from __future__ import annotations

import pickle
import random

from squirrel_graph import IterableSamplerSource, IterableSource, Multiplexer, MultiplexingStrategy

from helpers import add, add_one, is_odd, sleepy, times_two, total


def test_chain_of_module_level_functions_survives_pickle():
    stream = (
        IterableSource(range(50))
        .map(add_one)
        .map(add, offset=3)
        .filter(is_odd)
        .async_map(sleepy, delay=0.0)
        .shuffle(10, seed=4)
        .batched(4, collation_fn=total)
        .zip_index()
    )
    clone = pickle.loads(pickle.dumps(stream))
    assert clone.collect() == stream.collect()
    assert len(stream.collect()) == 6


def test_compiled_handles_and_loops_pickle_without_runtime_state():
    looped = IterableSource([1, 2]).map(times_two).loop(2)
    assert looped.collect() == [2, 4, 2, 4] and looped.counter == 2
    clone = pickle.loads(pickle.dumps(looped.compile(disable=["fuse_maps"])))
    assert clone.collect() == [2, 4, 2, 4]
    assert clone.source.counter == 2
    assert pickle.loads(pickle.dumps(looped)).counter == 0  # run state stayed in this process


def test_sampler_source_carries_its_rng_state_through_pickle():
    src = IterableSamplerSource([range(10), range(100, 120)], probs=[0.3, 0.7], seed=5)
    expected = src.collect()
    assert pickle.loads(pickle.dumps(src)).collect() == expected
    assert src.collect() == expected  # re-iterable: probs are not consumed (squirrel-core's was single-use)
    assert sorted(expected) == sorted(list(range(10)) + list(range(100, 120)))


def test_sampler_with_rng_only_and_float_probs_that_do_not_sum_exactly():
    src = IterableSamplerSource([range(5)] * 10, probs=[0.1] * 10, rng=random.Random(1))
    assert len(src.collect()) == 50


def test_multiplexer_pickles_and_each_iteration_restarts_its_state():
    mux = Multiplexer(
        [IterableSource(range(100)), IterableSource(range(26)), IterableSource(range(200))],
        MultiplexingStrategy.UNIFORM_WITH_REPLACEMENT,
        seed=42,
    )
    clone = pickle.loads(pickle.dumps(mux))
    first = mux.collect()
    assert len(first) == 579 and mux.reinit_counts == [1, 7, 1]
    assert mux.collect() == first and sum(mux.num_samples) == 579
    assert clone.collect() == first
