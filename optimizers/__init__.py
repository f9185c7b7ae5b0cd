"""Optimization passes of squirrel_graph (squirrel-graph-optimizers-package).

Each pass is a pure function ``Plan -> PassResult`` in its own module, with a legality check and a record of
every rewrite and why (or why not). :func:`optimize` runs them in a fixed, documented order; any pass can be
switched off by name. This package imports only the IR (``squirrel_graph.graph``).
"""

from optimizers.base import Pass, PassResult, Rewrite
from optimizers.pipeline import DEFAULT_PASSES, PASS_NAMES, optimize

__all__ = ["DEFAULT_PASSES", "PASS_NAMES", "Pass", "PassResult", "Rewrite", "optimize"]
