"""squirrel-core compatible path ``squirrel.serialization.jsonl``."""

from squirrel_graph.io.serialization import JsonSerializer, SquirrelJsonEncoder

__all__ = ["JsonSerializer", "SquirrelJsonEncoder"]
