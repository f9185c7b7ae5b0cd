"""``stream.explain()``: the logical, optimized and physical plans, and every rewrite with its reason; and the
per-stage view of ``stream.stats()``."""

from squirrel_graph.explain.explanation import STAGES, Explanation
from squirrel_graph.explain.stats_view import StageStats

__all__ = ["STAGES", "Explanation", "StageStats"]
