"""The pass pipeline: normalize steps, then the optimization passes in their declared order, then validate steps.

Passes and steps are found, not listed: every module of this package that declares ``PASS`` (a :class:`Pass`)
or ``STEP`` (a :class:`Step`) takes part, so adding a pass is adding one module.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from dataclasses import dataclass

from optimizers.base import Pass, PassContext, Rewrite, Step
from squirrel_graph.graph import Plan


def _declared() -> tuple[tuple[Pass, ...], tuple[Step, ...]]:
    passes: list[Pass] = []
    steps: list[Step] = []
    package = importlib.import_module(__package__)
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{__package__}.{info.name}")
        if isinstance(getattr(module, "PASS", None), Pass):
            passes.append(module.PASS)
        if isinstance(getattr(module, "STEP", None), Step):
            steps.append(module.STEP)
    passes.sort(key=lambda p: (p.order, p.name))
    steps.sort(key=lambda s: (s.phase != "normalize", s.order, s.name))
    return tuple(passes), tuple(steps)


#: Every optimization pass, in the order it runs (conditional ones say when in ``Pass.when``).
PASSES, STEPS = _declared()
#: Every name ``compile(disable=...)`` accepts (steps are not passes: they cannot be switched off).
PASS_NAMES: tuple[str, ...] = tuple(p.name for p in PASSES)
#: The passes that run on a default compilation (threaded backend, no monitors).
DEFAULT_PASSES: tuple[Pass, ...] = tuple(p for p in PASSES if p.enabled(PassContext()))


def check_disable(disable: Iterable[str]) -> tuple[str, ...]:
    """``disable`` as a tuple of known pass names; raises ValueError naming the unknown ones."""
    names = (disable,) if isinstance(disable, str) else tuple(disable)
    unknown = sorted(set(names) - set(PASS_NAMES))
    if unknown:
        steps = [s.name for s in STEPS]
        raise ValueError(
            f"compile(disable=...): unknown pass name(s) {unknown}; known passes: {list(PASS_NAMES)}"
            + (
                f" (the steps {steps} are part of a plan's meaning and cannot be disabled)"
                if set(unknown) & set(steps)
                else ""
            )
        )
    return names


def optimize(
    plan: Plan, disable: Iterable[str] = (), context: PassContext | None = None
) -> tuple[Plan, tuple[Rewrite, ...]]:
    """Run every enabled pass not named in ``disable``; return the optimized plan and all rewrites in order."""
    disabled = set(check_disable(disable))
    context = context or PassContext()
    log: list[Rewrite] = []
    for p in PASSES:
        if not p.enabled(context):
            continue
        if p.name in disabled:
            log.append(Rewrite(p.name, "skipped", (), "disabled by the user"))
            continue
        result = p.run(plan, context)
        plan = result.plan
        log.extend(result.rewrites)
    return plan, tuple(log)


def run_steps(plan: Plan, phase: str) -> tuple[Plan, tuple[Rewrite, ...]]:
    """Run the steps of ``phase`` ("normalize" or "validate") in order."""
    log: list[Rewrite] = []
    for step in STEPS:
        if step.phase == phase:
            result = step.run(plan)
            plan = result.plan
            log.extend(result.rewrites)
    return plan, tuple(log)


@dataclass(frozen=True)
class PipelineResult:
    """The plan after normalizing (``logical``), after the passes and validation (``optimized``), the rewrite
    log, and the names of what ran, phase by phase (what explain lists)."""

    logical: Plan
    optimized: Plan
    rewrites: tuple[Rewrite, ...]
    ran: tuple[tuple[str, tuple[str, ...]], ...]


def run_pipeline(
    plan: Plan, context: PassContext | None = None, optimize_plan: bool = True, disable: Iterable[str] = ()
) -> PipelineResult:
    """Normalize, optimize (unless ``optimize_plan`` is False), validate."""
    context = context or PassContext()
    disabled = set(check_disable(disable))
    normalized, log = run_steps(plan, "normalize")
    if optimize_plan:
        optimized, passes_log = optimize(normalized, disabled, context)
        ran = tuple(p.name for p in PASSES if p.enabled(context) and p.name not in disabled)
    else:
        optimized = normalized
        passes_log = (Rewrite("*", "skipped", (), "compile(optimize=False): no pass ran"),)
        ran = ()
    optimized, checks = run_steps(optimized, "validate")
    phases = (
        ("normalize", tuple(s.name for s in STEPS if s.phase == "normalize")),
        ("passes", ran),
        ("validate", tuple(s.name for s in STEPS if s.phase == "validate")),
    )
    return PipelineResult(normalized, optimized, (*log, *passes_log, *checks), phases)
