"""``stream.explain()``: the logical, optimized and physical plans, and every rewrite with its reason."""

from squirrel_graph.explain.explanation import STAGES, Explanation

__all__ = ["STAGES", "Explanation"]
