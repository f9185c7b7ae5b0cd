"""squirrel_graph: stream sharded ML training data through an optimized DAG.

Chain calls (``IterableSource(...).map(f).async_map(g).filter(p).batched(n)``) build an immutable plan; the
passes in the top-level ``optimizers`` package rewrite it, and a backend runs it as fused loops.
"""

from squirrel_graph._check_optimizers import check_optimizers_package

check_optimizers_package()

from squirrel_graph.io.paths import FilePathGenerator  # noqa: E402
from squirrel_graph.stream import (  # noqa: E402
    Composable,
    IterableSamplerSource,
    IterableSource,
    Multiplexer,
    MultiplexingStrategy,
)

__version__ = "0.1.0"

_TORCH_NAMES = ("SplitByRank", "SplitByWorker", "TorchIterable", "skip_k")


def __getattr__(name: str):
    """PyTorch names are imported on first use, so ``import squirrel_graph`` (and ``import *``) never import
    torch."""
    if name in _TORCH_NAMES:
        from squirrel_graph import pytorch

        return getattr(pytorch, name)
    raise AttributeError(f"module 'squirrel_graph' has no attribute {name!r}")


__all__ = [
    "Composable",
    "FilePathGenerator",
    "IterableSamplerSource",
    "IterableSource",
    "Multiplexer",
    "MultiplexingStrategy",
    "__version__",
]
