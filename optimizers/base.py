"""Plain data shared by all passes: a rewrite record, a pass result, what a compile asked for, and the
declarations (:class:`Pass`, :class:`Step`) by which each module registers itself with the pipeline."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from squirrel_graph.graph import Plan


@dataclass(frozen=True)
class Rewrite:
    """One decision of a pass: what it did (or declined to do) to which nodes, and why."""

    pass_name: str
    action: str  # "fused", "removed", "kept", ...
    nodes: tuple[str, ...]
    reason: str
    result: str | None = None  # id of the node that replaced ``nodes``, if any

    def __str__(self) -> str:
        target = f" -> {self.result}" if self.result else ""
        return f"[{self.pass_name}] {self.action} {', '.join(self.nodes)}{target}: {self.reason}"


@dataclass(frozen=True)
class PassResult:
    plan: Plan
    rewrites: tuple[Rewrite, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class PassContext:
    """What one compilation asked for, as plain data a pass can read (passes never see backends or handles).

    ``per_key_engine``: the engine that runs a driver's per-key stages as one task per shard key, when the chosen
    backend declares one (``"dask"``); ``monitor``: None, True or a callback (``compile(monitor=...)``)."""

    backend: str = "threaded"
    per_key_engine: str | None = None
    monitor: Any = None
    monitor_every: int = 1000


def always(context: PassContext) -> bool:
    """The condition of a pass that runs on every compilation."""
    return True


@dataclass(frozen=True)
class Pass:
    """A pass as its module declares it: a named pure rewrite, where it runs in the pipeline (``order``, lower
    first) and when (``enabled``; ``when`` says it in words for explain and the docs)."""

    name: str
    run: Callable[[Plan, PassContext], PassResult]
    doc: str = ""
    order: int = 0
    enabled: Callable[[PassContext], bool] = always
    when: str = "always"


@dataclass(frozen=True)
class Step:
    """A step that is part of a plan's meaning, not an optimization: ``normalize`` steps run before the passes,
    ``validate`` steps after them; both run with ``optimize=False`` too and cannot be disabled."""

    name: str
    phase: str  # "normalize" | "validate"
    run: Callable[[Plan], PassResult]
    doc: str = ""
    order: int = 0
