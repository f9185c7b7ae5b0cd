"""squirrel-core compatible path ``squirrel.fsspec.custom_gcsfs`` (needs gcsfs, the ``gcs`` extra)."""

from squirrel_graph.io.gcs import CustomGCSFileSystem, custom_retry

__all__ = ["CustomGCSFileSystem", "custom_retry"]
