"""squirrel-core compatible path ``squirrel.artifact_manager.wandb`` (wandb itself is imported on use)."""

from squirrel_graph.artifacts.wandb import WandbArtifactManager

__all__ = ["WandbArtifactManager"]
