"""squirrel-core's pluggy plugin manager: plugins registered on it, or installed under the setuptools entry point
group ``"squirrel"``, provide drivers and sources through the ``squirrel_drivers``/``squirrel_sources`` hooks.

The manager exists from import on (plugins may call ``squirrel_plugin_manager.register``), with squirrel_graph's
built-in drivers registered as the plugin ``"squirrel"``, like squirrel-core's core plugin. The entry points are
read on the first registry use, never at import. :mod:`squirrel_graph.io.plugins` ranks these hooks against its
other registries; here each implementation is called on its own, so a broken plugin is logged and skipped instead
of breaking the others.
"""

from __future__ import annotations

import logging
import threading
from importlib import metadata
from typing import Any

import pluggy

from squirrel_graph.io import builtin_drivers, pluggy_hookspec
from squirrel_graph.io.pluggy_hookspec import PLUGGY_HOOKGROUP

__all__ = [
    "forget_entry_point_plugins",
    "hook_results",
    "load_entry_point_plugins",
    "squirrel_plugin_manager",
]

logger = logging.getLogger(__name__)

squirrel_plugin_manager = pluggy.PluginManager(PLUGGY_HOOKGROUP)
squirrel_plugin_manager.add_hookspecs(pluggy_hookspec)
squirrel_plugin_manager.register(builtin_drivers, name=PLUGGY_HOOKGROUP)

_lock = threading.RLock()
_loaded = False
_from_entry_points: list[str] = []  # names of the plugins registered from entry points


def load_entry_point_plugins() -> None:
    """Register the plugins of the ``"squirrel"`` entry point group, once per process (until forgotten).

    Like pluggy's ``load_setuptools_entrypoints``, except that a plugin that fails to load or register is logged
    and skipped. Names already registered or blocked are left alone.
    """
    global _loaded
    if _loaded:
        return
    with _lock:
        if _loaded:
            return
        pm = squirrel_plugin_manager
        for ep in metadata.entry_points(group=PLUGGY_HOOKGROUP):
            if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
                continue
            try:
                plugin = ep.load()
                pm.register(plugin, name=ep.name)
            except Exception as exc:  # a broken plugin must not break the others
                logger.warning(
                    "squirrel_graph: skipping pluggy entry point %r = %r in group %r: %r",
                    ep.name,
                    ep.value,
                    ep.group,
                    exc,
                )
                continue
            _from_entry_points.append(ep.name)
        _loaded = True


def forget_entry_point_plugins() -> None:
    """Unregister the plugins read from entry points, so the next registry use reads the entry points again."""
    global _loaded
    with _lock:
        for name in _from_entry_points:
            plugin = squirrel_plugin_manager.get_plugin(name)
            if plugin is not None:
                squirrel_plugin_manager.unregister(plugin, name=name)
        _from_entry_points.clear()
        _loaded = False


def hook_results(hook_name: str) -> list[tuple[str, Any]]:
    """``(description, result)`` of every implementation of ``hook_name`` except the built-in plugin's, in pluggy's
    call order (the latest registered first, ``tryfirst``/``trylast`` respected); one that raises is logged and
    left out, and wrappers are not called."""
    load_entry_point_plugins()
    hook = getattr(squirrel_plugin_manager.hook, hook_name)
    results = []
    for impl in reversed(hook.get_hookimpls()):
        if impl.plugin is builtin_drivers or impl.hookwrapper or getattr(impl, "wrapper", False):
            continue
        description = f"pluggy plugin {impl.plugin_name!r} ({hook_name})"
        try:
            results.append((description, impl.function()))
        except Exception as exc:
            logger.warning("squirrel_graph: skipping %s: calling it failed: %r", description, exc)
    return results
