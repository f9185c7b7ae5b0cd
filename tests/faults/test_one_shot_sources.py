"""One-shot sources say so: a second run over a generator or another iterator warns, naming the source stage.

squirrel-core silently yielded nothing the second time (a second epoch trained on nothing). squirrel_graph keeps
what is yielded (the rest of the iterator, nothing if used up) and warns with a ``OneShotSourceWarning``, which
users can turn into an error with a warnings filter.
"""

from __future__ import annotations

import multiprocessing
import os
import warnings

import pytest

from squirrel_graph import IterableSamplerSource, IterableSource, Multiplexer, MultiplexingStrategy
from squirrel_graph.driver import MessagepackDriver
from squirrel_graph.errors import OneShotSourceWarning

#: mutmut sets this in its runs (see tests/conftest.py)
UNDER_MUTMUT = "MUTANT_UNDER_TEST" in os.environ


def items(n: int = 3):
    yield from range(n)


def add_one(x: int) -> int:
    return x + 1


def one_shot_warnings(run) -> tuple[object, list[str]]:
    """``run()``'s result and the messages of the OneShotSourceWarnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = run()
    return out, [str(w.message) for w in caught if issubclass(w.category, OneShotSourceWarning)]


def test_a_second_run_over_a_generator_warns_naming_the_source_and_what_to_pass_instead():
    stream = IterableSource(items()).map(add_one)
    out, first = one_shot_warnings(stream.collect)
    assert out == [1, 2, 3] and first == []
    out, second = one_shot_warnings(stream.collect)
    assert out == []  # what squirrel-core yielded too, but no longer silently
    assert len(second) == 1
    message = second[0]
    assert message.startswith("source(generator) (node 0:source): this one-shot generator was already iterated")
    assert "a list, a range or a callable that returns a fresh iterator" in message
    assert "IterableSource(make_items) rather than IterableSource(make_items())" in message


@pytest.mark.parametrize(
    "build",
    [lambda s: s, lambda s: s.map(add_one).filter(bool), lambda s: s.loop(1).map(add_one).async_map(add_one)],
    ids=["source", "fused loop", "loop and pool"],
)
@pytest.mark.skipif(UNDER_MUTMUT, reason="mutmut's trampoline adds frames between the library and the caller")
def test_the_warning_points_at_the_users_line(build):
    stream = build(IterableSource(items()))
    list(stream)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in stream:
            pass
    assert [w.filename for w in caught] == [__file__]


def test_the_check_runs_on_every_run_of_a_cached_compilation():
    stream = IterableSource(items()).map(add_one).async_map(add_one, max_workers=2)
    stream.explain()  # compiles and caches the plan; opens nothing
    compiled = stream.__dict__["_compiled_cache"]
    assert one_shot_warnings(stream.collect) == ([2, 3, 4], [])
    assert stream.__dict__["_compiled_cache"] is compiled  # the same compilation runs again, and still checks
    assert len(one_shot_warnings(stream.collect)[1]) == 1
    assert len(one_shot_warnings(lambda: list(stream))[1]) == 1  # every later run too


def test_detection_is_per_source_object_across_handles():
    gen = items()
    assert one_shot_warnings(IterableSource(gen).collect) == ([0, 1, 2], [])
    assert one_shot_warnings(IterableSource(gen).map(add_one).collect)[1]  # a new handle, the same generator
    assert one_shot_warnings(IterableSource(items()).collect) == ([0, 1, 2], [])  # a fresh generator: first run


@pytest.mark.parametrize(
    "make",
    [lambda: map(str, range(3)), lambda: iter([0, 1, 2]), lambda: zip(range(3), range(3))],
    ids=["map", "list_iterator", "zip"],
)
def test_iterators_that_take_no_weak_reference_are_detected_too(make):
    it = make()
    stream = IterableSource(it)
    assert len(one_shot_warnings(stream.collect)[0]) == 3
    out, messages = one_shot_warnings(stream.collect)
    assert out == [] and len(messages) == 1 and f"one-shot {type(it).__name__}" in messages[0]


@pytest.mark.parametrize("source", [[0, 1, 2], range(3), items, "abc"], ids=["list", "range", "callable", "str"])
def test_reiterable_sources_never_warn(source):
    stream = IterableSource(source).map(str)
    for _ in range(3):
        out, messages = one_shot_warnings(stream.collect)
        assert len(out) == 3 and messages == []


def test_a_run_stopped_early_leaves_the_rest_to_the_next_run_with_a_warning():
    stream = IterableSource(items(5))
    assert one_shot_warnings(stream.take(2).collect) == ([0, 1], [])
    out, messages = one_shot_warnings(stream.collect)
    assert out == [2, 3, 4] and len(messages) == 1  # squirrel-core's behaviour is kept, and reported


def test_loop_over_a_one_shot_source_warns_when_it_reopens_it():
    out, messages = one_shot_warnings(IterableSource(items()).loop(3).collect)
    assert out == [0, 1, 2]  # the first pass only: the later passes re-open a used-up generator
    assert len(messages) == 2 and all(m.startswith("source(generator)") for m in messages)
    out, messages = one_shot_warnings(IterableSource(items()).loop().collect)  # forever: ends after one pass
    assert out == [0, 1, 2] and len(messages) == 1
    assert one_shot_warnings(IterableSource(items).loop(2).collect) == ([0, 1, 2, 0, 1, 2], [])


def test_sampler_and_multiplexer_inputs_are_checked_per_input():
    a, b = items(2), items(2)
    sampler = IterableSamplerSource([a, b], seed=1)
    assert sorted(one_shot_warnings(sampler.collect)[0]) == [0, 0, 1, 1]
    assert len(one_shot_warnings(sampler.collect)[1]) == 2  # one warning per used-up input
    mux = Multiplexer([IterableSource(items(2)), IterableSource([7])], MultiplexingStrategy.ROUND_ROBIN)
    assert one_shot_warnings(mux.collect) == ([0, 7, 1], [])
    assert len(one_shot_warnings(mux.collect)[1]) == 1  # only the generator input


def test_a_generator_of_keys_warns_naming_the_key_listing(tmp_path):
    store = MessagepackDriver(str(tmp_path)).store
    for k in range(3):
        store.set([{"k": k}], key=f"s{k}")
    stream = MessagepackDriver(str(tmp_path)).get_iter(keys_iterable=(f"s{k}" for k in range(3)), max_workers=2)
    assert len(one_shot_warnings(stream.collect)[0]) == 3
    out, messages = one_shot_warnings(stream.collect)
    assert out == [] and len(messages) == 1 and messages[0].startswith("keys(")


def test_users_can_make_it_an_error():
    stream = IterableSource(items())
    stream.collect()
    with warnings.catch_warnings():
        warnings.simplefilter("error", OneShotSourceWarning)
        with pytest.raises(OneShotSourceWarning, match=r"source\(generator\)"):
            stream.collect()


def _collect_in_child(stream, conn) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = stream.collect()
    conn.send((out, [str(w.message) for w in caught if issubclass(w.category, OneShotSourceWarning)]))


def _run_in_forked_child(stream) -> tuple[list, list[str]]:
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_collect_in_child, args=(stream, child))
    proc.start()
    got = parent.recv()
    proc.join(10)
    assert proc.exitcode == 0
    return got


def test_a_forked_worker_iterating_its_own_copy_for_the_first_time_does_not_warn():
    stream = IterableSource(items()).map(add_one)
    assert _run_in_forked_child(stream) == ([1, 2, 3], [])  # as a DataLoader worker process: its own copy
    assert _run_in_forked_child(stream) == ([1, 2, 3], [])  # each fork copies the untouched parent generator
    stream.collect()  # the parent uses it up: a worker forked now inherits a used-up copy, and is told so
    out, messages = _run_in_forked_child(stream)
    assert out == [] and len(messages) == 1


def test_the_warning_says_what_happened_and_what_to_pass_instead_in_full():
    stream = IterableSource(iter([1, 2]))
    stream.collect()
    assert one_shot_warnings(stream.collect) == (
        [],
        [
            "source(list_iterator) (node 0:source): this one-shot list_iterator was already iterated (by an earlier "
            "run, or by an earlier pass of loop() or a Multiplexer), so this run reads only what was left of it "
            "(nothing, if it was used up). To iterate a stream again, pass a list, a range or a callable that returns "
            "a fresh iterator: IterableSource(make_items) rather than IterableSource(make_items())."
        ],
    )


def test_the_warning_is_never_attributed_to_the_librarys_own_files():
    """Outside mutmut it points at the user's line (test above); anywhere, it points outside squirrel_graph."""
    import squirrel_graph

    package = os.path.dirname(os.path.abspath(squirrel_graph.__file__)) + os.sep
    stream = IterableSource(items()).map(add_one)
    stream.collect()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stream.collect()
    assert len(caught) == 1 and not os.path.abspath(caught[0].filename).startswith(package)


def test_a_used_up_generator_is_not_kept_alive_and_its_record_goes_with_it():
    import gc
    import weakref

    from squirrel_graph.runtime import one_shot

    gen = items()
    stream = IterableSource(gen)
    stream.collect()
    key, ref = id(gen), weakref.ref(gen)
    assert one_shot._weak[key]() is gen and key not in one_shot._pinned
    del stream, gen
    gc.collect()
    assert ref() is None and key not in one_shot._weak


def test_the_newest_64_iterators_without_weak_references_are_remembered():
    its = [iter([i]) for i in range(65)]
    for i, it in enumerate(its):
        assert one_shot_warnings(IterableSource(it).collect) == ([i], [])
    assert len(one_shot_warnings(IterableSource(its[1]).collect)[1]) == 1  # the oldest of the newest 64
    assert len(one_shot_warnings(IterableSource(its[64]).collect)[1]) == 1
    assert one_shot_warnings(IterableSource(its[0]).collect) == ([], [])  # dropped: looks like a first run
