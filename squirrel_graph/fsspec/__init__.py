"""squirrel-core compatible path ``squirrel.fsspec``."""
