"""squirrel-core compatible path ``squirrel.iterstream.base``."""

from squirrel_graph.executors import AsyncContent
from squirrel_graph.stream.composable import Composable

__all__ = ["AsyncContent", "Composable"]
