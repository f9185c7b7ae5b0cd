"""squirrel-core compatible path ``squirrel.artifact_manager.filesystem``."""

from squirrel_graph.artifacts.filesystem import ArtifactFileStore, FileSystemArtifactManager, Serializers

__all__ = ["ArtifactFileStore", "FileSystemArtifactManager", "Serializers"]
