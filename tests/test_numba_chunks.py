"""numba over several chunks: the compiled kernels (not only the first, Python-checked chunk) give Python's
values and types, catch int64 overflow in a later chunk, and hand mixed-type chunks to Python."""

from __future__ import annotations

import numpy as np
import pytest
from numba_helpers import double_plus, minus3, not_div3

from squirrel_graph import IterableSource
from squirrel_graph.backends.numba import CHUNK

pytest.importorskip("numba")


def times4(x):
    return x * 4


def halve(x):
    return x / 2


def _mode(stream) -> str:
    return _state(stream).mode


def _state(stream):
    """The run's one numba stage state (mode, reason, compile seconds, compilations)."""
    (state,) = [s for s in stream.__dict__["_last_state"][0].values() if hasattr(s, "compilations")]
    return state


def _python(items, *fns, keep=None):
    out = []
    for x in items:
        for f in fns:
            x = f(x)
        if keep is None or keep(x):
            out.append(x)
    return out


N = 3 * CHUNK + 17  # the first chunk (checked against Python), two full compiled chunks, a partial one


def test_compiled_chunks_after_the_first_equal_python_in_value_and_type():
    items = [i * 7 - 5000 for i in range(N)]
    stream = IterableSource(items).numba_map(double_plus).numba_map(minus3).filter(not_div3)
    got = stream.collect()
    want = _python(items, double_plus, minus3, keep=not_div3)
    assert _mode(stream) == "numba (chunks of int)"
    assert len(got) == len(want) and got == want
    assert {type(x) for x in got} == {int}
    # every chunk boundary survives: the items just after each boundary are there, in order
    for b in (CHUNK, 2 * CHUNK, 3 * CHUNK):
        x = double_plus(items[b]) - 3
        if not_div3(x):
            assert x in got


def test_floats_over_several_chunks():
    items = [i * 0.25 - 300.0 for i in range(N)]
    stream = IterableSource(items).numba_map(halve).numba_map(minus3)
    got = stream.collect()
    assert _mode(stream) == "numba (chunks of float)"
    assert got == _python(items, halve, minus3) and {type(x) for x in got} == {float}


def test_int64_overflow_in_a_later_chunk_is_never_returned_wrapped():
    items = list(range(N))
    at = 2 * CHUNK + 5
    items[at] = 2**62  # fits int64; times4 does not
    items[at + 1] = -(2**62) - 3
    stream = IterableSource(items).numba_map(times4)
    got = stream.collect()
    assert _mode(stream) == "numba (chunks of int)"
    assert got[at] == 2**64 and got[at + 1] == -(2**64) - 12
    assert got == [x * 4 for x in items]


def test_a_value_beyond_int64_in_a_later_chunk_is_computed_in_python():
    items = list(range(N))
    items[CHUNK + 10] = 2**70
    got = IterableSource(items).numba_map(double_plus).collect()
    assert got == [double_plus(x) for x in items] and got[CHUNK + 10] == 2**71 + 1


def test_mixed_types_across_chunks_keep_python_types():
    ints = list(range(CHUNK))
    floats = [x + 0.5 for x in range(CHUNK)]
    mixed = [1, 2.5] * (CHUNK // 2)
    items = ints + floats + mixed + ints[:100]
    stream = IterableSource(items).numba_map(double_plus)
    got = stream.collect()
    want = [double_plus(x) for x in items]
    assert got == want
    assert [type(x) for x in got] == [type(x) for x in want]
    assert _mode(stream) == "numba (chunks of int)"  # the first chunk is exactly the ints


def test_a_float_run_of_a_function_that_keeps_ints_ints_compiles_for_floats():
    items = [i * 0.5 - 100.0 for i in range(N)]
    stream = IterableSource(items).numba_map(double_plus)
    got = stream.collect()
    assert _mode(stream) == "numba (chunks of float)"
    assert got == [double_plus(x) for x in items] and {type(x) for x in got} == {float}


# ------------------------------------------------------------------------------------------------ per-array path


def scale_shift(a):
    return a * 3 - 1


def mean_positive(a):
    return a.mean() > 0


def _arrays(n, dtype=np.float64, shape=(3, 4)):
    rng = np.random.default_rng(7)
    return [(rng.standard_normal(shape) * 10).astype(dtype) for _ in range(n)]


def _same_arrays(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert type(g) is type(w) and g.dtype == w.dtype and g.shape == w.shape and np.array_equal(g, w)


def test_compiled_arrays_after_the_first_equal_python_with_a_filter():
    items = _arrays(40)
    stream = IterableSource(items).numba_map(scale_shift).filter(mean_positive)
    got = stream.collect()
    assert _mode(stream) == "numba (per array)"
    want = _python(items, scale_shift, keep=mean_positive)
    assert 0 < len(want) < 40  # the filter really drops some
    _same_arrays(got, want)


def test_arrays_unlike_the_first_are_computed_in_python_in_place():
    items = _arrays(6) + _arrays(2, dtype=np.int32) + _arrays(2, shape=(5,)) + [7] + _arrays(3)
    stream = IterableSource(items).numba_map(scale_shift)
    got = stream.collect()
    assert _mode(stream) == "numba (per array)"
    want = [scale_shift(x) for x in items]
    assert got[10] == want[10] == 20  # the int in the middle
    _same_arrays(got[:10] + got[11:], want[:10] + want[11:])


def plus_one(a):
    return a + 1


def test_a_first_array_whose_compiled_dtype_differs_falls_back_to_python_with_the_reason():
    items = [np.arange(6, dtype=np.int8) * 20 for _ in range(3)]
    stream = IterableSource(items).numba_map(plus_one)  # numpy keeps int8 (NEP 50), numba widens to int64
    got = stream.collect()
    _same_arrays(got, [plus_one(a) for a in items])
    assert _mode(stream) == "python"
    assert "differ from Python's in dtype or value" in str(stream.explain())


def test_a_fallback_is_logged_once_at_info_naming_the_stage_and_the_reason(caplog):
    import logging

    items = [np.arange(6, dtype=np.int8) for _ in range(3)]
    stream = IterableSource(items).numba_map(plus_one)
    with caplog.at_level(logging.INFO, logger="squirrel_graph"):
        stream.collect()
    records = [r for r in caplog.records if "not compiled with numba" in r.getMessage()]
    assert len(records) == 1 and records[0].levelno == logging.INFO
    message = records[0].getMessage()
    assert message.startswith("numba_map(plus_one)") and "running in Python: compiled results differ" in message


def test_a_stage_falling_back_on_every_opening_of_a_run_logs_it_once(caplog):
    import logging

    items = [np.arange(6, dtype=np.int8) for _ in range(2)]
    stream = IterableSource(items).numba_map(plus_one).loop(3)
    with caplog.at_level(logging.INFO, logger="squirrel_graph"):
        got = stream.collect()
    _same_arrays(got, [plus_one(a) for a in items] * 3)
    assert len([r for r in caplog.records if "not compiled with numba" in r.getMessage()]) == 1


def reciprocal(a):
    return 1.0 / a


def test_later_arrays_like_the_first_run_compiled_and_unlike_ones_in_python():
    """Compiled array code divides by zero silently (inf) where numpy in Python warns: with warnings as errors,
    arrays of the first's dtype and ndim after it must not reach Python, and one of another ndim must."""
    import warnings

    like = [np.array([1.0, 2.0]), np.array([0.0, 4.0]), np.array([8.0])]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        stream = IterableSource(like).numba_map(reciprocal)
        got = stream.collect()
        assert _mode(stream) == "numba (per array)"
        _same_arrays(got, [np.array([1.0, 0.5]), np.array([np.inf, 0.25]), np.array([0.125])])
        with pytest.raises(RuntimeWarning, match="divide by zero"):
            IterableSource([like[0], np.array([[0.0]])]).numba_map(reciprocal).collect()


def test_each_array_dtype_and_ndim_compiles_its_own_kernel(monkeypatch):
    from squirrel_graph.backends import numba as numba_backend

    monkeypatch.setattr(numba_backend, "_KERNELS", {})  # no kernel left by an earlier test
    floats = IterableSource(_arrays(3)).numba_map(scale_shift)
    floats.collect()
    assert _state(floats).compilations == 1
    ints = IterableSource(_arrays(3, dtype=np.int64, shape=(2, 2, 2))).numba_map(scale_shift)
    _same_arrays(ints.collect(), [scale_shift(a) for a in _arrays(3, dtype=np.int64, shape=(2, 2, 2))])
    assert _state(ints).compilations == 1  # a kernel of its own, not the float one's cache entry
    again = IterableSource(_arrays(2)).numba_map(scale_shift)
    again.collect()
    assert _state(again).compilations == 0


class _TickClock:
    """perf_counter() one second later on every call: each timed compile-and-check step lasts exactly 1 s."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        self.now += 1.0
        return self.now


@pytest.mark.parametrize(
    "items, fn, mode",
    [
        (list(range(5)), times4, "numba (chunks of int)"),
        (_arrays(2), scale_shift, "numba (per array)"),
        ([np.arange(6, dtype=np.int8)], plus_one, "python"),  # compiled and checked, then fell back
        ([2**70, 1], times4, "python"),  # a first chunk beyond int64: compiled, refused, computed in Python
    ],
)
def test_compile_seconds_add_up_over_every_opening_of_the_stage_in_a_run(monkeypatch, items, fn, mode):
    from squirrel_graph.backends import numba as numba_backend

    monkeypatch.setattr(numba_backend, "time", _TickClock())
    stream = IterableSource(items).numba_map(fn).loop(3)  # the numba stage is opened three times in one run
    assert len(stream.collect()) == 3 * len(items)
    state = _state(stream)
    assert state.mode == mode and state.compile_seconds == 3.0
