"""The drivers that ship with squirrel_graph, under squirrel-core's names; also the core pluggy plugin.

The store and file drivers are imported with this module. The others (data frames, zarr, source combiner,
directory) are named here by module path and imported on first use, so ``import squirrel_graph`` stays fast and a
driver whose module fails to import (a missing extra, say) is reported when its name is looked up, without
breaking the others.
"""

from __future__ import annotations

import importlib
import logging
import threading

from squirrel_graph.io.drivers import Driver, FileDriver, JsonlDriver, MessagepackDriver, StoreDriver
from squirrel_graph.io.pluggy_hookspec import hookimpl

__all__ = [
    "BUILTIN_DRIVERS",
    "LAZY_BUILTIN_DRIVERS",
    "BuiltinDriverImportError",
    "builtin_driver_classes",
    "builtin_driver_names",
    "load_builtin_driver",
    "squirrel_drivers",
]

logger = logging.getLogger(__name__)

#: The built-in drivers imported with this module.
BUILTIN_DRIVERS: tuple[type[Driver], ...] = (MessagepackDriver, JsonlDriver, StoreDriver, FileDriver)

#: Built-in drivers imported on first use: ``name -> (module path, class name)``.
LAZY_BUILTIN_DRIVERS: dict[str, tuple[str, str]] = {
    "csv": ("squirrel_graph.io.dataframe", "CsvDriver"),
    "parquet": ("squirrel_graph.io.dataframe", "ParquetDriver"),
    "feather": ("squirrel_graph.io.dataframe", "FeatherDriver"),
    "excel": ("squirrel_graph.io.dataframe", "ExcelDriver"),
    "source_combiner": ("squirrel_graph.io.source_combiner", "SourceCombiner"),
    "zarr": ("squirrel_graph.io.zarr_driver", "ZarrDriver"),
    "directory": ("squirrel_graph.artifacts.drivers", "DirectoryDriver"),
}

_warned_lock = threading.Lock()
_warned: set[str] = set()


class BuiltinDriverImportError(ImportError):
    """A built-in driver was asked for by name, but its module could not be imported (or lacks the class)."""


def builtin_driver_names() -> list[str]:
    """The names of all built-in drivers, in lookup order, without importing anything."""
    return [cls.name for cls in BUILTIN_DRIVERS] + list(LAZY_BUILTIN_DRIVERS)


def load_builtin_driver(name: str) -> type[Driver]:
    """The built-in driver class called ``name``, importing its module now; BuiltinDriverImportError if it fails."""
    for cls in BUILTIN_DRIVERS:
        if cls.name == name:
            return cls
    if name not in LAZY_BUILTIN_DRIVERS:
        raise KeyError(f"load_builtin_driver: no built-in driver is called {name!r}")
    module_name, class_name = LAZY_BUILTIN_DRIVERS[name]
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise BuiltinDriverImportError(
            f"driver {name!r} is built in, but its module {module_name} failed to import: {exc!r}", name=module_name
        ) from exc
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type) or getattr(cls, "name", None) != name:
        raise BuiltinDriverImportError(
            f"driver {name!r} is built in, but {module_name}.{class_name} is {cls!r}, "
            f"not a driver class named {name!r}",
            name=module_name,
        )
    return cls


def builtin_driver_classes() -> list[type[Driver]]:
    """Every built-in driver that imports, in lookup order; one that fails is logged (once) and left out."""
    found = list(BUILTIN_DRIVERS)
    for name in LAZY_BUILTIN_DRIVERS:
        try:
            found.append(load_builtin_driver(name))
        except BuiltinDriverImportError as exc:
            with _warned_lock:
                first = name not in _warned
                _warned.add(name)
            if first:
                logger.warning("squirrel_graph: leaving out a built-in driver: %s", exc)
    return found


@hookimpl
def squirrel_drivers() -> list[type[Driver]]:
    """The built-in drivers, as squirrel-core's core plugin reported them to ``hook.squirrel_drivers()``."""
    return builtin_driver_classes()
