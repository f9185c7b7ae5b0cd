"""The lowering skeleton shared by every backend.

:func:`lower` walks an optimized plan in topological order and asks the backends, in preference order, for a
runner of each node. A runner is ``runner(inputs, ctx) -> Iterator`` where ``inputs`` are zero-argument
callables that open a *fresh* iterator over each input stage (so ``loop`` and ``Multiplexer`` can re-open
their upstream) and ``ctx`` is the :class:`RunContext` holding the run's mutable state. Backends only read
plans; nothing here mutates one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from squirrel_graph.errors import LoweringError
from squirrel_graph.graph import Node, Plan
from squirrel_graph.runtime.context import RunContext, Runner
from squirrel_graph.runtime.resume import not_resumable


@dataclass(frozen=True)
class Lowered:
    """A backend's answer for one node: the runner, and a note for explain (e.g. what was inlined)."""

    runner: Runner
    note: str = ""
    needs_close: bool = False  # the runner opens resources (threads) that must be released when the run ends


class Backend(Protocol):
    """A backend names itself and lowers the node kinds it owns (None for the others)."""

    name: str

    def lower_node(self, nid: str, node: Node, plan: Plan, built: Mapping[str, PhysicalStage]) -> Lowered | None:
        """The runner of ``node`` (None if this backend does not own its kind); ``built`` holds the stages lowered
        so far (every ancestor of ``nid``), for runners that open another stage (equalize lists the keys)."""


@dataclass(frozen=True, eq=False)
class PhysicalStage:
    """One runnable stage: the logical nodes it executes, the backend that runs it, and its inputs."""

    sid: str
    name: str
    backend: str
    node_ids: tuple[str, ...]
    inputs: tuple[PhysicalStage, ...]
    runner: Runner
    note: str = ""
    needs_close: bool = False

    def open(self, ctx: RunContext) -> Iterator[Any]:
        """A fresh iterator over this stage's output. A runner that does not say where its consumer is (see
        :mod:`squirrel_graph.runtime.resume`) makes the run's checkpoints not resumable, naming this stage."""
        it = self.runner(tuple(StageInput(s, ctx) for s in self.inputs), ctx)
        positions = ctx.positions
        if self.sid not in positions:
            positions[self.sid] = not_resumable(self.name, f"the {self.backend} backend keeps no position for it")
        return it


class StageInput:
    """Opens a fresh iterator over one input stage (a runner's ``inputs[i]()``); ``sid`` names that stage, where
    the run keeps its position and where a resumed run leaves the position it starts from."""

    __slots__ = ("ctx", "sid", "stage")

    def __init__(self, stage: PhysicalStage, ctx: RunContext) -> None:
        self.stage, self.ctx, self.sid = stage, ctx, stage.sid

    def __call__(self) -> Iterator[Any]:
        self.ctx.positions.pop(self.sid, None)  # the stage says anew where it is
        return self.stage.open(self.ctx)


@dataclass(frozen=True)
class PhysicalPlan:
    """Stages in topological order and the output stage."""

    stages: tuple[PhysicalStage, ...]
    output: PhysicalStage

    def open(self, ctx: RunContext | None = None) -> Iterator[Any]:
        """A run of the plan. If a stage holds threads, the run is a generator that releases them as soon as it
        ends, fails or is closed (not when garbage collection gets to it)."""
        ctx = ctx if ctx is not None else RunContext()
        ctx.positions.pop(self.output.sid, None)
        it = self.output.open(ctx)
        return _closing(it, ctx) if any(s.needs_close for s in self.stages) else it

    def stage_of_node(self, nid: str) -> PhysicalStage | None:
        for s in self.stages:
            if nid in s.node_ids:
                return s
        return None


def _closing(it: Iterator[Any], ctx: RunContext) -> Iterator[Any]:
    try:
        yield from it
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()
        ctx.release()


def lower(plan: Plan, backends: Sequence[Backend]) -> PhysicalPlan:
    """Turn an optimized plan into physical stages, one per plan node, each owned by the first willing backend."""
    built: dict[str, PhysicalStage] = {}
    order = []
    for nid in plan.topo():
        node = plan.node(nid)
        for backend in backends:
            lowered = backend.lower_node(nid, node, plan, built)
            if lowered is not None:
                break
        else:
            names = [b.name for b in backends]
            raise LoweringError(f"no backend among {names} can run node {nid} ({node.label()})")
        node_ids = getattr(node, "node_ids", None) or (nid,)
        stage = PhysicalStage(
            sid=nid,
            name=node.label(),
            backend=backend.name,
            node_ids=node_ids,
            inputs=tuple(built[i] for i in plan.inputs(nid)),
            runner=lowered.runner,
            note=lowered.note,
            needs_close=lowered.needs_close,
        )
        built[nid] = stage
        order.append(stage)
    return PhysicalPlan(tuple(order), built[plan.output])
