"""Catalogs: named, versioned data sources that build their own drivers (squirrel-core's ``squirrel.catalog``).

A :class:`Catalog` maps an identifier to the versions of a :class:`Source` (a driver name, the driver's keyword
arguments and free metadata). ``catalog[id].get_driver()`` finds the driver class in the registry
(:mod:`squirrel_graph.io.plugins`) and builds it. Catalogs are shared as YAML files in squirrel-core's format
(``!YamlCatalog`` / ``!YamlSource`` / ``!CatalogKey`` tags), read and written with PyYAML's *safe* loader and dumper,
so files written by squirrel-core load here and files written here load in squirrel-core.
"""

from __future__ import annotations

import copy as _copy
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator, KeysView, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, NamedTuple

import fsspec
import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from squirrel_graph.errors import SourceExistsError, SquirrelGraphError

if TYPE_CHECKING:
    from squirrel_graph.io.drivers import Driver

__all__ = [
    "CATALOG_FORMAT_VERSION",
    "MIN_CATALOG_VERSION",
    "Catalog",
    "CatalogConflictError",
    "CatalogFormatError",
    "CatalogKey",
    "CatalogSource",
    "CatalogYaml",
    "DummyCatalogSource",
    "Source",
    "YamlCatalog",
    "YamlSource",
    "catalog2yamlcatalog",
    "catalog_to_yaml",
    "prep_yaml",
    "yaml_to_catalog",
    "yamlcatalog2catalog",
]

#: The ``version:`` written into catalog files: the squirrel-core release whose catalog format this mirrors, so that
#: squirrel-core (which asserts ``version >= 0.4``) loads our files. squirrel_graph's own version goes in a comment.
CATALOG_FORMAT_VERSION = "0.20.2"
#: Catalog files older than this (squirrel-core < 0.4) used another layout and are refused.
MIN_CATALOG_VERSION = (0, 4)

_MAP_TAG = "tag:yaml.org,2002:map"


class CatalogFormatError(SquirrelGraphError, ValueError):
    """A catalog document is malformed or too old; raised instead of squirrel-core's assertion and TypeErrors."""


class CatalogConflictError(SourceExistsError, AssertionError):
    """Two catalogs define the same (identifier, version); an AssertionError too, as squirrel-core asserted here."""


# ---------------------------------------------------------------------------------------------------- records
@dataclass(init=False, repr=False)
class Source:
    """What a catalog stores: the registered driver ``name``, the keyword arguments to build it, and metadata."""

    driver_name: str
    driver_kwargs: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    def __init__(
        self,
        driver_name: str,
        driver_kwargs: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(driver_name, str):
            raise TypeError(f"Source(driver_name=...): expected a driver name (str), got {driver_name!r}")
        self.driver_name = driver_name
        self.driver_kwargs = _as_dict(driver_kwargs, "driver_kwargs")
        self.metadata = _as_dict(metadata, "metadata")

    def __repr__(self) -> str:
        dct = {"driver_name": self.driver_name, "driver_kwargs": self.driver_kwargs, "metadata": self.metadata}
        return json.dumps(dct, indent=2, default=str)


def _as_dict(value: Mapping[str, Any] | None, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, dict):
        return value  # kept as is (not copied), like squirrel-core
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"Source({what}=...): expected a mapping or None, got {type(value).__name__}")


def _copy_source(source: Source) -> Source:
    """A plain Source with deep copies of the kwargs and metadata, so that copies never share mutable state."""
    return Source(source.driver_name, _copy.deepcopy(source.driver_kwargs), _copy.deepcopy(source.metadata))


class CatalogKey(NamedTuple):
    """The key of one version of a source in a catalog; ``version=-1`` means the latest."""

    identifier: str
    version: int = -1


def _is_version(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_new_version(version: Any, identifier: str) -> int:
    if not _is_version(version):
        raise TypeError(f"catalog source {identifier!r}: a version is a positive int, got {version!r}")
    if version <= 0:
        raise ValueError(
            f"catalog source {identifier!r}: a version is a positive int, got {version}"
            " (use catalog[identifier] = source to add a new latest version)"
        )
    return version


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
        if _is_version(index) and index == -1:
            if not self._versions:
                raise KeyError(f"catalog source {self._identifier!r} has no versions left")
            return max(self._versions)
        if _is_version(index) and index in self._versions:
            return index
        raise KeyError(f"catalog source {self._identifier!r} has no version {index!r} (has {list(self._versions)})")

    def __getitem__(self, index: int) -> CatalogSource:
        return self._versions[self._resolve(index)]

    def __setitem__(self, index: int, value: Source) -> None:
        if not isinstance(value, Source):
            raise TypeError(f"catalog source {self._identifier!r}: expected a Source, got {type(value).__name__}")
        version = _check_new_version(index, self._identifier)
        new = CatalogSource(value, self._identifier, self._catalog, version=version, versions=self._versions)
        _insert_version(self._versions, version, new)

    def __delitem__(self, index: int) -> None:
        del self._versions[self._resolve(index)]
        cat = self._catalog
        if not self._versions and cat is not None and cat._sources.get(self._identifier) is self._versions:
            del cat._sources[self._identifier]  # an identifier without versions is no longer in the catalog

    def __contains__(self, index: object) -> bool:
        if not _is_version(index):
            return False
        return bool(self._versions) if index == -1 else index in self._versions

    def __iter__(self) -> Iterator[CatalogSource]:  # type: ignore[override]
        return iter(list(self._versions.values()))

    def __len__(self) -> int:
        return len(self._versions)

    def get_driver(self, **kwargs: Any) -> Driver:
        """Build this source's driver: ``cls(catalog=..., **{**driver_kwargs, **kwargs})``, where ``cls`` is the
        registered driver whose ``name`` is ``driver_name`` and ``storage_options`` is always the merge of both."""
        from squirrel_graph.io.plugins import get_driver_class

        cls = get_driver_class(self.driver_name)
        storage_options = {
            **(self.driver_kwargs.get("storage_options") or {}),
            **(kwargs.get("storage_options") or {}),
        }
        arguments = {"catalog": self._catalog, **self.driver_kwargs, **kwargs, "storage_options": storage_options}
        return cls(**arguments)


class DummyCatalogSource:
    """What ``catalog[id]`` returns for an unknown ``id``: it has no versions, but ``catalog[id][v] = source`` works."""

    def __init__(self, identifier: str, catalog: Catalog) -> None:
        self._identifier = identifier
        self._catalog = catalog

    @property
    def identifier(self) -> str:
        """The identifier that was looked up (read-only)."""
        return self._identifier

    @property
    def catalog(self) -> Catalog:
        """The catalog that was indexed (read-only)."""
        return self._catalog

    @property
    def versions(self) -> dict[int, CatalogSource]:
        """The versions now stored under this identifier (none when it was looked up)."""
        return dict(self._catalog._sources.get(self._identifier, {}))

    def __setitem__(self, index: int, value: Source) -> None:
        self._catalog[self._identifier, index] = value

    def __getitem__(self, index: int) -> CatalogSource:
        if (self._identifier, index) in self._catalog:
            return self._catalog[self._identifier, index]
        raise KeyError(f"the catalog has no source {self._identifier!r} (version {index!r})")

    def __contains__(self, index: object) -> bool:
        return (self._identifier, index) in self._catalog

    def __iter__(self) -> Iterator[CatalogSource]:
        return iter(list(self.versions.values()))

    def __len__(self) -> int:
        return len(self._catalog._sources.get(self._identifier, {}))

    def get_driver(self, **kwargs: Any) -> Driver:
        """Build the driver of the latest version, once one has been set; a KeyError naming the id before that."""
        if self._identifier not in self._catalog:
            raise KeyError(f"the catalog has no source {self._identifier!r}")
        return self._catalog[self._identifier].get_driver(**kwargs)

    def __repr__(self) -> str:
        return f"DummyCatalogSource({self._identifier!r})"


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
        version = _check_new_version(version, ident)
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
        if not versions or not _is_version(version):
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
            cat[ident, version] = _copy_source(source)
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
                cat[ident, version] = _copy_source(source)
        return cat

    def union(self, other: Catalog) -> Catalog:
        """Every (identifier, version) of both catalogs; where both have one, ``other``'s source is kept."""
        cat = self.copy()
        for ident, version, source in other._all_versions():
            cat[ident, version] = _copy_source(source)
        return cat

    def intersection(self, other: Catalog) -> Catalog:
        """The (identifier, version)s both catalogs have; they must hold equal sources (CatalogConflictError)."""
        cat = Catalog()
        conflicts = []
        for ident, version, source in self._all_versions():
            if (ident, version) in other:
                if source != other[ident, version]:
                    conflicts.append((ident, version))
                cat[ident, version] = _copy_source(source)
        if conflicts:
            raise CatalogConflictError(f"the catalogs hold different sources under {conflicts}")
        return cat

    def difference(self, other: Catalog) -> Catalog:
        """The symmetric difference: the (identifier, version)s that only one of the two catalogs has."""
        cat = Catalog()
        for a, b in ((self, other), (other, self)):
            for ident, version, source in a._all_versions():
                if (ident, version) not in b:
                    cat[ident, version] = _copy_source(source)
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
        """The sources registered with ``register_source`` or by installed plugins (entry points); a later
        registration of the same (identifier, version) wins, and version -1 adds a new latest version."""
        from squirrel_graph.io.plugins import plugin_sources

        cat = Catalog()
        for key, source in plugin_sources():
            if key.version == -1:
                cat[key.identifier] = _copy_source(source)
            else:
                cat[key.identifier, key.version] = _copy_source(source)
        return cat

    @staticmethod
    def from_dirs(paths: Iterable[str]) -> Catalog:
        """Join the ``*.yaml`` files directly inside each folder (any fsspec URL), in sorted order."""
        from squirrel_graph.io.fs import get_fs_from_url, get_protocol

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


# ---------------------------------------------------------------------------------------------------- YAML
@dataclass
class YamlSource:
    """One version of a source as it is written in a catalog file (tag ``!YamlSource``)."""

    identifier: str
    driver_name: str
    driver_kwargs: dict[str, Any] = field(default_factory=dict)
    version: int = 1
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class YamlCatalog:
    """A catalog file's document (tag ``!YamlCatalog``): the format version and a flat list of sources."""

    version: str = CATALOG_FORMAT_VERSION
    sources: list[YamlSource] = field(default_factory=list)


class CatalogLoader(yaml.SafeLoader):
    """PyYAML's safe loader plus squirrel-core's catalog tags; nothing else is constructed."""


class CatalogDumper(yaml.SafeDumper):
    """PyYAML's safe dumper plus squirrel-core's catalog tags (and tuples / dict subclasses as plain YAML)."""

    def ignore_aliases(self, data: Any) -> bool:
        """Never write anchors: versions that share one kwargs dict are written out in full, each."""
        return True


def _where(node: yaml.Node) -> str:
    mark = node.start_mark
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "unknown position"


def _mapping_node(node: yaml.Node, tag: str) -> MappingNode:
    if not isinstance(node, MappingNode):
        raise CatalogFormatError(f"{tag} at {_where(node)} must be a mapping")
    return node


def _construct_fields(loader: CatalogLoader, node: MappingNode, tag: str, names: tuple[str, ...]) -> dict[str, Any]:
    data = loader.construct_mapping(node, deep=True)
    unknown = [k for k in data if k not in names]
    if unknown:
        raise CatalogFormatError(f"{tag} at {_where(node)}: unknown field(s) {unknown}; expected {list(names)}")
    return data


def _construct_yaml_source(loader: CatalogLoader, node: yaml.Node) -> YamlSource:
    node = _mapping_node(node, "!YamlSource")
    names = ("identifier", "driver_name", "driver_kwargs", "version", "metadata")
    data = _construct_fields(loader, node, "!YamlSource", names)
    for required in ("identifier", "driver_name"):
        if not isinstance(data.get(required), str):
            raise CatalogFormatError(f"!YamlSource at {_where(node)}: {required!r} must be a string")
    version = data.get("version", 1)
    if isinstance(version, str) and version.strip().isdigit():
        version = int(version)
    if not _is_version(version) or version <= 0:
        raise CatalogFormatError(f"!YamlSource at {_where(node)}: version must be a positive int, got {version!r}")
    kwargs = {}
    for name in ("driver_kwargs", "metadata"):
        value = data.get(name)
        if value is not None and not isinstance(value, dict):
            raise CatalogFormatError(f"!YamlSource at {_where(node)}: {name!r} must be a mapping")
        kwargs[name] = value or {}
    return YamlSource(data["identifier"], data["driver_name"], version=version, **kwargs)


def _construct_yaml_catalog(loader: CatalogLoader, node: yaml.Node) -> YamlCatalog:
    node = _mapping_node(node, "!YamlCatalog")
    version: str | None = None
    for key_node, value_node in node.value:
        if not isinstance(key_node, ScalarNode):
            continue
        if key_node.value == "version":
            if not isinstance(value_node, ScalarNode):
                raise CatalogFormatError(f"!YamlCatalog at {_where(node)}: 'version' must be a scalar")
            version = value_node.value  # the text as written: 0.10 must not become the float 0.1
        elif key_node.value == "sources" and isinstance(value_node, SequenceNode):
            for item in value_node.value:  # untagged entries are sources too
                if isinstance(item, MappingNode) and item.tag == _MAP_TAG:
                    item.tag = "!YamlSource"
    data = _construct_fields(loader, node, "!YamlCatalog", ("version", "sources"))
    sources = data.get("sources") or []
    if not isinstance(sources, list) or not all(isinstance(s, YamlSource) for s in sources):
        raise CatalogFormatError(f"!YamlCatalog at {_where(node)}: 'sources' must be a list of !YamlSource")
    return YamlCatalog(version=CATALOG_FORMAT_VERSION if version is None else version, sources=sources)


def _construct_catalog_key(loader: CatalogLoader, node: yaml.Node) -> CatalogKey:
    if not isinstance(node, SequenceNode):
        raise CatalogFormatError(f"!CatalogKey at {_where(node)} must be a sequence")
    return CatalogKey(*loader.construct_sequence(node, deep=True))


CatalogLoader.add_constructor("!YamlCatalog", _construct_yaml_catalog)
CatalogLoader.add_constructor("!YamlSource", _construct_yaml_source)
CatalogLoader.add_constructor("!CatalogKey", _construct_catalog_key)


def _represent_yaml_catalog(dumper: CatalogDumper, data: YamlCatalog) -> yaml.Node:
    return dumper.represent_mapping("!YamlCatalog", [("version", data.version), ("sources", data.sources)])


def _represent_yaml_source(dumper: CatalogDumper, data: YamlSource) -> yaml.Node:
    names = ("identifier", "driver_name", "driver_kwargs", "version", "metadata")
    return dumper.represent_mapping("!YamlSource", [(n, getattr(data, n)) for n in names])


def _represent_catalog_key(dumper: CatalogDumper, data: CatalogKey) -> yaml.Node:
    return dumper.represent_sequence("!CatalogKey", list(data))


CatalogDumper.add_representer(YamlCatalog, _represent_yaml_catalog)
CatalogDumper.add_representer(YamlSource, _represent_yaml_source)
CatalogDumper.add_representer(CatalogKey, _represent_catalog_key)
CatalogDumper.add_multi_representer(tuple, CatalogDumper.represent_list)
CatalogDumper.add_multi_representer(dict, CatalogDumper.represent_dict)


class CatalogYaml:
    """What :func:`prep_yaml` returns: ``load``/``dump`` like the ruamel object squirrel-core used, but safe."""

    def load(self, stream: str | bytes | IO[Any]) -> Any:
        """Parse one YAML document with the catalog tags; an untagged ``version``/``sources`` mapping is a catalog."""
        loader = CatalogLoader(stream)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            if isinstance(node, MappingNode) and node.tag == _MAP_TAG:
                keys = {k.value for k, _ in node.value if isinstance(k, ScalarNode)}
                if "sources" in keys and keys <= {"version", "sources"}:
                    node.tag = "!YamlCatalog"
            return loader.construct_document(node)
        finally:
            loader.dispose()

    def dump(self, data: Any, stream: IO[str] | None = None) -> str | None:
        """Write ``data`` as block-style YAML in insertion order (to ``stream``, or return it as a string)."""
        text = yaml.dump(data, Dumper=CatalogDumper, default_flow_style=False, sort_keys=False, allow_unicode=True)
        if isinstance(data, YamlCatalog):
            from squirrel_graph import __version__

            text = f"# written by squirrel_graph {__version__}\n{text}"
        if stream is None:
            return text
        stream.write(text)
        return None


def prep_yaml() -> CatalogYaml:
    """A YAML reader/writer that knows ``!YamlCatalog``, ``!YamlSource`` and ``!CatalogKey`` (squirrel-core's tags)."""
    return CatalogYaml()


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


_VERSION_RE = re.compile(r"^\s*v?(\d+)(?:\.(\d+))?")


def _parse_format_version(version: Any) -> tuple[int, int]:
    match = _VERSION_RE.match(str(version))
    if match is None:
        raise CatalogFormatError(f"catalog file version {version!r} is not a version number")
    return int(match.group(1)), int(match.group(2) or 0)


def yamlcatalog2catalog(yamlcat: YamlCatalog) -> Catalog:
    """Build a Catalog from a loaded catalog document; refuses documents older than format 0.4."""
    if not isinstance(yamlcat, YamlCatalog):
        raise CatalogFormatError(f"expected a !YamlCatalog document, got {type(yamlcat).__name__}")
    parsed = _parse_format_version(yamlcat.version)
    if parsed < MIN_CATALOG_VERSION:
        minimum = ".".join(map(str, MIN_CATALOG_VERSION))
        raise CatalogFormatError(
            f"catalog file version {yamlcat.version} is older than {minimum}; files written by squirrel-core before"
            f" {minimum} use another layout and are not supported"
        )
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
    data = prep_yaml().load(text)
    if data is None:
        raise CatalogFormatError("the YAML document is empty; expected a !YamlCatalog")
    return yamlcatalog2catalog(data)
