"""Artifact managers on real filesystems (local, file://, memory://, S3 on a local moto server) and W&B offline."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import struct
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import fsspec
import pytest

from squirrel_graph.artifacts.base import (
    ArtifactNotFoundError,
    DirectoryLogger,
    InvalidArtifactVersionError,
    TmpArtifact,
    parse_version,
)
from squirrel_graph.artifacts.drivers import DirectoryDriver
from squirrel_graph.artifacts.filesystem import FileSystemArtifactManager
from squirrel_graph.io import plugins
from squirrel_graph.io.drivers import StoreDriver

# ------------------------------------------------------------------------------------------------ fixtures


def _tree(root: Path) -> dict[str, bytes]:
    """{relative POSIX path: bytes} of every file below ``root``."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def folder(tmp_path) -> Path:
    """A local folder with nested files and binary content."""
    root = tmp_path / "src" / "data"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"alpha")
    (root / "sub" / "b.bin").write_bytes(bytes(range(256)))
    (root / "sub" / "deeper" / "c.json").write_bytes(b'{"c": 3}')
    return root


@pytest.fixture(params=["local", "file", "memory", "s3"])
def store(request, tmp_path):
    """(url, storage options) of a fresh artifact store on each kind of filesystem."""
    if request.param == "local":
        yield str(tmp_path / "store"), {}
    elif request.param == "file":
        yield f"file://{tmp_path}/store", {}
    elif request.param == "memory":
        url = f"memory://am-{uuid.uuid4().hex}"
        yield url, {}
        fs = fsspec.filesystem("memory")
        if fs.exists(url):
            fs.rm(url, recursive=True)
    else:
        pytest.importorskip("s3fs")
        pytest.importorskip("moto")
        bucket, options = request.getfixturevalue("s3_options")
        yield f"s3://{bucket}/artifacts", options


@pytest.fixture
def manager(store) -> FileSystemArtifactManager:
    url, options = store
    return FileSystemArtifactManager(url, **options)


@pytest.fixture
def directory_registered(monkeypatch):
    """Make catalogs find the "directory" driver for this test only (registering it is the registry's job)."""
    if "directory" not in plugins.list_driver_names():
        monkeypatch.setattr(plugins, "_registered_drivers", [*plugins._registered_drivers])
        plugins.register_driver(DirectoryDriver)
    return plugins.get_driver_class("directory")


# ------------------------------------------------------------------------------------------------ filesystems


def test_log_a_file_and_a_folder_then_download_them(manager, folder, tmp_path):
    first = tmp_path / "model.bin"
    first.write_bytes(b"weights-1")
    src = manager.log_files("model", first)
    assert (src.driver_name, src.identifier, src.version) == ("directory", "default/model", 1)
    assert src.metadata == {"collection": "default", "artifact": "model", "version": "v0"}
    assert src.driver_kwargs["url"].endswith("/default/model/v0/files")

    first.write_bytes(b"weights-2")
    src = manager.log_files("model", first)
    assert (src.metadata["version"], src.version) == ("v1", 2)

    src = manager.log_files("data", folder, collection="exp-1")
    assert (src.metadata["version"], src.identifier) == ("v0", "exp-1/data")

    out = tmp_path / "out"
    assert manager.download_artifact("model", to=out) == out / "model"
    assert _tree(out / "model") == {"model.bin": b"weights-2"}  # latest
    assert manager.download_artifact("model", version="v0", to=tmp_path / "out0") == tmp_path / "out0" / "model"
    assert _tree(tmp_path / "out0" / "model") == {"model.bin": b"weights-1"}
    assert manager.download_artifact("model", version="latest", to=tmp_path / "outl") == tmp_path / "outl" / "model"
    assert _tree(tmp_path / "outl" / "model") == {"model.bin": b"weights-2"}

    manager.download_artifact("data", "exp-1", to=out)
    assert _tree(out / "data") == _tree(folder)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging folder left behind


def test_artifact_path_places_files_inside_the_artifact(manager, folder, tmp_path):
    one = tmp_path / "x.txt"
    one.write_bytes(b"x")
    manager.log_files("named", one, artifact_path=Path("nested/renamed.txt"))
    manager.log_files("under", folder, artifact_path="prefix")
    manager.download_artifact("named", to=tmp_path / "o")
    manager.download_artifact("under", to=tmp_path / "o")
    assert _tree(tmp_path / "o" / "named") == {"nested/renamed.txt": b"x"}
    assert _tree(tmp_path / "o" / "under") == {f"prefix/{k}": v for k, v in _tree(folder).items()}


def test_exists_collections_and_catalogs(manager, folder, tmp_path):
    assert list(manager.list_collection_names()) == []
    assert not manager.exists("data")
    manager.log_files("data", folder, "exp-1")
    manager.log_files("data", folder, "exp-1")
    manager.log_files("other", folder)

    assert list(manager.list_collection_names()) == ["default", "exp-1"]
    assert manager.exists("data") and manager.exists("other") and not manager.exists("nope")
    assert manager.exists_in_collection("data", "exp-1")
    assert not manager.exists_in_collection("data")  # the active collection is "default"
    manager.active_collection = "exp-1"
    assert manager.exists_in_collection("data")

    cat = manager.collection_to_catalog("exp-1")
    assert list(cat.keys()) == ["exp-1/data"]
    assert sorted(cat["exp-1/data"].versions) == [1, 2]
    assert cat["exp-1/data", 1].metadata["version"] == "v0"
    everything = manager.store_to_catalog()
    assert sorted(everything.keys()) == ["default/other", "exp-1/data"]

    got = manager.download_collection("exp-1", to=tmp_path / "all")
    assert sorted(got.keys()) == ["exp-1/data"]
    assert _tree(tmp_path / "all" / "data") == _tree(folder)


def test_the_directory_driver_reads_a_logged_folder(manager, folder, directory_registered):
    src = manager.log_files("data", folder)
    expected = _tree(folder)

    driver = DirectoryDriver(**src.driver_kwargs)
    assert list(driver.keys()) == sorted(expected)
    assert driver.get("sub/b.bin") == expected["sub/b.bin"]
    assert driver.get_iter().collect() == [expected[k] for k in sorted(expected)]  # one bytes item per file

    via_catalog = manager.collection_to_catalog()["default/data"].get_driver()
    assert isinstance(via_catalog, DirectoryDriver)
    assert via_catalog.get_iter(max_workers=2).collect() == [expected[k] for k in sorted(expected)]


def test_download_without_target_is_a_temporary_folder(manager, folder):
    manager.log_files("data", folder)
    tmp = manager.download_artifact("data")
    assert isinstance(tmp, TmpArtifact) and tmp.tempdir is None  # nothing touched before entering
    with tmp as path:
        assert path.name == "data"
        assert _tree(path) == _tree(folder)
    assert not path.exists()


def test_log_folder_logs_on_a_clean_exit_only(manager):
    with manager.log_folder("made") as path:
        (path / "f.bin").write_bytes(b"\x00\x01")
    assert manager.exists_in_collection("made")

    with manager.log_folder("empty"):
        pass
    assert not manager.exists("empty")

    logger = manager.log_folder("failed")
    with pytest.raises(RuntimeError, match="boom"), logger as path:
        (path / "half.bin").write_bytes(b"half")
        raise RuntimeError("boom")
    assert isinstance(logger, DirectoryLogger) and logger.source is None
    assert not manager.exists("failed")


def test_errors_name_the_artifact_collection_and_version(manager, folder, tmp_path):
    manager.log_files("data", folder)
    with pytest.raises(ArtifactNotFoundError, match=r"'nope'.*collection 'default'.*artifacts there: \['data'\]"):
        manager.download_artifact("nope", to=tmp_path)
    with pytest.raises(ArtifactNotFoundError, match=r"'data'.*no version 'v7'.*\['v0'\]"):
        manager.get_artifact_source("data", version="v7")
    with pytest.raises(ValueError):  # squirrel-core raised ValueError here too
        manager.get_artifact_source("nope")
    for bad in ("7", "V1", "v01", "v-1", "newest"):
        with pytest.raises(InvalidArtifactVersionError, match=rf"bad version '{bad}' for artifact 'data'"):
            manager.download_artifact("data", version=bad, to=tmp_path)
    with pytest.raises(ValueError, match="invalid collection name 'a/b'"):
        manager.log_files("data", folder, collection="a/b")
    with pytest.raises(ValueError, match="invalid collection name"):
        FileSystemArtifactManager(str(tmp_path / "x"), collection="")
    with pytest.raises(ValueError, match="invalid artifact name"):
        manager.log_files("a/b", folder)
    with pytest.raises(ValueError, match="does not exist"):
        manager.log_files("data", tmp_path / "missing")
    with pytest.raises(ValueError, match="relative path inside the artifact"):
        manager.log_files("data", folder, artifact_path="../escape")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="holds no files"):
        manager.log_files("data", empty)
    with pytest.raises(NotImplementedError, match="log_files"):
        manager.log_artifact({"a": 1}, "obj")
    with pytest.raises(NotImplementedError, match="download_artifact"):
        manager.get_artifact("data")
    assert [s.metadata["version"] for s in manager.collection_to_catalog()["default/data"]] == ["v0"]


def test_parse_version():
    assert parse_version(None) is None and parse_version("latest") is None
    assert parse_version("v0") == 0 and parse_version("v12") == 12
    with pytest.raises(InvalidArtifactVersionError, match="'x'.*'c'"):
        parse_version("v", artifact="x", collection="c")


# ------------------------------------------------------------------------------------------------ local disks


def test_a_failed_local_log_leaves_no_version(tmp_path, folder, monkeypatch):
    manager = FileSystemArtifactManager(str(tmp_path / "store"))
    real = shutil.copyfile
    calls = []

    def failing(src, dst, *args, **kwargs):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(shutil, "copyfile", failing)
    with pytest.raises(OSError, match="disk full"):
        manager.log_files("data", folder)
    assert not manager.exists("data")
    assert list((tmp_path / "store" / "default" / "data").iterdir()) == []  # the staging folder is gone


def test_concurrent_local_writers_get_distinct_complete_versions(tmp_path, folder):
    url = str(tmp_path / "store")
    results: list[str] = []
    errors: list[BaseException] = []

    def log():
        try:
            results.append(FileSystemArtifactManager(url).log_files("data", folder).metadata["version"])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=log) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(results, key=lambda v: int(v[1:])) == [f"v{i}" for i in range(8)]
    manager = FileSystemArtifactManager(url)
    for i in range(8):
        target = tmp_path / f"out{i}"
        manager.download_artifact("data", version=f"v{i}", to=target)
        assert _tree(target / "data") == _tree(folder)


def test_a_writer_that_loses_the_race_for_a_version_takes_the_next(tmp_path, folder, monkeypatch):
    url = str(tmp_path / "store")
    rival = tmp_path / "rival.txt"
    rival.write_bytes(b"rival")
    real_rename = os.rename

    def rival_first(src, dst):  # another writer publishes v0 between our listing and our rename
        monkeypatch.setattr(os, "rename", real_rename)
        assert FileSystemArtifactManager(url).log_files("data", rival).metadata["version"] == "v0"
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rival_first)
    assert FileSystemArtifactManager(url).log_files("data", folder).metadata["version"] == "v1"
    manager = FileSystemArtifactManager(url)
    assert _tree(manager.download_artifact("data", version="v0", to=tmp_path / "o0")) == {"rival.txt": b"rival"}
    assert _tree(manager.download_artifact("data", version="v1", to=tmp_path / "o1")) == _tree(folder)


def test_reads_a_store_in_squirrel_core_layout(tmp_path):
    """squirrel-core stored a file logged without artifact_path as ``v0/files`` itself, and left stray entries."""
    root = tmp_path / "store"
    (root / "default" / "old" / "v0").mkdir(parents=True)
    (root / "default" / "old" / "v0" / "files").write_bytes(b"legacy")
    (root / "default" / "old" / "v1" / "files").mkdir(parents=True)
    (root / "default" / "old" / "v1" / "files" / "new.txt").write_bytes(b"new")
    (root / "default" / "old" / "notes.txt").write_bytes(b"not a version")
    manager = FileSystemArtifactManager(str(root))
    assert manager.get_artifact_source("old").metadata["version"] == "v1"
    manager.download_artifact("old", version="v0", to=tmp_path / "o")
    assert _tree(tmp_path / "o" / "old") == {"old": b"legacy"}
    src = manager.log_files("old", tmp_path / "o" / "old" / "old")
    assert src.metadata["version"] == "v2"


def test_a_relative_store_url_gives_absolute_source_urls(tmp_path, folder, monkeypatch):
    monkeypatch.chdir(tmp_path)
    manager = FileSystemArtifactManager("relative-store")
    src = manager.log_files("data", folder)
    assert src.driver_kwargs["url"] == f"file://{tmp_path}/relative-store/default/data/v0/files"
    assert list(DirectoryDriver(src.driver_kwargs["url"]).keys()) == sorted(_tree(folder))


# ------------------------------------------------------------------------------------------------ compat paths


def test_squirrel_core_module_paths_re_export_the_same_names():
    import squirrel_graph.artifact_manager as package
    from squirrel_graph.artifact_manager import base, drivers, filesystem
    from squirrel_graph.artifact_manager import wandb as wandb_module

    assert package.__all__ == [] and package.drivers is drivers  # as squirrel-core: the submodule is loaded
    assert sorted(base.__all__) == ["ArtifactManager", "DirectoryLogger", "TmpArtifact"]
    assert sorted(filesystem.__all__) == ["ArtifactFileStore", "FileSystemArtifactManager", "Serializers"]
    assert wandb_module.__all__ == ["WandbArtifactManager"] and drivers.__all__ == ["DirectoryDriver"]
    assert filesystem.FileSystemArtifactManager is FileSystemArtifactManager
    assert drivers.DirectoryDriver is DirectoryDriver
    assert DirectoryDriver.name == "directory" and issubclass(DirectoryDriver, StoreDriver)
    with pytest.raises(ValueError, match="store"):
        DirectoryDriver("memory://x", store=object())


def test_the_modules_import_without_wandb(tmp_path):
    code = (
        "import sys; sys.modules['wandb'] = None\n"  # makes "import wandb" raise ImportError
        "import squirrel_graph.artifact_manager.wandb as m, squirrel_graph.artifacts as a\n"
        "assert a.WandbArtifactManager is m.WandbArtifactManager\n"
        "try:\n    m.WandbArtifactManager(project='p')\nexcept ImportError as exc:\n    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "pip install 'squirrel_graph[tracking]'" in out.stdout


# ------------------------------------------------------------------------------------------------ wandb, offline

_BLOCK = 32768


def _wandb_records(path: Path):
    """The protobuf records of a ``.wandb`` run file (W&B header, then leveldb-log framed records)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, buf = 7, b""
    while pos + 7 <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < 7:  # a block's tail too short for a header is padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if length == 0 and kind == 0:
            pos += left
            continue
        buf += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST
            record = pb.Record()
            record.ParseFromString(buf)
            buf = b""
            yield record


def _artifact_records(wandb_dir: Path, expect: int) -> list:
    """The artifact records of the offline runs; wandb's service process may still be writing the run file when
    ``run.finish()`` returns, so wait (bounded) until ``expect`` records are there."""
    import time

    deadline = time.monotonic() + 20
    while True:
        files = sorted(wandb_dir.glob("wandb/offline-run-*/run-*.wandb"))
        records = [r.artifact for f in files for r in _wandb_records(f) if r.WhichOneof("record_type") == "artifact"]
        if len(records) >= expect or time.monotonic() > deadline:
            assert files, f"no offline run was written under {wandb_dir}"
            return records
        time.sleep(0.1)


def _md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


@pytest.fixture
def wandb_offline(tmp_path, monkeypatch):
    """wandb in offline mode with every directory under tmp_path; the cwd too, so nothing lands in the repo."""
    wandb = pytest.importorskip("wandb")
    base = tmp_path / "wb"
    for var in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        path = base / var.lower()
        path.mkdir(parents=True)
        monkeypatch.setenv(var, str(path))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    monkeypatch.chdir(tmp_path)
    wandb.teardown()  # wandb reads its settings (directories) once per setup: start from this test's
    yield wandb, base / "wandb_dir"
    if wandb.run is not None:
        wandb.run.finish()
    wandb.teardown()


def test_wandb_offline_logging_stages_files_and_manifest(wandb_offline, folder, tmp_path):
    from squirrel_graph.artifacts.wandb import WandbArtifactManager

    wandb, wandb_dir = wandb_offline
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    run = wandb.init(project="sg-artifacts")
    manager = WandbArtifactManager(collection="models")
    assert manager.project == "sg-artifacts"
    src = manager.log_files("net", model, artifact_path="ckpt/model.bin")
    assert (src.identifier, src.driver_name) == ("models/net", "wandb")
    assert src.metadata["offline"] is True and src.metadata["version"] == "latest"
    with manager.log_folder("data", collection="datasets") as path:
        shutil.copytree(folder, path, dirs_exist_ok=True)
    run.finish()

    records = {r.name: r for r in _artifact_records(wandb_dir, expect=2)}
    assert set(records) == {"net", "data"}
    net, data = records["net"], records["data"]
    assert (net.type, net.project, data.type) == ("models", "sg-artifacts", "datasets")
    assert net.digest == src.metadata["digest"]
    entries = {e.path: e for e in net.manifest.contents}
    assert set(entries) == {"ckpt/model.bin"}
    assert entries["ckpt/model.bin"].digest == _md5_b64(b"weights")
    assert Path(entries["ckpt/model.bin"].local_path).read_bytes() == b"weights"  # the staged copy
    expected = _tree(folder)
    staged = {e.path: Path(e.local_path).read_bytes() for e in data.manifest.contents}
    assert staged == expected
    assert {e.path: e.digest for e in data.manifest.contents} == {k: _md5_b64(v) for k, v in expected.items()}
    assert str(tmp_path) in entries["ckpt/model.bin"].local_path  # staged under WANDB_DATA_DIR, not in $HOME


def test_wandb_offline_logging_without_a_run_uses_an_auto_run(wandb_offline, tmp_path):
    from squirrel_graph.artifacts.wandb import WandbArtifactManager

    wandb, wandb_dir = wandb_offline
    one = tmp_path / "one.txt"
    one.write_bytes(b"1")
    manager = WandbArtifactManager(project="sg-auto")
    src = manager.log_files("single", one)
    assert wandb.run is None  # the automatic run was finished
    (record,) = _artifact_records(wandb_dir, expect=1)
    assert (record.name, record.type, record.project) == ("single", "default", "sg-auto")
    assert [e.path for e in record.manifest.contents] == ["one.txt"]
    assert src.metadata["digest"] == record.digest


def test_wandb_offline_server_methods_raise_clearly(wandb_offline, tmp_path):
    from squirrel_graph.artifacts.wandb import SERVER_METHODS, WandbArtifactManager, WandbServerRequiredError

    manager = WandbArtifactManager(project="sg-offline")
    calls = {  # method -> (the server call it reports, a call of it)
        "list_collection_names": ("list_collection_names", lambda: manager.list_collection_names()),
        "exists_in_collection": ("exists_in_collection", lambda: manager.exists_in_collection("a")),
        "exists": ("list_collection_names", lambda: manager.exists("a")),
        "get_artifact_source": ("get_artifact_source", lambda: manager.get_artifact_source("a")),
        "collection_to_catalog": ("collection_to_catalog", lambda: manager.collection_to_catalog()),
        "store_to_catalog": ("list_collection_names", lambda: manager.store_to_catalog()),
        "download_artifact": ("download_artifact", lambda: manager.download_artifact("a", to=tmp_path)),
        "download_collection": ("collection_to_catalog", lambda: manager.download_collection(to=tmp_path)),
    }
    assert set(calls) == set(SERVER_METHODS)
    for reported, call in calls.values():
        with pytest.raises(WandbServerRequiredError, match=rf"\.{reported} needs the W&B server, but WANDB_MODE"):
            call()
    with pytest.raises(WandbServerRequiredError, match="entity"):
        _ = manager.entity
    with pytest.raises(NotImplementedError):
        manager.get_artifact("a")
    with pytest.raises(ValueError, match="no project"):
        WandbArtifactManager()
    assert not os.listdir(tmp_path / "wb" / "wandb_dir")  # nothing was started
