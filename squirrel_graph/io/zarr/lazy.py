"""Lazy zarr: import zarr v2 on first use and build the zarr-backed classes then, so the io layer imports without it."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

ZARR_INSTALL = "pip install 'squirrel_graph[zarr]'"


def import_zarr() -> ModuleType:
    """The ``zarr`` module, or an ImportError that says how to install it (or that ``zarr<3`` is needed)."""
    try:
        import zarr
    except ImportError as e:
        raise ImportError(f"squirrel_graph's zarr support needs zarr<3, which is not installed: {ZARR_INSTALL}") from e
    version = str(getattr(zarr, "__version__", "0"))
    major = re.match(r"\d+", version)
    if major is not None and int(major.group()) >= 3:
        raise ImportError(
            f"squirrel_graph's zarr support requires zarr<3 (the v2 API: zarr.storage.FSStore, zarr.hierarchy.Group), "
            f"but zarr {version} is installed: pip install 'zarr<3' (or {ZARR_INSTALL})"
        )
    return zarr


def lazy_classes(namespace: dict[str, Any], builders: Mapping[str, Callable[[], type]]) -> Callable[[str], type]:
    """A module ``__getattr__`` that builds each named class on first access (once, thread-safe) and keeps it in the
    module, named as if defined there, so isinstance, subclassing and pickling by reference work."""
    lock = threading.RLock()
    module = namespace["__name__"]

    def __getattr__(name: str) -> type:
        build = builders.get(name)
        if build is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        with lock:
            if name not in namespace:
                cls = build()
                cls.__module__ = module
                cls.__name__ = cls.__qualname__ = name
                namespace[name] = cls
        return namespace[name]

    return __getattr__
