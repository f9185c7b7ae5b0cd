"""The artifact manager interface (squirrel-core's ``artifact_manager.base``): versioned files and folders, grouped
in collections, described as catalog sources; plus the temporary-download and folder-logging context managers."""

from __future__ import annotations

import logging
import re
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any

from squirrel_graph.errors import SquirrelGraphError
from squirrel_graph.io.catalog import Catalog, CatalogSource

logger = logging.getLogger(__name__)

__all__ = [
    "ArtifactManager",
    "ArtifactNotFoundError",
    "DirectoryLogger",
    "InvalidArtifactVersionError",
    "TmpArtifact",
    "check_artifact_path",
    "check_collection_name",
    "check_name",
    "format_version",
    "parse_version",
]

_COLLECTION = re.compile(r"^[a-zA-Z0-9\-_:]+$")  # squirrel-core's rule: no nesting, so no "/" (and no ".")
_VERSION = re.compile(r"^v(0|[1-9][0-9]*)$")


class ArtifactNotFoundError(SquirrelGraphError, ValueError, LookupError):
    """An artifact, or one version of it, is not in the store; a ValueError too, as squirrel-core raised those."""


class InvalidArtifactVersionError(SquirrelGraphError, ValueError):
    """A version string is neither ``"latest"`` nor ``"v<N>"``."""


def check_collection_name(collection: Any) -> str:
    """``collection`` if it is a valid (flat) collection name, else a ValueError that says what is allowed."""
    if not isinstance(collection, str) or not _COLLECTION.match(collection):
        raise ValueError(
            f"invalid collection name {collection!r}: it must be a non-empty str of letters, digits, '-', '_' and ':'"
            " (collections cannot be nested)"
        )
    return collection


def check_name(artifact: Any) -> str:
    """``artifact`` if it can name an artifact (one path segment, not hidden), else a ValueError naming it."""
    if not isinstance(artifact, str) or not artifact or "/" in artifact or "\\" in artifact or artifact[0] == ".":
        raise ValueError(
            f"invalid artifact name {artifact!r}: it must be a non-empty str without '/' or '\\' that does not start"
            " with '.'"
        )
    return artifact


def check_artifact_path(artifact_path: Any) -> str | None:
    """``artifact_path`` as a relative POSIX path inside an artifact (None stays None); ValueError if it escapes."""
    if artifact_path is None:
        return None
    if not isinstance(artifact_path, (str, Path)):
        raise ValueError(f"artifact_path must be a str or pathlib.Path, got {type(artifact_path).__name__}")
    path = PurePosixPath(Path(artifact_path).as_posix())
    if path.is_absolute() or ".." in path.parts or str(path) in ("", "."):
        raise ValueError(f"artifact_path {str(artifact_path)!r} must be a relative path inside the artifact")
    return str(path)


def parse_version(version: str | None, artifact: str = "?", collection: str = "?") -> int | None:
    """The number N of ``"vN"``; None for ``None`` or ``"latest"``; InvalidArtifactVersionError otherwise."""
    if version is None or version == "latest":
        return None
    match = _VERSION.match(version) if isinstance(version, str) else None
    if match is None:
        raise InvalidArtifactVersionError(
            f"bad version {version!r} for artifact {artifact!r} in collection {collection!r}: expected 'latest' or"
            " 'v<N>' with N >= 0 (e.g. 'v0')"
        )
    return int(match.group(1))


def format_version(number: int) -> str:
    """``"vN"`` for N (versions start at ``v0``; the catalog version of ``vN`` is N + 1)."""
    return f"v{number}"


class TmpArtifact:
    """Context manager: downloads an artifact to a temporary folder on enter (yielding its path), deletes it on exit."""

    def __init__(self, artifact_manager: ArtifactManager, collection: str, artifact: str, version: str) -> None:
        self.artifact_manager = artifact_manager
        self.collection = collection
        self.artifact = artifact
        self.version = version
        self.tempdir: tempfile.TemporaryDirectory[str] | None = None  # made on enter: constructing touches no disk

    def __enter__(self) -> Path:
        self.tempdir = tempfile.TemporaryDirectory()
        try:
            root = Path(self.tempdir.name)
            self.artifact_manager.download_artifact(self.artifact, self.collection, self.version, root)
        except BaseException:
            self.tempdir.cleanup()
            self.tempdir = None
            raise
        return root / self.artifact

    def __exit__(
        self,
        exctype: type[BaseException] | None = None,
        excinst: BaseException | None = None,
        exctb: TracebackType | None = None,
    ) -> None:
        if self.tempdir is not None:
            self.tempdir.cleanup()
            self.tempdir = None


class DirectoryLogger:
    """Context manager: yields a fresh local folder; on a clean exit its contents are logged as one artifact."""

    def __init__(self, artifact_manager: ArtifactManager, artifact: str, collection: str | None = None) -> None:
        self.artifact_manager = artifact_manager
        self.artifact = check_name(artifact)
        self.collection = collection or artifact_manager.active_collection
        self.tempdir: tempfile.TemporaryDirectory[str] | None = None
        self.source: CatalogSource | None = None  # what log_files returned, after a successful exit

    def __enter__(self) -> Path:
        self.tempdir = tempfile.TemporaryDirectory()
        path = Path(self.tempdir.name, self.artifact)
        path.mkdir()
        return path

    def __exit__(
        self,
        exctype: type[BaseException] | None = None,
        excinst: BaseException | None = None,
        exctb: TracebackType | None = None,
    ) -> None:
        if self.tempdir is None:
            return
        path = Path(self.tempdir.name, self.artifact)
        try:
            if exctype is not None:  # a failed block would publish half-written files (squirrel-core logged them)
                logger.warning("not logging artifact %r: the block raised %s", self.artifact, exctype.__name__)
            elif any(path.iterdir()):
                self.source = self.artifact_manager.log_files(self.artifact, path, self.collection)
            else:
                logger.info("not logging artifact %r: the folder %s is empty", self.artifact, path)
        finally:
            self.tempdir.cleanup()
            self.tempdir = None


class ArtifactManager(ABC):
    """Stores versioned artifacts (files and folders) in flat collections; subclasses pick the backend."""

    def __init__(self, collection: str = "default") -> None:
        self._active_collection = check_collection_name(collection)

    @property
    def active_collection(self) -> str:
        """The collection used when a method is given none; collections are flat (no nesting, as in W&B)."""
        return self._active_collection

    @active_collection.setter
    def active_collection(self, value: str) -> None:
        self._active_collection = check_collection_name(value)

    def _collection(self, collection: str | None) -> str:
        """The collection to use: ``collection`` (validated) or the active one."""
        return self._active_collection if collection is None else check_collection_name(collection)

    @abstractmethod
    def list_collection_names(self) -> Iterable:
        """The names of all collections in the store."""

    @abstractmethod
    def exists_in_collection(self, artifact: str, collection: str | None = None) -> bool:
        """Whether ``artifact`` has a version in ``collection`` (default: the active one)."""

    @abstractmethod
    def collection_to_catalog(self, collection: str | None = None) -> Catalog:
        """A catalog of every artifact version in ``collection``, under identifiers ``"collection/artifact"``."""

    @abstractmethod
    def get_artifact(self, artifact: str, collection: str | None = None, version: str | None = None) -> Any:
        """The Python object logged as ``artifact`` (backend-specific; see the subclass)."""

    @abstractmethod
    def log_files(
        self,
        artifact_name: str,
        local_path: Path,
        collection: str | None = None,
        artifact_path: Path | None = None,
    ) -> CatalogSource:
        """Log a local file or folder as the next version of ``artifact_name``; ``artifact_path`` places it inside
        the artifact (a folder's contents go to the artifact's root by default)."""

    @abstractmethod
    def log_artifact(self, obj: Any, name: str, collection: str | None = None) -> CatalogSource:
        """Log a Python object (backend-specific serialization; see the subclass)."""

    @abstractmethod
    def download_artifact(
        self, artifact: str, collection: str | None = None, version: str | None = None, to: Path | None = None
    ) -> Path | TmpArtifact:
        """Download a version (default: the latest) to ``to/artifact`` and return that path; without ``to``, a
        :class:`TmpArtifact` context manager that downloads to a temporary folder."""

    def get_artifact_source(
        self,
        artifact: str,
        collection: str | None = None,
        version: str | None = None,
        catalog: Catalog | None = None,
    ) -> CatalogSource:
        """The catalog entry of one artifact version (both squirrel-core backends have it; the ABC did not)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement get_artifact_source")

    def exists(self, artifact: str) -> bool:
        """Whether ``artifact`` exists in any collection."""
        return any(self.exists_in_collection(artifact, collection) for collection in self.list_collection_names())

    def store_to_catalog(self) -> Catalog:
        """A catalog of every artifact version in every collection."""
        catalog = Catalog()
        for collection in self.list_collection_names():
            catalog = catalog.union(self.collection_to_catalog(collection))
        return catalog

    def log_folder(self, artifact: str, collection: str | None = None) -> DirectoryLogger:
        """A context manager yielding a local folder whose contents are logged as ``artifact`` on exit."""
        return DirectoryLogger(self, artifact, collection)

    def download_collection(self, collection: str | None = None, to: Path | str = "./") -> Catalog:
        """Download the latest version of every artifact in ``collection`` to ``to/<artifact>``; returns the
        collection's catalog."""
        collection = self._collection(collection)
        catalog = self.collection_to_catalog(collection)
        for _, source in catalog:
            self.download_artifact(source.metadata["artifact"], collection, to=Path(to))
        return catalog


class FilesOnly:
    """Python objects are not logged or returned (as in squirrel-core's managers): say what to use instead.
    Mixed in before :class:`ArtifactManager` by the managers that only handle files."""

    def log_artifact(self, obj: Any, name: str, collection: str | None = None) -> CatalogSource:
        """Not supported (as in squirrel-core): serialize ``obj`` to a file and log it with ``log_files``."""
        raise NotImplementedError(
            f"{type(self).__name__}.log_artifact({name!r}): logging Python objects is not supported; serialize the"
            " object to a file and log it with log_files() or log_folder()"
        )

    def get_artifact(self, artifact: str, collection: str | None = None, version: str | None = None) -> Any:
        """Not supported (as in squirrel-core): fetch the logged files with ``download_artifact``."""
        raise NotImplementedError(
            f"{type(self).__name__}.get_artifact({artifact!r}): retrieving Python objects is not supported; fetch"
            " the logged files with download_artifact()"
        )
