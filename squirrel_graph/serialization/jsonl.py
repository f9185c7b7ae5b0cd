"""squirrel-core compatible path ``squirrel.serialization.jsonl``."""

from squirrel_graph.io.serialization import JsonSerializer, SquirrelJsonDecoder, SquirrelJsonEncoder

__all__ = ["JsonSerializer", "SquirrelJsonDecoder", "SquirrelJsonEncoder"]
