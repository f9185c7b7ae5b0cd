"""Bad input gets a clear error naming the method and the argument, at chain time when the value is visible."""

from __future__ import annotations

import traceback

import pytest

from squirrel_graph import IterableSource, Multiplexer, MultiplexingStrategy
from squirrel_graph.errors import stage_of

from helpers import add_one, fail_on_3

S = IterableSource(range(5))


@pytest.mark.parametrize(
    "call, exc, words",
    [
        (lambda: S.map(3), TypeError, ["map", "callback", "callable"]),
        (lambda: S.filter("x"), TypeError, ["filter", "predicate", "callable"]),
        (lambda: S.async_map(None), TypeError, ["async_map", "callback"]),
        (lambda: S.batched(0), ValueError, ["batched", "batchsize", ">= 1"]),
        (lambda: S.batched(-2), ValueError, ["batched", "batchsize"]),
        (lambda: S.batched(2.5), TypeError, ["batched", "batchsize"]),
        (lambda: S.batched(2, collation_fn=5), TypeError, ["batched", "collation_fn"]),
        (lambda: S.take(-1), ValueError, ["take", "n"]),
        (lambda: S.sliding(1, deepcopy=False), ValueError, ["sliding", "window_size"]),
        (lambda: S.sliding(3, deepcopy=False, stride=4), ValueError, ["sliding", "stride"]),
        (lambda: S.sliding(3, deepcopy=False, min_window_size=3), ValueError, ["sliding", "min_window_size"]),
        (lambda: S.sliding(3, deepcopy=False, stride=0), ValueError, ["sliding", "stride"]),
        (lambda: S.shuffle(10, seed=[1]), TypeError, ["shuffle", "seed"]),
        (lambda: S.shuffle(10, seed=None, rng=3), TypeError, ["shuffle", "rng"]),
        (lambda: S.shuffle(10, bogus=1), TypeError, ["shuffle", "bogus"]),
        (lambda: S.async_map(add_one, buffer=-1), ValueError, ["async_map", "buffer"]),
        (lambda: S.async_map(add_one, executor="pool"), TypeError, ["async_map", "executor"]),
        (lambda: S.loop(-1), ValueError, ["loop", "n"]),
        (lambda: S.compile(disable=["fuse_map"]), ValueError, ["disable", "fuse_map", "fuse_maps"]),
        (lambda: S.compile(backend="gpu"), ValueError, ["backend", "gpu"]),
        (lambda: S.explain(stage="final"), ValueError, ["stage", "final"]),
        (lambda: Multiplexer([S], "RoundRobin"), TypeError, ["Multiplexer", "mux_strategy"]),
        (lambda: Multiplexer([S], MultiplexingStrategy.SAMPLING), ValueError, ["sampling_probas"]),
    ],
)
def test_bad_arguments_fail_at_chain_time_naming_method_and_argument(call, exc, words):
    with pytest.raises(exc) as info:
        call()
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize("seed", [1, 1.5, "s", b"b", bytearray(b"x")])
def test_all_squirrel_core_seed_types_are_accepted(seed):
    a = IterableSource(range(20)).shuffle(5, seed=seed).collect()
    assert sorted(a) == list(range(20))
    assert a == IterableSource(range(20)).shuffle(5, seed=seed).collect()


@pytest.mark.parametrize("optimize", [True, False])
def test_error_in_fused_map_names_the_stage_keeps_traceback_and_earlier_items(optimize):
    stream = IterableSource(range(6)).map(fail_on_3).map(add_one).filter(bool).compile(optimize=optimize)
    got = []
    with pytest.raises(ValueError, match="item 3 is bad") as info:
        for x in stream:
            got.append(x)
    assert got == [1, 2, 3]
    assert stage_of(info.value) == "map(fail_on_3)"
    frames = traceback.extract_tb(info.value.__traceback__)
    assert frames[-1].name == "fail_on_3"  # the original frame that raised is kept


def test_error_names_the_right_node_when_several_maps_share_a_function():
    def boom(x):
        if x > 10:
            raise KeyError("too big")
        return x * 4

    stream = IterableSource([1, 2, 3]).map(boom).map(add_one).map(boom)
    with pytest.raises(KeyError) as info:
        stream.collect()
    notes = getattr(info.value, "__notes__", [])
    assert any("(node 3:map)" in n for n in notes), notes
