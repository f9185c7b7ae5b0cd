"""Fault: a folder above the store that this user may not search, and an object store whose lookups fail.

fsspec's ``exists()`` answers False in both cases; the user must see a PermissionError naming the folder (or the
network error itself), never "the store does not exist (nothing written yet?)" nor an empty listing. Permissions
are tested as an unprivileged user (uid 65534) in a forked child, since root ignores them.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
import traceback
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from squirrel_graph.artifacts.drivers import DirectoryDriver
from squirrel_graph.io.drivers import MessagepackDriver
from squirrel_graph.io.paths import FilePathGenerator
from squirrel_graph.io.serialization import MessagepackSerializer
from squirrel_graph.io.store import FilesystemStore, SquirrelStore

NOBODY = 65534
SKIP = "cannot switch to an unprivileged user"


def _as_nobody(ops: dict[str, Callable[[], Any]], conn: Any) -> None:
    """Forked child: drop to uid/gid 65534 (unless already unprivileged), run each op, send what each gave."""
    try:
        if os.geteuid() == 0:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
    except OSError as exc:
        conn.send({SKIP: f"{SKIP}: {exc}"})
        os._exit(0)
    out = {}
    for name, op in ops.items():
        try:
            out[name] = ("ok", repr(op()))
        except BaseException as exc:  # noqa: BLE001 (reported to the parent, which judges it)
            out[name] = (type(exc).__name__, f"{exc}\n{traceback.format_exc(limit=3)}")
    conn.send(out)
    os._exit(0)


def _run_unprivileged(ops: dict[str, Callable[[], Any]]) -> dict[str, tuple[str, str]]:
    """{op name: (exception class name or "ok", message)} of ``ops`` run as an unprivileged user."""
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_as_nobody, args=(ops, child))
    proc.start()
    child.close()
    try:
        if not parent.poll(30):
            raise AssertionError("the unprivileged child sent nothing")
        out = parent.recv()
    finally:
        proc.join(10)
    if SKIP in out:
        pytest.skip(out[SKIP])
    return out


@pytest.fixture
def locked() -> Iterator[tuple[Path, str]]:
    """(a folder no one but root may search, the URL of a written store inside it), below a folder anyone may
    search. pytest's own tmp folders are private to root, so this one is made in the system temporary folder."""
    base = Path(tempfile.mkdtemp(prefix="sg-perm-"))
    folder = base / "private"
    try:
        base.chmod(0o755)
        url = str(folder / "store")
        store = SquirrelStore(url, serializer=MessagepackSerializer())
        store.set([1, 2], key="k")
        (folder / "files").mkdir()
        (folder / "files" / "a.txt").write_bytes(b"a")
        _warm_up(url, str(folder / "files"))
        folder.chmod(0o000)  # also locks out a non-root user running the tests, who owns it
        yield folder, url
    finally:
        if folder.is_dir():
            folder.chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)


def _warm_up(url: str, files: str) -> None:
    """Run the code paths once as root, so that every module they import lazily is loaded before the child, which
    can no longer read root's Python installation."""
    MessagepackDriver(url).get_iter().collect()
    MessagepackDriver(url).get_iter(max_workers=0).collect()
    DirectoryDriver(files).get_iter().collect()
    FilePathGenerator(url).collect()
    FilePathGenerator(url, nested=True).collect()


def _assert_names_folder(result: tuple[str, str], folder: Path) -> None:
    kind, message = result
    assert kind == "PermissionError", result
    assert str(folder) in message, result
    assert "does not exist" not in message and "nothing written" not in message, result


def test_reading_a_store_below_a_folder_that_cannot_be_searched_says_permission_denied_naming_it(locked):
    folder, url = locked
    out = _run_unprivileged(
        {
            "get_iter": lambda: MessagepackDriver(url).get_iter().collect(),
            "get_iter in this thread": lambda: MessagepackDriver(url).get_iter(max_workers=0).collect(),
            "keys(missing_ok=False)": lambda: list(MessagepackDriver(url).store.keys(missing_ok=False)),
            "keys()": lambda: list(MessagepackDriver(url).store.keys()),
            "directory get_iter": lambda: DirectoryDriver(str(folder / "files")).get_iter().collect(),
            "count": lambda: MessagepackDriver(url).store.count("k"),
            "get_shard": lambda: MessagepackDriver(url).store.get_shard("k"),
        }
    )
    for name, result in out.items():
        assert result[0] == "PermissionError", (name, result)
    for name in ["get_iter", "get_iter in this thread", "keys(missing_ok=False)", "keys()", "directory get_iter"]:
        _assert_names_folder(out[name], folder)


def test_listing_or_cleaning_below_a_folder_that_cannot_be_searched_is_not_an_empty_folder(locked):
    folder, url = locked
    out = _run_unprivileged(
        {
            "FilePathGenerator": lambda: FilePathGenerator(url).collect(),
            "FilePathGenerator nested": lambda: FilePathGenerator(url, nested=True).collect(),
            "clean=True": lambda: SquirrelStore(url, serializer=MessagepackSerializer(), clean=True),
            "FilesystemStore clean=True": lambda: FilesystemStore(str(folder / "files"), clean=True),
        }
    )
    for result in out.values():
        _assert_names_folder(result, folder)
    folder.chmod(0o755)
    assert (folder / "store" / "k.gz").is_file()  # clean=True removed nothing (and said why)


class FailingLookups(MemoryFileSystem):
    """A real in-memory filesystem whose lookups (``info``, what ``exists()`` uses) fail as a flaky or forbidding
    object store does: the error class is chosen by the URL's bucket name."""

    protocol = ("failinglookups",)
    errors = {"net": ConnectionError, "deny": PermissionError, "slow": TimeoutError}

    @classmethod
    def _strip_protocol(cls, path):
        path = str(path)
        return super()._strip_protocol("memory://" + path[len("failinglookups://") :] if "://" in path else path)

    def info(self, path, **kwargs):
        bucket = self._strip_protocol(path).strip("/").split("/", 1)[0]
        error = self.errors.get(bucket.split("-", 1)[0])
        if error is not None:
            raise error(f"lookup of {path} failed ({bucket})")
        return super().info(path, **kwargs)


@pytest.mark.parametrize("bucket", ["net", "deny", "slow"])
def test_a_failing_lookup_on_an_object_store_is_raised_not_read_as_absent(bucket):
    fsspec.register_implementation("failinglookups", FailingLookups, clobber=True)
    url = f"failinglookups://{bucket}-{uuid.uuid4().hex}/store"
    error = FailingLookups.errors[bucket]
    for call in (
        lambda: MessagepackDriver(url).get_iter().collect(),
        lambda: list(MessagepackDriver(url).store.keys()),
        lambda: FilePathGenerator(url).collect(),
        lambda: SquirrelStore(url, serializer=MessagepackSerializer(), clean=True),
    ):
        with pytest.raises(error, match="lookup of .* failed"):
            call()
