"""The explanation object: text in a terminal, SVG in Jupyter (graphviz), and ``render(path)`` to a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from squirrel_graph.compiler import Compiled
from squirrel_graph.explain.svg import build_graph, dedupe_note, numba_line, responsive
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
        resume: list[str] | None = None,
        tuned: list[str] | None = None,
    ) -> None:
        if stage is not None and stage not in STAGES:
            raise ValueError(f"explain(stage=...): expected one of {STAGES} or None, got {stage!r}")
        self.compiled = compiled
        self.stage = stage
        self.stats = stats or {}  # measured by monitors in the latest run, if any
        self.numba = numba or []  # what the numba stages did in the latest run
        self.resume = resume or []  # where the next run resumes, for a stream with a loaded state
        self.tuned = tuned or []  # what the "auto" stages chose in the latest run

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

    def selected(self) -> tuple[str, ...]:
        """The plans this explanation shows: all three, or the one ``stage=`` asked for."""
        return STAGES if self.stage is None else (self.stage,)

    # ------------------------------------------------------------------ text
    def __str__(self) -> str:
        c = self.compiled
        out: list[str] = []
        if "logical" in self.selected():
            out += [f"== Logical plan ({len(c.logical)} nodes) =="] + _plan_lines(c.logical)
        if "optimized" in self.selected():
            notes = _split_notes(c.rewrites)
            out += [f"== Optimized plan ({len(c.optimized)} nodes) =="] + _plan_lines(c.optimized, notes)
        if "physical" in self.selected():
            stages = c.physical.stages
            out.append(f"== Physical plan ({len(stages)} stage{'s' if len(stages) != 1 else ''}) ==")
            for i, s in enumerate(stages):
                ins = ", ".join(f"#{stages.index(x)}" for x in s.inputs)
                feeds = f"  <- {ins}" if ins else ""
                note = dedupe_note(s.name, s.note or "")
                note = f"\n      {note}" if note else ""
                out.append(f"  #{i} [{s.backend}] {s.name}  (nodes {', '.join(s.node_ids)}){feeds}{note}")
        if self.resume:
            out.append("== Resume (the next run continues from the loaded state) ==")
            out += [f"  {line}" for line in self.resume]
        if self.stats:
            out.append("== Measured in the latest run (what reached each monitor) ==")
            share = getattr(self.stats, "share", lambda name: None)
            for name, s in self.stats.items():
                own = f", {share(name):.0%} of the run in it" if share(name) is not None else ""
                out.append(
                    f"  {name}: {s['items']} items in {s['seconds']:.3f} s, {s['items/s']:,} items/s, "
                    f"{s['MB/s']} MB/s{own}"
                )
            summary = getattr(self.stats, "summary", None)
            if summary is not None and summary():
                out.append(f"  {summary()}")
        if self.tuned:
            out.append("== Autotuned in the latest run ==")
            out += [f"  {line}" for line in self.tuned]
        if self.numba:
            out.append("== numba, in the latest run ==")
            out += [f"  {numba_line(s)}" for s in self.numba]
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
        """A ``graphviz.Digraph``: the plans as columns (fused runs as one box, inserted monitors as the rates on
        the stages they watch), the notes below; see :mod:`squirrel_graph.explain.svg`."""
        return build_graph(self)

    def _svg(self) -> str:
        return responsive(self.to_graphviz().pipe(format="svg").decode("utf-8"))

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
        elif fmt == "svg":
            path.write_text(self._svg(), encoding="utf-8")
        else:
            path.write_bytes(self.to_graphviz().pipe(format=fmt))
        return path
