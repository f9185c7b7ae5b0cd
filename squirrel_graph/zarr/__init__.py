"""squirrel-core compatible path ``squirrel.zarr`` (its modules: ``group``, ``key``, ``store``, ``sync``)."""
