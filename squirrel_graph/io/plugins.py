"""The driver and source registries behind catalogs: squirrel_graph's own, plus squirrel-core's pluggy hooks.

Drivers are found by their class attribute ``name``. Four tiers, the first match wins:

1. drivers passed to :func:`register_driver` (the latest first): an explicit call in the running program is the
   most specific intent there is;
2. drivers of installed packages in the entry point group ``squirrel_graph.drivers`` (the last one found first):
   plugins written for squirrel_graph;
3. drivers of pluggy plugins (:mod:`squirrel_graph.io.pluggy_hooks`): ``squirrel_drivers`` implementations
   registered on ``squirrel_plugin_manager`` or installed in squirrel-core's entry point group ``squirrel``, in
   pluggy's call order (the latest registered first). They rank below squirrel_graph's own plugins because they
   were written for squirrel-core, and they need only be classes with a str ``name``, so drivers built on
   squirrel-core's ``Driver`` load too;
4. the built-in drivers (:mod:`squirrel_graph.io.builtin_drivers`), last, so that any plugin can replace one, as
   in squirrel-core. Those outside the store and file drivers are imported on first use; a failing import is
   raised (``BuiltinDriverImportError``) when that name is looked up, and only logged by :func:`list_drivers`.

The tiers are ranked as a whole, not by time: a pluggy plugin registered after a :func:`register_driver` call for
the same name still loses to it.

Sources for :meth:`Catalog.from_plugins` come from the same places, in the opposite order, because there a later
pair overwrites an earlier one: pluggy ``squirrel_sources`` (the earliest registered plugin first), then entry
point group ``squirrel_graph.sources`` (each entry point loads a callable returning ``[(CatalogKey, Source),
...]``), then :func:`register_source`. So the latest registration wins in each tier, and the tiers rank as for
drivers.

Entry points (both groups) are read once per process, on the first use of a registry (never at import time); a
broken entry point or hook implementation is logged as a warning and skipped, so it cannot break the others.
:func:`clear_entry_point_cache` makes the next use read them again (after installing a package at run time, or in
tests).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from squirrel_graph.io import pluggy_hooks
from squirrel_graph.io.builtin_drivers import (
    BUILTIN_DRIVERS,
    LAZY_BUILTIN_DRIVERS,
    BuiltinDriverImportError,
    builtin_driver_classes,
    builtin_driver_names,
    load_builtin_driver,
)
from squirrel_graph.io.catalog_records import CatalogKey, Source
from squirrel_graph.io.drivers import Driver

__all__ = [
    "BUILTIN_DRIVERS",
    "LAZY_BUILTIN_DRIVERS",
    "BuiltinDriverImportError",
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
    """Forget the drivers, sources and pluggy plugins read from entry points, so the next use reads them again."""
    global _entry_points
    with _lock:
        _entry_points = None
    pluggy_hooks.forget_entry_point_plugins()


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


def _check_pluggy_driver(obj: Any) -> str | None:
    if not isinstance(obj, type):
        return f"expected a driver class, got {obj!r}"
    if not isinstance(getattr(obj, "name", None), str):
        return f"driver class {obj.__qualname__} has no str class attribute 'name'"
    return None


def _pluggy_drivers() -> list[type[Driver]]:
    found: list[type[Driver]] = []
    for description, result in pluggy_hooks.hook_results("squirrel_drivers"):
        try:
            items = list(result)
        except TypeError:
            logger.warning(
                "squirrel_graph: skipping %s: it returned %r, not a list of driver classes", description, result
            )
            continue
        for obj in items:
            problem = _check_pluggy_driver(obj)
            if problem:
                logger.warning("squirrel_graph: skipping a driver of %s: %s", description, problem)
                continue
            found.append(obj)
    return found


def _plugin_drivers() -> list[type[Driver]]:
    """Tiers 1 to 3 (see the module docstring), in lookup order, shadowed ones included."""
    with _lock:
        registered = list(reversed(_registered_drivers))
    return [*registered, *reversed(_cached_entry_points().drivers), *_pluggy_drivers()]


def _first_per_name(candidates: list[type[Driver]]) -> list[type[Driver]]:
    seen: set[str] = set()
    found = []
    for cls in candidates:
        if cls.name not in seen:
            seen.add(cls.name)
            found.append(cls)
    return found


def list_drivers() -> list[type[Driver]]:
    """Every usable driver class in lookup order (registered, entry points, pluggy, built-ins); shadowed ones and
    built-ins whose module fails to import (logged) are left out."""
    return _first_per_name([*_plugin_drivers(), *builtin_driver_classes()])


def list_driver_names() -> list[str]:
    """The names catalogs can use as ``driver_name``, in lookup order, each once."""
    return [cls.name for cls in list_drivers()]


def get_driver_class(name: str) -> type[Driver]:
    """The driver class registered under ``name``: a ValueError listing the known names when there is none, a
    ``BuiltinDriverImportError`` naming the module when ``name`` is a built-in whose module fails to import."""
    plugin_drivers = _plugin_drivers()
    for cls in plugin_drivers:
        if cls.name == name:
            return cls
    if name in builtin_driver_names():
        return load_builtin_driver(name)  # imports a lazy built-in now
    known = ", ".join(sorted({cls.name for cls in plugin_drivers} | set(builtin_driver_names())))
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


def _valid_pairs(description: str, result: Any) -> list[tuple[CatalogKey, Source]]:
    try:
        items = list(result)
    except TypeError:
        logger.warning("squirrel_graph: skipping the sources of %s: it returned %r, not a list", description, result)
        return []
    pairs = []
    for item in items:
        pair = _check_source_pair(item)
        if pair is None:
            logger.warning(
                "squirrel_graph: %s returned %r, which is not a (CatalogKey, Source) pair; skipped", description, item
            )
            continue
        pairs.append(pair)
    return pairs


def plugin_sources() -> list[tuple[CatalogKey, Source]]:
    """The ``(CatalogKey, Source)`` pairs of all plugins, lowest rank first (a later pair wins in a catalog): pluggy
    plugins (the earliest registered first), entry point plugins, then those of :func:`register_source`, in order.

    Each plugin is called now; one that raises or returns something else is logged and skipped.
    """
    pairs: list[tuple[CatalogKey, Source]] = []
    for description, result in reversed(pluggy_hooks.hook_results("squirrel_sources")):
        pairs += _valid_pairs(description, result)
    for description, func in _cached_entry_points().sources:
        try:
            result = func()
        except Exception as exc:
            logger.warning("squirrel_graph: skipping the sources of %s: calling it failed: %r", description, exc)
            continue
        pairs += _valid_pairs(description, result)
    with _lock:
        pairs += _registered_sources
    return pairs
