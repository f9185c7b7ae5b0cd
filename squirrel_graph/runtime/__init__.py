"""The shared runtime every backend lowers to: run contexts, iterator operations, generated loops (with
inlining), thread pools, rank/worker splits and per-key task bodies. It imports no backend."""

from squirrel_graph.runtime.context import Opener, RunContext, Runner

__all__ = ["Opener", "RunContext", "Runner"]
