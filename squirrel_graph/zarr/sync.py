"""squirrel-core compatible path ``squirrel.zarr.sync`` (the class is built on first access; zarr<3)."""

from typing import TYPE_CHECKING

from squirrel_graph.io.zarr.sync import __getattr__ as __getattr__

if TYPE_CHECKING:
    from squirrel_graph.io.zarr.sync import SquirrelThreadSynchronizer

__all__ = ["SquirrelThreadSynchronizer"]
