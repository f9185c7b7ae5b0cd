"""squirrel_graph: stream sharded ML training data through an optimized DAG.

Chain calls (``IterableSource(...).map(f).async_map(g).filter(p).batched(n)``) build an immutable plan; the
passes in the top-level ``optimizers`` package rewrite it, and a backend runs it as fused loops.
"""

from squirrel_graph._check_optimizers import check_optimizers_package

check_optimizers_package()

from squirrel_graph.stream import (  # noqa: E402
    Composable,
    FilePathGenerator,
    IterableSamplerSource,
    IterableSource,
    Multiplexer,
    MultiplexingStrategy,
)

__version__ = "0.1.0"

__all__ = [
    "Composable",
    "FilePathGenerator",
    "IterableSamplerSource",
    "IterableSource",
    "Multiplexer",
    "MultiplexingStrategy",
    "__version__",
]
