"""Fault: keys that try to leave the store (``..``, absolute, NUL, backslash, empty segments, symlinked folders).

Every store and driver refuses them with a ValueError naming the key, for writes and reads, on a local path,
``file://``, ``memory://`` and s3, and nothing is written anywhere; keys nested inside the store keep working.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import fsspec
import pytest

from squirrel_graph.artifacts.drivers import DirectoryDriver
from squirrel_graph.artifacts.filesystem import ArtifactFileStore
from squirrel_graph.io.catalog import Catalog
from squirrel_graph.io.catalog_records import Source
from squirrel_graph.io.drivers import MessagepackDriver
from squirrel_graph.io.keys import check_key
from squirrel_graph.io.serialization import JsonSerializer, MessagepackSerializer
from squirrel_graph.io.store import FilesystemStore, SquirrelStore

BAD_KEYS = [
    "../x",
    "a/../../x",
    "..",
    "a/..",
    "/abs/x",
    "a//b",
    "a/",
    "./a",
    "a/./b",
    "..\\x",
    "a\\..\\..\\x",
    "x\x00y",
    "",
    ".squirrel/counts/k",
]


def _refused(key):
    """pytest.raises for the ValueError that names ``key``."""
    return pytest.raises(ValueError, match=re.escape(repr(key)))


def _tree(path: Path) -> set[str]:
    return {str(p) for p in path.rglob("*")}


@pytest.fixture(params=["local", "file", "memory"])
def where(request, tmp_path):
    """(store url, a function listing everything on that filesystem that the test could have written)."""
    if request.param == "memory":
        fs = fsspec.filesystem("memory")
        url = f"memory://keys-{uuid.uuid4().hex}/root/store"
        return url, lambda: set(fs.store) | set(fs.pseudo_dirs)
    base = tmp_path / "root"
    base.mkdir()
    url = str(base / "store")
    return (f"file://{url}" if request.param == "file" else url), lambda: _tree(tmp_path)


def test_check_key_accepts_nested_keys_and_refuses_each_escape():
    assert check_key("a") == "a" and check_key("train/part-1/shard.x") == "train/part-1/shard.x"
    assert check_key(7) == "7" and check_key(".hidden/x") == ".hidden/x"
    for key in BAD_KEYS:
        with _refused(key):
            check_key(key)


def test_every_write_with_a_bad_key_is_refused_and_writes_nothing(where):
    url, everything = where
    before = everything()
    squirrel = SquirrelStore(url, serializer=MessagepackSerializer())
    files = FilesystemStore(url)
    for key in BAD_KEYS:
        with _refused(key):
            squirrel.set([1, 2], key=key)
        with _refused(key):
            files.set(b"payload", key=key)
    assert everything() == before  # not even the store folder was made
    squirrel.set([1, 2], key="a/b")  # nested keys inside the store keep working
    assert list(squirrel.keys(nested=True)) == ["a/b"] and squirrel.count("a/b") == 2


def test_every_read_with_a_bad_key_is_refused_even_where_a_file_lies_there(tmp_path):
    base = tmp_path / "root"
    store_dir = base / "store"
    url = str(store_dir)
    squirrel = SquirrelStore(url, serializer=MessagepackSerializer())
    squirrel.set([1], key="inside")
    squirrel.set([5, 6], key="sub/nested")
    bait = SquirrelStore(str(base), serializer=MessagepackSerializer())
    bait.set(["secret"], key="x")  # what "../x" would reach from the store
    files = FilesystemStore(url)
    for key in ["../x", "sub/../../x", str(base / "x"), "sub//nested", "./inside", "..\\x"]:
        for read in (squirrel.get, squirrel.get_shard, squirrel.read_shard, squirrel.count, files.get):
            with _refused(key):
                read(key)
    assert squirrel.get_shard("sub/nested") == [5, 6] and files.get("sub/nested.gz")[:2] == b"\x1f\x8b"


@pytest.mark.parametrize("max_workers", [0, None])
def test_drivers_catalogs_and_keys_iterable_refuse_bad_keys(tmp_path, max_workers):
    url = str(tmp_path / "root" / "store")
    SquirrelStore(str(tmp_path / "root"), serializer=MessagepackSerializer()).set(["secret"], key="x")
    driver = MessagepackDriver(url)
    driver.store.set([1, 2], key="ok")
    for key in ["../x", "/etc/passwd", "a\\..\\..\\x"]:
        with _refused(key):
            driver.get_iter(keys_iterable=["ok", key], max_workers=max_workers).collect()
        with _refused(key):
            driver.get_iter(keys_iterable=[key], skip_corrupt=True, max_workers=max_workers).collect()
    catalog = Catalog()
    catalog["data"] = Source("messagepack", driver_kwargs={"url": url})
    with _refused("../x"):
        catalog["data"].get_driver().get_iter(keys_iterable=["../x"], max_workers=max_workers).collect()
    assert catalog["data"].get_driver().get_iter(keys_iterable=["ok"]).collect() == [1, 2]
    directory = DirectoryDriver(url)
    with _refused("../x.gz"):
        directory.get("../x.gz")
    with _refused("../x.gz"):
        directory.get_iter(keys_iterable=["../x.gz"], max_workers=max_workers).collect()
    assert directory.get_iter(keys_iterable=["ok.gz"]).collect()[0][:2] == b"\x1f\x8b"


def test_artifact_store_refuses_keys_that_leave_it(tmp_path):
    payload = tmp_path / "payload.txt"
    payload.write_bytes(b"data")
    (tmp_path / "root").mkdir()
    before = _tree(tmp_path)
    store = ArtifactFileStore(str(tmp_path / "root" / "artifacts"), serializer=JsonSerializer())
    for key in ["../escaped", "c/../../escaped", "c\\..\\..\\escaped"]:
        with _refused(key):
            store.set(payload, key=key)
        with _refused(key):
            store.set({"a": 1}, key=key)
        with _refused(key):
            store.get(key)
    assert _tree(tmp_path) == before
    store.set({"a": 1}, key="c/a/v0")
    assert store.get("c/a/v0") == {"a": 1}


def test_a_write_through_a_symlinked_folder_out_of_the_store_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    os.symlink(outside, store_dir / "link")
    squirrel = SquirrelStore(str(store_dir), serializer=MessagepackSerializer())
    with _refused("link/x"):
        squirrel.set([1], key="link/x")
    with _refused("link/x"):
        FilesystemStore(str(store_dir)).set(b"1", key="link/x")
    assert list(outside.iterdir()) == []
    SquirrelStore(str(outside), serializer=MessagepackSerializer()).set([3], key="y")
    assert squirrel.get_shard("link/y") == [3]  # reading through a symlink the store's owner made still works


def test_s3_keys_cannot_leave_the_store(s3_options):
    bucket, options = s3_options
    url = f"s3://{bucket}/root/store"
    fs = fsspec.filesystem("s3", **options)
    squirrel = SquirrelStore(url, serializer=MessagepackSerializer(), **options)
    for key in ["../x", "a/../../x", "/abs", "a//b", "..\\x", ".squirrel/counts/k"]:
        with _refused(key):
            squirrel.set([1], key=key)
        with _refused(key):
            squirrel.get_shard(key)
    fs.invalidate_cache()
    assert fs.find(bucket) == []
    squirrel.set([1, 2], key="a/b")
    assert squirrel.get_shard("a/b") == [1, 2] and list(squirrel.keys(nested=True)) == ["a/b"]
