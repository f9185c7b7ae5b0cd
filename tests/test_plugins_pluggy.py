"""squirrel-core's pluggy plugins beside squirrel_graph's registries: real pluggy plugins registered on the real
plugin manager, a real installed distribution with entry points, the lookup order between the tiers, and the
built-in drivers imported lazily by module path."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import types

import pluggy
import pytest

from squirrel_graph.catalog import Catalog, CatalogKey, Source
from squirrel_graph.driver import Driver, MessagepackDriver
from squirrel_graph.framework.plugins import PLUGGY_HOOKGROUP
from squirrel_graph.framework.plugins.hookimpl import hookimpl
from squirrel_graph.framework.plugins.plugin_manager import (
    BuiltinDriverImportError,
    clear_entry_point_cache,
    get_driver_class,
    list_driver_names,
    list_drivers,
    register_driver,
    register_source,
    squirrel_plugin_manager,
)
from squirrel_graph.io import builtin_drivers, plugins


class GreetingDriver(Driver):
    """A driver whose instances remember how they were built."""

    name = "sg_pluggy_driver"

    def __init__(self, greeting: str = "hi", storage_options: dict | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.greeting = greeting
        self.storage_options = storage_options


def driver_named(name: str, tag: str) -> type[Driver]:
    return type(f"Driver_{tag}", (GreetingDriver,), {"name": name, "tag": tag})


def plugin_module(name: str, drivers=(), sources=()) -> types.ModuleType:
    """A real plugin module, as squirrel-core plugins are written: module-level functions marked ``@hookimpl``."""
    mod = types.ModuleType(name)

    @hookimpl
    def squirrel_drivers():
        return list(drivers)

    @hookimpl
    def squirrel_sources():
        return list(sources)

    mod.squirrel_drivers, mod.squirrel_sources = squirrel_drivers, squirrel_sources
    return mod


@pytest.fixture(autouse=True)
def isolated_registries(monkeypatch):
    """Every test starts from the registries as they are and leaves them so: pluggy plugins it registers are
    unregistered, entry point plugins forgotten."""
    monkeypatch.setattr(plugins, "_registered_drivers", list(plugins._registered_drivers))
    monkeypatch.setattr(plugins, "_registered_sources", list(plugins._registered_sources))
    before = {id(p) for p in squirrel_plugin_manager.get_plugins()}
    clear_entry_point_cache()
    yield
    clear_entry_point_cache()
    for plugin in squirrel_plugin_manager.get_plugins():
        if id(plugin) not in before:
            squirrel_plugin_manager.unregister(plugin)
    assert {id(p) for p in squirrel_plugin_manager.get_plugins()} == before


def test_the_plugin_manager_is_squirrel_cores():
    assert PLUGGY_HOOKGROUP == "squirrel" and squirrel_plugin_manager.project_name == "squirrel"
    assert squirrel_plugin_manager.get_plugin("squirrel") is builtin_drivers  # the core plugin, by its core name
    # calling the hook directly, as squirrel-core's Catalog did, still reports the built-in drivers (last)
    results = squirrel_plugin_manager.hook.squirrel_drivers()
    assert MessagepackDriver in results[-1] and "csv" in {cls.name for cls in results[-1]}


def test_a_pluggy_plugin_module_provides_drivers_and_sources():
    source = Source("sg_pluggy_driver", {"greeting": "hello"}, {"from": "pluggy"})
    mod = plugin_module("sg_plugin_a", drivers=[GreetingDriver], sources=[(CatalogKey("sg_pluggy_src", 1), source)])
    assert "sg_pluggy_driver" not in list_driver_names()
    squirrel_plugin_manager.register(mod)

    assert get_driver_class("sg_pluggy_driver") is GreetingDriver
    assert "sg_pluggy_driver" in list_driver_names() and GreetingDriver in list_drivers()
    cat = Catalog.from_plugins()
    assert cat["sg_pluggy_src"].metadata == {"from": "pluggy"}
    driver = cat["sg_pluggy_src"].get_driver(storage_options={"a": 1})
    assert isinstance(driver, GreetingDriver) and driver.greeting == "hello"
    assert driver.storage_options == {"a": 1} and driver.catalog is cat

    squirrel_plugin_manager.unregister(mod)
    assert "sg_pluggy_driver" not in list_driver_names() and "sg_pluggy_src" not in Catalog.from_plugins()
    with pytest.raises(ValueError, match="driver 'sg_pluggy_driver' not found"):
        get_driver_class("sg_pluggy_driver")


def test_a_plugin_marked_with_an_independent_squirrel_marker_is_recognised():
    marker = pluggy.HookimplMarker("squirrel")  # what squirrel-core's own hookimpl module creates

    class CorePlugin:  # a class-based plugin, as squirrel-core's register_driver made them
        @marker
        def squirrel_drivers(self):
            return [driver_named("sg_core_marked", "core")]

    squirrel_plugin_manager.register(CorePlugin())
    assert get_driver_class("sg_core_marked").tag == "core"


def test_lookup_order_register_driver_then_entry_points_then_pluggy_then_builtins(installed_dist):
    # built-ins come last: a pluggy plugin replaces the built-in csv driver
    builtin_csv = get_driver_class("csv")
    squirrel_plugin_manager.register(plugin_module("sg_plugin_csv", drivers=[driver_named("csv", "pluggy_csv")]))
    assert get_driver_class("csv").tag == "pluggy_csv" and builtin_csv.__module__ == "squirrel_graph.io.dataframe"

    # within pluggy, the latest registered wins
    first = plugin_module("sg_plugin_1", drivers=[driver_named("sg_shared", "pluggy1")])
    second = plugin_module("sg_plugin_2", drivers=[driver_named("sg_shared", "pluggy2")])
    squirrel_plugin_manager.register(first)
    squirrel_plugin_manager.register(second)
    assert get_driver_class("sg_shared").tag == "pluggy2"

    # an entry point driver (squirrel_graph.drivers) of the same name beats every pluggy plugin ...
    assert get_driver_class("sg_ep_shared").tag == "entry_point"
    squirrel_plugin_manager.register(plugin_module("sg_plugin_3", drivers=[driver_named("sg_ep_shared", "pluggy3")]))
    assert get_driver_class("sg_ep_shared").tag == "entry_point"

    # ... and register_driver beats all, even a pluggy plugin registered after it (tiers, not time)
    register_driver(driver_named("sg_ep_shared", "registered"))
    squirrel_plugin_manager.register(plugin_module("sg_plugin_4", drivers=[driver_named("sg_ep_shared", "pluggy4")]))
    assert get_driver_class("sg_ep_shared").tag == "registered"

    names = list_driver_names()
    assert len(names) == len(set(names))
    assert names.index("sg_ep_shared") < names.index("sg_shared") < names.index("messagepack")
    assert {cls.name: getattr(cls, "tag", None) for cls in list_drivers()}["sg_shared"] == "pluggy2"


def test_source_order_later_tiers_and_later_registrations_win(installed_dist):
    def src(tag: str) -> Source:
        return Source("sg_pluggy_driver", {"greeting": tag})

    key = CatalogKey("sg_shared_src", 1)
    squirrel_plugin_manager.register(plugin_module("sg_src_1", sources=[(key, src("pluggy1"))]))
    squirrel_plugin_manager.register(plugin_module("sg_src_2", sources=[(key, src("pluggy2"))]))
    assert Catalog.from_plugins()["sg_shared_src", 1].driver_kwargs == {"greeting": "pluggy2"}

    ep_key = ("sg_ep_src", 1)  # also provided by the installed distribution's squirrel_graph.sources entry point
    squirrel_plugin_manager.register(plugin_module("sg_src_3", sources=[(CatalogKey(*ep_key), src("pluggy3"))]))
    assert Catalog.from_plugins()[ep_key].driver_kwargs == {"greeting": "entry_point"}

    register_source("sg_shared_src", src("registered"))
    assert Catalog.from_plugins()["sg_shared_src", 1].driver_kwargs == {"greeting": "registered"}


def test_a_broken_pluggy_plugin_is_logged_and_skipped(caplog):
    class Raises:
        @hookimpl
        def squirrel_drivers(self):
            raise RuntimeError("boom")

        @hookimpl
        def squirrel_sources(self):
            raise RuntimeError("boom too")

    class Garbage:
        @hookimpl
        def squirrel_drivers(self):
            return [42, GreetingDriver]

        @hookimpl
        def squirrel_sources(self):
            return [("not a pair",), (CatalogKey("sg_ok_src", 1), Source("sg_pluggy_driver"))]

    squirrel_plugin_manager.register(Raises(), name="sg_raises")
    squirrel_plugin_manager.register(Garbage(), name="sg_garbage")
    with caplog.at_level(logging.WARNING, logger="squirrel_graph"):
        assert get_driver_class("sg_pluggy_driver") is GreetingDriver
        assert "sg_ok_src" in Catalog.from_plugins()
        assert get_driver_class("messagepack") is MessagepackDriver
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "'sg_raises'" in text and "boom" in text and "boom too" in text
    assert "42" in text and "not a pair" in text


PLUGIN_MODULE = """
from squirrel_graph.catalog import CatalogKey, Source
from squirrel_graph.framework.plugins.hookimpl import hookimpl
from squirrel_graph.driver import Driver


class EntryPointDriver(Driver):
    name = "sg_ep_shared"
    tag = "entry_point"


class SetuptoolsPluggyDriver(Driver):
    name = "sg_setuptools_pluggy"
    tag = "setuptools"


def sources():
    return [(CatalogKey("sg_ep_src", 1), Source("sg_pluggy_driver", {"greeting": "entry_point"}))]


@hookimpl
def squirrel_drivers():
    return [SetuptoolsPluggyDriver]


@hookimpl
def squirrel_sources():
    return [(CatalogKey("sg_setuptools_src", 1), Source("sg_setuptools_pluggy"))]
"""

ENTRY_POINTS = """
[squirrel_graph.drivers]
ep = sg_pluggy_test_mod:EntryPointDriver

[squirrel_graph.sources]
ep = sg_pluggy_test_mod:sources

[squirrel]
sg_setuptools_plugin = sg_pluggy_test_mod
sg_missing_plugin = sg_pluggy_test_missing_mod
"""


@pytest.fixture
def installed_dist(tmp_path, monkeypatch):
    """A real distribution on sys.path with entry points in squirrel_graph's groups and in pluggy's "squirrel"."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sg_pluggy_test_mod.py").write_text(textwrap.dedent(PLUGIN_MODULE))
    dist_info = site / "sg_pluggy_test-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: sg-pluggy-test\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(site))
    clear_entry_point_cache()
    yield site
    clear_entry_point_cache()
    sys.modules.pop("sg_pluggy_test_mod", None)


def test_plugins_of_the_squirrel_entry_point_group_are_loaded_on_first_use(installed_dist, caplog):
    assert squirrel_plugin_manager.get_plugin("sg_setuptools_plugin") is None  # nothing read yet
    with caplog.at_level(logging.WARNING, logger="squirrel_graph"):
        assert get_driver_class("sg_setuptools_pluggy").tag == "setuptools"
    assert squirrel_plugin_manager.get_plugin("sg_setuptools_plugin") is sys.modules["sg_pluggy_test_mod"]
    assert Catalog.from_plugins()["sg_setuptools_src"].driver_name == "sg_setuptools_pluggy"
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "'sg_missing_plugin'" in text and "sg_pluggy_test_missing_mod" in text  # broken one named, others work
    clear_entry_point_cache()  # forgets (unregisters) what it read, so the next use reads the group again
    assert squirrel_plugin_manager.get_plugin("sg_setuptools_plugin") is None
    assert "sg_setuptools_pluggy" in list_driver_names()


def test_entry_points_and_lazy_builtins_are_not_touched_at_import():
    code = (
        "import sys\n"
        "import squirrel_graph.catalog, squirrel_graph.framework.plugins.plugin_manager as pm\n"
        "from squirrel_graph.io import builtin_drivers, pluggy_hooks\n"
        "lazy = {m for m, _ in builtin_drivers.LAZY_BUILTIN_DRIVERS.values()}\n"
        "assert not pluggy_hooks._loaded and not (lazy & set(sys.modules)), lazy & set(sys.modules)\n"
        "assert pm.get_driver_class('messagepack').name == 'messagepack'\n"
        "assert pluggy_hooks._loaded and not (lazy & set(sys.modules)), lazy & set(sys.modules)\n"
        "assert pm.get_driver_class('csv').__module__ == 'squirrel_graph.io.dataframe'\n"
        "assert 'squirrel_graph.io.dataframe' in sys.modules and 'squirrel_graph.io.zarr_driver' not in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("name", list(builtin_drivers.LAZY_BUILTIN_DRIVERS))
def test_every_lazy_builtin_is_found_under_squirrel_cores_name(name):
    module, class_name = builtin_drivers.LAZY_BUILTIN_DRIVERS[name]
    cls = get_driver_class(name)
    assert (cls.__module__, cls.__name__, cls.name) == (module, class_name, name)
    assert issubclass(cls, Driver) and cls in list_drivers() and name in list_driver_names()


def test_squirrel_cores_ten_core_drivers_and_directory_are_known():
    core = {"csv", "feather", "file", "jsonl", "messagepack", "parquet", "source_combiner", "store_driver", "excel"}
    assert core | {"zarr", "directory"} <= set(list_driver_names())


def test_a_builtin_whose_module_fails_is_reported_when_looked_up(monkeypatch, caplog):
    table = {**builtin_drivers.LAZY_BUILTIN_DRIVERS, "sg_broken": ("sg_no_such_module_xyz", "Nope")}
    monkeypatch.setattr(builtin_drivers, "LAZY_BUILTIN_DRIVERS", table)
    with pytest.raises(BuiltinDriverImportError, match=r"driver 'sg_broken' is built in.*sg_no_such_module_xyz"):
        get_driver_class("sg_broken")
    with caplog.at_level(logging.WARNING, logger="squirrel_graph"):
        names = list_driver_names()  # the others are still usable; the broken one is logged
    assert "sg_broken" not in names and "csv" in names
    assert "sg_no_such_module_xyz" in "\n".join(r.getMessage() for r in caplog.records)
    # a plugin may still provide a driver under that name: plugins rank above built-ins
    squirrel_plugin_manager.register(plugin_module("sg_fix", drivers=[driver_named("sg_broken", "fixed")]))
    assert get_driver_class("sg_broken").tag == "fixed"
