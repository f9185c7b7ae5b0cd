"""squirrel-core compatible path ``squirrel.framework.plugins.hookimpl``: the marker plugins decorate their hooks
with (``@hookimpl``), and the core plugin's ``squirrel_drivers`` (the built-in drivers)."""

from squirrel_graph.io.builtin_drivers import squirrel_drivers
from squirrel_graph.io.drivers import Driver
from squirrel_graph.io.pluggy_hookspec import PLUGGY_HOOKGROUP, hookimpl

__all__ = ["PLUGGY_HOOKGROUP", "Driver", "hookimpl", "squirrel_drivers"]
