"""Artifact managers: versioned files and folders in collections, on fsspec filesystems or Weights & Biases.

Names are imported on first use, so importing this package loads no catalog, driver or wandb code (the driver
registry may import :mod:`squirrel_graph.artifacts.drivers` without an import cycle).
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "ArtifactManager": "base",
    "ArtifactNotFoundError": "base",
    "DirectoryLogger": "base",
    "InvalidArtifactVersionError": "base",
    "TmpArtifact": "base",
    "ArtifactFileStore": "filesystem",
    "FileSystemArtifactManager": "filesystem",
    "WandbArtifactManager": "wandb",
    "WandbServerRequiredError": "wandb",
    "DirectoryDriver": "drivers",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'squirrel_graph.artifacts' has no attribute {name!r}")
    return getattr(importlib.import_module(f"squirrel_graph.artifacts.{module}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
