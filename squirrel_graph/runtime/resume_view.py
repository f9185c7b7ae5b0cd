"""Where a loaded state makes a run resume, stage by stage, in words (for ``explain()``).

It walks the physical plan from the output to the source alongside the nested position: a stage that keeps a
position of its own (see :mod:`squirrel_graph.runtime.resume`) peels one layer off and says what it does on resume;
a stage that hands items over as its input produces them passes the position on unchanged.
"""

from __future__ import annotations

from typing import Any

from squirrel_graph.graph import DaskTasks, FilePaths, Flatten, Fused, IterSource, Loop, PerKey, Shuffle, Take, ZipIndex


def layer_key(node: Any, backend: str) -> str | None:
    """The key of the position layer a stage of this kind keeps (None: it passes its input's position on)."""
    if backend == "numba":
        return "chunk"
    if isinstance(node, Fused):
        return "item" if node.nodes and isinstance(node.nodes[0], Flatten) else None
    if isinstance(node, (PerKey, DaskTasks, Flatten)):
        return "item"
    kinds = ((Shuffle, "pulled"), (Take, "taken"), (ZipIndex, "index"), (Loop, "passes"), (IterSource, "n"))
    kinds += ((FilePaths, "n"),)
    return next((key for cls, key in kinds if isinstance(node, cls)), None)


def _layer(stage: Any, key: str, position: dict[str, Any]) -> tuple[str, Any]:
    """(what ``stage`` does when it resumes from ``position``, its input's position)."""
    name = f"{stage.name} [{stage.sid}]"
    if key == "item":
        k = position["skip"]
        return (
            f"{name}: re-runs the item it was inside (its input resumes right before it) and skips its first {k} "
            "element(s) before any user function after the flatten runs",
            position["item"],
        )
    if key == "chunk":
        skip = position["skip"]
        return f"{name}: re-reads and re-runs the chunk it was in, skips {skip} output(s)", position["chunk"]
    if key == "pulled":
        span = position["pulled"] - position["from"]
        return (
            f"{name}: replays {position['emitted']} picks from the seed (no items) and rebuilds its buffer from input "
            f"items #{position['from']}..#{position['pulled'] - 1} ({span}): the recent ones re-read at once, older "
            "ones from the nearest saved position when the shuffle picks them",
            position["up"],
        )
    if key == "n":
        return f"{name}: skips its first {position['n']} item(s) without reading them again", None
    verb = {"taken": "has taken", "index": "counts on from", "passes": "has finished passes:"}[key]
    return f"{name}: {verb} {position[key]}", position.get("up")


def describe(physical: Any, optimized: Any, position: Any) -> list[str]:
    """Lines saying where a run from ``position`` resumes, from the output stage up to the source (a stage that
    passes its input's position on is not listed: it simply continues after the last item handed over)."""
    if position is None:
        return ["starts at the beginning (the state was taken before the first item)"]
    lines: list[str] = []
    stage = physical.output
    while stage is not None:
        key = layer_key(optimized.node(stage.sid), stage.backend) if stage.sid in optimized.graph else None
        if key is not None and isinstance(position, dict) and key in position:
            said, position = _layer(stage, key, position)
            lines.append(said)
        stage = stage.inputs[0] if len(stage.inputs) == 1 else None
        if position is None:
            if stage is not None:
                lines.append(f"{stage.name} [{stage.sid}] and the stages above it start at their beginning")
            break
    return lines
