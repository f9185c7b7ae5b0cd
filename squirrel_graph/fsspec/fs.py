"""squirrel-core compatible path ``squirrel.fsspec.fs``."""

from squirrel_graph.io.fs import get_fs_from_url, get_protocol

__all__ = ["get_fs_from_url", "get_protocol"]
