"""The explain picture: the logical, optimized and physical plans as three columns read top to bottom, and the
notes (rewrites with their reasons, the pass pipeline, hints, numba, the bottleneck) in a box below them.

Choices, so that 20-node plans of real pipelines fit a notebook or docs column and stay legible:

- Columns, each top to bottom: a pipeline reads downwards and three narrow columns fit side by side, where three
  rows of wide left-to-right chains would not. Labels wrap at :data:`WRAP` characters (at spaces, or in a long
  token after ``(``, ``,``, ``/`` or ``=``; never inside a word), so a column is as wide as its widest short line.
- A fused run is one box listing its members, not a cluster of boxes: it is one stage, and the logical column
  already shows the members as separate nodes.
- Monitors that ``compile(monitor=...)`` inserted are not drawn: what they measured is written on the stage they
  watch (items/s, its share of the run), and the stage that bounds the pipeline is drawn red.
- The SVG keeps its ``viewBox`` and is styled ``width: 100%`` with a ``max-width`` of its natural size: it shrinks
  to the column it is shown in and is never blown up beyond its natural size (see :func:`responsive`).
- Every node's tooltip holds its full text (an SVG ``<title>`` link), including reasons the box abbreviates.
"""

from __future__ import annotations

import html
import re
import textwrap
from collections.abc import Iterable, Mapping
from typing import Any

from squirrel_graph.graph import Fused, Monitor, Plan

WRAP = 34  # characters per line in a node
NOTE_WRAP = 100  # characters per line in the notes box
BOUND_FILL, BOUND_LINE = "#ffe4e1", "#c0392b"
FUSED_FILL = "#dbeafe"
SPLIT_FILL = "#ffe8c2"
_SOFT = re.compile(r"[^(,/=\[]*[(,/=\[]?")  # pieces of a long token, each ending after a soft break character


def wrap(text: str, width: int = WRAP, indent: str = "") -> list[str]:
    """``text`` in lines of at most ``width`` characters, broken at spaces; a longer token is broken after ``(``,
    ``,``, ``/``, ``=`` or ``[``, and kept whole if it has none (never cut inside a word)."""
    lines: list[str] = []
    for line in textwrap.wrap(text, width, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False):
        if len(line) <= width:
            lines.append(line)
            continue
        cur = ""
        for piece in (p for p in _SOFT.findall(line) if p):
            if cur and len(cur) + len(piece) > width:
                lines.append(cur)
                cur = indent + piece
            else:
                cur += piece
        lines.append(cur)
    return lines or [""]


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def _tip(text: str) -> str:
    """A tooltip (graphviz escString): backslashes kept literal, lines as ``\\n``."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _label(head: str, main: Iterable[str], small: Iterable[str] = (), mark: str = "") -> str:
    """An HTML-like label: a small gray head line, the main lines, small lines, a bold mark line."""
    parts = [f'<FONT POINT-SIZE="8" COLOR="#555555">{_esc(head)}</FONT>'] if head else []
    parts += [_esc(line) for line in main]
    parts += [f'<FONT POINT-SIZE="9" COLOR="#333333">{_esc(line)}</FONT>' for line in small]
    if mark:
        parts.append(f'<FONT POINT-SIZE="9" COLOR="{BOUND_LINE}"><B>{_esc(mark)}</B></FONT>')
    return "<" + "<BR/>".join(parts) + ">"


def _gid(prefix: str, nid: str) -> str:
    """A graphviz node name (a ':' in a name would be read as a port)."""
    return f"{prefix}_{nid.replace(':', '_').replace('.', '_')}"


def _auto_monitor(node: Any) -> bool:
    return isinstance(node, Monitor) and node.auto


def dedupe_note(name: str, note: str) -> str:
    """The parts of a stage's note (``; ``-separated) that its name does not already say."""
    return "; ".join(p for p in (x.strip() for x in note.split(";")) if p and p not in name)


class Measured:
    """What the latest run measured, per stage name: the rate, the share of the run, and the bounding stage."""

    def __init__(self, stats: Mapping[str, Any]) -> None:
        self.stats = stats
        self.bound: str | None = getattr(stats, "bound", None)
        self.share = getattr(stats, "share", lambda name: None)

    def lines(self, name: str) -> list[str]:
        s = self.stats.get(name)
        if not s:
            return []
        share = self.share(name)
        own = f", {share:.0%} of the run" if share is not None else ""
        return [f"{s['items/s']:,.0f} items/s{own}"]

    def mark(self, name: str) -> str:
        if name != self.bound:
            return ""
        return "◀ slowest stage: bounds the pipeline"


def _style(g: Any, nid: str, label: str, tooltip: str, bound: bool, **attrs: str) -> None:
    if bound:
        attrs.update(fillcolor=BOUND_FILL, color=BOUND_LINE, penwidth="2.4")
    g.node(nid, label, tooltip=_tip(tooltip), **attrs)


def add_plan(
    g: Any,
    plan: Plan,
    prefix: str,
    title: str,
    notes: Mapping[str, str] | None = None,
    reasons: Mapping[str, list[str]] | None = None,
    measured: Measured | None = None,
) -> list[str]:
    """One plan as a column; auto monitors are folded into the node they watch. Returns the column's node names
    (first the sources, last the output), for the layout."""
    notes, reasons = notes or {}, reasons or {}
    hidden = {nid for nid, node in plan.items() if _auto_monitor(node)}
    names: list[str] = []
    with g.subgraph(name=f"cluster_{prefix}") as sub:
        sub.attr(label=title, style="rounded", color="gray60", fontsize="11", labeljust="l")
        for nid, node in plan.items():
            if nid in hidden:
                continue
            label = node.label()
            why = reasons.get(nid, [])
            tip = "\n".join([f"{nid}: {label}", *why])
            rate = measured.lines(label) if measured else []
            mark = measured.mark(label) if measured else ""
            attrs: dict[str, str] = {}
            if isinstance(node, Fused):
                members = [f"{sub_id}: {m.label()}" for sub_id, m in zip(node.node_ids, node.nodes)]
                lines = []
                for text, member in zip(members, node.nodes):
                    lines += wrap(text, WRAP + 2, "    ")
                    if measured and isinstance(member, Monitor):  # a monitor the user put inside the run
                        lines += [f"    {line}" for line in measured.lines(member.label())]
                head = f"fused stage {nid} · one loop"
                tip = "\n".join([f"fused stage {nid}: {label}", *members, *why])
                attrs.update(fillcolor=FUSED_FILL, color="#1f4e8c")
                lab = _label(head, [], [*lines, *rate], mark).replace("<BR/>", '<BR ALIGN="LEFT"/>')
                lab = lab[:-1] + '<BR ALIGN="LEFT"/>>'
            elif nid in notes:  # a split: where it landed and why
                attrs.update(fillcolor=SPLIT_FILL, color="#b86e00")
                lab = _label(nid, wrap(label), [*wrap(notes[nid], WRAP + 4), *rate], mark)
                tip = "\n".join([f"{nid}: {label}", notes[nid], *why])
            else:
                lab = _label(nid, wrap(label), rate, mark)
                if any("] removed " in r for r in why):  # eliminated by a pass: drawn dashed
                    attrs.update(style="rounded,dashed", fontcolor="gray40", color="gray50")
            _style(sub, _gid(prefix, nid), lab, tip, bool(mark), **attrs)
            names.append(nid)
        for u, v in plan.graph.edges():
            if v in hidden:
                continue
            while u in hidden:  # an edge from a folded monitor starts at what it watches
                u = plan.inputs(u)[0]
            sub.edge(_gid(prefix, u), _gid(prefix, v))
    return [_gid(prefix, n) for n in names]


def add_physical(
    g: Any,
    physical: Any,
    optimized: Plan,
    measured: Measured | None,
    numba: Mapping[str, Any],
    reasons: Mapping[str, list[str]],
) -> list[str]:
    """The physical stages as a column; stages that only run inserted monitors are folded into the stage they
    watch. Returns the column's node names."""

    def monitor_only(stage: Any) -> bool:
        return all(nid in optimized.graph and _auto_monitor(optimized.node(nid)) for nid in stage.node_ids)

    stages = physical.stages
    hidden = {s.sid for s in stages if monitor_only(s)}
    by_sid = {s.sid: s for s in stages}
    names: list[str] = []
    with g.subgraph(name="cluster_P") as sub:
        title = f"Physical stages ({len(stages) - len(hidden)})"
        if hidden:
            title += f"\n+ {len(hidden)} monitor stages, as rates"
        sub.attr(label=title, style="rounded", color="gray60", fontsize="11", labeljust="l")
        for i, s in enumerate(stages):
            if s.sid in hidden:
                continue
            note = dedupe_note(s.name, s.note or "")
            state = numba.get(s.name)
            ran = state is not None and state.mode != "not run"
            if ran:  # what it did replaces what it would do
                note = "; ".join(p for p in note.split("; ") if "after a run" not in p)
            small = wrap(note, WRAP + 4) if note else []
            why = [r for nid in s.node_ids for r in reasons.get(nid, [])]
            if ran:
                small.append(f"ran as: {state.mode}" + (" (why: see the notes)" if state.reason else ""))
                if state.reason:
                    why.append(f"numba: {state.mode}, because: {state.reason}")
            rate = measured.lines(s.name) if measured else []
            mark = measured.mark(s.name) if measured else ""
            tip = "\n".join([f"#{i} [{s.backend}] {s.name}", *([s.note] if s.note else []), *rate, *why])
            attrs = {"fillcolor": FUSED_FILL, "color": "#1f4e8c"} if len(s.node_ids) > 1 else {}
            lab = _label(f"#{i} · {s.backend}", wrap(s.name), [*small, *rate], mark)
            _style(sub, _gid("P", str(s.sid)), lab, tip, bool(mark), **attrs)
            names.append(_gid("P", str(s.sid)))
        for s in stages:
            if s.sid in hidden:
                continue
            for inp in s.inputs:
                while inp.sid in hidden:
                    inp = by_sid[inp.sid].inputs[0]
                sub.edge(_gid("P", str(inp.sid)), _gid("P", str(s.sid)))
    return names


def responsive(svg: str) -> str:
    """Make the root ``<svg>`` scale to its container: ``viewBox`` kept, ``width: 100%`` and a ``max-width`` of the
    natural width in its style, and ``height: auto``. Inline (classic notebook, VS Code, HTML exports) it fills the
    column and never grows past its natural size; the ``width``/``height`` attributes stay as the natural size, which
    an ``<img>`` (JupyterLab, Sphinx pages) needs to be drawn at that size, shrunk by the page's ``max-width: 100%``
    instead of blown up to the column's width."""
    m = re.search(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"', svg)
    if m is None:
        return svg
    style = f' style="width: 100%; max-width: {float(m.group(1)):.0f}pt; height: auto"'
    return svg[: m.end()] + style + ' preserveAspectRatio="xMinYMin meet"' + svg[m.end() :]


def node_reasons(rewrites: Iterable[Any]) -> dict[str, list[str]]:
    """Every rewrite, in full, under each node it names (for tooltips)."""
    out: dict[str, list[str]] = {}
    for r in rewrites:
        for nid in {*r.nodes, *([r.result] if r.result else [])}:
            out.setdefault(nid, []).append(str(r))
    return out


def note_lines(ex: Any, width: int = NOTE_WRAP) -> tuple[list[tuple[str, bool]], str]:
    """The notes box: (line, is-a-heading) pairs wrapped at word boundaries, and the full text for its tooltip.
    Inserted monitors are summed up in one line (they are drawn as rates on the stages, not as nodes)."""
    rewrites = ex.rewrites
    monitors = [r for r in rewrites if r.pass_name == "insert_monitors" and r.action == "inserted"]
    lines: list[tuple[str, bool]] = [("Rewrites", True)]
    entries = [str(r) for r in rewrites if r not in monitors]
    if monitors:
        entries.append(
            f"[insert_monitors] a monitor after each of {len(monitors)} stages; "
            "what they measured is written on those stages"
        )
    entries = entries or ["(none)"]
    more: list[tuple[str, list[str]]] = [("Pipeline", [ex.pipeline_line()])]
    if ex.hints:
        more.append(("Hints", list(ex.hints)))
    if ex.numba:
        more.append(("numba, in the latest run", [numba_line(s) for s in ex.numba]))
    summary = getattr(ex.stats, "summary", None)
    if summary is not None and summary():
        more.append(("Measured in the latest run", [summary()]))
    for heading, items in [("", entries), *more]:
        if heading:
            lines.append((heading, True))
        lines += [(line, False) for e in items for line in wrap(e, width, "    ")]
    full = "\n".join([*(str(r) for r in rewrites), *(e for _, items in more for e in items)])
    return lines, full


def numba_line(state: Any) -> str:
    """What a numba stage did, its compile time, and (last, whole) why it fell back."""
    line = f"{state.label}: {state.mode} (compile {state.compile_seconds:.2f} s, {state.compilations} new)"
    return f"{line}; why: {state.reason}" if state.reason else line


def notes_label(lines: list[tuple[str, bool]]) -> str:
    """The notes box's HTML-like label: headings bold, every line left-aligned."""
    parts = [f"<B>{_esc(text)}</B>" if head else f'<FONT POINT-SIZE="9">{_esc(text)}</FONT>' for text, head in lines]
    return "<" + "".join(f'{p}<BR ALIGN="LEFT"/>' for p in parts) + ">"


def build_graph(ex: Any) -> Any:
    """A ``graphviz.Digraph`` of ``ex`` (an :class:`~squirrel_graph.explain.Explanation`): the selected plans as
    columns side by side, in order, and the notes box centred below them."""
    import graphviz

    c = ex.compiled
    g = graphviz.Digraph("plan", graph_attr={
        "rankdir": "TB", "newrank": "true", "fontname": "Helvetica", "nodesep": "0.25", "ranksep": "0.22",
        "pad": "0.1", "tooltip": "squirrel_graph plan",
    })  # fmt: skip
    g.attr("node", shape="box", style="rounded,filled", fillcolor="white", color="gray35", penwidth="0.8",
           fontname="Helvetica", fontsize="10", margin="0.1,0.04", height="0.3")  # fmt: skip
    g.attr("edge", arrowsize="0.6", color="gray30")
    measured = Measured(ex.stats) if ex.stats else None
    reasons = node_reasons(c.rewrites)
    columns: list[list[str]] = []
    stages = ex.selected()
    if "logical" in stages:
        columns.append(add_plan(g, c.logical, "L", f"Logical plan ({len(c.logical)} nodes)", reasons=reasons))
    if "optimized" in stages:
        monitors = sum(1 for _, n in c.optimized.items() if _auto_monitor(n))
        title = f"Optimized plan ({len(c.optimized) - monitors} nodes)"
        title += f"\n+ {monitors} monitors, as rates" if monitors else ""
        splits = {r.nodes[0]: r.reason for r in c.rewrites if r.pass_name == "push_splits" and r.nodes}
        columns.append(add_plan(g, c.optimized, "O", title, splits, reasons, measured))
    if "physical" in stages:
        numba = {s.label: s for s in ex.numba}
        columns.append(add_physical(g, c.physical, c.optimized, measured, numba, reasons))
    lines, full = note_lines(ex, NOTE_WRAP if len(columns) > 2 else 72)
    g.node("notes", notes_label(lines), shape="note", fillcolor="#fffbe6", color="#b8a200", tooltip=_tip(full))
    firsts = [col[0] for col in columns if col]
    if len(firsts) > 1:  # the columns' first nodes on one rank, left to right in order
        with g.subgraph() as top:
            top.attr(rank="same")
            for a, b in zip(firsts, firsts[1:]):
                top.edge(a, b, style="invis", weight="0")
    for col in columns:  # the notes below every column, centred under them (the middle column pulls)
        if col:
            middle = col is columns[len(columns) // 2]
            g.edge(col[-1], "notes", style="invis", weight="1" if middle else "0")
    return g
