"""Plain data shared by all passes: a rewrite record and a pass result."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

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
class Pass:
    """A named pure rewrite ``Plan -> PassResult``."""

    name: str
    run: Callable[[Plan], PassResult]
    doc: str = ""
