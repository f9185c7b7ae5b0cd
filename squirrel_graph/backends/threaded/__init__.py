"""The default backend: generated loops in the consumer's thread, ordered bounded thread pools for async_map.

It is also the fallback every compilation lowers last: whatever node no other backend claims runs here.
"""

from squirrel_graph.backends.registry import BackendSpec
from squirrel_graph.backends.threaded.stages import ThreadedBackend

BACKEND = BackendSpec(
    "threaded",
    "generated loops and ordered thread pools in the consuming process",
    make=lambda options, chosen: ThreadedBackend(inline=options.get("inline", True)),
    fallback=True,
)

__all__ = ["BACKEND", "ThreadedBackend"]
