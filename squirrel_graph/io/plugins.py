"""The driver and source registries behind catalogs (squirrel-core's pluggy plugin manager, without pluggy).

Drivers are found by their class attribute ``name``. Lookup order, first match wins: drivers passed to
:func:`register_driver` (the latest first), then drivers of installed packages (entry point group
``squirrel_graph.drivers``, the last one found first), then the built-in drivers. So a later registration with the
same name shadows an earlier one or a built-in, as in squirrel-core.

Sources for :meth:`Catalog.from_plugins` come from entry point group ``squirrel_graph.sources`` (each entry point
loads a callable returning ``[(CatalogKey, Source), ...]``) and from :func:`register_source`.

Entry points are read once per process, on the first use of a registry (never at import time); a broken entry
point is logged as a warning and skipped, so it cannot break the others. :func:`clear_entry_point_cache` makes the
next use read them again (after installing a package at run time, or in tests).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from squirrel_graph.io.catalog_records import CatalogKey, Source
from squirrel_graph.io.drivers import Driver, FileDriver, JsonlDriver, MessagepackDriver, StoreDriver

__all__ = [
    "BUILTIN_DRIVERS",
    "DRIVER_ENTRY_POINT_GROUP",
    "SOURCE_ENTRY_POINT_GROUP",
    "clear_entry_point_cache",
    "get_driver_class",
    "list_driver_names",
    "list_drivers",
    "plugin_sources",
    "register_driver",
    "register_source",
]

DRIVER_ENTRY_POINT_GROUP = "squirrel_graph.drivers"
SOURCE_ENTRY_POINT_GROUP = "squirrel_graph.sources"

#: The drivers every catalog can use without plugins.
BUILTIN_DRIVERS: tuple[type[Driver], ...] = (MessagepackDriver, JsonlDriver, StoreDriver, FileDriver)

logger = logging.getLogger(__name__)

_lock = threading.RLock()
_registered_drivers: list[type[Driver]] = []
_registered_sources: list[tuple[CatalogKey, Source]] = []


@dataclass(frozen=True)
class _EntryPoints:
    drivers: tuple[type[Driver], ...]
    sources: tuple[tuple[str, Callable[[], Any]], ...]  # (entry point description, callable)


_entry_points: _EntryPoints | None = None


def _describe(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    origin = f" (from {dist.name})" if dist is not None and getattr(dist, "name", None) else ""
    return f"entry point {ep.name!r} = {ep.value!r} in group {ep.group!r}{origin}"


def _iter_entry_points(group: str) -> list[metadata.EntryPoint]:
    seen: set[tuple[str, str]] = set()
    found = []
    for ep in metadata.entry_points(group=group):
        if (ep.name, ep.value) not in seen:  # the same distribution on sys.path twice
            seen.add((ep.name, ep.value))
            found.append(ep)
    return found


def _check_driver_class(obj: Any) -> str | None:
    """Why ``obj`` cannot be registered as a driver, or None."""
    if not (isinstance(obj, type) and issubclass(obj, Driver)):
        return f"expected a subclass of squirrel_graph.driver.Driver, got {obj!r}"
    if not isinstance(getattr(obj, "name", None), str):
        return f"driver class {obj.__qualname__} has no str class attribute 'name'"
    return None


def _load_entry_points() -> _EntryPoints:
    drivers: list[type[Driver]] = []
    for ep in _iter_entry_points(DRIVER_ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plugin must not break the others
            logger.warning("squirrel_graph: skipping %s: it failed to load: %r", _describe(ep), exc)
            continue
        problem = _check_driver_class(obj)
        if problem:
            logger.warning("squirrel_graph: skipping %s: %s", _describe(ep), problem)
            continue
        drivers.append(obj)
    sources: list[tuple[str, Callable[[], Any]]] = []
    for ep in _iter_entry_points(SOURCE_ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as exc:
            logger.warning("squirrel_graph: skipping %s: it failed to load: %r", _describe(ep), exc)
            continue
        if not callable(obj):
            logger.warning("squirrel_graph: skipping %s: expected a callable, got %r", _describe(ep), obj)
            continue
        sources.append((_describe(ep), obj))
    return _EntryPoints(drivers=tuple(drivers), sources=tuple(sources))


def _cached_entry_points() -> _EntryPoints:
    global _entry_points
    cached = _entry_points
    if cached is None:
        with _lock:
            if _entry_points is None:
                _entry_points = _load_entry_points()
            cached = _entry_points
    return cached


def clear_entry_point_cache() -> None:
    """Forget the drivers and sources read from entry points, so the next registry use reads them again."""
    global _entry_points
    with _lock:
        _entry_points = None


def register_driver(driver: type[Driver]) -> type[Driver]:
    """Make a Driver subclass usable in catalogs under its ``name``; it shadows earlier drivers of that name.

    Returns the class, so this also works as a class decorator.
    """
    problem = _check_driver_class(driver)
    if problem:
        raise TypeError(f"register_driver: {problem}")
    with _lock:
        _registered_drivers.append(driver)
    return driver


def register_source(identifier: str, source: Source, version: int = 1) -> None:
    """Add a source that :meth:`Catalog.from_plugins` includes (``version=-1``: a new latest version)."""
    if not isinstance(identifier, str):
        raise TypeError(f"register_source: the identifier must be a str, got {identifier!r}")
    if not isinstance(source, Source):
        raise TypeError(f"register_source: expected a Source, got {type(source).__name__}")
    if not isinstance(version, int) or isinstance(version, bool) or not (version > 0 or version == -1):
        raise ValueError(f"register_source: the version must be a positive int or -1, got {version!r}")
    with _lock:
        _registered_sources.append((CatalogKey(identifier, version), source))


def list_drivers() -> list[type[Driver]]:
    """Every usable driver class in lookup order (registered, then plugins, then built-ins); shadowed ones left out."""
    with _lock:
        registered = list(reversed(_registered_drivers))
    candidates = [*registered, *reversed(_cached_entry_points().drivers), *BUILTIN_DRIVERS]
    seen: set[str] = set()
    found = []
    for cls in candidates:
        if cls.name not in seen:
            seen.add(cls.name)
            found.append(cls)
    return found


def list_driver_names() -> list[str]:
    """The names catalogs can use as ``driver_name``, in lookup order, each once."""
    return [cls.name for cls in list_drivers()]


def get_driver_class(name: str) -> type[Driver]:
    """The driver class registered under ``name``; a ValueError that lists the known names when there is none."""
    drivers = list_drivers()
    for cls in drivers:
        if cls.name == name:
            return cls
    known = ", ".join(sorted(cls.name for cls in drivers))
    raise ValueError(f"driver {name!r} not found; registered drivers: {known}")


def _check_source_pair(item: Any) -> tuple[CatalogKey, Source] | None:
    if not (isinstance(item, tuple) and len(item) == 2):
        return None
    key, source = item
    if not (isinstance(key, tuple) and len(key) == 2 and isinstance(key[0], str)):
        return None
    version = key[1]
    if not isinstance(version, int) or isinstance(version, bool) or not (version > 0 or version == -1):
        return None
    if not isinstance(source, Source):
        return None
    return CatalogKey(*key), source


def plugin_sources() -> list[tuple[CatalogKey, Source]]:
    """The ``(CatalogKey, Source)`` pairs of entry point plugins, then those of :func:`register_source`, in order.

    Each plugin callable is called now; one that raises or returns something else is logged and skipped.
    """
    pairs: list[tuple[CatalogKey, Source]] = []
    for description, func in _cached_entry_points().sources:
        try:
            items = list(func())
        except Exception as exc:
            logger.warning("squirrel_graph: skipping the sources of %s: calling it failed: %r", description, exc)
            continue
        for item in items:
            pair = _check_source_pair(item)
            if pair is None:
                logger.warning(
                    "squirrel_graph: %s returned %r, which is not a (CatalogKey, Source) pair; skipped",
                    description,
                    item,
                )
                continue
            pairs.append(pair)
    with _lock:
        pairs += _registered_sources
    return pairs
