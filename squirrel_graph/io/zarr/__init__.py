"""zarr v2 support (squirrel-core's ``squirrel.zarr``): key helpers, an fsspec store, a group and a synchronizer.

Importing these modules never imports zarr; the zarr-backed classes are built on first use and need ``zarr<3``.
"""
