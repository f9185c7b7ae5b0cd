"""zarr v2 support: squirrel-core's ``squirrel.zarr`` helpers and ``ZarrDriver``, on real zarr and real filesystems
(local, ``memory://`` and S3 through a moto server on 127.0.0.1)."""

from __future__ import annotations

import pickle
import subprocess
import sys
import threading
import types
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from squirrel_graph.io.zarr.key import (
    ZARR_CHUNK_PATTERN,
    flatten,
    is_dir,
    is_squirrel_key,
    is_zarr_chunk,
    is_zarr_key,
    key_end,
    normalize_key,
)
from squirrel_graph.io.zarr.lazy import import_zarr
from squirrel_graph.io.zarr_driver import ZarrDriver, fetch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def zarr():
    return pytest.importorskip("zarr")


@pytest.fixture(params=["local", "file", "memory", "s3"])
def location(request, tmp_path):
    """(url, storage options) of an empty zarr location on a real fsspec filesystem."""
    if request.param == "local":
        return str(tmp_path / "data.zarr"), {}
    if request.param == "file":
        return f"file://{tmp_path}/data.zarr", {}
    if request.param == "memory":
        return f"memory://zarr-{uuid.uuid4().hex}/data.zarr", {}
    pytest.importorskip("s3fs")
    bucket, options = request.getfixturevalue("s3_options")
    return f"s3://{bucket}/data.zarr", options


# ---------------------------------------------------------------------------------------------------- key helpers

# (key, normalize_key(key), is_dir, is_zarr_key, is_zarr_chunk, is_squirrel_key): squirrel-core 0.20.2 gives these
KEY_CASES = [
    ("", "", True, False, False, False),
    ("/", "/", True, False, False, False),
    (" a/b/ ", "a/b/", True, False, False, False),
    ("/a/b", "a/b/", True, False, False, False),
    ("//a//", "a/", True, False, False, False),
    ("a", "a/", True, False, False, False),
    ("a/.zarray", "a/.zarray", False, True, False, False),
    ("a/.zgroup", "a/.zgroup", False, True, False, False),
    (".zattrs", ".zattrs", False, True, False, False),
    ("a/b/.zarray/", "a/b/.zarray", True, False, False, False),
    ("a/0.0", "a/0.0", False, False, True, False),
    (" \ta/0.1\n", "a/0.1", False, False, True, False),
    ("200.0.40.34.89", "200.0.40.34.89", False, False, True, False),
    ("1.2abc", "1.2abc", False, False, True, False),
    ("v1.2", "v1.2/", True, False, False, False),
    ("a/0", "a/0/", True, False, False, False),
    ("data.zip", "data.zip", False, False, False, False),
    ("x/.squirrel_meta", "x/.squirrel_meta", False, False, False, True),
    (".squirrel/x", ".squirrel/x/", False, False, False, True),
    ("x/file.txt", "x/file.txt/", True, False, False, False),
]


@pytest.mark.parametrize("key, normalized, folder, meta, chunk, squirrel", KEY_CASES)
def test_key_helpers_classify_and_normalize_as_squirrel_core(key, normalized, folder, meta, chunk, squirrel):
    assert normalize_key(key) == normalized
    assert (is_dir(key), is_zarr_key(key), is_zarr_chunk(key), is_squirrel_key(key)) == (folder, meta, chunk, squirrel)


def test_normalize_key_with_another_separator_and_the_small_helpers():
    assert normalize_key(".a.b.", key_separator=".") == "a.b."
    assert normalize_key("a/b", key_separator=".") == "a/b."
    assert key_end("path/to/my.file") == "my.file"
    assert key_end("path/to/my.file", separator=".") == "file"
    assert key_end("plain") == "plain"
    assert flatten([["a", "b"], (), iter(["c"])]) == ["a", "b", "c"]
    assert ZARR_CHUNK_PATTERN.match("3.1.4") and not ZARR_CHUNK_PATTERN.match("3")


@pytest.mark.parametrize(
    "call, arg",
    [
        (lambda: normalize_key(None), "key"),
        (lambda: normalize_key("a", key_separator=""), "key_separator"),
        (lambda: key_end(b"a/b"), "key"),
        (lambda: key_end("a/b", separator=""), "separator"),
        (lambda: is_dir(3), "key"),
        (lambda: is_zarr_chunk(["0.0"]), "key"),
    ],
)
def test_key_helpers_name_a_bad_argument(call, arg):
    with pytest.raises(TypeError, match=rf"\({arg}=\.\.\.\)"):
        call()


# ---------------------------------------------------------------------------------------------- round trips


def test_write_through_the_driver_and_read_back(location, zarr):
    from squirrel_graph.io.zarr.store import suggest_compression

    url, options = location
    data = np.arange(40, dtype="i4").reshape(8, 5)
    writer = ZarrDriver(url, storage_options=options)
    root = writer.get_root_group(mode="w")
    root.array("a", data, chunks=(4, 2), compressor=suggest_compression())
    sub = root.create_group("g")
    b = sub.zeros("b", shape=(6,), chunks=(4,), dtype="f8")
    b[2:5] = [1.5, 2.5, 3.5]
    root.attrs["note"] = "hello"

    reader = ZarrDriver(url, storage_options=options)
    read = reader.get_root_group()  # mode "r"
    assert read.read_only and read.store.mode == "r"
    np.testing.assert_array_equal(read["a"][:], data)
    np.testing.assert_array_equal(read["g/b"][:], [0, 0, 1.5, 2.5, 3.5, 0])
    assert read["a"].compressor.cname == "lz4hc" and read.attrs["note"] == "hello"
    assert list(reader.keys()) == ["a", "g"]
    assert sorted(read.group_keys()) == ["g"] and sorted(read.array_keys()) == ["a"]
    assert "a/1.2" in read.store and "a/2.0" not in read.store  # "." between chunk indices (8x5 in 4x2 chunks)
    with pytest.raises(zarr.errors.ReadOnlyError):
        read["a"][0, 0] = 99
    fetched = reader.get_iter(fetcher_func=lambda group, key: (key, group[key].attrs.asdict())).collect()
    assert fetched == [("a", {}), ("g", {})]


def test_stream_of_arrays_from_s3_with_options_given_to_get_iter(s3_options, zarr):
    pytest.importorskip("s3fs")
    from squirrel_graph.io.zarr.group import get_group

    bucket, options = s3_options
    url = f"s3://{bucket}/stream.zarr"
    root = get_group(url, mode="w", **options)
    for i in range(5):
        root.array(f"s{i}", np.full((3,), i, dtype="i2"))
    so = dict(options)
    got = ZarrDriver(url).get_iter(storage_options=so, max_workers=3).map(lambda arr: arr[:]).collect()
    assert [int(a[0]) for a in got] == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(got[3], [3, 3, 3])
    assert so == options  # squirrel-core added fetcher_func to the caller's dict


def test_mode_a_keeps_data_w_keeps_data_and_overwrite_empties(tmp_path, zarr):
    from squirrel_graph.io.zarr.group import get_group

    url = str(tmp_path / "m.zarr")
    get_group(url, mode="a").array("x", np.arange(3))
    appended = get_group(url, mode="a")
    appended.array("y", np.ones(2))
    assert sorted(get_group(url, mode="r").keys()) == ["x", "y"]
    assert sorted(get_group(url, mode="w").keys()) == ["x", "y"]  # as in squirrel-core, "w" alone does not clear
    emptied = get_group(url, mode="w", overwrite=True)
    assert list(emptied.keys()) == [] and "x" not in get_group(url, mode="r")


def test_mode_errors_name_the_argument(tmp_path, zarr):
    from squirrel_graph.io.zarr.group import get_group

    url = str(tmp_path / "missing.zarr")
    with pytest.raises(zarr.errors.GroupNotFoundError, match="missing.zarr"):
        get_group(url, mode="r")
    with pytest.raises(zarr.errors.ReadOnlyError, match="overwrite=True"):
        get_group(url, mode="r", overwrite=True)
    with pytest.raises(ValueError, match=r"get_group\(mode=\.\.\.\).*'x'"):
        get_group(url, mode="x")
    with pytest.raises(TypeError, match=r"get_group\(overwrite=\.\.\.\)"):
        get_group(url, mode="a", overwrite="yes")
    assert not Path(url).exists()  # nothing was created by the refused calls
    get_group(url, mode="a").array("arr", np.arange(2))
    with pytest.raises(zarr.errors.ContainsArrayError):  # an array, not a group, lives there
        get_group(f"{url}/arr", mode="a")


# ---------------------------------------------------------------------------------------------- store and group


def test_store_arguments_are_checked(tmp_path, zarr):
    from squirrel_graph.io.zarr.store import SquirrelFSStore

    with pytest.raises(ValueError, match=r"\(url=\.\.\.\)"):
        SquirrelFSStore("")
    with pytest.raises(ValueError, match=r"\(key_separator=\.\.\.\).*'-'"):
        SquirrelFSStore(str(tmp_path), key_separator="-")
    with pytest.raises(ValueError, match=r"\(mode=\.\.\.\).*'rw'"):
        SquirrelFSStore(str(tmp_path), mode="rw")
    with pytest.raises(TypeError, match=r"\(exceptions=\.\.\.\)"):
        SquirrelFSStore(str(tmp_path), exceptions=KeyError)
    (tmp_path / "afile").write_bytes(b"x")
    with pytest.raises(zarr.errors.FSPathExistNotDir):
        SquirrelFSStore(str(tmp_path / "afile"), check_exists=True)
    assert SquirrelFSStore(str(tmp_path), check_exists=True).url == str(tmp_path)


def test_store_listdir_getsize_and_nested_chunks(location, zarr):
    from squirrel_graph.io.zarr.group import get_group
    from squirrel_graph.io.zarr.store import SquirrelFSStore

    url, options = location
    root = get_group(url, mode="w", key_separator="/", **options)
    arr = root.zeros("a", shape=(4, 4), chunks=(2, 2), dtype="u1")
    arr[:3, :] = 7
    root.create_group("1.0")  # a member whose name looks like a chunk stays listed
    store = root.store
    store.fs.pipe(f"{store.path}/.squirrel_meta", b"{}")
    assert store.listdir() == ["1.0", "a"]
    assert store.listdir("a") == ["0.0", "0.1", "1.0", "1.1"]  # nested files a/1/0 listed as chunk keys
    assert arr.nchunks_initialized == 4
    assert store.fs.exists(f"{store.path}/a/1/0") and not store.fs.exists(f"{store.path}/a/1.0")
    expected = sum(store.fs.du(f"{store.path}/a", total=False).values())
    assert store.getsize("a") == expected > 0
    read = SquirrelFSStore(url, mode="r", key_separator="/", **options)
    values = zarr.open_array(read, mode="r", path="a")[:]
    np.testing.assert_array_equal(values, np.array([[7] * 4] * 3 + [[0] * 4], dtype="u1"))


def test_group_keys_with_prefixes_and_a_sub_group(location, zarr):
    from squirrel_graph.io.zarr.group import SquirrelGroup, get_group

    url, options = location
    root = get_group(url, mode="w", **options)
    inner = root.create_group("g")
    for name in ("c", "a", "b"):
        inner.array(name, np.arange(2))
    root.array("top", np.arange(1))
    read = get_group(url, mode="r", **options)
    assert list(read.keys()) == ["g", "top"]  # sorted, .zgroup/.zattrs hidden
    for prefix in ("g", "/g/", " g ", "g/"):
        assert list(read.keys(prefix)) == ["a", "b", "c"], prefix
    assert list(read.keys("g/a")) == ["0"]
    sub = SquirrelGroup(read.store, path="g", read_only=True)
    assert list(sub.keys()) == ["a", "b", "c"]  # relative to the group (squirrel-core listed the store root)
    with pytest.raises(zarr.errors.GroupNotFoundError, match="nothere"):
        SquirrelGroup(read.store, path="nothere", read_only=True)


def test_group_keys_fall_back_to_zarr_for_a_store_without_a_filesystem(zarr):
    from squirrel_graph.io.zarr.group import SquirrelGroup

    store = zarr.storage.KVStore({})
    zarr.storage.init_group(store)
    zarr.group(store=store).create_group("s").array("v", np.arange(3))
    group = SquirrelGroup(store)
    assert list(group.keys()) == ["s"] and list(group.keys("s")) == ["v"]


def test_classes_are_zarr_classes_picklable_and_shared_by_the_compat_paths(tmp_path, zarr):
    import squirrel_graph.driver.zarr as compat_driver
    import squirrel_graph.zarr.group as compat_group
    import squirrel_graph.zarr.key as compat_key
    import squirrel_graph.zarr.store as compat_store
    import squirrel_graph.zarr.sync as compat_sync
    from squirrel_graph.io.zarr import group, store, sync

    assert compat_group.SquirrelGroup is group.SquirrelGroup and compat_group.get_group is group.get_group
    assert compat_store.SquirrelFSStore is store.SquirrelFSStore
    assert compat_sync.SquirrelThreadSynchronizer is sync.SquirrelThreadSynchronizer
    assert compat_driver.ZarrDriver is ZarrDriver and compat_driver.fetch is fetch
    assert compat_key.normalize_key is normalize_key and compat_store.suggest_compression is store.suggest_compression
    assert issubclass(group.SquirrelGroup, zarr.hierarchy.Group) and issubclass(
        store.SquirrelFSStore, zarr.storage.FSStore
    )
    assert issubclass(sync.SquirrelThreadSynchronizer, zarr.sync.ThreadSynchronizer)
    assert group.SquirrelGroup.__module__ == "squirrel_graph.io.zarr.group" and group.SquirrelGroup.__doc__
    with pytest.raises(AttributeError, match="Nope"):
        compat_group.Nope  # noqa: B018
    url = str(tmp_path / "p.zarr")
    written = group.get_group(url, mode="w")
    written.array("v", np.arange(4))
    again = pickle.loads(pickle.dumps(group.get_group(url, mode="r")))
    assert type(again) is group.SquirrelGroup and again.read_only
    np.testing.assert_array_equal(again["v"][:], np.arange(4))
    writable = pickle.loads(pickle.dumps(written))
    assert type(writable.synchronizer) is sync.SquirrelThreadSynchronizer and writable.synchronizer.locks == {}


def test_compat_paths_export_exactly_squirrel_cores_public_names(zarr):
    import importlib
    import json

    names = json.loads((ROOT / "tests" / "fixtures" / "squirrel_core_0_20_2_public_names.json").read_text())
    modules = ["zarr", "zarr.group", "zarr.key", "zarr.store", "zarr.sync", "driver.zarr"]
    for module in modules:
        mod = importlib.import_module(f"squirrel_graph.{module}")
        expected = names[f"squirrel.{module}"]
        assert sorted(getattr(mod, "__all__", [])) == sorted(expected), module
        assert all(callable(getattr(mod, n)) or n == "ZARR_CHUNK_PATTERN" for n in expected), module


# ------------------------------------------------------------------------------------------------ synchronizer


def test_concurrent_writes_into_shared_chunks_are_not_lost(location, zarr):
    """16 threads write single elements into 4 shared chunks (each a read-modify-write); without a synchronizer
    updates get lost. A tiny lock table forces locks to be dropped and re-made while writers run."""
    from squirrel_graph.io.zarr.group import get_group
    from squirrel_graph.io.zarr.sync import SquirrelThreadSynchronizer

    url, options = location
    n = 80 if url.startswith("s3://") else 200
    root = ZarrDriver(url, storage_options=options).get_root_group(mode="w")
    assert isinstance(root.synchronizer, SquirrelThreadSynchronizer)
    root.synchronizer.max_len = 2
    arr = root.zeros("counts", shape=(n,), chunks=(n // 4,), dtype="i8")
    assert arr.synchronizer is root.synchronizer

    def write(i: int) -> None:
        arr[i] = i + 1

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(write, range(n)))
    np.testing.assert_array_equal(get_group(url, mode="r", **options)["counts"][:], np.arange(1, n + 1))
    assert len(root.synchronizer.locks) <= 4  # idle locks were dropped


def test_a_lock_taken_but_not_yet_acquired_survives_eviction(zarr):
    from squirrel_graph.io.zarr.sync import SquirrelThreadSynchronizer

    sync = SquirrelThreadSynchronizer()
    assert sync.max_len == 1000
    sync.max_len = 2
    taken = sync["k"]  # a writer between taking the lock and acquiring it
    for i in range(10):
        with sync[f"other{i}"]:
            pass
    assert len(sync.locks) <= 3
    assert sync["k"] is taken  # squirrel-core had dropped it, so a second writer got a different lock
    with taken:  # the first writer
        assert taken.locked() and taken.users == 2
    with taken:  # the second writer
        assert taken.users == 1
    assert taken.users == 0
    for i in range(3):
        with sync[f"more{i}"]:
            pass
    assert "k" not in sync.locks  # released by everyone: dropped when the table is full


def test_key_lock_blocks_a_second_thread_and_counts_a_failed_try(zarr):
    from squirrel_graph.io.zarr.sync import SquirrelThreadSynchronizer

    sync = SquirrelThreadSynchronizer()
    lock = sync["chunk"]
    lock.acquire()
    result = []
    other = threading.Thread(target=lambda: result.append(sync["chunk"].acquire(timeout=0.05)))
    other.start()
    other.join()
    assert result == [False] and lock.users == 1  # the failed try gave its share back
    lock.release()
    assert lock.users == 0 and not lock.locked()
    restored = pickle.loads(pickle.dumps(sync))
    assert restored.locks == {} and restored.max_len == 1000


# ----------------------------------------------------------------------------------------------------- driver


def test_driver_arguments_caching_and_pickling(tmp_path, zarr):
    from squirrel_graph.io.zarr.store import SquirrelFSStore

    assert ZarrDriver.name == "zarr"
    with pytest.raises(ValueError, match=r"ZarrDriver\(url=\.\.\.\)"):
        ZarrDriver("")
    with pytest.raises(TypeError, match=r"ZarrDriver\(storage_options=\.\.\.\)"):
        ZarrDriver("x", storage_options=[("a", 1)])
    with pytest.warns(UserWarning, match="max_workers"):
        ZarrDriver("x", max_workers=2)
    url = str(tmp_path / "d.zarr")
    driver = ZarrDriver(url)
    with pytest.raises(TypeError, match=r"get_iter\(fetcher_func=\.\.\.\)"):
        driver.get_iter(fetcher_func="group[key]")
    with pytest.raises(TypeError, match=r"get_iter\(storage_options=\.\.\.\)"):
        driver.get_iter(storage_options="anon")
    assert not Path(url).exists()  # nothing runs before iteration
    root = driver.get_root_group(mode="a")
    assert driver.get_root_group(mode="a") is root and driver.get_root_group(mode="r") is not root
    root.array("z", np.arange(6).reshape(2, 3))
    store = driver.get_store()
    assert isinstance(store, SquirrelFSStore) and store.mode == "r" and "z/.zarray" in store
    with pytest.raises(zarr.errors.ReadOnlyError):
        store["z/.zattrs"] = b"{}"
    writable = driver.get_store(mode="w", key_separator="/")
    assert writable.key_separator == "/"
    (arr,) = driver.get("z")
    np.testing.assert_array_equal(arr[:], np.arange(6).reshape(2, 3))
    assert list(driver.get("z", fetcher_func=lambda g, k: g[k].shape)) == [(2, 3)]
    copy = pickle.loads(pickle.dumps(driver))
    assert copy._root_group is None and copy.url == url
    assert list(copy.keys()) == ["z"]
    np.testing.assert_array_equal(copy.get_iter().collect()[0][1], [3, 4, 5])
    assert copy.get_iter(flatten=False).map(lambda items: len(items)).collect() == [1]


# ------------------------------------------------------------------------------------------- without zarr (v2)


def test_missing_zarr_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "zarr", None)
    with pytest.raises(ImportError, match=r"pip install 'squirrel_graph\[zarr\]'"):
        import_zarr()
    with pytest.raises(ImportError, match=r"squirrel_graph\[zarr\]"):
        ZarrDriver("memory://nozarr").get_root_group(mode="w")


def test_zarr_3_is_refused_with_a_clear_error(monkeypatch):
    fake = types.ModuleType("zarr")
    fake.__version__ = "3.0.8"
    monkeypatch.setitem(sys.modules, "zarr", fake)
    with pytest.raises(ImportError, match=r"requires zarr<3.*zarr 3\.0\.8 is installed"):
        import_zarr()
    from squirrel_graph.io.zarr.group import get_group
    from squirrel_graph.io.zarr.store import suggest_compression

    for call in (lambda: get_group("memory://z3"), suggest_compression):
        with pytest.raises(ImportError, match="zarr<3"):
            call()


def test_every_module_imports_without_zarr():
    code = (
        "import sys\n"
        "sys.modules['zarr'] = None\n"
        "sys.modules['numcodecs'] = None\n"
        "import squirrel_graph.io.zarr.group, squirrel_graph.io.zarr.store, squirrel_graph.io.zarr.sync\n"
        "import squirrel_graph.zarr, squirrel_graph.zarr.key, squirrel_graph.zarr.store, squirrel_graph.zarr.sync\n"
        "import squirrel_graph.zarr.group as g\n"
        "from squirrel_graph.driver.zarr import ZarrDriver\n"
        "d = ZarrDriver('memory://x')\n"
        "stream = d.get_iter()\n"
        "assert squirrel_graph.zarr.key.normalize_key('/a/') == 'a/'\n"
        "try:\n"
        "    g.SquirrelGroup\n"
        "except ImportError as e:\n"
        "    print('CLASS', e)\n"
        "try:\n"
        "    stream.collect()\n"
        "except ImportError as e:\n"
        "    print('ITER', e)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "CLASS squirrel_graph's zarr support needs zarr<3" in proc.stdout
    assert "ITER" in proc.stdout and "pip install 'squirrel_graph[zarr]'" in proc.stdout.split("ITER")[1]
