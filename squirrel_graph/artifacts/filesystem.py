"""Artifacts on any fsspec URL (local path, ``file://``, ``memory://``, ``s3://``, ...), in squirrel-core's layout::

    <url>/<collection>/<artifact>/v<N>/files/<the logged file or folder contents>

Versions start at ``v0``; the catalog version of ``vN`` is N + 1. On a local disk a new version is assembled in a
hidden folder and renamed into place, so it appears complete or not at all, and two writers never share a number.
Object stores have no rename: there a version's files are uploaded straight to ``v<N>``, one object at a time.
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from squirrel_graph.artifacts.base import (
    ArtifactManager,
    ArtifactNotFoundError,
    FilesOnly,
    TmpArtifact,
    check_artifact_path,
    check_name,
    format_version,
    parse_version,
)
from squirrel_graph.io.catalog import Catalog, CatalogSource
from squirrel_graph.io.catalog_records import Source
from squirrel_graph.io.keys import check_key
from squirrel_graph.io.serialization import JsonSerializer, MessagepackSerializer, SquirrelSerializer
from squirrel_graph.io.store import FilesystemStore, get_random_key

__all__ = ["ArtifactFileStore", "FileSystemArtifactManager", "Serializers"]

#: the folder name a serialized value is stored under, by serializer class (squirrel-core's table)
Serializers: dict[type, str] = {MessagepackSerializer: "messagepack", JsonSerializer: "jsonl"}

FILES = "files"  # the folder holding an artifact version's raw files
_STAGING = ".tmp-"  # hidden staging folders; never listed as artifacts or versions
_MAX_VERSION_RACES = 1000


def _is_local(fs: Any) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol in ("file", "local")


def _key(key: Any) -> str:
    """A store key (str or Path) as a POSIX path relative to the store root ("" for the root)."""
    text = PurePosixPath(Path(key).as_posix()).as_posix() if key not in (None, "") else ""
    return "" if text == "." else text.strip("/")


def _checked(key: Any, where: str) -> str:
    """``_key(key)``, refused with a ValueError naming it if it would leave the store ("" is the store's root)."""
    rel = _key(key)
    return check_key(rel, where) if rel else rel


def _local_files(local: Path) -> list[tuple[Path, str]]:
    """(file, path relative to ``local``) of every file below the folder ``local``, sorted."""
    return sorted((p, p.relative_to(local).as_posix()) for p in local.rglob("*") if p.is_file())


class ArtifactFileStore(FilesystemStore):
    """The FilesystemStore behind :class:`FileSystemArtifactManager`: under a key, ``files/`` holds raw files and a
    folder named after the serializer (``jsonl``, ``messagepack``) a serialized value."""

    def _full(self, key: Any) -> str:
        rel = _checked(key, self._where())
        return f"{self.root}/{rel}" if rel else self.root

    def _children(self, key: Any, dirs_only: bool = False) -> list[str]:
        """Sorted names of the entries directly under ``key`` (hidden ones left out); [] if it does not exist."""
        path = self._full(key)
        self.fs.invalidate_cache(path)  # another writer may have added versions since the last listing
        try:
            entries = self.fs.ls(path, detail=True)
        except (FileNotFoundError, NotADirectoryError):
            return []
        names = []
        for entry in entries:
            name, kind = (entry["name"], entry.get("type")) if isinstance(entry, dict) else (entry, None)
            base = name.rstrip("/").rsplit("/", 1)[-1]
            if base.startswith(".") or name.rstrip("/") == path.rstrip("/"):
                continue
            if dirs_only and not (kind == "directory" if kind is not None else self.fs.isdir(name)):
                continue
            names.append(base)
        return sorted(names)

    def complete_key(self, partial_key: Any, **open_kwargs: Any) -> list[str]:
        """The names of the entries directly under ``partial_key`` (sorted; hidden staging folders left out)."""
        return self._children(partial_key)

    def key_exists(self, key: Any, **open_kwargs: Any) -> bool:
        """Whether anything is stored at ``key``."""
        return self.fs.exists(self._full(key))

    def get(self, key: Any, mode: str = "rb", **open_kwargs: Any) -> Any:
        """The value under ``key``: a serialized value, or the raw files (downloaded to ``target=`` when given and
        returned as that Path; else the bytes of a single file, or ``{relative path: bytes}`` of a folder)."""
        target = open_kwargs.pop("target", None)
        _checked(key, self._where())  # the error names the key as given, not a path below it
        name = Serializers.get(type(self.serializer))
        if name is not None and self.fs.exists(self._full(f"{_key(key)}/{name}")):
            return super().get(f"{_key(key)}/{name}", mode)
        files = self._full(f"{_key(key)}/{FILES}")
        if not self.fs.exists(files):
            raise ArtifactNotFoundError(f"{type(self).__name__}: nothing stored under key {_key(key)!r} in {self.url}")
        if target is not None:
            return self._download(files, Path(target))
        if not self.fs.isdir(files):
            return self.fs.cat_file(files)
        return {p[len(files) + 1 :]: self.fs.cat_file(p) for p in sorted(self.fs.find(files))}

    def set(self, value: Any, key: Any = None, mode: str = "wb", **open_kwargs: Any) -> Any:
        """Store ``value`` under ``key``: a Path (file or folder) is copied raw to ``key/files[/suffix]``, any other
        value is serialized to ``key/<serializer name>``. A ValueError if that place is taken. Returns the key."""
        suffix = check_artifact_path(open_kwargs.pop("suffix", None) or None)
        key = _checked(key, self._where()) if key is not None else get_random_key()
        if not isinstance(value, Path):
            name = Serializers.get(type(self.serializer))
            if name is None:
                raise ValueError(f"{type(self).__name__}: cannot store values with serializer {self.serializer!r}")
            full = f"{key}/{name}" + (f"/{suffix}" if suffix else "")
            if self.fs.exists(self._full(full)):
                raise ValueError(f"{type(self).__name__}: key {key!r} already exists in {self.url}")
            super().set(value, full, mode)
            return key
        dest = self._full(f"{key}/{FILES}")
        if self.fs.exists(dest):
            raise ValueError(f"{type(self).__name__}: key {key!r} already exists in {self.url}")
        if value.is_dir():
            pairs = _local_files(value)
            if not pairs:
                raise ValueError(f"nothing to log: the folder {value} holds no files")
            base = f"{dest}/{suffix}" if suffix else dest
            self._upload([(p, f"{base}/{rel}") for p, rel in pairs])
        else:
            self._upload([(value, f"{dest}/{suffix or value.name}")])
        return key

    def _upload(self, pairs: list[tuple[Path, str]]) -> None:
        if _is_local(self.fs):
            for src, dst in pairs:
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copyfile(src, dst)
        else:  # one call: async filesystems (s3, gcs) upload the files concurrently
            self.fs.put([str(src) for src, _ in pairs], [dst for _, dst in pairs])

    def _download(self, src: str, target: Path) -> Path:
        """Copy the file or folder ``src`` of the store to the local folder ``target``; a new ``target`` appears
        complete or not at all (assembled in a hidden sibling folder, then renamed)."""
        if self.fs.isdir(src):
            remote = sorted(self.fs.find(src))
            pairs = [(p, p[len(src.rstrip("/")) + 1 :]) for p in remote]
        else:  # squirrel-core stored a file logged without artifact_path as the file "files" itself
            pairs = [(src, target.name)]
        target.parent.mkdir(parents=True, exist_ok=True)
        fresh = not target.exists()
        into = target.parent / f".{target.name}{_STAGING}{uuid.uuid4().hex}" if fresh else target
        try:
            local = [into / rel for _, rel in pairs]
            for path in local:
                path.parent.mkdir(parents=True, exist_ok=True)
            if _is_local(self.fs):
                for (rpath, _), lpath in zip(pairs, local):
                    shutil.copyfile(rpath, lpath)
            elif pairs:
                self.fs.get([r for r, _ in pairs], [str(p) for p in local])
            into.mkdir(parents=True, exist_ok=True)
            if fresh:
                os.replace(into, target)
        finally:
            if fresh and into.exists():
                shutil.rmtree(into, ignore_errors=True)
        return target


class FileSystemArtifactManager(FilesOnly, ArtifactManager):
    """Artifact manager on an fsspec URL; ``fs_kwargs`` are the filesystem's storage options (s3 keys, ...)."""

    def __init__(
        self, url: str, serializer: SquirrelSerializer | None = None, collection: str = "default", **fs_kwargs: Any
    ) -> None:
        super().__init__(collection=collection)
        if isinstance(url, Path):
            url = str(url)
        self.backend = ArtifactFileStore(
            url=url, serializer=serializer if serializer is not None else JsonSerializer(), **fs_kwargs
        )

    # ------------------------------------------------------------------ listing
    def list_collection_names(self) -> Iterable:
        """The collections in the store (folders directly under the URL), sorted."""
        return self.backend._children("", dirs_only=True)

    def _versions(self, artifact: str, collection: str) -> list[int]:
        names = self.backend._children(f"{collection}/{check_name(artifact)}", dirs_only=True)
        return sorted(n for name in names if (n := _version_number(name)) is not None)

    def _resolve(self, artifact: str, collection: str, version: str | None) -> str:
        """The ``vN`` that ``version`` (None, "latest" or "vN") names; ArtifactNotFoundError if there is none."""
        wanted = parse_version(version, artifact, collection)
        versions = self._versions(artifact, collection)
        if not versions:
            known = self.backend._children(collection, dirs_only=True)
            raise ArtifactNotFoundError(
                f"artifact {artifact!r} not found in collection {collection!r} of {self.backend.url}"
                f" (artifacts there: {known})"
            )
        if wanted is None:
            return format_version(versions[-1])
        if wanted not in versions:
            raise ArtifactNotFoundError(
                f"artifact {artifact!r} in collection {collection!r} of {self.backend.url} has no version {version!r}"
                f" (versions: {[format_version(v) for v in versions]})"
            )
        return format_version(wanted)

    def exists_in_collection(self, artifact: str, collection: str | None = None) -> bool:
        """Whether ``artifact`` has at least one version in ``collection`` (default: the active one)."""
        return bool(self._versions(artifact, self._collection(collection)))

    # ------------------------------------------------------------------ catalog
    def _url(self, rel: str) -> str:
        if "::" in self.backend.url:  # a chained URL (simplecache::s3://...) is kept as the user wrote it
            return f"{self.backend.url}/{rel}"
        return self.backend.fs.unstrip_protocol(self.backend._full(rel))

    def _source(self, artifact: str, collection: str, version: str, catalog: Catalog | None) -> CatalogSource:
        source = Source(
            driver_name="directory",
            driver_kwargs={
                "url": self._url(f"{collection}/{artifact}/{version}/{FILES}"),
                "storage_options": dict(self.backend.storage_options),
            },
            metadata={"collection": collection, "artifact": artifact, "version": version},
        )
        identifier = f"{collection}/{artifact}"
        number = parse_version(version, artifact, collection)
        return CatalogSource(source, identifier, catalog if catalog is not None else Catalog(), version=number + 1)

    def get_artifact_source(
        self,
        artifact: str,
        collection: str | None = None,
        version: str | None = None,
        catalog: Catalog | None = None,
    ) -> CatalogSource:
        """The catalog entry of one version (default: the latest): driver ``directory`` on its ``files`` folder."""
        collection = self._collection(collection)
        return self._source(artifact, collection, self._resolve(artifact, collection, version), catalog)

    def collection_to_catalog(self, collection: str | None = None) -> Catalog:
        """Every version of every artifact in ``collection`` (identifier ``collection/artifact``, version N + 1)."""
        collection = self._collection(collection)
        catalog = Catalog()
        for artifact in self.backend._children(collection, dirs_only=True):
            for number in self._versions(artifact, collection):
                src = self._source(artifact, collection, format_version(number), catalog)
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
        """Log a local file or folder as the next version (``v0`` first) of ``artifact_name``: a folder's contents
        go to the version's root (or under ``artifact_path``), a file under ``artifact_path`` or its own name."""
        if not isinstance(local_path, (str, Path)):
            raise ValueError(f"local_path must be a str or pathlib.Path, got {type(local_path).__name__}")
        local_path = Path(local_path)
        if not local_path.exists():
            raise ValueError(f"cannot log artifact {artifact_name!r}: local_path {str(local_path)!r} does not exist")
        check_name(artifact_name)
        collection = self._collection(collection)
        suffix = check_artifact_path(artifact_path)
        base = f"{collection}/{artifact_name}"
        if _is_local(self.backend.fs):
            version = self._publish_local(local_path, base, suffix)
        else:
            number = (self._versions(artifact_name, collection) or [-1])[-1] + 1
            version = format_version(number)
            self.backend.set(local_path, f"{base}/{version}", suffix=suffix)
        return self._source(artifact_name, collection, version, None)

    def _publish_local(self, local_path: Path, base: str, suffix: str | None) -> str:
        """Assemble the version in a hidden folder, then rename it to the next free ``vN`` (atomic on POSIX)."""
        staging = f"{base}/{_STAGING}{uuid.uuid4().hex}"
        try:
            self.backend.set(local_path, staging, suffix=suffix)
            collection, artifact = base.split("/", 1)
            for _ in range(_MAX_VERSION_RACES):
                version = format_version((self._versions(artifact, collection) or [-1])[-1] + 1)
                try:
                    os.rename(self.backend._full(staging), self.backend._full(f"{base}/{version}"))
                    return version
                except OSError as exc:  # another writer took this number first: try the next one
                    if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                        raise
            raise RuntimeError(f"could not find a free version for artifact {base!r} in {self.backend.url}")
        finally:
            if self.backend.fs.exists(self.backend._full(staging)):
                self.backend.fs.rm(self.backend._full(staging), recursive=True)

    def download_artifact(
        self, artifact: str, collection: str | None = None, version: str | None = None, to: Path | None = None
    ) -> Path | TmpArtifact:
        """Copy a version (default: the latest) to ``to/artifact`` and return that path; without ``to``, a
        :class:`TmpArtifact` that downloads to a temporary folder when entered. Missing versions raise now."""
        collection = self._collection(collection)
        version = self._resolve(artifact, collection, version)
        if to is None:
            return TmpArtifact(self, collection, artifact, version)
        target = Path(to) / artifact
        self.backend.get(f"{collection}/{artifact}/{version}", target=target)
        return target


def _version_number(name: str) -> int | None:
    try:
        return parse_version(name)
    except ValueError:
        return None
