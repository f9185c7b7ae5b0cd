"""The spark backend: a driver's per-key stages (fetch, decode, flatten, maps, filters) as one Spark task per shard
key, results streamed back in key order (see :mod:`squirrel_graph.backends.spark.jobs`).

``stream.compile(backend="spark", spark=session)``; without ``spark``, the session active when the stream is
iterated. pyspark is imported only then. Everything after the per-key part (batched, shuffles, async_map) runs
locally on the threaded runtime.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from squirrel_graph.backends.lowering import Lowered, PhysicalStage
from squirrel_graph.backends.registry import BackendSpec
from squirrel_graph.backends.spark.jobs import per_key_runner
from squirrel_graph.graph import Node, PerKey, Plan

ENGINE = "spark"


class SparkBackend:
    """Owns the PerKey nodes of the spark engine."""

    name = "spark"

    def __init__(self, spark: Any = None) -> None:
        self.spark = spark

    def lower_node(self, nid: str, node: Node, plan: Plan, built: Mapping[str, PhysicalStage]) -> Lowered | None:
        if isinstance(node, PerKey) and node.engine == ENGINE:
            buffer = max(1, node.fetch.buffer)
            note = f"one Spark task per shard key, at most {buffer} in flight; results stream back in key order"
            return Lowered(per_key_runner(nid, node, self.spark), note=note, needs_close=True)
        return None


def check_spark(spark: Any) -> None:
    """Validate ``compile(backend="spark", spark=...)``: a classic SparkSession (it needs a SparkContext)."""
    if spark is None:
        return
    try:
        sc = spark.sparkContext
    except Exception:  # AttributeError, or Spark Connect's "not supported"
        sc = None
    if sc is None or not callable(getattr(sc, "parallelize", None)):
        raise TypeError(
            "compile(spark=...): expected a pyspark.sql.SparkSession with a SparkContext (not Spark Connect), with "
            f"backend='spark'; got {type(spark).__name__}"
        )


BACKEND = BackendSpec(
    "spark",
    "a driver's per-key stages as one task per shard key on a Spark cluster (a SparkSession)",
    make=lambda options, chosen: SparkBackend(spark=options.get("spark")),
    options={"spark": check_spark},
    per_key_engine=ENGINE,
)

__all__ = ["BACKEND", "ENGINE", "SparkBackend", "check_spark"]
