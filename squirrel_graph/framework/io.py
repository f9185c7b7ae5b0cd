"""squirrel-core compatible path ``squirrel.framework.io`` (re-exports :mod:`squirrel_graph.io.files`)."""

from squirrel_graph.io.files import read_from_file, write_to_file

__all__ = ["read_from_file", "write_to_file"]
