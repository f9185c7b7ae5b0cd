"""Behaviours migrating code relies on (issue: compatibility): listing a store never written, listings that hide
our metadata, numpy integers wherever an int is taken. (Monitors on short streams: tests/test_monitor.py.)"""

from __future__ import annotations

import os

import fsspec
import numpy as np
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from squirrel_graph import IterableSource
from squirrel_graph.driver import MessagepackDriver
from squirrel_graph.io.paths import FilePathGenerator
from squirrel_graph.store import SquirrelStore


def test_keys_of_a_store_never_written_are_empty_but_reading_it_is_an_error(tmp_path):
    url = str(tmp_path / "never-written")
    driver = MessagepackDriver(url)
    assert list(driver.store.keys()) == [] and list(driver.keys()) == []
    with pytest.raises(FileNotFoundError, match="never-written does not exist"):
        driver.get_iter().collect()
    driver.store.set([1, 2], key="a")
    assert list(driver.keys()) == ["a"] and driver.get_iter().collect() == [1, 2]


def test_keys_of_a_store_whose_parent_is_missing_too_raise(tmp_path):
    store = MessagepackDriver(str(tmp_path / "no-parent" / "store")).store
    with pytest.raises(FileNotFoundError, match="its parent .*no-parent' does not exist either"):
        list(store.keys())


class DeniedMemoryFileSystem(MemoryFileSystem):
    """A real in-memory filesystem whose listings are refused, as an object store without list permission."""

    protocol = ("deniedmem",)

    def ls(self, path, detail=True, **kwargs):
        raise PermissionError(f"listing {path} is not allowed")


def test_keys_where_the_parent_cannot_be_listed_raise_the_permission_error():
    fsspec.register_implementation("deniedmem", DeniedMemoryFileSystem, clobber=True)
    with pytest.raises(PermissionError, match="not allowed"):
        list(MessagepackDriver("deniedmem://bucket/store").store.keys())


def test_keys_of_an_absent_store_on_memory_and_s3_are_empty(s3_options):
    assert list(MessagepackDriver("memory://compat-nothing/here").store.keys()) == []
    bucket, options = s3_options
    driver = MessagepackDriver(f"s3://{bucket}/deep/prefix/store", storage_options=options)
    assert list(driver.store.keys()) == []
    missing_bucket = MessagepackDriver(f"s3://{bucket}-absent/store", storage_options=options)
    with pytest.raises(FileNotFoundError):
        list(missing_bucket.store.keys())


def test_listings_never_show_the_metadata_folder(tmp_path):
    url = str(tmp_path / "store")
    store = SquirrelStore(url, serializer=MessagepackDriver(url).serializer)
    store.set([1], key="a")
    store.set([2], key="sub/b")
    assert os.path.isdir(tmp_path / "store" / ".squirrel" / "counts")  # the counts are there ...
    flat = FilePathGenerator(url).collect()
    nested = FilePathGenerator(url, nested=True).collect()
    assert flat == [f"{url}/a.gz", f"{url}/sub"]  # ... but no listing shows them
    assert nested == [f"{url}/a.gz", f"{url}/sub/b.gz"]
    assert list(store.keys()) == ["a"] and list(store.keys(nested=True)) == ["a", "sub/b"]
    from squirrel_graph.store import FilesystemStore

    assert list(FilesystemStore(url).keys()) == ["a.gz", "sub/b.gz"]
    (tmp_path / "store" / ".a.gz.tmp-123").write_bytes(b"")  # a write in flight
    assert FilePathGenerator(url).collect() == flat


def test_memory_listings_hide_the_metadata_folder_too():
    url = "memory://compat-meta/store"
    store = MessagepackDriver(url).store
    store.set([1], key="x")
    listed = FilePathGenerator(url, nested=True).collect()
    assert len(listed) == 1 and listed[0].endswith("compat-meta/store/x.gz")
    assert list(store.keys(nested=True)) == ["x"]


@pytest.mark.parametrize("as_int", [np.int64, np.int32, np.uint8])
def test_numpy_integers_are_accepted_wherever_an_int_is(as_int):
    data = list(range(20))
    assert IterableSource(data).take(as_int(3)).collect() == [0, 1, 2]
    assert IterableSource(data).batched(as_int(5)).collect()[0] == [0, 1, 2, 3, 4]
    assert sorted(IterableSource(data).shuffle(as_int(4), seed=1).collect()) == data
    assert IterableSource([1, 2]).loop(as_int(2)).collect() == [1, 2, 1, 2]
    assert IterableSource([1, 2, 3]).sliding(as_int(2), deepcopy=False).collect() == [[1, 2], [2, 3]]
    assert IterableSource(["a"]).zip_index(pad_length=as_int(3)).collect() == [("000", "a")]
    assert IterableSource(data).async_map(abs, buffer=as_int(4), max_workers=as_int(2)).collect() == data
    assert IterableSource(data).prefetch(as_int(2)).collect() == data
    stream = IterableSource(data).take(as_int(4))
    assert (
        type(stream._builtin_node().n) is int
    )  # stored as a Python int: plans, fingerprints and generated code never see numpy
    assert IterableSource(data).take(np.arange(10)[7]).collect() == data[:7]


def test_numpy_integers_in_driver_arguments(tmp_path):
    url = str(tmp_path / "s")
    MessagepackDriver(url).store.set(list(range(5)), key="k")
    got = MessagepackDriver(url).get_iter(max_workers=np.int64(2), prefetch_buffer=np.int64(3)).collect()
    assert got == list(range(5))


@pytest.mark.parametrize("bad", [True, np.bool_(True), 2.0, "3"])
def test_bools_floats_and_strings_are_still_refused_by_name(bad):
    with pytest.raises(TypeError, match=r"take\(n=...\): expected an int or None"):
        IterableSource([1]).take(bad)
    with pytest.raises(TypeError, match=r"batched\(batchsize=...\)"):
        IterableSource([1]).batched(bad)


NEW_DRIVERS = {
    "csv": ("squirrel_graph.driver", "CsvDriver", {"url": "a.csv", "read_kwargs": {"sep": ";"}, "engine": "dask"}),
    "parquet": ("squirrel_graph.driver", "ParquetDriver", {"url": "a.parquet"}),
    "feather": ("squirrel_graph.driver", "FeatherDriver", {"url": "a.feather"}),
    "excel": ("squirrel_graph.driver", "ExcelDriver", {"url": "a.xlsx"}),
    "zarr": ("squirrel_graph.driver", "ZarrDriver", {"url": "a.zarr"}),
    "source_combiner": ("squirrel_graph.driver", "SourceCombiner", {"subsets": {"x": "csv-entry"}}),
    "directory": ("squirrel_graph.artifact_manager.drivers", "DirectoryDriver", {"url": "artifacts/v0"}),
}


def test_catalog_entries_for_every_new_driver_round_trip_through_yaml(tmp_path):
    import importlib

    from squirrel_graph.catalog import Catalog, Source

    cat = Catalog()
    for name, (_, _, kwargs) in NEW_DRIVERS.items():
        cat[f"{name}-entry"] = Source(name, driver_kwargs=kwargs, metadata={"kind": name})
    path = tmp_path / "catalog.yaml"
    cat.to_file(str(path))
    text = path.read_text()
    assert all(f"driver_name: {name}" in text for name in NEW_DRIVERS)  # squirrel-core's YAML tags and fields
    loaded = Catalog.from_files([str(path)])
    assert loaded == cat
    for name, (module, cls_name, kwargs) in NEW_DRIVERS.items():
        entry = loaded[f"{name}-entry"]
        assert entry.driver_kwargs == kwargs and entry.metadata == {"kind": name}
        driver = entry.get_driver()
        assert type(driver) is getattr(importlib.import_module(module), cls_name)
        assert driver.catalog is loaded
