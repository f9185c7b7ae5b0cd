"""Catalogs: named, versioned sources that build their drivers through the registry (squirrel-core's ``catalog``).

Catalog and CatalogSource create each other, so they share this module, with the catalog <-> YAML conversions."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Iterator, KeysView, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

import fsspec

from squirrel_graph.io.catalog_records import (
    CatalogConflictError,
    CatalogFormatError,
    CatalogKey,
    DummyCatalogSource,
    Source,
    check_new_version,
    copy_source,
    is_version,
)
from squirrel_graph.io.catalog_yaml import (
    YamlCatalog,
    YamlSource,
    check_catalog_document,
    parse_catalog_document,
    prep_yaml,
)
from squirrel_graph.io.fs import get_fs_from_url, get_protocol
from squirrel_graph.io.plugins import get_driver_class, plugin_sources

if TYPE_CHECKING:
    from squirrel_graph.io.drivers import Driver

__all__ = [
    "Catalog",
    "CatalogSource",
    "catalog2yamlcatalog",
    "catalog_to_yaml",
    "yaml_to_catalog",
    "yamlcatalog2catalog",
]


def _insert_version(versions: dict[int, CatalogSource], version: int, source: CatalogSource) -> None:
    """Insert into a shared versions dict, keeping it ordered by version (the dict object itself is kept)."""
    in_order = not versions or version in versions or version > max(versions)
    versions[version] = source
    if not in_order:
        ordered = sorted(versions.items())
        versions.clear()
        versions.update(ordered)


class CatalogSource(Source):
    """One version of a source in a catalog; it reaches its sibling versions (``cs[v]``) and builds its driver."""

    __hash__ = None  # type: ignore[assignment]

    def __init__(
        self,
        source: Source,
        identifier: str,
        catalog: Catalog | None,
        version: int = 1,
        versions: dict[int, CatalogSource] | None = None,
    ) -> None:
        super().__init__(source.driver_name, source.driver_kwargs, source.metadata)
        self._identifier = identifier
        self._version = version
        self._catalog = catalog
        self._versions: dict[int, CatalogSource] = {version: self} if versions is None else versions

    @property
    def identifier(self) -> str:
        """The identifier this source is stored under (read-only)."""
        return self._identifier

    @property
    def version(self) -> int:
        """This source's version (read-only)."""
        return self._version

    @property
    def versions(self) -> dict[int, CatalogSource]:
        """All versions of this identifier, by version; the dict is shared by every version and the catalog."""
        return self._versions

    @property
    def catalog(self) -> Catalog | None:
        """The catalog holding this source (None for a free-standing one); drivers get it as ``catalog=``."""
        return self._catalog

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CatalogSource):
            return False
        return (self.identifier, self.version, self.driver_name, self.driver_kwargs, self.metadata) == (
            other.identifier,
            other.version,
            other.driver_name,
            other.driver_kwargs,
            other.metadata,
        )

    def __repr__(self) -> str:
        dct = {
            "identifier": self.identifier,
            "driver_name": self.driver_name,
            "driver_kwargs": self.driver_kwargs,
            "metadata": self.metadata,
            "version": self.version,
            "versions": list(self.versions),
        }
        return json.dumps(dct, indent=2, default=str)

    def _resolve(self, index: Any) -> int:
        if is_version(index) and index == -1:
            if not self._versions:
                raise KeyError(f"catalog source {self._identifier!r} has no versions left")
            return max(self._versions)
        if is_version(index) and index in self._versions:
            return index
        raise KeyError(f"catalog source {self._identifier!r} has no version {index!r} (has {list(self._versions)})")

    def __getitem__(self, index: int) -> CatalogSource:
        return self._versions[self._resolve(index)]

    def __setitem__(self, index: int, value: Source) -> None:
        if not isinstance(value, Source):
            raise TypeError(f"catalog source {self._identifier!r}: expected a Source, got {type(value).__name__}")
        version = check_new_version(index, self._identifier)
        new = CatalogSource(value, self._identifier, self._catalog, version=version, versions=self._versions)
        _insert_version(self._versions, version, new)

    def __delitem__(self, index: int) -> None:
        del self._versions[self._resolve(index)]
        cat = self._catalog
        if not self._versions and cat is not None and cat._sources.get(self._identifier) is self._versions:
            del cat._sources[self._identifier]  # an identifier without versions is no longer in the catalog

    def __contains__(self, index: object) -> bool:
        if not is_version(index):
            return False
        return bool(self._versions) if index == -1 else index in self._versions

    def __iter__(self) -> Iterator[CatalogSource]:  # type: ignore[override]
        return iter(list(self._versions.values()))

    def __len__(self) -> int:
        return len(self._versions)

    def get_driver(self, **kwargs: Any) -> Driver:
        """Build this source's driver: ``cls(catalog=..., **{**driver_kwargs, **kwargs})``, where ``cls`` is the
        registered driver whose ``name`` is ``driver_name`` and ``storage_options`` is always the merge of both."""
        cls = get_driver_class(self.driver_name)
        storage_options = {
            **(self.driver_kwargs.get("storage_options") or {}),
            **(kwargs.get("storage_options") or {}),
        }
        catalog = self._catalog if self._catalog is not None else Catalog()  # free-standing: an empty catalog
        arguments = {"catalog": catalog, **self.driver_kwargs, **kwargs, "storage_options": storage_options}
        return cls(**arguments)


# ---------------------------------------------------------------------------------------------------- the catalog
_MISSING: Any = object()
_Key = str | CatalogKey | tuple[str, int]


def _split_key(key: Any) -> tuple[Any, Any]:
    """``(identifier, version)`` of a key; ``version`` is None for a bare identifier."""
    if isinstance(key, str):
        return key, None
    if isinstance(key, tuple) and len(key) == 2:
        return key[0], key[1]
    raise TypeError(f"catalog keys are identifiers (str) or (identifier, version) pairs, got {key!r}")


class Catalog(MutableMapping):
    """Versioned sources by identifier: ``cat[id] = src`` adds a version, ``cat[id]`` is the latest one, and
    ``cat[id, v]`` / ``cat[CatalogKey(id, v)]`` address one version (``-1``: the latest)."""

    def __init__(self) -> None:
        self._sources: dict[str, dict[int, CatalogSource]] = {}

    # -------------------------------------------------------------- mapping protocol
    @property
    def sources(self) -> dict[str, CatalogSource]:
        """The latest version of every source, by identifier (a snapshot: change the catalog through indexing)."""
        return {ident: versions[max(versions)] for ident, versions in self._sources.items()}

    def __getitem__(self, key: _Key) -> CatalogSource:
        ident, version = _split_key(key)
        if version is None:
            if ident not in self._sources:
                return DummyCatalogSource(ident, self)  # type: ignore[return-value]
            versions = self._sources[ident]
            return versions[max(versions)]
        if key not in self:
            raise KeyError(f"the catalog has no source {ident!r} with version {version!r}")
        versions = self._sources[ident]
        return versions[max(versions) if version == -1 else version]

    def __setitem__(self, key: _Key, value: Source) -> None:
        ident, version = _split_key(key)
        if not isinstance(ident, str):
            raise TypeError(f"catalog identifiers are str, got {ident!r}")
        if not isinstance(value, Source):
            raise TypeError(f"catalog source {ident!r}: expected a Source, got {type(value).__name__}")
        versions = self._sources.get(ident)
        if version is None:
            version = max(versions) + 1 if versions else 1
        version = check_new_version(version, ident)
        if versions is None:
            versions = self._sources[ident] = {}
        _insert_version(versions, version, CatalogSource(value, ident, self, version=version, versions=versions))

    def __delitem__(self, key: _Key) -> None:
        ident, version = _split_key(key)
        if version is None:
            if ident not in self._sources:
                raise KeyError(f"the catalog has no source {ident!r}")
            del self._sources[ident]
            return
        if key not in self:
            raise KeyError(f"the catalog has no source {ident!r} with version {version!r}")
        versions = self._sources[ident]
        del versions[max(versions) if version == -1 else version]
        if not versions:
            del self._sources[ident]

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            return key in self._sources
        if not (isinstance(key, tuple) and len(key) == 2):
            return False
        ident, version = key
        versions = self._sources.get(ident) if isinstance(ident, str) else None
        if not versions or not is_version(version):
            return False
        return version == -1 or version in versions

    def __iter__(self) -> Iterator[tuple[str, CatalogSource]]:  # type: ignore[override]
        """``(identifier, latest version)`` pairs, as squirrel-core iterates."""
        for ident in list(self._sources):
            yield ident, self[ident]

    def items(self) -> Iterator[tuple[str, CatalogSource]]:  # type: ignore[override]
        """``(identifier, latest version)`` pairs."""
        return iter(self)

    def keys(self) -> KeysView[str]:  # type: ignore[override]
        """The identifiers."""
        return self._sources.keys()

    def values(self) -> list[CatalogSource]:  # type: ignore[override]
        """The latest version of every source."""
        return [source for _, source in self]

    def __len__(self) -> int:
        return len(self._sources)

    def get(self, key: _Key, default: Any = None) -> Any:
        """``self[key]`` when the catalog has it, else ``default`` (never a DummyCatalogSource)."""
        return self[key] if key in self else default

    def pop(self, key: _Key, default: Any = _MISSING) -> Any:
        """Remove ``key`` (all versions for a bare identifier) and return what ``self[key]`` was."""
        if key not in self:
            if default is _MISSING:
                raise KeyError(f"the catalog has no source {key!r}")
            return default
        value = self[key]
        del self[key]
        return value

    def popitem(self) -> tuple[str, CatalogSource]:
        """Remove the most recently added identifier (all versions); return it with its latest version."""
        if not self._sources:
            raise KeyError("popitem(): the catalog is empty")
        ident = next(reversed(self._sources))
        return ident, self.pop(ident)

    def clear(self) -> None:
        """Remove every source."""
        self._sources.clear()

    def setdefault(self, key: _Key, default: Source | None = None) -> CatalogSource:  # type: ignore[override]
        """``self[key]``, after storing ``default`` under ``key`` when the catalog does not have it."""
        if key not in self:
            if default is None:
                raise TypeError("Catalog.setdefault: a Source is needed as the default")
            self[key] = default
        return self[key]

    def update(self, other: Any = (), /, **kwargs: Source) -> None:  # type: ignore[override]
        """Store every version of another catalog, or ``key -> Source`` items of a mapping or iterable."""
        if isinstance(other, Catalog):
            for ident, version, source in other._all_versions():
                self[ident, version] = source
        else:
            items = other.items() if isinstance(other, Mapping) else other
            for key, source in items:
                self[key] = source
        for key, source in kwargs.items():
            self[key] = source

    def __repr__(self) -> str:
        return str(sorted(self._sources, key=str.lower))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Catalog):
            return False
        mine = {(i, v): s for i, v, s in self._all_versions()}
        theirs = {(i, v): s for i, v, s in other._all_versions()}
        return mine.keys() == theirs.keys() and all(mine[k] == theirs[k] for k in mine)

    __hash__ = None  # type: ignore[assignment]

    # -------------------------------------------------------------- set operations (all return deep copies)
    def _all_versions(self) -> list[tuple[str, int, CatalogSource]]:
        return [(i, v, s) for i, versions in self._sources.items() for v, s in versions.items()]

    def copy(self) -> Catalog:
        """A deep copy: the same identifiers and versions, with copied driver kwargs and metadata."""
        cat = Catalog()
        for ident, version, source in self._all_versions():
            cat[ident, version] = copy_source(source)
        return cat

    def slice(self, keys: Iterable[str]) -> Catalog:
        """A deep copy holding only the given identifiers (all their versions)."""
        keys = [keys] if isinstance(keys, str) else list(keys)
        missing = [k for k in keys if k not in self._sources]
        if missing:
            raise KeyError(f"Catalog.slice: the catalog has no source(s) {missing}")
        cat = Catalog()
        for ident in keys:
            for version, source in self._sources[ident].items():
                cat[ident, version] = copy_source(source)
        return cat

    def union(self, other: Catalog) -> Catalog:
        """Every (identifier, version) of both catalogs; where both have one, ``other``'s source is kept."""
        cat = self.copy()
        for ident, version, source in other._all_versions():
            cat[ident, version] = copy_source(source)
        return cat

    def intersection(self, other: Catalog) -> Catalog:
        """The (identifier, version)s both catalogs have; they must hold equal sources (CatalogConflictError)."""
        cat = Catalog()
        conflicts = []
        for ident, version, source in self._all_versions():
            if (ident, version) in other:
                if source != other[ident, version]:
                    conflicts.append((ident, version))
                cat[ident, version] = copy_source(source)
        if conflicts:
            raise CatalogConflictError(f"the catalogs hold different sources under {conflicts}")
        return cat

    def difference(self, other: Catalog) -> Catalog:
        """The symmetric difference: the (identifier, version)s that only one of the two catalogs has."""
        cat = Catalog()
        for a, b in ((self, other), (other, self)):
            for ident, version, source in a._all_versions():
                if (ident, version) not in b:
                    cat[ident, version] = copy_source(source)
        return cat

    def join(self, other: Catalog) -> Catalog:
        """The union of two disjoint catalogs; a CatalogConflictError names the (identifier, version)s they share."""
        shared = [(i, v) for i, v, _ in self._all_versions() if (i, v) in other]
        if shared:
            raise CatalogConflictError(f"cannot join catalogs that both define {shared}")
        return self.union(other)

    def filter(self, predicate: Callable[[CatalogSource], bool]) -> Catalog:
        """A deep copy holding the versions for which ``predicate(catalog_source)`` is true."""
        source_cat = self.copy()
        cat = Catalog()
        for ident, version, source in source_cat._all_versions():
            if predicate(source):
                cat[ident, version] = source
        return cat

    # -------------------------------------------------------------- constructors and export
    @staticmethod
    def from_plugins() -> Catalog:
        """The sources registered with ``register_source``, by installed plugins (entry points) and by pluggy plugins
        (``squirrel_sources``); a later registration of the same (identifier, version) wins (ranking in
        :mod:`squirrel_graph.io.plugins`), and version -1 adds a new latest version."""
        cat = Catalog()
        for key, source in plugin_sources():
            if key.version == -1:
                cat[key.identifier] = copy_source(source)
            else:
                cat[key.identifier, key.version] = copy_source(source)
        return cat

    @staticmethod
    def from_dirs(paths: Iterable[str]) -> Catalog:
        """Join the ``*.yaml`` files directly inside each folder (any fsspec URL), in sorted order."""
        files: list[str] = []
        for path in [paths] if isinstance(paths, str) else paths:
            fs = get_fs_from_url(path)
            protocol = get_protocol(path)
            entries = fs.ls(path, detail=False)
            names = sorted(e["name"] if isinstance(e, dict) else e for e in entries)
            files += [n if "://" in n else protocol + n for n in names if n.endswith(".yaml")]
        return Catalog.from_files(files)

    @staticmethod
    def from_files(paths: Iterable[str]) -> Catalog:
        """Join the catalogs in the given YAML files (any fsspec URL); files that overlap raise CatalogConflictError."""
        cat = Catalog()
        for path in [paths] if isinstance(paths, str) else paths:
            with fsspec.open(path, mode="r", encoding="utf-8") as fh:
                text = fh.read()
            try:
                cat = cat.join(Catalog.from_str(text))
            except CatalogConflictError as exc:
                raise CatalogConflictError(f"{path}: {exc}") from exc
            except CatalogFormatError as exc:
                raise CatalogFormatError(f"{path}: {exc}") from exc
        return cat

    @staticmethod
    def from_str(cat: str) -> Catalog:
        """Parse a catalog from squirrel-core's YAML format."""
        return yaml_to_catalog(cat)

    def to_str(self) -> str:
        """This catalog in squirrel-core's YAML format (what :meth:`to_file` writes)."""
        return catalog_to_yaml(self)

    def to_file(self, path: str) -> None:
        """Write this catalog as YAML to ``path`` (any fsspec URL)."""
        text = catalog_to_yaml(self)
        with fsspec.open(path, mode="w", encoding="utf-8") as fh:
            fh.write(text)


def catalog2yamlcatalog(catobj: Catalog) -> YamlCatalog:
    """The serializable form of a catalog: one :class:`YamlSource` per (identifier, version)."""
    sources = [
        YamlSource(
            identifier=ident,
            driver_name=source.driver_name,
            driver_kwargs=source.driver_kwargs,
            version=version,
            metadata=source.metadata,
        )
        for ident, version, source in catobj._all_versions()
    ]
    return YamlCatalog(sources=sources)


def yamlcatalog2catalog(yamlcat: YamlCatalog) -> Catalog:
    """Build a Catalog from a loaded catalog document; refuses documents older than format 0.4."""
    yamlcat = check_catalog_document(yamlcat)
    cat = Catalog()
    for s in yamlcat.sources:
        if (s.identifier, s.version) in cat:
            raise CatalogConflictError(f"the catalog document defines {(s.identifier, s.version)} twice")
        cat[s.identifier, s.version] = Source(s.driver_name, dict(s.driver_kwargs or {}), dict(s.metadata or {}))
    return cat


def catalog_to_yaml(cat: Catalog) -> str:
    """A catalog as YAML text in squirrel-core's format."""
    buffer = io.StringIO()
    prep_yaml().dump(catalog2yamlcatalog(cat), buffer)
    return buffer.getvalue()


def yaml_to_catalog(text: str) -> Catalog:
    """Parse YAML text in squirrel-core's catalog format into a Catalog."""
    return yamlcatalog2catalog(parse_catalog_document(text))
