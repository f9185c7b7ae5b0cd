"""Lowering of optimized plans to runnable stages, and the backends that own the stage kinds."""

from squirrel_graph.backends.lowering import Backend, Lowered, PhysicalPlan, PhysicalStage, RunContext, lower

__all__ = ["Backend", "Lowered", "PhysicalPlan", "PhysicalStage", "RunContext", "lower"]
