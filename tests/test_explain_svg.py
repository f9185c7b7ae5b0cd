"""The explain picture: it scales to its column, its lines are short and whole, tooltips hold every reason in full,
inserted monitors are rates on the stages they watch, and the slowest stage is highlighted after a run."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from types import SimpleNamespace

import pytest

from squirrel_graph import IterableSource
from squirrel_graph.explain import Explanation
from squirrel_graph.explain.svg import BOUND_FILL, BOUND_LINE, NOTE_WRAP, WRAP, wrap

SVG = "{http://www.w3.org/2000/svg}"
XLINK_TITLE = "{http://www.w3.org/1999/xlink}title"


def plus(x):
    return x + 1


def double(x):
    return 2 * x


def odd(x):
    return x % 2 == 1


def pair(x):
    return [x, x]


def slow(x):
    time.sleep(0.001)
    return x


def twenty_nodes():
    """A 20-node chain of a real shape: maps, filters, flatten, two async_maps, a shuffle, batched."""
    s = IterableSource(range(300)).map(plus).map(double).filter(odd).map(plus).map(double)
    s = s.async_map(plus, max_workers=2).map(pair).flatten().map(plus).filter(odd).map(double).map(plus)
    return s.shuffle(10, seed=0).map(plus).map(double).async_map(slow, max_workers=4).batched(4).map(len).map(plus)


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg.encode("utf-8"))


def nodes(root: ET.Element) -> dict[str, ET.Element]:
    """Graphviz node groups by node name (the ``<title>`` graphviz gives each)."""
    out = {}
    for g in root.iter(f"{SVG}g"):
        title = g.find(f"{SVG}title")
        if g.get("class") == "node" and title is not None:
            out[title.text] = g
    return out


def texts(element: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in element.iter(f"{SVG}text")]


def tooltips(element: ET.Element) -> list[str]:
    return [a.get(XLINK_TITLE) for a in element.iter(f"{SVG}a") if a.get(XLINK_TITLE)]


def shape(node: ET.Element) -> ET.Element:
    """The outline of a node (a rounded box is a path)."""
    return next(e for e in node.iter() if e.tag in (f"{SVG}path", f"{SVG}polygon"))


def words(text: str) -> str:
    return " ".join(text.split())


def test_the_svg_scales_to_its_column_and_never_grows_past_its_natural_size():
    svg = twenty_nodes().explain()._repr_svg_()
    root = parse(svg)
    assert root.get("viewBox") and len(root.get("viewBox").split()) == 4
    style = root.get("style")
    assert "width: 100%" in style and "height: auto" in style
    natural = float(root.get("width").removesuffix("pt"))
    assert f"max-width: {natural:.0f}pt" in style
    view_w = float(root.get("viewBox").split()[2])
    assert abs(view_w - natural) < 2  # nothing clipped: the viewBox is the whole drawing
    assert natural <= 900, "three columns of a 20-node plan fit a 1,280 px window (900 pt = 1,200 px)"


def test_rendered_svg_files_are_responsive_too(tmp_path):
    path = twenty_nodes().explain().render(tmp_path / "plan.svg")
    assert "width: 100%" in parse(path.read_text()).get("style")


def test_every_line_is_short_and_rewrite_reasons_are_wrapped_at_word_boundaries():
    ex = twenty_nodes().explain()
    root = parse(ex._repr_svg_())
    groups = nodes(root)
    note = words(" ".join(texts(groups["notes"])))
    for r in ex.rewrites:
        assert words(str(r)) in note  # whole: not cut, no word split across lines
    for line in texts(groups["notes"]):
        assert len(line) <= NOTE_WRAP + 4, line
    for name, g in groups.items():
        if name == "notes":
            continue
        for line in texts(g):
            assert len(line) <= WRAP + 4 or " " not in line.strip(), (name, line)


def test_wrap_breaks_long_tokens_only_after_punctuation_and_keeps_words_whole():
    text = "keys(MessagepackDriver('/data/some/long/path/to/a/store')) then a generated loop"
    lines = wrap(text, 20)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")
    assert all(len(line) <= 20 for line in lines)
    assert "generated" in " ".join(lines).split()  # never "generate" / "d"
    assert wrap("supercalifragilisticexpialidocious", 10) == ["supercalifragilisticexpialidocious"]


def test_tooltips_carry_every_reason_in_full():
    ex = twenty_nodes().explain()
    tips = tooltips(parse(ex._repr_svg_()))
    for r in ex.rewrites:
        assert any(str(r) in t for t in tips), str(r)
    fused = next(r for r in ex.rewrites if r.pass_name == "fuse_maps")
    node_tip = next(t for t in tips if t.startswith(f"fused stage {fused.result}"))
    assert str(fused) in node_tip  # on the fused node itself, not only on the notes


def test_inserted_monitors_are_rates_on_the_stages_they_watch_not_nodes():
    stream = IterableSource(range(500)).map(plus).map(double).async_map(plus, max_workers=2).batched(10)
    stream = stream.compile(monitor=True)
    assert len(stream.collect()) == 50
    ex = stream.explain()
    root = parse(ex._repr_svg_())
    groups = nodes(root)
    assert not [n for n in groups if "monitor" in n], "no monitor nodes in the picture"
    shown_optimized = [n for n in groups if n.startswith("O_")]
    assert len(shown_optimized) == len(ex.compiled.logical) - 1  # 2 maps fused: 5 logical -> 4, no monitors
    stage_names = [s.name for s in ex.physical_stages if not s.name.startswith("monitor(")]
    assert set(stage_names) == set(ex.stats)
    for gid, g in groups.items():
        if gid.startswith(("O_", "P_")):
            assert any("items/s" in t for t in texts(g)), gid  # its measured rate
    all_text = texts(root)
    assert "Optimized plan (4 nodes)" in all_text and "+ 4 monitors, as rates" in all_text


def test_the_slowest_stage_is_highlighted_after_a_run():
    base = IterableSource(range(300)).map(plus).async_map(slow, max_workers=1).map(double)
    stream = base.compile(monitor=True, monitor_every=1)  # per-item monitors: their waits are exact
    before = nodes(parse(stream.explain()._repr_svg_()))
    assert not any(shape(g).get("stroke") == BOUND_LINE for g in before.values())
    assert len(stream.collect()) == 300
    stats = stream.stats()
    assert stats.bound == "async_map(slow)"
    after = nodes(parse(stream.explain()._repr_svg_()))
    highlighted = {gid for gid, g in after.items() if shape(g).get("stroke") == BOUND_LINE}
    slow_stage = next(gid for gid in after if gid.startswith("P_") and "async_map(slow)" in texts(after[gid]))
    assert highlighted == {"O_2_async_map", slow_stage}
    for gid in highlighted:
        assert shape(after[gid]).get("fill") == BOUND_FILL
        assert any("bounds the pipeline" in t for t in texts(after[gid]))
    assert shape(after["O_0_source"]).get("fill") != BOUND_FILL


def test_a_stage_label_says_each_thing_once():
    pytest.importorskip("dask")
    stream = IterableSource(range(20)).dask_map(plus).dask_map(double).dask_map(plus).materialize_dask()
    ex = stream.explain()
    groups = nodes(parse(ex._repr_svg_()))
    physical = next(g for gid, g in groups.items() if gid.startswith("P_") and "dask" in " ".join(texts(g)))
    label = words(" ".join(texts(physical)))
    assert label.count("3 maps -> 1 task per item") == 1 and "at most 10 tasks in flight" in label
    text = str(ex)
    assert (
        text.count("3 maps -> 1 task per item") == 3
    )  # optimized node, physical stage name, the rewrite; not the note


def test_stage_shows_one_plan_in_the_picture_too():
    svg = twenty_nodes().explain(stage="physical")._repr_svg_()
    assert "Physical stages" in svg and "Logical plan" not in svg and "Optimized plan" not in svg


def test_a_numba_fallback_reason_is_whole_in_the_notes_and_the_stage_tooltip():
    stream = IterableSource(range(5)).map(plus).map(double)
    ex = stream.explain()
    stage = ex.physical_stages[-1].name
    reason = (
        "Failed in nopython mode pipeline (step: nopython frontend) No implementation of function "
        "Function(<class 'dict'>) found for signature: >>> dict(v=int64)"
    )
    state = SimpleNamespace(label=stage, mode="python", reason=reason, compile_seconds=0.04, compilations=0)
    ex = Explanation(ex.compiled, numba=[state])
    text = str(ex).split("== numba, in the latest run ==\n")[1].splitlines()[0]
    assert text.endswith(f"why: {reason}") and "(compile 0.04 s, 0 new)" in text  # the reason last, whole
    root = parse(ex._repr_svg_())
    assert words(reason) in words(" ".join(texts(nodes(root)["notes"])))
    assert any(reason in t and t.startswith("#") for t in tooltips(root))
    assert any(re.search(r"ran as: python", t) for t in texts(root))


def test_nodes_a_pass_removed_are_drawn_dashed():
    stream = IterableSource(range(5)).map(plus).shuffle(1).map(double)
    groups = nodes(parse(stream.explain()._repr_svg_()))
    removed, kept = shape(groups["L_2_shuffle"]), shape(groups["L_1_map"])
    assert removed.get("stroke-dasharray") and not kept.get("stroke-dasharray")
