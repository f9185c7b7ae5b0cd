"""Regression tests: seeded results pinned against squirrel-core 0.20.2's own output, and bugs found in review."""

from __future__ import annotations

import functools
import gc
import json
import multiprocessing
import threading
import time
from pathlib import Path

import msgpack
import numpy as np
import pytest

from squirrel_graph import IterableSamplerSource, IterableSource, Multiplexer, MultiplexingStrategy
from squirrel_graph.driver import MessagepackDriver
from squirrel_graph.errors import CorruptShardError, stage_of
from squirrel_graph.io.serialization import MessagepackSerializer
from squirrel_graph.io.store import get_random_key

SEEDED = json.loads((Path(__file__).parent / "fixtures" / "squirrel-core-seeded.json").read_text())


@pytest.mark.parametrize("case", sorted(SEEDED["shuffle"]))
def test_seeded_shuffle_equals_squirrel_core(case):
    size, seed, initial = case.split("-")
    seed = int(seed) if seed.isdigit() else seed
    got = IterableSource(range(40)).shuffle(int(size), seed=seed, initial=int(initial)).collect()
    assert got == SEEDED["shuffle"][case]


def test_seeded_sampler_sources_equal_squirrel_core():
    sources = [list(range(10)), list(range(100, 107)), list(range(200, 215))]
    assert IterableSamplerSource(sources, seed=7).collect() == SEEDED["sampler_uniform"]
    assert IterableSamplerSource(sources, probs=[0.5, 0.25, 0.25], seed=3).collect() == SEEDED["sampler_probs"]


@pytest.mark.parametrize(
    "name, strategy, probs",
    [
        ("uniform", MultiplexingStrategy.UNIFORM_WITH_REPLACEMENT, None),
        ("sampling", MultiplexingStrategy.SAMPLING, [0.35, 0.6, 0.05]),
    ],
)
def test_seeded_multiplexer_equals_squirrel_core(name, strategy, probs):
    children = [IterableSource([f"{p}{i}" for i in range(n)]) for p, n in (("a", 30), ("b", 8), ("c", 50))]
    mux = Multiplexer(children, strategy, sampling_probas=probs, seed=42, max_reinits=4)
    expected = SEEDED[f"mux_{name}"]
    assert mux.collect() == expected["items"]
    assert mux.reinit_counts == expected["reinit_counts"] and mux.num_samples == expected["num_samples"]


def _key_in_child(_):
    return get_random_key()


def test_forked_writers_draw_different_random_keys():
    get_random_key()  # the parent has used its generator before forking
    with multiprocessing.get_context("fork").Pool(4) as pool:
        keys = pool.map(_key_in_child, range(16))
    assert len(set(keys)) == 16


def test_shards_larger_than_msgpacks_default_buffer_are_read(tmp_path):
    store = MessagepackDriver(str(tmp_path)).store
    store.set([np.zeros(1_000_000, np.float32)] * 30, key="big")  # 120 MB decompressed
    got = MessagepackDriver(str(tmp_path)).get_iter().collect()
    assert len(got) == 30 and got[0].shape == (1_000_000,)


def test_a_shard_cut_inside_a_container_is_reported_not_dropped():
    payload = msgpack.packb([1, 2, 3])[:-1]
    with pytest.raises(CorruptShardError, match="truncated"):
        MessagepackSerializer.unpack_shard(payload, "x.gz")
    good = MessagepackSerializer.pack_shard([{"a": 1}])
    with pytest.raises(CorruptShardError):
        MessagepackSerializer.unpack_shard(good + msgpack.packb({"b": 2, "c": 3})[:-2], "y.gz")


CONVERT = {"int": lambda x: x * 1, "float": lambda x: x * 1.0, "negzero": lambda x: x * -0.0}


def plus_one(x):
    return x + 1


def test_inliner_never_confuses_equal_constants_or_wrapped_functions():
    assert IterableSource([1, 2]).map(CONVERT["float"]).collect() == [1.0, 2.0]
    assert all(type(x) is float for x in IterableSource([1, 2]).map(CONVERT["float"]).collect())
    assert str(IterableSource([1.0]).map(CONVERT["negzero"]).collect()[0]) == "-0.0"
    wrapped = functools.wraps(plus_one)(lambda x: x + 1.5)
    assert IterableSource([1]).map(wrapped).collect() == [2.5]


class Logged(IterableSource):
    def __iter__(self):
        yield "start"
        yield from super().__iter__()


def test_subclass_calling_super_iter_runs_the_builtin_stage():
    assert Logged([1, 2]).map(str).collect() == ["start", "1", "2"]
    assert list(Logged([3])) == ["start", 3]


@pytest.mark.parametrize("max_workers", [0, 1, 4])
def test_fetch_error_comes_after_every_earlier_shard_at_any_parallelism(tmp_path, max_workers):
    store = MessagepackDriver(str(tmp_path)).store
    for k in range(6):
        store.set([{"i": k}], key=f"k{k}")
    keys = ["k0", "k1", "k2", "k3", "missing", "k5"]
    got = []
    with pytest.raises(FileNotFoundError, match="missing") as info:
        for s in MessagepackDriver(str(tmp_path)).get_iter(keys_iterable=keys, max_workers=max_workers):
            got.append(s["i"])
    assert got == [0, 1, 2, 3]
    assert stage_of(info.value).startswith("fetch(MessagepackDriver(")  # a label with quotes is read back whole


def _pool_threads():
    return [t for t in threading.enumerate() if t.name.startswith("squirrel_graph pool")]


def slow_double(x):
    time.sleep(0.001)
    return 2 * x


def boom(x):
    raise RuntimeError("boom")


def test_pools_are_released_at_once_when_a_run_fails_or_is_closed():
    before = len(_pool_threads())
    with pytest.raises(RuntimeError) as info:
        IterableSource(range(100)).async_map(slow_double, max_workers=8).map(boom).collect()
    kept = info.value  # holding the exception (as notebooks and loggers do) must not keep the pool alive
    assert len(_pool_threads()) <= before, kept
    it = iter(IterableSource(range(1000)).async_map(slow_double, max_workers=8).take(3))
    assert list(it) == [0, 2, 4]
    it.close()
    assert len(_pool_threads()) <= before
    del kept, it
    gc.collect()


def test_sliding_short_input_yields_one_partial_window_like_squirrel_core():
    out = IterableSource([0]).sliding(3, deepcopy=False, drop_last_if_not_full=False, min_window_size=2).collect()
    assert out == [[0]]


def test_errors_in_to_functions_and_custom_stages_name_the_stage():
    def bad_iter(it):
        for x in it:
            if x == 2:
                raise ValueError("no twos")
            yield x

    with pytest.raises(ValueError) as info:
        IterableSource([1, 2]).to(bad_iter).collect()
    assert stage_of(info.value) == "to(bad_iter)"

    def failing_source():
        raise OSError("cannot list")

    with pytest.raises(OSError) as info:
        IterableSource(failing_source).collect()
    assert stage_of(info.value) == "source(failing_source())"
