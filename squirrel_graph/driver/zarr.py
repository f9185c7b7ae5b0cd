"""squirrel-core compatible path ``squirrel.driver.zarr`` (``fetch`` is importable too, as there)."""

from squirrel_graph.io.zarr_driver import ZarrDriver
from squirrel_graph.io.zarr_driver import fetch as fetch

__all__ = ["ZarrDriver"]
