"""explain(): text for terminals, SVG through the real graphviz `dot` binary, files through render()."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET

import pytest

from squirrel_graph import IterableSource

from helpers import add_one, is_odd, not_div3, resume_section, times_two


def stream():
    return (
        IterableSource(range(10)).map(add_one).map(times_two).filter(not_div3).shuffle(1).async_map(add_one).batched(2)
    )


def test_text_shows_three_plans_and_every_rewrite_with_reason():
    text = str(stream().explain())
    for header in ("== Logical plan (7 nodes) ==", "== Optimized plan (4 nodes) ==", "== Physical plan (4 stages) =="):
        assert header in text
    assert "[eliminate_noops] removed 4:shuffle: shuffle buffer of size 1 cannot reorder items" in text
    assert "[fuse_maps] fused 1:map, 2:map, 3:filter -> 1:fused" in text
    assert "async_map(add_one) is not a synchronous per-item node" in text
    assert "[threaded] map(add_one) → map(times_two) → filter(not_div3)" in text


def test_stage_selects_one_plan():
    text = str(stream().explain(stage="logical"))
    assert "Logical plan" in text and "Optimized plan" not in text and "Physical plan" not in text


def test_repr_svg_is_valid_svg_with_fused_cluster():
    assert shutil.which("dot"), "the graphviz dot binary is required (make install puts it there)"
    svg = stream().explain()._repr_svg_()
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    assert "fused stage 1:fused" in svg and "Logical plan" in svg and "Physical stages" in svg


def test_mimebundle_has_svg_and_text():
    bundle = stream().explain()._repr_mimebundle_()
    assert bundle["image/svg+xml"].lstrip().startswith("<?xml") or "<svg" in bundle["image/svg+xml"]
    assert "Rewrites" in bundle["text/plain"]


FORMATS = [(".svg", b"<svg"), (".png", b"\x89PNG"), (".dot", b"digraph"), (".txt", b"==")]


@pytest.mark.parametrize("suffix, magic", FORMATS)
def test_render_writes_the_requested_format(tmp_path, suffix, magic):
    path = stream().explain().render(tmp_path / "nested" / f"plan{suffix}")
    data = path.read_bytes()
    assert magic in data[:400]


def test_unoptimized_explain_says_no_pass_ran():
    text = str(stream().compile(optimize=False).explain())
    assert "compile(optimize=False): no pass ran" in text
    assert "== Physical plan (7 stages) ==" in text


def slow_add_one(x):
    import time

    time.sleep(0.001)
    return x + 1


def test_text_after_a_run_names_the_stage_that_bounds_the_pipeline():
    stream = IterableSource(range(200)).map(times_two).async_map(slow_add_one, max_workers=1).batched(5)
    stream = stream.compile(monitor=True, monitor_every=1)
    assert len(stream.collect()) == 40
    measured = str(stream.explain()).split("== Measured in the latest run")[1].split("\n==")[0]
    line = next(x for x in measured.splitlines() if x.startswith("  async_map(slow_add_one):"))
    assert "of the run in it" in line
    assert "  bounds the pipeline: async_map(slow_add_one) (" in measured


def test_resume_lines_name_only_the_flatten_loop_not_a_later_fused_loop_it_passes_through():
    def make():
        nested = IterableSource([[1, 2, 3]] * 10).flatten().map(add_one)
        return nested.async_map(add_one, max_workers=1, buffer=1).map(add_one).filter(is_odd)

    position, lines = resume_section(make, 4)
    skip, n = position["skip"], position["item"]["n"]
    assert lines == [
        f"flatten → map(add_one) [1:fused]: re-runs the item it was inside (its input resumes right before it) and "
        f"skips its first {skip} element(s) before any user function after the flatten runs",
        f"source(list) [0:source]: skips its first {n} item(s) without reading them again",
    ]


def test_resume_lines_of_a_shuffle_count_the_items_it_rebuilds_from():
    position, lines = resume_section(lambda: IterableSource(list(range(40))).shuffle(5, seed=3).map(add_one), 25)
    first, pulled = position["from"], position["pulled"]
    assert first > 0 and position["up"] == {"n": first}  # the oldest buffered item is not the first one
    assert lines == [
        f"shuffle(5, seeded) [1:shuffle]: replays 25 picks from the seed (no items) and rebuilds its buffer from "
        f"input items #{first}..#{pulled - 1} ({pulled - first}): the recent ones re-read at once, older ones from "
        "the nearest saved position when the shuffle picks them",
        f"source(list) [0:source]: skips its first {first} item(s) without reading them again",
    ]
