"""squirrel-core compatible path ``squirrel.artifact_manager``: no public names; its ``drivers`` submodule is loaded,
as there (registering the ``"directory"`` driver is the driver registry's job, not this import's)."""

from squirrel_graph.artifact_manager import drivers  # noqa: F401

__all__: list[str] = []
