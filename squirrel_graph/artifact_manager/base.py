"""squirrel-core compatible path ``squirrel.artifact_manager.base``."""

from squirrel_graph.artifacts.base import ArtifactManager, DirectoryLogger, TmpArtifact

__all__ = ["ArtifactManager", "DirectoryLogger", "TmpArtifact"]
