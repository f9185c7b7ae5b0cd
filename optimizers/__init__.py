"""Optimization passes of squirrel_graph (squirrel-graph-optimizers-package).

Each pass is a pure function ``(Plan, PassContext) -> PassResult`` in its own module, declared there as
``PASS`` (name, order, condition); steps that are part of a plan's meaning (``normalize`` before the passes,
``validate`` after them) are declared as ``STEP``. :mod:`optimizers.pipeline` finds them all and runs them in
their declared order; any pass can be switched off by name. This package imports only the IR.
"""

from optimizers.base import Pass, PassContext, PassResult, Rewrite, Step
from optimizers.pipeline import (
    DEFAULT_PASSES,
    PASS_NAMES,
    PASSES,
    STEPS,
    PipelineResult,
    check_disable,
    optimize,
    run_pipeline,
)

__all__ = [
    "DEFAULT_PASSES",
    "PASSES",
    "PASS_NAMES",
    "STEPS",
    "Pass",
    "PassContext",
    "PassResult",
    "PipelineResult",
    "Rewrite",
    "Step",
    "check_disable",
    "optimize",
    "run_pipeline",
]
