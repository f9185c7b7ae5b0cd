"""What catalogs are made of: Source, CatalogKey, the catalog errors, version checks and the DummyCatalogSource
placeholder; it imports no Catalog, driver or registry, so the registry, the YAML format and the Catalog can use it."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from squirrel_graph.errors import SourceExistsError, SquirrelGraphError

if TYPE_CHECKING:
    from squirrel_graph.io.catalog import Catalog, CatalogSource
    from squirrel_graph.io.drivers import Driver

__all__ = [
    "CatalogConflictError",
    "CatalogFormatError",
    "CatalogKey",
    "DummyCatalogSource",
    "Source",
    "check_new_version",
    "copy_source",
    "is_version",
]


class CatalogFormatError(SquirrelGraphError, ValueError):
    """A catalog document is malformed or too old; raised instead of squirrel-core's assertion and TypeErrors."""


class CatalogConflictError(SourceExistsError, AssertionError):
    """Two catalogs define the same (identifier, version); an AssertionError too, as squirrel-core asserted here."""


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


def copy_source(source: Source) -> Source:
    """A plain Source with deep copies of the kwargs and metadata, so that copies never share mutable state."""
    return Source(source.driver_name, copy.deepcopy(source.driver_kwargs), copy.deepcopy(source.metadata))


class CatalogKey(NamedTuple):
    """The key of one version of a source in a catalog; ``version=-1`` means the latest."""

    identifier: str
    version: int = -1


def is_version(value: Any) -> bool:
    """Whether ``value`` can be a version number (an int, but not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_new_version(version: Any, identifier: str) -> int:
    """``version`` if it can be stored under ``identifier`` (a positive int); a TypeError or ValueError if not."""
    if not is_version(version):
        raise TypeError(f"catalog source {identifier!r}: a version is a positive int, got {version!r}")
    if version <= 0:
        raise ValueError(
            f"catalog source {identifier!r}: a version is a positive int, got {version}"
            " (use catalog[identifier] = source to add a new latest version)"
        )
    return version


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
        if (self._identifier, -1) not in self._catalog:  # the catalog has no version of it (yet)
            return {}
        return dict(self._catalog[self._identifier].versions)

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
        return len(self.versions)

    def get_driver(self, **kwargs: Any) -> Driver:
        """Build the driver of the latest version, once one has been set; a KeyError naming the id before that."""
        if self._identifier not in self._catalog:
            raise KeyError(f"the catalog has no source {self._identifier!r}")
        return self._catalog[self._identifier].get_driver(**kwargs)

    def __repr__(self) -> str:
        return f"DummyCatalogSource({self._identifier!r})"
