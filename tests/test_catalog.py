"""Catalogs and the driver/source registries: squirrel-core's indexing, versioning, set operations, YAML format,
get_driver and plugins (register_* and real entry points), on real files in tmp_path."""

from __future__ import annotations

import json
import logging
import pickle
import sys
import textwrap

import pytest

from squirrel_graph.catalog import Catalog, CatalogKey, Source
from squirrel_graph.catalog.catalog import CatalogSource, DummyCatalogSource
from squirrel_graph.catalog.yaml import CatalogFormatError, prep_yaml, yaml_to_catalog
from squirrel_graph.driver import Driver, FileDriver, MessagepackDriver
from squirrel_graph.framework.exceptions import SourceExistsError
from squirrel_graph.framework.plugins.plugin_manager import (
    clear_entry_point_cache,
    get_driver_class,
    list_driver_names,
    register_driver,
    register_source,
)
from squirrel_graph.io import plugins
from squirrel_graph.io.catalog import CatalogConflictError

UPSTREAM_EXAMPLE = """\
!YamlCatalog
version: 0.20.2
sources:
- !YamlSource
  identifier: s
  driver_name: csv
  driver_kwargs:
    url: y.csv
  version: 2
  metadata: {}
"""


@pytest.fixture(autouse=True)
def isolated_registry(monkeypatch):
    """Every test gets its own copy of the registries; whatever it registers is gone afterwards."""
    monkeypatch.setattr(plugins, "_registered_drivers", list(plugins._registered_drivers))
    monkeypatch.setattr(plugins, "_registered_sources", list(plugins._registered_sources))
    monkeypatch.setattr(plugins, "_entry_points", None)


def csv(path: str, **metadata) -> Source:
    return Source("csv", driver_kwargs={"url": path}, metadata=metadata)


# ------------------------------------------------------------------------------------------------ Source
def test_source_defaults_and_json_repr():
    s = Source("csv")
    assert s.driver_kwargs == {} and s.metadata == {}
    assert Source("csv", None, None) == s
    assert Source("csv", {"url": "a"}) != s
    expected = {"driver_name": "csv", "driver_kwargs": {"url": "a"}, "metadata": {}}
    assert repr(Source("csv", {"url": "a"})) == json.dumps(expected, indent=2)
    with pytest.raises(TypeError):
        Source(3)  # type: ignore[arg-type]


def test_catalog_key_defaults_to_latest():
    assert CatalogKey("s") == ("s", -1)
    assert CatalogKey("s", 2).version == 2


# ------------------------------------------------------------------------------------------------ indexing
def test_setting_by_identifier_appends_versions_and_getting_returns_latest():
    cat = Catalog()
    cat["s"] = csv("a.csv")
    cat["s"] = csv("b.csv")
    assert "s" in cat and "t" not in cat
    assert isinstance(cat["s"], CatalogSource)
    assert cat["s"].version == 2 and cat["s"].driver_kwargs == {"url": "b.csv"}
    assert list(cat["s"].versions) == [1, 2]
    assert cat["s"][-1] == cat["s"] and cat["s", -1] == cat["s"]
    assert cat["s", 1].driver_kwargs == {"url": "a.csv"}
    assert cat[CatalogKey("s", 1)] == cat["s"][1]
    assert ("s", 2) in cat and ("s", 3) not in cat and CatalogKey("s") in cat
    assert len(cat) == 1


def test_versions_are_shared_between_all_versions_and_the_catalog():
    cat = Catalog()
    cat["s"] = csv("a.csv")
    first = cat["s"]
    first[5] = csv("e.csv")
    first[3] = csv("c.csv")
    assert list(cat["s"].versions) == [1, 3, 5]  # kept in version order
    assert cat["s"].version == 5 and cat["s"][3].versions is first.versions
    assert len(first) == 3 and 3 in first and -1 in first and 4 not in first
    assert [s.version for s in first] == [1, 3, 5]
    assert cat["s"][3].catalog is cat and cat["s"][3].identifier == "s"
    with pytest.raises(KeyError):
        first[4]
    with pytest.raises(ValueError):
        first[0] = csv("z.csv")
    cat["s"] = csv("f.csv")
    assert cat["s"].version == 6


def test_unknown_identifier_gives_a_dummy_that_accepts_a_version():
    cat = Catalog()
    dummy = cat["new"]
    assert isinstance(dummy, DummyCatalogSource)
    assert "new" not in cat and 1 not in dummy and len(dummy) == 0
    dummy[3] = csv("x.csv")
    assert "new" in cat and cat["new"].version == 3 and 3 in dummy
    dummy[4] = csv("y.csv")  # squirrel-core's dummy replaced the whole entry here and lost version 3
    assert list(cat["new"].versions) == [3, 4]
    with pytest.raises(KeyError):
        cat["other"][1]
    with pytest.raises(KeyError, match="other"):
        cat["other"].get_driver()
    assert cat.get("other") is None and cat.get("new") == cat["new"]


def test_getting_an_unknown_version_or_identifier_by_pair_raises_keyerror():
    cat = Catalog()
    cat["s"] = csv("a.csv")
    with pytest.raises(KeyError):
        cat["t", 1]
    with pytest.raises(KeyError):
        cat["s", 2]
    with pytest.raises(KeyError):
        cat[CatalogKey("t")]


def test_wrong_identifier_type():
    cat = Catalog()
    cat["s"] = csv("a.csv")
    with pytest.raises(TypeError):
        cat[1337]  # type: ignore[index]
    with pytest.raises(KeyError):
        cat[1337, 1]  # type: ignore[index]
    with pytest.raises(KeyError):
        cat["s", "-1"]  # type: ignore[index]
    with pytest.raises(TypeError):
        cat[1337] = csv("a.csv")  # type: ignore[index]
    with pytest.raises(TypeError):
        cat["s"] = {"driver_name": "csv"}  # type: ignore[assignment]
    assert 1337 not in cat


def test_setting_a_version_sets_or_overwrites_it_and_needs_a_positive_int():
    cat = Catalog()
    cat["s", 2] = csv("a.csv")
    assert list(cat["s"].versions) == [2]
    cat["s", 2] = csv("b.csv")
    assert cat["s", 2].driver_kwargs == {"url": "b.csv"}
    cat[CatalogKey("s", 1)] = csv("c.csv")
    assert list(cat["s"].versions) == [1, 2] and cat["s"].version == 2
    for bad in (0, -1, -5):
        with pytest.raises(ValueError):
            cat["s", bad] = csv("x.csv")
    with pytest.raises(TypeError):
        cat["s", "3"] = csv("x.csv")  # type: ignore[index]


def test_deleting_one_version_or_all():
    cat = Catalog()
    cat["s"] = csv("a.csv")
    cat["s"] = csv("b.csv")
    cat["s"] = csv("c.csv")
    del cat["s", -1]
    assert list(cat["s"].versions) == [1, 2]
    del cat["s"][1]
    assert list(cat["s"].versions) == [2]
    del cat["s", 2]  # the last version: the identifier goes too
    assert "s" not in cat and len(cat) == 0
    cat["t"] = csv("a.csv")
    del cat["t"][1]  # through the CatalogSource as well
    assert "t" not in cat
    cat["u"] = csv("a.csv")
    cat["u"] = csv("b.csv")
    del cat["u"]
    assert "u" not in cat
    with pytest.raises(KeyError):
        del cat["u"]
    with pytest.raises(KeyError):
        del cat["u", 1]


def test_iteration_yields_identifier_and_latest():
    cat = Catalog()
    cat["b"] = csv("b1.csv")
    cat["b"] = csv("b2.csv")
    cat["a"] = csv("a.csv")
    assert [(i, s.version) for i, s in cat] == [("b", 2), ("a", 1)]
    assert [(i, s.version) for i, s in cat.items()] == [("b", 2), ("a", 1)]
    assert list(cat.keys()) == ["b", "a"] and len(cat) == 2
    assert [s.version for s in cat.values()] == [2, 1]
    assert {i: s.version for i, s in cat.sources.items()} == {"b": 2, "a": 1}


def test_repr_is_the_case_insensitively_sorted_identifiers():
    cat = Catalog()
    for ident in ("c", "B", "ab", "a"):
        cat[ident] = csv(f"{ident}.csv")
    assert repr(cat) == "['a', 'ab', 'B', 'c']"
    assert repr(Catalog()) == "[]"


def test_catalog_source_repr_and_equality():
    cat = Catalog()
    cat["s"] = csv("a.csv", owner="me")
    text = repr(cat["s"])
    assert '"identifier": "s"' in text and '"version": 1' in text and '"owner": "me"' in text
    other = Catalog()
    other["s"] = csv("a.csv", owner="me")
    assert cat["s"] == other["s"]
    other["s", 1] = Source("jsonl", {"url": "a.csv"}, {"owner": "me"})
    assert cat["s"] != other["s"]  # squirrel-core ignored driver_name here
    assert cat["s"] != Source("csv", {"url": "a.csv"}, {"owner": "me"})


# ------------------------------------------------------------------------------------------------ mapping helpers
def test_mapping_helpers_work_with_pairs_iteration():
    cat = Catalog()
    cat["a"] = csv("a.csv")
    cat["a"] = csv("a2.csv")
    cat["b"] = csv("b.csv")
    assert cat.pop("a").version == 2 and "a" not in cat
    assert cat.pop("a", None) is None
    assert cat.setdefault("c", csv("c.csv")).version == 1
    other = Catalog()
    other["x", 4] = csv("x.csv")
    cat.update(other)
    assert cat["x"].version == 4
    ident, latest = cat.popitem()
    assert ident == "x" and latest.version == 4
    cat.clear()
    assert len(cat) == 0


# ------------------------------------------------------------------------------------------------ set operations
def make_pair() -> tuple[Catalog, Catalog]:
    cat1 = Catalog()
    cat1["s0"] = csv("./test0.csv")
    cat1["s1"] = csv("./test1.csv")
    cat1["s2"] = csv("./test2.csv")
    cat2 = Catalog()
    cat2["s0"] = csv("./test0.csv")
    cat2["s1"][1] = csv("./test1.csv")
    cat2["s1"][2] = csv("./test11.csv")
    cat2["s3"] = csv("./test3.csv")
    return cat1, cat2


def test_copy_is_deep_and_equal():
    cat = Catalog()
    cat["s"] = Source("csv", {"url": "a.csv", "storage_options": {"x": [1]}})
    cat["s"] = Source("csv", {"url": "a.csv"})
    copied = cat.copy()
    assert copied == cat and cat == cat and copied["s"] == cat["s"]
    copied["s", 1].driver_kwargs["storage_options"]["x"].append(2)
    assert cat["s", 1].driver_kwargs["storage_options"] == {"x": [1]}
    assert copied["s"].catalog is copied
    assert cat != Catalog() and cat != {"s": cat["s"]}


def test_set_operations():
    cat1, cat2 = make_pair()
    intersection = cat1.intersection(cat2)
    assert sorted(intersection.keys()) == ["s0", "s1"] and len(intersection["s1"].versions) == 1

    union = cat1.union(cat2)
    assert sorted(union.keys()) == ["s0", "s1", "s2", "s3"] and len(union["s1"].versions) == 2

    difference = cat1.difference(cat2)  # symmetric, per (identifier, version)
    assert sorted(difference.keys()) == ["s1", "s2", "s3"]
    assert list(difference["s1"].versions) == [2]
    assert cat2.difference(cat1) == difference

    sliced = cat2.slice(["s1"])
    assert len(sliced) == 1 and len(sliced["s1"].versions) == 2
    assert len(cat1.slice(["s1"])["s1"].versions) == 1
    with pytest.raises(KeyError):
        cat1.slice(["nope"])

    assert intersection.join(difference) == union

    only_v1 = cat2.filter(lambda s: s.version == 1)
    assert len(only_v1) == 3 and all(s.version == 1 for _, s in only_v1.items())

    union["s0"].driver_kwargs["url"] = "changed"  # results are deep copies
    assert cat1["s0"].driver_kwargs["url"] == "./test0.csv"


def test_union_keeps_others_source_and_join_refuses_overlaps():
    cat1, cat2 = make_pair()
    cat1["s1", 2] = csv("mine.csv")
    assert cat1.union(cat2)["s1", 2].driver_kwargs == {"url": "./test11.csv"}
    with pytest.raises(CatalogConflictError, match="s0"):
        cat1.join(cat2)
    with pytest.raises(AssertionError):  # what squirrel-core raised
        cat1.join(cat2)
    with pytest.raises(SourceExistsError):
        cat1.intersection(cat2)  # same key, different sources


# ------------------------------------------------------------------------------------------------ YAML
def test_upstream_example_loads_and_is_what_we_write():
    cat = Catalog.from_str(UPSTREAM_EXAMPLE)
    assert list(cat.keys()) == ["s"] and list(cat["s"].versions) == [2]
    assert cat["s"].driver_name == "csv" and cat["s"].driver_kwargs == {"url": "y.csv"}
    written = cat.to_str()
    assert written.startswith("# written by squirrel_graph ")
    assert written.split("\n", 1)[1] == UPSTREAM_EXAMPLE


def test_yaml_round_trip_through_files(tmp_path):
    cat = Catalog()
    cat["s"] = Source("messagepack", {"url": "memory://x", "storage_options": {"anon": True}}, {"desc": "a: b"})
    cat["s"] = Source("messagepack", {"url": "memory://y"})
    cat["t", 7] = Source("file", {"url": "f.txt"}, {"n": [1, 2.5, None], "text": "héllo ✓"})
    path = tmp_path / "example.yaml"
    cat.to_file(str(path))
    assert path.read_text().split("\n")[1:3] == ["!YamlCatalog", "version: 0.20.2"]
    loaded = Catalog.from_files([str(path)])
    assert loaded == cat
    assert loaded["t", 7].metadata == {"n": [1, 2.5, None], "text": "héllo ✓"}


def test_shared_kwargs_are_written_without_anchors():
    kwargs = {"url": "a.csv"}
    cat = Catalog()
    cat["s"] = Source("csv", kwargs)
    cat["s"] = Source("csv", kwargs)
    text = cat.to_str()
    assert "&" not in text and "*" not in text
    assert Catalog.from_str(text) == cat


def test_from_files_joins_and_from_dirs_reads_yaml_files(tmp_path):
    cat1, cat2 = make_pair()
    (tmp_path / "a.yaml").write_text(cat1.slice(["s0", "s2"]).to_str())
    (tmp_path / "b.yaml").write_text(cat2.slice(["s3"]).to_str())
    (tmp_path / "notes.txt").write_text("not a catalog")
    joined = Catalog.from_files([str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")])
    assert sorted(joined.keys()) == ["s0", "s2", "s3"]
    assert Catalog.from_dirs([str(tmp_path)]) == joined
    assert Catalog.from_dirs([f"file://{tmp_path}"]) == joined
    (tmp_path / "c.yaml").write_text(cat2.slice(["s0"]).to_str())  # s0 v1 again
    with pytest.raises(CatalogConflictError, match="c.yaml"):
        Catalog.from_dirs([str(tmp_path)])
    with pytest.raises(FileNotFoundError):
        Catalog.from_dirs([str(tmp_path / "missing")])


def test_squirrel_core_test_fixture_text_loads():
    text = """
    !YamlCatalog
    version: 0.4.0
    sources:
    - !YamlSource
      identifier: cs
      driver_name: csv
      driver_kwargs:
        path: /tmp/test.csv
    """
    cat = Catalog.from_str(text)
    assert cat["cs"].version == 1 and cat["cs"].metadata == {}
    assert cat["cs"].driver_kwargs == {"path": "/tmp/test.csv"}


@pytest.mark.parametrize("version", ["0.4", "0.10", "0.20.2", "1.0", "0.20.2.dev1", "v0.5.0", "2"])
def test_any_version_from_0_4_on_loads(version):
    text = UPSTREAM_EXAMPLE.replace("0.20.2", version)
    assert Catalog.from_str(text)["s"].version == 2


@pytest.mark.parametrize("version", ["0.3.9", "0.1.0", "0.3"])
def test_versions_before_0_4_are_refused(version):
    with pytest.raises(CatalogFormatError, match="older than 0.4"):
        Catalog.from_str(UPSTREAM_EXAMPLE.replace("0.20.2", version))


@pytest.mark.parametrize(
    "text, message",
    [
        (UPSTREAM_EXAMPLE.replace("0.20.2", "banana"), "not a version number"),
        (UPSTREAM_EXAMPLE.replace("  metadata: {}", "  colour: red"), "unknown field"),
        (UPSTREAM_EXAMPLE.replace("  identifier: s\n", ""), "'identifier' must be a string"),
        (UPSTREAM_EXAMPLE.replace("version: 2", "version: 0"), "positive int"),
        (UPSTREAM_EXAMPLE + "- !YamlSource\n  identifier: s\n  driver_name: csv\n  version: 2\n", "twice"),
        ("", "empty"),
    ],
)
def test_malformed_documents_are_refused_clearly(text, message):
    with pytest.raises((CatalogFormatError, CatalogConflictError), match=message):
        Catalog.from_str(text)


def test_unsafe_tags_are_refused():
    import yaml

    with pytest.raises(yaml.YAMLError):
        Catalog.from_str("!!python/object/apply:os.system ['echo hi']")


def test_untagged_documents_and_catalog_keys_load():
    cat = yaml_to_catalog("version: 0.20.2\nsources:\n- identifier: s\n  driver_name: csv\n  version: 3\n")
    assert cat["s"].version == 3
    io_yaml = prep_yaml()
    text = io_yaml.dump({"key": CatalogKey("s", 2)})
    assert "!CatalogKey" in text
    assert io_yaml.load(text) == {"key": CatalogKey("s", 2)}
    assert isinstance(io_yaml.load(text)["key"], CatalogKey)


# ------------------------------------------------------------------------------------------------ get_driver
def test_get_driver_merges_storage_options(tmp_path):
    cat = Catalog()
    cat["s"] = Source("messagepack", {"url": str(tmp_path), "storage_options": {"a": 1}})
    driver = cat["s"].get_driver(storage_options={"b": 2})
    assert isinstance(driver, MessagepackDriver)
    assert driver.storage_options == {"a": 1, "b": 2}
    assert driver.url == str(tmp_path) and driver.catalog is cat
    assert cat["s"].get_driver(storage_options={"a": 3}).storage_options == {"a": 3}
    assert cat["s"].get_driver().storage_options == {"a": 1}
    assert cat["s"].driver_kwargs["storage_options"] == {"a": 1}  # the source is not changed


def test_get_driver_without_storage_options_passes_an_empty_dict(tmp_path):
    source = Source("file", {"url": str(tmp_path / "f.txt")})
    driver = CatalogSource(source, source.driver_name, None).get_driver()
    assert isinstance(driver, FileDriver) and driver.storage_options == {}
    assert isinstance(driver.catalog, Catalog) and len(driver.catalog) == 0  # a None catalog


def test_unknown_driver_is_a_valueerror_naming_the_known_ones():
    cat = Catalog.from_str(UPSTREAM_EXAMPLE.replace("driver_name: csv", "driver_name: nodriver"))  # loads fine
    with pytest.raises(ValueError, match=r"driver 'nodriver' not found.*csv.*messagepack"):
        cat["s"].get_driver()
    with pytest.raises(ValueError, match="nope"):
        get_driver_class("nope")


def test_builtin_drivers_are_registered():
    names = list_driver_names()
    assert {"messagepack", "jsonl", "store_driver", "file"} <= set(names)
    assert len(names) == len(set(names))
    assert get_driver_class("messagepack") is MessagepackDriver


def test_full_read_through_the_catalog(tmp_path):
    url = str(tmp_path / "store")
    samples = [{"x": i, "name": f"n{i}"} for i in range(5)]
    MessagepackDriver(url).store.set(samples, key="k0")
    MessagepackDriver(url).store.set(samples[:2], key="k1")
    cat = Catalog()
    cat["data"] = Source("messagepack", {"url": url}, {"owner": "tests"})
    assert cat["data"].get_driver().get_iter().collect() == samples + samples[:2]
    path = tmp_path / "cat.yaml"
    cat.to_file(str(path))
    assert Catalog.from_files([str(path)])["data"].get_driver().get_iter().map(lambda s: s["x"]).collect() == [
        0,
        1,
        2,
        3,
        4,
        0,
        1,
    ]


def test_catalogs_and_their_drivers_pickle(tmp_path):
    url = str(tmp_path / "store")
    MessagepackDriver(url).store.set([{"x": 1}], key="k0")
    cat = Catalog()
    cat["data"] = Source("messagepack", {"url": url})
    cat["data"] = Source("messagepack", {"url": url}, {"v": 2})
    clone = pickle.loads(pickle.dumps(cat))
    assert clone == cat and clone["data"].catalog is clone and clone["data"].versions is clone["data", 1].versions
    stream = pickle.loads(pickle.dumps(cat["data"].get_driver().get_iter()))
    assert stream.collect() == [{"x": 1}]


# ------------------------------------------------------------------------------------------------ register_*
class GreetingDriver(Driver):
    name = "testdriver"

    def __init__(self, welcome: str, storage_options=None, catalog=None, **kwargs) -> None:
        super().__init__(catalog=catalog, **kwargs)
        self.welcome = welcome
        self.storage_options = storage_options

    def say_hi(self) -> str:
        return f"Hello {self.welcome}!"


def test_register_driver_and_source():
    assert register_driver(GreetingDriver) is GreetingDriver
    assert "testdriver" in list_driver_names()
    cat = Catalog()
    cat["test"] = Source("testdriver", driver_kwargs={"welcome": "Squirrel"})
    driver = cat["test"].get_driver()
    assert driver.say_hi() == "Hello Squirrel!" and driver.storage_options == {}

    s = Source("csv", driver_kwargs={"path": "./test1.csv"}, metadata={"hello": "world"})
    register_source("mysource", s)
    register_source("mysource", Source("csv", metadata={"hello": "again"}), version=2)
    from_plugins = Catalog.from_plugins()
    assert from_plugins["mysource"].metadata["hello"] == "again"
    assert from_plugins["mysource", 1].metadata["hello"] == "world"
    from_plugins["mysource", 1].metadata["hello"] = "changed"  # the registered source is not touched
    assert s.metadata["hello"] == "world"


def test_later_registration_wins_for_sources():
    register_source("dup", Source("csv", metadata={"n": 1}))
    register_source("dup", Source("csv", metadata={"n": 2}))
    register_source("dup", Source("csv", metadata={"n": 3}), version=-1)
    cat = Catalog.from_plugins()
    assert cat["dup", 1].metadata == {"n": 2} and cat["dup"].version == 2 and cat["dup"].metadata == {"n": 3}


def test_register_driver_shadows_a_builtin(tmp_path):
    class LoudMessagepack(MessagepackDriver):
        name = "messagepack"

    register_driver(LoudMessagepack)
    assert get_driver_class("messagepack") is LoudMessagepack
    assert list_driver_names().count("messagepack") == 1
    cat = Catalog()
    cat["s"] = Source("messagepack", {"url": str(tmp_path)})
    assert type(cat["s"].get_driver()) is LoudMessagepack


def test_registry_changes_do_not_leak_between_tests():
    assert "testdriver" not in list_driver_names()
    assert get_driver_class("messagepack") is MessagepackDriver
    assert "mysource" not in Catalog.from_plugins()


def test_register_validates_its_arguments():
    with pytest.raises(TypeError):
        register_driver(object)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        register_source("s", {"driver_name": "csv"})  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        register_source("s", Source("csv"), version=0)


# ------------------------------------------------------------------------------------------------ entry points
PLUGIN_MODULE = """
from squirrel_graph.catalog import CatalogKey, Source
from squirrel_graph.driver import Driver


class PluginDriver(Driver):
    name = "sg_test_plugin_driver"

    def __init__(self, welcome, storage_options=None, catalog=None, **kwargs):
        super().__init__(catalog=catalog, **kwargs)
        self.welcome = welcome
        self.storage_options = storage_options


class NotADriver:
    name = "not_a_driver"


def sources():
    return [
        (CatalogKey("sg_test_plugin_source", 1), Source("sg_test_plugin_driver", {"welcome": "plugin"}, {"k": 1})),
        ("garbage",),
    ]


def broken_sources():
    raise RuntimeError("boom")
"""

ENTRY_POINTS = """
[squirrel_graph.drivers]
plugin = sg_test_plugin_mod:PluginDriver
missing = sg_test_plugin_missing_mod:Nope
wrong = sg_test_plugin_mod:NotADriver

[squirrel_graph.sources]
plugin = sg_test_plugin_mod:sources
raises = sg_test_plugin_mod:broken_sources
"""


@pytest.fixture
def installed_plugin(tmp_path, monkeypatch):
    """A real distribution on sys.path: a module plus a dist-info folder with entry points."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sg_test_plugin_mod.py").write_text(textwrap.dedent(PLUGIN_MODULE))
    dist_info = site / "sg_test_plugin-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: sg-test-plugin\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(site))
    clear_entry_point_cache()
    yield site
    clear_entry_point_cache()
    sys.modules.pop("sg_test_plugin_mod", None)


def test_entry_point_driver_and_source(installed_plugin, caplog):
    with caplog.at_level(logging.WARNING, logger="squirrel_graph.io.plugins"):
        names = list_driver_names()
        cat = Catalog.from_plugins()
    assert "sg_test_plugin_driver" in names and "not_a_driver" not in names
    assert {"messagepack", "jsonl", "store_driver", "file"} <= set(names)  # the built-ins are still there
    assert "sg_test_plugin_source" in cat and cat["sg_test_plugin_source"].metadata == {"k": 1}
    driver = cat["sg_test_plugin_source"].get_driver(storage_options={"x": 1})
    assert type(driver).__name__ == "PluginDriver" and driver.welcome == "plugin"
    assert driver.storage_options == {"x": 1} and driver.catalog is cat
    warnings = "\n".join(r.getMessage() for r in caplog.records)
    assert "'missing'" in warnings and "sg_test_plugin_missing_mod" in warnings  # broken ones are named ...
    assert "'wrong'" in warnings and "'raises'" in warnings and "garbage" in warnings


def test_entry_points_are_read_once_and_cached(installed_plugin):
    assert "sg_test_plugin_driver" in list_driver_names()
    first = plugins._entry_points
    assert first is not None
    list_driver_names()
    Catalog.from_plugins()
    assert plugins._entry_points is first
    clear_entry_point_cache()
    assert plugins._entry_points is None


def test_entry_points_are_not_read_at_import():
    import subprocess

    code = (
        "import squirrel_graph.catalog, squirrel_graph.framework.plugins.plugin_manager as pm\n"
        "from squirrel_graph.io import plugins\n"
        "assert plugins._entry_points is None\n"
        "pm.list_driver_names()\n"
        "assert plugins._entry_points is not None\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_register_driver_shadows_an_entry_point_driver(installed_plugin):
    class Replacement(GreetingDriver):
        name = "sg_test_plugin_driver"

    register_driver(Replacement)
    assert get_driver_class("sg_test_plugin_driver") is Replacement
    assert Catalog.from_plugins()["sg_test_plugin_source"].get_driver().say_hi() == "Hello plugin!"
