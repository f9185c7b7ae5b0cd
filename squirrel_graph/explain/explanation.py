"""The explanation object: text in a terminal, SVG in Jupyter (graphviz), and ``render(path)`` to a file."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from squirrel_graph.compiler import Compiled
from squirrel_graph.graph import Fused, Plan
from squirrel_graph.runtime.packing import pack_hints

STAGES = ("logical", "optimized", "physical")


def _split_notes(rewrites: tuple[Any, ...]) -> dict[str, str]:
    """Where each split landed and why, from push_splits' log."""
    return {r.nodes[0]: r.reason for r in rewrites if r.pass_name == "push_splits" and r.nodes}


def _plan_lines(plan: Plan, notes: dict[str, str] | None = None) -> list[str]:
    lines = []
    notes = notes or {}
    for nid, node in plan.items():
        ins = plan.inputs(nid)
        src = f"  <- {', '.join(ins)}" if ins else ""
        params = node.params()
        extra = f"  {params}" if params else ""
        lines.append(f"  {nid:<14} {node.label()}{extra}{src}")
        if nid in notes:
            lines.append(f"  {'':<14}   ↳ {notes[nid]}")
        if isinstance(node, Fused):
            for sub_id, sub in zip(node.node_ids, node.nodes):
                lines.append(f"  {'':<14}   | {sub_id}: {sub.label()}")
    return lines


class Explanation:
    """What the optimizer did to a stream, and why. ``str()`` is text; Jupyter shows an SVG."""

    def __init__(
        self,
        compiled: Compiled,
        stage: str | None = None,
        stats: dict[str, Any] | None = None,
        numba: list[Any] | None = None,
    ) -> None:
        if stage is not None and stage not in STAGES:
            raise ValueError(f"explain(stage=...): expected one of {STAGES} or None, got {stage!r}")
        self.compiled = compiled
        self.stage = stage
        self.stats = stats or {}  # measured by monitors in the latest run, if any
        self.numba = numba or []  # what the numba stages did in the latest run

    # ------------------------------------------------------------------ data
    @property
    def rewrites(self) -> tuple[Any, ...]:
        return self.compiled.rewrites

    @property
    def physical_stages(self) -> tuple[Any, ...]:
        return self.compiled.physical.stages

    @property
    def hints(self) -> list[str]:
        """Changes that would make this stream faster without changing its items (e.g. ``pack=True``)."""
        return pack_hints(self.compiled.optimized)

    def _stages(self) -> tuple[str, ...]:
        return STAGES if self.stage is None else (self.stage,)

    # ------------------------------------------------------------------ text
    def __str__(self) -> str:
        c = self.compiled
        out: list[str] = []
        if "logical" in self._stages():
            out += [f"== Logical plan ({len(c.logical)} nodes) =="] + _plan_lines(c.logical)
        if "optimized" in self._stages():
            notes = _split_notes(c.rewrites)
            out += [f"== Optimized plan ({len(c.optimized)} nodes) =="] + _plan_lines(c.optimized, notes)
        if "physical" in self._stages():
            stages = c.physical.stages
            out.append(f"== Physical plan ({len(stages)} stage{'s' if len(stages) != 1 else ''}) ==")
            for i, s in enumerate(stages):
                ins = ", ".join(f"#{stages.index(x)}" for x in s.inputs)
                feeds = f"  <- {ins}" if ins else ""
                note = f"\n      {s.note}" if s.note else ""
                out.append(f"  #{i} [{s.backend}] {s.name}  (nodes {', '.join(s.node_ids)}){feeds}{note}")
        if self.stats:
            out.append("== Measured in the latest run (what reached each monitor) ==")
            for name, s in self.stats.items():
                out.append(
                    f"  {name}: {s['items']} items in {s['seconds']:.3f} s, {s['items/s']:,} items/s, {s['MB/s']} MB/s"
                )
        if self.numba:
            out.append("== numba, in the latest run ==")
            for s in self.numba:
                why = f": {s.reason}" if s.reason else ""
                out.append(f"  {s.label}: {s.mode}{why} (compile {s.compile_seconds:.2f} s, {s.compilations} new)")
        hints = self.hints
        if hints:
            out.append("== Hints ==")
            out += [f"  {h}" for h in hints]
        out.append("== Pipeline ==")
        out.append(f"  {self.pipeline_line()}")
        out.append("== Rewrites ==")
        out += [f"  {r}" for r in c.rewrites] or ["  (none)"]
        return "\n".join(out)

    def pipeline_line(self) -> str:
        """What ran, phase by phase: normalize steps, optimization passes, validate steps."""
        phases = self.compiled.pipeline
        return " | ".join(f"{phase}: {', '.join(names) or '(none)'}" for phase, names in phases)

    def __repr__(self) -> str:
        return str(self)

    # ------------------------------------------------------------------ graphviz
    def to_graphviz(self) -> Any:
        """A ``graphviz.Digraph`` with one cluster per plan, fused nodes grouped, rewrites as a note."""
        import graphviz

        c = self.compiled
        g = graphviz.Digraph("plan", graph_attr={"rankdir": "TB", "fontname": "Helvetica", "compound": "true"})
        g.attr("node", shape="box", style="rounded,filled", fillcolor="white", fontname="Helvetica", fontsize="10")
        if "logical" in self._stages():
            _add_plan(g, c.logical, "L", "Logical plan")
        if "optimized" in self._stages():
            _add_plan(g, c.optimized, "O", "Optimized plan", _split_notes(c.rewrites))
        if "physical" in self._stages():
            _add_physical(g, c.physical, self.stats)
        notes = [self.pipeline_line(), *(f"hint: {h}" for h in self.hints)]
        notes += [str(r) for r in c.rewrites] or ["(no rewrites)"]
        wrapped = [line for n in notes for line in textwrap.wrap(n, 100, subsequent_indent="    ")]
        text = "\\l".join(_escape(n) for n in wrapped) + "\\l"
        g.node("rewrites", label=f"Rewrites\\l{text}", shape="note", fillcolor="lightyellow", fontsize="9")
        return g

    def _svg(self) -> str:
        return self.to_graphviz().pipe(format="svg").decode("utf-8")

    def _repr_svg_(self) -> str:
        return self._svg()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"image/svg+xml": self._svg(), "text/plain": str(self)}

    def render(self, path: str | Path) -> Path:
        """Write the picture to ``path`` in the format of its suffix (svg, png, pdf, dot, or txt for the text)."""
        path = Path(path)
        fmt = path.suffix.lstrip(".").lower() or "svg"
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "txt":
            path.write_text(str(self) + "\n", encoding="utf-8")
        elif fmt in ("dot", "gv"):
            path.write_text(self.to_graphviz().source, encoding="utf-8")
        else:
            path.write_bytes(self.to_graphviz().pipe(format=fmt))
        return path


def _gid(prefix: str, nid: str) -> str:
    """A graphviz node name (a ':' in a name would be read as a port)."""
    return f"{prefix}_{nid.replace(':', '_')}"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("<", "\\<").replace(">", "\\>")


def _add_plan(g: Any, plan: Plan, prefix: str, title: str, notes: dict[str, str] | None = None) -> None:
    with g.subgraph(name=f"cluster_{prefix}") as sub:
        sub.attr(label=title, style="rounded", color="gray50")
        for nid, node in plan.items():
            if isinstance(node, Fused):
                with sub.subgraph(name=f"cluster_{_gid(prefix, nid)}") as fused:
                    fused.attr(label=f"fused stage {nid}", style="rounded,filled", fillcolor="lightblue", color="blue")
                    for sub_id, member in zip(node.node_ids, node.nodes):
                        fused.node(_gid(prefix, sub_id), _escape(f"{sub_id}\n{member.label()}"))
                    for a, b in zip(node.node_ids, node.node_ids[1:]):
                        fused.edge(_gid(prefix, a), _gid(prefix, b))
            elif notes and nid in notes:  # a split: where it landed and why
                why = "\n".join(textwrap.wrap(notes[nid], 60))
                sub.node(_gid(prefix, nid), _escape(f"{nid}\n{node.label()}\n{why}"), fillcolor="orange", fontsize="9")
            else:
                sub.node(_gid(prefix, nid), _escape(f"{nid}\n{node.label()}"))
        for u, v in plan.graph.edges():
            sub.edge(_tail(plan, prefix, u), _head(plan, prefix, v))


def _tail(plan: Plan, prefix: str, nid: str) -> str:
    node = plan.node(nid)
    return _gid(prefix, node.node_ids[-1]) if isinstance(node, Fused) else _gid(prefix, nid)


def _head(plan: Plan, prefix: str, nid: str) -> str:
    node = plan.node(nid)
    return _gid(prefix, node.node_ids[0]) if isinstance(node, Fused) else _gid(prefix, nid)


def _add_physical(g: Any, physical: Any, stats: dict[str, Any]) -> None:
    with g.subgraph(name="cluster_P") as sub:
        sub.attr(label="Physical stages", style="rounded", color="gray50")
        for i, s in enumerate(physical.stages):
            color = "lightblue" if len(s.node_ids) > 1 else "white"
            note = f"\n({s.note})" if s.note else ""
            measured = stats.get(s.name)  # the monitor after this stage, in the latest run
            if measured:
                note += f"\nmeasured: {measured['items/s']:,} items/s"
            sub.node(_gid("P", s.sid), _escape(f"#{i} [{s.backend}]\n{s.name}{note}"), fillcolor=color)
            for inp in s.inputs:
                sub.edge(_gid("P", inp.sid), _gid("P", s.sid))
