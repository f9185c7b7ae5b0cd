"""The default backend: generated loops in the consumer's thread, ordered bounded thread pools for async_map."""

from squirrel_graph.backends.threaded.stages import ThreadedBackend

__all__ = ["ThreadedBackend"]
