"""Lowering of optimized plans to runnable stages, and the backends that own the stage kinds."""

from squirrel_graph.backends.lowering import Backend, Lowered, PhysicalPlan, PhysicalStage, lower
from squirrel_graph.runtime.context import RunContext

__all__ = ["Backend", "Lowered", "PhysicalPlan", "PhysicalStage", "RunContext", "lower"]
