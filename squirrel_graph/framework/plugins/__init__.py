"""squirrel-core compatible path ``squirrel.framework.plugins`` (a plain registry; no pluggy)."""

from squirrel_graph.framework.plugins.plugin_manager import *  # noqa: F403
from squirrel_graph.framework.plugins.plugin_manager import __all__  # noqa: F401
