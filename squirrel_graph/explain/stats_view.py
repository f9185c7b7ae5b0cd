"""``stream.stats()``: what reached each monitor in the latest run, as the dict it always was, plus a table (text in
a terminal, HTML in Jupyter), a throughput-over-time plot, and the stage that bounds the pipeline.

**Which stage bounds the pipeline.** A pipeline is pulled: every stage runs at the pace of the slowest, so the
rates that leave the stages say little about which one holds the others up (they differ only by what filters and
batches do to the counts). What differs is where the time goes. Each monitor samples how long its consumer waits
for the next item (time spent in the stage it watches and everything upstream of it); the mean wait times the
items estimates that *upstream time* for the run. A stage's **own time** is its monitor's upstream time minus
that of the monitors just above it (never below 0, and measured against their envelope so that noise never
adds up to more than the run: see :func:`stage_stats`); waiting for its own thread pool (``async_map``) or reader
counts as its own. The stage with the most own time **bounds the pipeline**: it is where the run spends most of
its time, so making it faster (more workers, a cheaper function, a larger ``partition_size``) is what shortens the
run, as in tf.data's and Ray Data's bottleneck views. The run's time left after the last monitor is the time
**outside the pipeline** (the training step); when that is the largest, the pipeline keeps up with its consumer.
Own times are estimates from samples (a few hundred per second per monitor; noisier on a machine busy with other
work) and stay unknown (``None``) for a monitor without wait samples, e.g. one inside a fused run that the loop
continues after.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from squirrel_graph.explain.svg import wrap

BOUND_MARK = "◀ bounds the pipeline"
OUTSIDE = "outside the pipeline (the consumer)"


def _order(entry: tuple[str, Any]) -> int:
    """Monitors in plan order: source first (node ids start with their position in the logical plan)."""
    head = entry[0].split(":", 1)[0].split(".", 1)[0]
    return int(head) if head.isdigit() else 0


def _upstream_monitors(plan: Any, nid: str, monitors: set[str]) -> list[str]:
    """The nearest monitors above ``nid`` in ``plan`` (each path upward stops at the first monitor)."""
    found: list[str] = []
    todo, seen = list(plan.inputs(nid)), set()
    while todo:
        cur = todo.pop()
        if cur in seen:
            continue
        seen.add(cur)
        if cur in monitors:
            found.append(cur)
        else:
            todo.extend(plan.inputs(cur))
    return sorted(found, key=lambda n: _order((n, None)))


class StageStats(dict):
    """Per monitored stage (in plan order), ``{"items", "seconds", "items/s", "MB/s"}`` of what left it in the latest
    run, so far; a dict, as before. Also ``series`` (per stage: ``(seconds, items)`` points of the run), ``own``
    (per stage: estimated own seconds, or None), ``outside`` (seconds outside the pipeline, or None), ``wall``
    (seconds from the first monitor's start to the last item) and ``bound`` (the stage that bounds the pipeline,
    or None); see the module's docstring for the definitions. ``str()`` is a table, Jupyter shows it as HTML, and
    :meth:`plot` draws the throughput of every stage over the run."""

    def __init__(
        self,
        rows: Mapping[str, dict[str, float]] | None = None,
        series: Mapping[str, list[tuple[float, int]]] | None = None,
        own: Mapping[str, float | None] | None = None,
        outside: float | None = None,
        wall: float = 0.0,
    ) -> None:
        super().__init__(rows or {})
        self.series = dict(series or {})
        self.own = dict(own or {})
        self.outside = outside
        self.wall = wall
        known = {k: v for k, v in self.own.items() if v is not None}
        self.bound: str | None = max(known, key=known.__getitem__) if known and max(known.values()) > 0 else None

    # ------------------------------------------------------------------ numbers
    def share(self, stage: str) -> float | None:
        """``stage``'s own time as a fraction of the run (None if not known)."""
        own = self.own.get(stage)
        return own / self.wall if own is not None and self.wall > 0 else None

    @property
    def consumer_bound(self) -> bool:
        """True when more time went outside the pipeline than into any stage: the pipeline keeps up."""
        known = [v for v in self.own.values() if v is not None]
        return self.outside is not None and bool(known) and self.outside > max(known)

    def rates(self, stage: str) -> tuple[list[float], list[float]]:
        """Throughput of ``stage`` over the run, as steps: ``times`` are the ends of the intervals between the
        points of its series (the first entry is the start of the first interval) and ``rates[i]`` the items/s in
        the interval that ends at ``times[i]`` (``rates[0] == rates[1]``), for ``drawstyle="steps-pre"``."""
        pts = self.series.get(stage, [])
        if pts and pts[0] != (0.0, 0):
            pts = [(0.0, 0), *pts]
        times, rates = [], []
        for (t0, n0), (t1, n1) in zip(pts, pts[1:]):
            if t1 > t0:
                if not times:
                    times.append(t0)
                    rates.append((n1 - n0) / (t1 - t0))
                times.append(t1)
                rates.append((n1 - n0) / (t1 - t0))
        return times, rates

    def summary(self) -> str:
        """One sentence: which stage bounds the pipeline and its share of the run (empty before a run)."""
        if not self:
            return ""
        if self.bound is None:
            return "no monitor sampled the waits for items: which stage bounds the pipeline is not known"
        line = f"bounds the pipeline: {self.bound} ({self.share(self.bound) or 0:.0%} of the run in it)"
        if self.consumer_bound:
            line += f"; more ({(self.outside or 0) / self.wall:.0%}) went outside the pipeline: it keeps up"
        return line

    # ------------------------------------------------------------------ text
    def _rows(self) -> list[tuple[str, list[str], bool]]:
        out = []
        for stage, s in self.items():
            own, share = self.own.get(stage), self.share(stage)
            cells = [
                f"{s['items']:,}",
                f"{s['seconds']:.3f}",
                f"{s['items/s']:,.0f}" if s["items/s"] >= 100 else f"{s['items/s']:,.1f}",
                f"{s['MB/s']:,.2f}",
                "–" if own is None else f"{own:.3f}",
                "–" if share is None else f"{share:.0%}",
            ]
            out.append((stage, cells, stage == self.bound))
        if self.outside is not None and self.wall > 0:
            out.append((OUTSIDE, ["", "", "", "", f"{self.outside:.3f}", f"{self.outside / self.wall:.0%}"], False))
        return out

    HEADERS = ("items", "seconds", "items/s", "MB/s", "own s", "own %")

    def __str__(self) -> str:
        if not self:
            return "StageStats: no monitor ran (compile(monitor=True) puts one after every stage)"
        width = 46
        lines = [f"{'stage':<{width}} " + " ".join(f"{h:>11}" for h in self.HEADERS)]
        for stage, cells, bound in self._rows():
            parts = wrap(stage, width)
            row = f"{parts[0]:<{width}} " + " ".join(f"{c:>11}" for c in cells)
            lines.append(row + (f"  {BOUND_MARK}" if bound else ""))
            lines += [f"  {p}" for p in parts[1:]]
        if self.summary():
            lines.append(self.summary())
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        if not self:
            return f"<p>{html.escape(str(self))}</p>"
        th = "".join(f'<th style="text-align:right;white-space:nowrap">{html.escape(h)}</th>' for h in self.HEADERS)
        body = []
        for stage, cells, bound in self._rows():
            style = ' style="background:#ffe4e1;font-weight:bold"' if bound else ""
            mark = html.escape(BOUND_MARK) if bound else ""
            tds = "".join(f'<td style="text-align:right;white-space:nowrap">{html.escape(c)}</td>' for c in cells)
            body.append(
                f'<tr{style}><td style="text-align:left">{html.escape(stage)}</td>{tds}'
                f'<td style="white-space:nowrap">{mark}</td></tr>'
            )
        caption = html.escape(self.summary())
        return (
            '<table class="squirrel-graph-stats">'
            f'<caption style="caption-side:bottom;text-align:left">{caption}</caption>'
            f'<thead><tr><th style="text-align:left">stage</th>{th}<th></th></tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>"
        )

    # ------------------------------------------------------------------ plot
    def plot(self, ax: Any = None) -> Any:
        """Throughput of every stage over the run (items/s between the points of its series, as steps; log scale),
        one line per stage, the stage that bounds the pipeline drawn thick and named in the legend and the title.
        Draws on ``ax`` (a new figure through pyplot without one) and returns the Axes."""
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(9, 4), layout="constrained")
        positive = False
        for stage in self:
            times, rates = self.rates(stage)
            positive = positive or any(r > 0 for r in rates)
            label = "\n".join(wrap(stage, 44))
            bound = stage == self.bound
            if bound:
                label += f"\n{BOUND_MARK} ({self.share(stage) or 0:.0%} of the run)"
            ax.plot(times, [r if r > 0 else float("nan") for r in rates], drawstyle="steps-pre",
                    linewidth=3.0 if bound else 1.2, zorder=3 if bound else 2, label=label)  # fmt: skip
        if positive:
            ax.set_yscale("log")
        ax.set_xlabel("seconds since the run started")
        ax.set_ylabel("items/s leaving the stage")
        title = f"Throughput per stage; {self.summary()}" if self.bound else "Throughput per stage"
        ax.set_title("\n".join(wrap(title, 90)), fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        if self:
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        return ax


def stage_stats(state: Mapping[str, Any], plan: Any = None) -> StageStats:
    """Build :class:`StageStats` from a run's state (node id -> runtime state; monitors are the entries with
    ``as_dict``) and, when given, the optimized plan the run used (which monitors are just above which; without
    it, the previous monitor in plan order).

    Upstream time cannot fall from one monitor to the next in a pulled pipeline, so a sampled estimate that does
    is read as noise: each monitor's upstream time is taken as at least the sum of those just above it (their
    *envelope*), and a stage's own time is its monitor's upstream time minus that sum, never below 0. The own times
    then add up to the largest upstream time, never to more than the run. A monitor without wait samples passes
    its upstream's envelope on (its stage's time then counts as the next measured stage's own)."""
    found = sorted(((nid, s) for nid, s in state.items() if hasattr(s, "as_dict")), key=_order)
    ids = {nid for nid, _ in found}
    envelope: dict[str, float] = {}
    own: dict[str, float | None] = {}
    below: set[str] = set()  # monitors that have one further down
    for i, (nid, s) in enumerate(found):
        if plan is not None and nid in plan.graph:
            ups = _upstream_monitors(plan, nid, ids)
        else:
            ups = [found[i - 1][0]] if i else []
        below.update(ups)
        above = sum(envelope[u] for u in ups if u in envelope)
        mine = s.upstream_seconds
        own[s.label] = None if mine is None else max(0.0, mine - above)
        envelope[nid] = above if mine is None else max(mine, above)
    wall = max((s.last for _, s in found), default=0.0) - min((s.start for _, s in found), default=0.0)
    sinks = [envelope[nid] for nid, _ in found if nid not in below]
    measured = any(v is not None for v in own.values())
    outside = max(0.0, wall - max(sinks)) if sinks and measured else None
    return StageStats({s.label: s.as_dict() for _, s in found}, {s.label: list(s.series) for _, s in found}, own,
                      outside, wall)  # fmt: skip
