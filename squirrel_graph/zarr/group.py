"""squirrel-core compatible path ``squirrel.zarr.group`` (``SquirrelGroup`` is built on first access; zarr<3)."""

from typing import TYPE_CHECKING

from squirrel_graph.io.zarr.group import __getattr__ as __getattr__
from squirrel_graph.io.zarr.group import get_group

if TYPE_CHECKING:
    from squirrel_graph.io.zarr.group import SquirrelGroup

__all__ = ["SquirrelGroup", "get_group"]
