"""Artifacts in Weights & Biases: a collection is a W&B artifact type, an artifact a W&B artifact (one version holds
all its files). wandb is imported on use, so this module imports without it.

Offline (``WANDB_MODE=offline``, an offline or disabled run): :meth:`WandbArtifactManager.log_files` and
:meth:`~squirrel_graph.artifacts.base.ArtifactManager.log_folder` work; the artifact is staged into the offline run
and uploaded by ``wandb sync``. Everything that asks the server (``list_collection_names``, ``exists_in_collection``,
``exists``, ``get_artifact_source``, ``collection_to_catalog``, ``store_to_catalog``, ``download_artifact``,
``download_collection``, and the ``entity`` when it was not given) raises :class:`WandbServerRequiredError` there.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from squirrel_graph.artifacts.base import (
    ArtifactManager,
    ArtifactNotFoundError,
    FilesOnly,
    InvalidArtifactVersionError,
    TmpArtifact,
    check_artifact_path,
    check_name,
    parse_version,
)
from squirrel_graph.errors import SquirrelGraphError
from squirrel_graph.io.catalog import Catalog, CatalogSource
from squirrel_graph.io.catalog_records import Source

logger = logging.getLogger(__name__)

__all__ = ["SERVER_METHODS", "WandbArtifactManager", "WandbServerRequiredError"]

#: the methods that need the W&B server (they raise WandbServerRequiredError offline)
SERVER_METHODS = (
    "list_collection_names",
    "exists_in_collection",
    "exists",
    "get_artifact_source",
    "collection_to_catalog",
    "store_to_catalog",
    "download_artifact",
    "download_collection",
)


class WandbServerRequiredError(SquirrelGraphError, RuntimeError):
    """A WandbArtifactManager method needs the W&B server, but wandb runs offline (or disabled)."""


def _import_wandb() -> Any:
    try:
        import wandb
    except ImportError as exc:
        raise ImportError(
            "WandbArtifactManager needs the wandb package: pip install 'squirrel_graph[tracking]'"
        ) from exc
    return wandb


def _offline_reason(wandb: Any) -> str | None:
    """Why wandb cannot reach the server now (an offline/disabled run or WANDB_MODE), or None."""
    run = wandb.run
    if run is not None:
        if run.disabled:
            return "the active wandb run is disabled"
        return "the active wandb run is offline" if run.offline else None
    mode = os.environ.get("WANDB_MODE", "").lower()
    if mode in ("offline", "dryrun", "disabled"):
        return f"WANDB_MODE={mode}"
    if os.environ.get("WANDB_DISABLED", "").lower() in ("1", "true"):
        return "WANDB_DISABLED is set"
    return None


def _catalog_version(version: str, artifact: str, collection: str) -> int:
    number = parse_version(version, artifact, collection)
    if number is None:  # the server always answers with "vN"; "latest" here is a bug
        raise ValueError(f"artifact {artifact!r} in collection {collection!r}: unresolved version {version!r}")
    return number + 1


class WandbArtifactManager(FilesOnly, ArtifactManager):
    """Artifact manager on Weights & Biases; ``project``/``entity`` default to the active run's (or wandb's
    settings). Logging works offline; the methods in :data:`SERVER_METHODS` need the server."""

    def __init__(self, entity: str | None = None, project: str | None = None, collection: str = "default") -> None:
        super().__init__(collection=collection)
        wandb = _import_wandb()
        run = wandb.run
        if project is None and run is not None and run.project:
            project = run.project
            logger.info("Using project %s from the active wandb run.", project)
        if project is None and os.environ.get("WANDB_PROJECT"):
            project = os.environ["WANDB_PROJECT"]
        if project is None and _offline_reason(wandb) is None:
            try:
                project = wandb.Api().settings["project"]
            except Exception as exc:  # no API key, no network: say what was tried
                raise ValueError(
                    f"WandbArtifactManager: no project given, no active wandb run, and wandb.Api() failed: {exc}"
                ) from exc
        if not project:
            raise ValueError(
                "WandbArtifactManager: no project given and none found (no active wandb run, WANDB_PROJECT unset)"
            )
        self.project: str = project
        self._entity: str | None = entity or (run.entity if run is not None and run.entity else None)

    # ------------------------------------------------------------------ server access
    def _api(self, method: str) -> Any:
        wandb = _import_wandb()
        reason = _offline_reason(wandb)
        if reason is not None:
            raise WandbServerRequiredError(
                f"WandbArtifactManager.{method} needs the W&B server, but {reason}; log offline, then `wandb sync`"
                " the run and call it online"
            )
        return wandb.Api()

    @property
    def entity(self) -> str:
        """The W&B entity (user or team); looked up on the server on first use when not given and no run has one."""
        if self._entity is None:
            api = self._api("entity")
            self._entity = api.settings["entity"] or api.project(self.project).entity
            logger.info("Using entity %s from wandb.", self._entity)
        return self._entity

    @entity.setter
    def entity(self, value: str) -> None:
        self._entity = value

    def _path(self) -> str:
        return f"{self.entity}/{self.project}"

    def _base_url(self, api: Any) -> str:
        run = _import_wandb().run
        base = run.settings.base_url if run is not None else api.settings["base_url"]
        return str(base).rstrip("/")

    def _source(
        self, artifact: str, collection: str, version: str, catalog: Catalog | None, base_url: str, **extra: Any
    ) -> CatalogSource:
        parts = [base_url, self._entity or "", self.project, collection, artifact, version]
        source = Source(
            driver_name="wandb",  # no driver has this name (nor in squirrel-core): the entry describes the artifact
            driver_kwargs={"url": "/".join(p for p in parts if p)},
            metadata={"project": self.project, "collection": collection, "artifact": artifact, "version": version}
            | extra,
        )
        number = 1 if extra.get("offline") else _catalog_version(version, artifact, collection)
        return CatalogSource(source, f"{collection}/{artifact}", catalog if catalog is not None else Catalog(), number)

    # ------------------------------------------------------------------ listing (server)
    def list_collection_names(self) -> Iterable:
        """The artifact types of the project (needs the server)."""
        api = self._api("list_collection_names")
        return [t.name for t in api.artifact_types(project=self._path())]

    def exists_in_collection(self, artifact: str, collection: str | None = None) -> bool:
        """Whether the project has an artifact ``artifact`` of type ``collection`` (needs the server)."""
        collection = self._collection(collection)
        api = self._api("exists_in_collection")
        return bool(api.artifact_collection_exists(name=f"{self._path()}/{artifact}", type=collection))

    def _resolve(self, api: Any, artifact: str, collection: str, version: str | None) -> Any:
        """The server's artifact for ``version`` ("vN", an alias, default "latest"); ArtifactNotFoundError if none."""
        alias = version or "latest"
        if not isinstance(alias, str) or ":" in alias or "/" in alias:
            raise InvalidArtifactVersionError(
                f"bad version {version!r} for artifact {artifact!r}: expected 'latest', 'v<N>' or an alias"
            )
        name = f"{self._path()}/{artifact}:{alias}"
        if not api.artifact_exists(name, type=collection):
            raise ArtifactNotFoundError(f"no W&B artifact {name!r} of type (collection) {collection!r}")
        return api.artifact(name, type=collection)

    def get_artifact_source(
        self,
        artifact: str,
        collection: str | None = None,
        version: str | None = None,
        catalog: Catalog | None = None,
    ) -> CatalogSource:
        """The catalog entry of one version (default: the latest) (needs the server)."""
        collection = self._collection(collection)
        api = self._api("get_artifact_source")
        art = self._resolve(api, artifact, collection, version)
        return self._source(artifact, collection, art.version, catalog, self._base_url(api))

    def collection_to_catalog(self, collection: str | None = None) -> Catalog:
        """Every version of every artifact of type ``collection`` (needs the server)."""
        collection = self._collection(collection)
        api = self._api("collection_to_catalog")
        if collection not in self.list_collection_names():
            raise ArtifactNotFoundError(f"collection (artifact type) {collection!r} does not exist in {self._path()}")
        base_url = self._base_url(api)
        catalog = Catalog()
        for coll in api.artifact_type(type_name=collection, project=self._path()).collections():
            for art in api.artifacts(type_name=collection, name=f"{self._path()}/{coll.name}"):
                src = self._source(coll.name, collection, art.version, catalog, base_url)
                catalog[src.identifier, src.version] = src
        return catalog

    # ------------------------------------------------------------------ files
    def log_files(
        self,
        artifact_name: str,
        local_path: Path,
        collection: str | None = None,
        artifact_path: Path | None = None,
    ) -> CatalogSource:
        """Log a file or folder as a new version (in the active run, else a ``job_type="auto"`` run). Offline the
        server numbers it at ``wandb sync``: the source says ``"latest"``, ``offline=True`` and the digest."""
        wandb = _import_wandb()
        if not isinstance(local_path, (str, Path)):
            raise ValueError(f"local_path must be a str or pathlib.Path, got {type(local_path).__name__}")
        local_path = Path(local_path)
        if not local_path.exists():
            raise ValueError(f"cannot log artifact {artifact_name!r}: local_path {str(local_path)!r} does not exist")
        check_name(artifact_name)
        collection = self._collection(collection)
        name = check_artifact_path(artifact_path)
        artifact = wandb.Artifact(artifact_name, type=collection)
        if local_path.is_dir():
            artifact.add_dir(str(local_path), name=name)
        else:
            artifact.add_file(str(local_path), name=name)
        if wandb.run is not None:
            return self._log(wandb.run, artifact, artifact_name, collection)
        with wandb.init(
            project=self.project, entity=self._entity, job_type="auto", settings=wandb.Settings(silent=True)
        ) as run:
            return self._log(run, artifact, artifact_name, collection)

    def _log(self, run: Any, artifact: Any, artifact_name: str, collection: str) -> CatalogSource:
        run.log_artifact(artifact)
        base_url = str(run.settings.base_url).rstrip("/")
        if run.offline or run.disabled:
            return self._source(
                artifact_name, collection, "latest", None, base_url, offline=True, digest=artifact.digest
            )
        artifact.wait()
        if artifact.entity:
            self._entity = self._entity or artifact.entity
        return self._source(artifact_name, collection, artifact.version, None, base_url)

    def download_artifact(
        self, artifact: str, collection: str | None = None, version: str | None = None, to: Path | None = None
    ) -> Path | TmpArtifact:
        """Download a version (default: the latest) to ``to/artifact``, through the active run so it records the
        use; without ``to``, a :class:`TmpArtifact` (needs the server)."""
        collection = self._collection(collection)
        api = self._api("download_artifact")
        art = self._resolve(api, artifact, collection, version)
        if to is None:
            return TmpArtifact(self, collection, artifact, art.version)
        run = _import_wandb().run
        if run is not None:
            art = run.use_artifact(f"{self._path()}/{artifact}:{art.version}", type=collection)
        target = Path(to) / artifact
        art.download(str(target))
        return target
