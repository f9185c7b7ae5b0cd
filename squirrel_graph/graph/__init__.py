"""The IR: frozen node dataclasses and the immutable :class:`Plan` DAG. No execution code lives here.

Every node class of :mod:`.nodes` (logical) and :mod:`.physical` (optimizer output) is importable from here.
"""

from squirrel_graph.graph import nodes, physical
from squirrel_graph.graph.base import TRAITS, Node, callable_name, traits, undeclared_traits
from squirrel_graph.graph.elastic import ElasticSource
from squirrel_graph.graph.nodes import *  # noqa: F403 - the logical node classes, listed in nodes.__all__
from squirrel_graph.graph.physical import *  # noqa: F403 - the optimizer's node classes
from squirrel_graph.graph.plan import Plan, PlanError

__all__ = [
    *nodes.__all__,
    *physical.__all__,
    "ElasticSource",
    "TRAITS",
    "Node",
    "Plan",
    "PlanError",
    "callable_name",
    "traits",
    "undeclared_traits",
]
