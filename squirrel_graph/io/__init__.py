"""Edges of the world: filesystems (fsspec). Stores, serializers and drivers arrive with the storage issue."""
