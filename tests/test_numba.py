"""numba: compiled fused runs equal Python runs, fall back safely with a reason, compile once, work in workers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba_helpers import double_plus, minus3, not_div3, scale, uses_dict

from squirrel_graph import IterableSource
from squirrel_graph.backends import numba as numba_backend

pytest.importorskip("numba")


def test_numba_map_equals_map_for_scalars_and_arrays():
    assert IterableSource([1, 2, 3]).numba_map(lambda x: x + 1).collect() == [2, 3, 4]
    arrays = [np.random.default_rng(i).random((4, 5), dtype=np.float32) for i in range(20)]
    got = IterableSource(arrays).numba_map(scale).numba_map(lambda a: np.clip(a, 0, 2.5)).collect()
    want = IterableSource(arrays).map(scale).map(lambda a: np.clip(a, 0, 2.5)).collect()
    assert all(g.dtype == w.dtype and np.array_equal(g, w) for g, w in zip(got, want))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.integers(-(2**40), 2**40), st.floats(-1e6, 1e6)), max_size=50), st.booleans())
def test_compiled_runs_equal_python_runs(items, ints_only):
    if ints_only:
        items = [int(x) for x in items]
    stream = IterableSource(items).numba_map(double_plus).map(minus3).filter(not_div3)
    compiled, python = stream.collect(), stream.compile(disable=["fuse_maps"]).collect()
    plain = IterableSource(items).map(double_plus).map(minus3).filter(not_div3).collect()
    assert compiled == plain == python
    assert [type(x) for x in compiled] == [type(x) for x in plain]  # Python ints stay ints, floats floats


def test_int64_overflow_is_never_returned_wrapped():
    got = IterableSource([2**62, 3, -(2**62)]).numba_map(lambda x: x * 4).collect()
    assert got == [2**64, 12, -(2**64)]
    assert IterableSource([2**70]).numba_map(lambda x: x + 1).collect() == [2**70 + 1]


@pytest.mark.parametrize(
    "items, fn, why",
    [
        ([1, 2], uses_dict, "nopython"),  # a Python dict in the function: numba cannot type it
        (["a", "b"], str.upper, "str"),
        ([{"k": 1}], lambda d: d["k"], "dict"),
    ],
)
def test_fallbacks_give_correct_results_and_explain_says_why(items, fn, why):
    stream = IterableSource(items).numba_map(fn)
    assert stream.collect() == [fn(x) for x in items]
    text = str(stream.explain())
    assert "== numba, in the latest run ==" in text and ": python" in text
    assert why in text.split("== numba, in the latest run ==")[1].splitlines()[1]


def test_a_torch_tensor_item_falls_back():
    torch = pytest.importorskip("torch")
    out = IterableSource([torch.ones(2)]).numba_map(lambda t: t * 2).collect()
    assert torch.equal(out[0], torch.full((2,), 2.0))


def test_the_compiled_loop_is_reused_and_compile_time_reported():
    def triple(x):
        return x * 3

    stream = IterableSource(range(10)).numba_map(triple).filter(not_div3)
    stream.collect()
    first = [s for s in stream.__dict__["_last_state"][0].values() if hasattr(s, "compilations")][0]
    assert first.compilations == 1 and first.compile_seconds > 0
    stream.collect()
    second = [s for s in stream.__dict__["_last_state"][0].values() if hasattr(s, "compilations")][0]
    assert second.compilations == 0  # the process-level cache served the second iteration
    assert "numba (chunks of int)" in str(stream.explain())


def test_backend_numba_compiles_plain_maps_too():
    stream = IterableSource(range(100)).map(double_plus).filter(not_div3).compile(backend="numba")
    assert stream.collect() == [double_plus(x) for x in range(100) if not_div3(double_plus(x))]
    assert "[numba]" in str(stream.explain(stage="physical"))


def test_works_inside_dataloader_fork_workers():
    from torch.utils.data import DataLoader

    ds = IterableSource(list(range(200))).split_by_worker_pytorch().numba_map(double_plus).to_torch_iterable()
    got = sorted(int(x) for x in DataLoader(ds, num_workers=2, batch_size=None))
    assert got == sorted(double_plus(x) for x in range(200))


def test_bad_numba_map_argument():
    with pytest.raises(TypeError, match="numba_map"):
        IterableSource([1]).numba_map(42)
    assert numba_backend.CHUNK > 0


def make_adder(k):
    return lambda x: x + k


def test_review_cases_integer_operators_closures_numpy_scalars_mixed_arrays_and_types():
    assert IterableSource(range(10)).numba_map(lambda x: x ^ 5).collect() == [x ^ 5 for x in range(10)]
    assert IterableSource([0, 1, 2]).numba_map(make_adder(1)).collect() == [1, 2, 3]
    assert IterableSource([0, 1, 2]).numba_map(make_adder(100)).collect() == [100, 101, 102]  # not the cached +1
    np_items = [np.int64(3), np.int64(4)]
    got = IterableSource(np_items).numba_map(double_plus).collect()
    assert got == [7, 9] and all(type(x) is np.int64 for x in got)  # numpy scalars keep numpy types
    mixed = IterableSource([np.ones(3), "a string", {"k": 1}]).numba_map(
        lambda a: a * 2 if not isinstance(a, dict) else a
    )
    assert str(mixed.collect()[1]) == "a stringa string"
    branchy = IterableSource([0, 1, 2]).numba_map(lambda x: x if x > 0 else 0.5).collect()
    assert branchy == [0.5, 1, 2] and [type(x) for x in branchy] == [float, int, int]
    f32 = [np.arange(4, dtype=np.float32)]
    normed = IterableSource(f32).numba_map(lambda a: (a - a.mean()) / (a.std() + 1e-6)).collect()
    assert normed[0].dtype == ((f32[0] - f32[0].mean()) / (f32[0].std() + 1e-6)).dtype


@pytest.mark.parametrize(
    "message, reason",
    [
        ("", "ValueError"),  # nothing to say: the error's type
        ("first\n\nsecond\nthird", "first second"),  # the first two distinct non-blank lines
        ("same\nsame\nother", "same other"),
        (
            "Failed in nopython mode\nfound for signature:\n >>> f(int64)\nmore",
            "Failed in nopython mode found for signature: >>> f(int64)",
        ),  # a second line ending in ':' brings the line after it
        ("a\nb:", "a b:"),
        ("a\nb:\nc", "a b: c"),
        (
            "No implementation\nfor this:\n >>> g(float64)\nThere are 2 candidates:\nTypingError: no match\nx",
            "No implementation for this: >>> g(float64) (TypingError: no match)",
        ),
        ("one\ntwo\nTypingError: late\nTypingError: later", "one two (TypingError: late)"),
        ("one\ntypingerror: lower case is not numba's", "one typingerror: lower case is not numba's"),
    ],
)
def test_the_fallback_reason_keeps_the_informative_lines_of_numbas_error(message, reason):
    assert numba_backend._reason(ValueError(message)) == reason


def _numba_line(stream) -> str:
    """The stage's line under "numba, in the latest run" in ``explain()``."""
    return str(stream.explain()).split("== numba, in the latest run ==\n")[1].splitlines()[0].strip()


def test_a_stage_that_got_no_items_says_it_did_not_run():
    stream = IterableSource([]).numba_map(double_plus)
    assert stream.collect() == []
    assert _numba_line(stream) == "numba_map(double_plus): not run (compile 0.00 s, 0 new)"


def widen_late(x):
    return x * 1.0 if x > 2 else x  # Python: ints then floats; numba: float64 throughout


@pytest.mark.parametrize(
    "items, fn, want, why",
    [
        (range(1, 6), widen_late, [1, 2, 3.0, 4.0, 5.0],
         "compiled results differ from Python's in value or type (numba's typing rules)"),
        ([1, 2**70], double_plus, [3, 2**71 + 1],
         "the first chunk cannot be computed as int64/float64 (values beyond int64, mixed types)"),
    ],
)  # fmt: skip
def test_a_first_chunk_that_cannot_be_compiled_as_python_computes_it_falls_back_saying_why(items, fn, want, why):
    stream = IterableSource(items).numba_map(fn)
    got = stream.collect()
    assert got == want and [type(x) for x in got] == [type(x) for x in want]
    line = _numba_line(stream)
    assert line.startswith(f"numba_map({fn.__name__}): python (compile ") and line.endswith(f" new); why: {why}")


def pair_up(x):
    return [x, -x]


def test_a_run_with_a_flatten_is_left_to_the_threaded_backend():
    stream = IterableSource(range(3)).numba_map(pair_up).flatten()
    assert stream.collect() == [0, 0, 1, -1, 2, -2]
    assert "== numba, in the latest run ==" not in str(stream.explain())
    assert "[threaded] numba_map(pair_up) → flatten" in str(stream.explain(stage="physical"))


def seven_times(x):
    return 7 * x


def test_an_already_jitted_function_is_compiled_into_the_loop_as_it_is():
    import numba

    stream = IterableSource(range(5)).numba_map(numba.njit(seven_times))
    assert stream.collect() == [0, 7, 14, 21, 28]
    assert "): numba (chunks of int) (compile " in _numba_line(stream)


def is_odd(x):
    return x % 2 == 1


def test_every_function_and_node_kind_gets_a_kernel_of_its_own(monkeypatch):
    """Kernels are cached per (functions, node kinds, item kind): a map and a filter of one function, or two
    functions, never share one (a shared one would fail the first-chunk check and fall back to Python)."""
    monkeypatch.setattr(numba_backend, "_KERNELS", {})
    streams = {
        "map": IterableSource(range(10)).numba_map(is_odd),
        "filter": IterableSource(range(10)).filter(is_odd).compile(backend="numba"),
        "other": IterableSource(range(10)).numba_map(seven_times),
    }
    assert streams["map"].collect() == [x % 2 == 1 for x in range(10)]
    assert streams["filter"].collect() == [1, 3, 5, 7, 9]
    assert streams["other"].collect() == [7 * x for x in range(10)]
    for stream in streams.values():
        assert "numba (chunks of int) (compile " in _numba_line(stream) and _numba_line(stream).endswith(", 1 new)")


def test_kernels_leave_no_numba_cache_files_beside_the_users_code(tmp_path, monkeypatch):
    import importlib
    import sys

    (tmp_path / "sg_user_fns.py").write_text("def nine_times(x):\n    return 9 * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "sg_user_fns", raising=False)
    user = importlib.import_module("sg_user_fns")
    try:
        assert IterableSource(range(4)).numba_map(user.nine_times).collect() == [0, 9, 18, 27]
    finally:
        sys.modules.pop("sg_user_fns", None)
    assert sorted(p.name for p in tmp_path.rglob("*.nb*")) == []


NAN = float("nan")


@pytest.mark.parametrize(
    "a, b, same",
    [
        ([1], [1, 2], False),
        ([1], [1.0], False),
        ([1], [2], False),
        ([1.5, 2], [1.5, 2], True),
        ([NAN], [NAN], True),
        ([NAN], [1.0], False),
        ([1.0], [NAN], False),
        ([np.arange(4.0)], [np.arange(4.0)], True),
        ([np.arange(4.0)], [np.arange(4.0, dtype=np.float32)], False),
        ([np.arange(4.0)], [np.arange(4.0).reshape(2, 2)], False),
        ([np.arange(4.0)], [np.arange(4.0) + 1], False),
        ([np.array([1.0, NAN])], [np.array([1.0, NAN])], True),
    ],
)
def test_the_first_chunk_check_compares_types_dtypes_shapes_and_values(a, b, same):
    assert numba_backend._same(a, b) is same
