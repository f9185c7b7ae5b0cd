"""The pluggy hooks of squirrel-core's plugin system, so plugins written for squirrel-core load unchanged.

The project name is squirrel-core's (``"squirrel"``): pluggy matches markers by that name, so a plugin decorated
with squirrel-core's own ``hookimpl`` marker is recognised too. :mod:`squirrel_graph.io.plugins` says where these
hooks rank among the other registries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from squirrel_graph.io.catalog_records import CatalogKey, Source
    from squirrel_graph.io.drivers import Driver

__all__ = ["PLUGGY_HOOKGROUP", "hookimpl", "hookspec", "squirrel_drivers", "squirrel_sources"]

#: The pluggy project name and the setuptools entry point group of squirrel plugins (both as in squirrel-core).
PLUGGY_HOOKGROUP = "squirrel"

hookspec = pluggy.HookspecMarker(PLUGGY_HOOKGROUP)
hookimpl = pluggy.HookimplMarker(PLUGGY_HOOKGROUP)


@hookspec
def squirrel_sources() -> list[tuple[CatalogKey, Source]]:
    """Sources a plugin adds to ``Catalog.from_plugins()``, as ``(CatalogKey, Source)`` pairs."""


@hookspec
def squirrel_drivers() -> list[type[Driver]]:
    """Driver classes a plugin makes usable in catalogs (looked up by their ``name``)."""
