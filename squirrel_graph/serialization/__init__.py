"""squirrel-core compatible path ``squirrel.serialization``."""

from squirrel_graph.io.serialization import (
    CorruptShardError,
    JsonSerializer,
    MessagepackSerializer,
    SerializationError,
    SquirrelSerializer,
)

__all__ = ["CorruptShardError", "JsonSerializer", "MessagepackSerializer", "SerializationError", "SquirrelSerializer"]
