"""squirrel-core compatible path ``squirrel.zarr.store`` (``SquirrelFSStore`` is built on first access; zarr<3)."""

from typing import TYPE_CHECKING

from squirrel_graph.io.zarr.store import __getattr__ as __getattr__
from squirrel_graph.io.zarr.store import suggest_compression

if TYPE_CHECKING:
    from squirrel_graph.io.zarr.store import SquirrelFSStore

__all__ = ["SquirrelFSStore", "suggest_compression"]
