"""Multiplexer, IterableSamplerSource and FilePathGenerator against squirrel-core's documented behaviour."""

from __future__ import annotations

import fsspec
import pytest

from squirrel_graph import FilePathGenerator, IterableSource, Multiplexer, MultiplexingStrategy


def test_round_robin_restarts_cycle_after_exhaustion_like_squirrel_core():
    mux = Multiplexer([IterableSource([1, 2, 3]), IterableSource(["a"]), [10, 20]], MultiplexingStrategy.ROUND_ROBIN)
    assert mux.collect() == [1, "a", 10, 2, 3, 20]
    assert mux.num_samples == [3, 1, 2]


def test_round_robin_restarts_at_the_first_input_when_one_runs_out_mid_cycle():
    """The second input runs out on the cycle's 2nd draw: the next item comes from the first input again."""
    mux = Multiplexer(
        [IterableSource([1, 2, 3, 4]), IterableSource(["a", "b"]), IterableSource([10, 20, 30, 40])],
        MultiplexingStrategy.ROUND_ROBIN,
    )
    assert mux.collect() == [1, "a", 10, 2, "b", 20, 3, 4, 30, 40]
    assert mux.num_samples == [4, 2, 4]


def test_sampling_stops_once_every_input_ran_out_once_when_max_reinits_is_far():
    mux = Multiplexer(
        [IterableSource(range(4)), IterableSource(range(10, 14))],
        MultiplexingStrategy.SAMPLING,
        sampling_probas=[0.5, 0.5],
        max_reinits=50,
        seed=1,
    )
    out = mux.collect()
    assert set(out) == {*range(4), *range(10, 14)}
    assert min(mux.reinit_counts) == 1  # the input that ran out last ran out once: the stream ends right there


def test_sampling_drops_inputs_below_threshold_and_renormalises():
    mux = Multiplexer(
        [IterableSource([1]), IterableSource([2])], MultiplexingStrategy.SAMPLING, sampling_probas=[0.9995, 0.0005]
    )
    assert mux.sampling_probas == [1.0] and len(mux.composables) == 1


def test_sampling_respects_max_reinits_and_ratios():
    a, b = IterableSource(range(20)), IterableSource(range(100, 120))
    mux = Multiplexer([a, b], MultiplexingStrategy.SAMPLING, sampling_probas=[0.8, 0.2], max_reinits=3, seed=0)
    out = mux.collect()
    assert max(mux.reinit_counts) <= 3
    share = sum(1 for x in out if x < 100) / len(out)
    assert abs(share - 0.8) < 0.1


def test_file_path_generator_lists_sorted_paths_lazily(tmp_path):
    for name in ("b.txt", "a.txt"):
        (tmp_path / name).write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.txt").write_text("x")
    gen = FilePathGenerator(str(tmp_path))
    (tmp_path / "0.txt").write_text("late")  # listed at iteration, not at construction
    flat = gen.collect()
    assert [p.rsplit("/", 1)[1] for p in flat] == ["0.txt", "a.txt", "b.txt", "sub"]
    nested = FilePathGenerator(str(tmp_path), nested=True).collect()
    assert [p.rsplit("/", 1)[1] for p in nested] == ["0.txt", "a.txt", "b.txt", "c.txt"]
    assert FilePathGenerator(str(tmp_path / "missing")).collect() == []


def test_file_path_generator_on_memory_fs_keeps_protocol():
    fs = fsspec.filesystem("memory")
    fs.pipe({"/fpg/x1": b"1", "/fpg/x0": b"0"})
    paths = FilePathGenerator("memory://fpg").collect()
    assert paths == ["memory:///fpg/x0", "memory:///fpg/x1"]
    assert fs.cat(paths[0].split("://", 1)[1]) == b"0"


def test_file_path_generator_rejects_empty_url():
    with pytest.raises(TypeError, match="url"):
        FilePathGenerator("")
