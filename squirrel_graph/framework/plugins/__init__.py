"""squirrel-core compatible path ``squirrel.framework.plugins``: the pluggy project name, and the registry API."""

from squirrel_graph.framework.plugins.plugin_manager import *  # noqa: F403
from squirrel_graph.framework.plugins.plugin_manager import __all__ as _manager_all
from squirrel_graph.io.pluggy_hookspec import PLUGGY_HOOKGROUP

__all__ = ["PLUGGY_HOOKGROUP", *_manager_all]
