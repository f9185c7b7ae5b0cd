"""Random chains (hypothesis): optimized == unoptimized == a naive model of squirrel-core's semantics."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from squirrel_graph import IterableSource

from reference import ref_batched, ref_filter, ref_flatten, ref_map, ref_take, ref_zip_index


def inc(x):
    return x + 1


def dbl(x):
    return x * 2


def neg(x):
    return -x


def even(x):
    return x % 2 == 0


def small(x):
    return abs(x) < 50


def dup(x):
    return [x, x + 1]


FUNCS = {"inc": inc, "dbl": dbl, "neg": neg}
PREDS = {"even": even, "small": small}

# Operations on a stream of ints. batched/zip_index change the item type, so they are only generated last.
per_item_op = st.one_of(
    st.tuples(st.just("map"), st.sampled_from(sorted(FUNCS))),
    st.tuples(st.just("filter"), st.sampled_from(sorted(PREDS))),
    st.tuples(st.just("flatdup"), st.none()),
    st.tuples(st.just("async_map"), st.sampled_from(sorted(FUNCS))),
    st.tuples(st.just("take"), st.one_of(st.none(), st.integers(0, 30))),
    st.tuples(st.just("shuffle1"), st.none()),
    st.tuples(st.just("barrier"), st.none()),
)
last_op = st.one_of(
    st.none(),
    st.tuples(st.just("batched"), st.tuples(st.integers(1, 7), st.booleans())),
    st.tuples(st.just("zip_index"), st.one_of(st.none(), st.integers(1, 3))),
)


def apply_stream(stream, ops):
    for name, arg in ops:
        if name == "map":
            stream = stream.map(FUNCS[arg])
        elif name == "filter":
            stream = stream.filter(PREDS[arg])
        elif name == "flatdup":
            stream = stream.map(dup).flatten()
        elif name == "async_map":
            stream = stream.async_map(FUNCS[arg], buffer=3, max_workers=2)
        elif name == "take":
            stream = stream.take(arg)
        elif name == "shuffle1":
            stream = stream.shuffle(1)
        elif name == "barrier":
            stream = stream.barrier()
        elif name == "batched":
            stream = stream.batched(arg[0], drop_last_if_not_full=arg[1])
        elif name == "zip_index":
            stream = stream.zip_index(pad_length=arg)
    return stream


def apply_reference(items, ops):
    for name, arg in ops:
        if name in ("map", "async_map"):
            items = ref_map(items, FUNCS[arg])
        elif name == "filter":
            items = ref_filter(items, PREDS[arg])
        elif name == "flatdup":
            items = ref_flatten(ref_map(items, dup))
        elif name == "take":
            items = ref_take(items, arg)
        elif name == "batched":
            items = ref_batched(items, arg[0], drop_last=arg[1])
        elif name == "zip_index":
            items = ref_zip_index(items, arg)
    return items


@settings(max_examples=150, deadline=None)
@given(items=st.lists(st.integers(-100, 100), max_size=40), ops=st.lists(per_item_op, max_size=7), last=last_op)
def test_random_chains_equal_across_optimization_levels_and_the_model(items, ops, last):
    ops = ops + ([last] if last else [])
    stream = apply_stream(IterableSource(items), ops)
    expected = apply_reference(list(items), ops)
    assert stream.collect() == expected
    assert stream.compile(optimize=False).collect() == expected
    assert stream.compile(disable=["fuse_maps"]).collect() == expected
    assert stream.compile(disable=["eliminate_noops"]).collect() == expected


@settings(max_examples=50, deadline=None)
@given(items=st.lists(st.integers(), max_size=60), size=st.integers(2, 20), seed=st.integers(0, 2**32))
def test_seeded_shuffle_is_a_reproducible_permutation_at_every_level(items, size, seed):
    stream = IterableSource(items).map(inc).shuffle(size, seed=seed).map(dbl)
    a = stream.collect()
    assert a == stream.compile(optimize=False).collect()
    assert sorted(a) == sorted(2 * (x + 1) for x in items)
