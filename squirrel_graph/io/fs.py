"""fsspec helpers: every URL (local path, ``file://``, ``memory://``, ``s3://``, ``simplecache::``) uses fsspec."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import fsspec
from fsspec.core import split_protocol, url_to_fs

from squirrel_graph.constants import SQUIRREL_DIR, TMP_MARK


def get_protocol(url: str) -> str:
    """``"xx://"`` for a URL with a protocol, ``""`` for a bare path."""
    protocol, _ = split_protocol(url)
    return f"{protocol}://" if protocol else ""


def get_fs_from_url(url: str, **storage_options: Any) -> fsspec.AbstractFileSystem:
    """The fsspec filesystem for ``url``; storage options win over the URL (so they can select a caching fs).

    Chained URLs (``simplecache::s3://bucket/x``) are resolved by fsspec, with per-protocol options
    (``{"s3": {...}, "simplecache": {...}}``) in ``storage_options``.
    """
    return fs_and_path(url, **storage_options)[0]


def fs_and_path(url: str, **storage_options: Any) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem for ``url`` and the path of ``url`` inside it (what ``fs.open``/``fs.ls`` expect)."""
    if "::" in url and "protocol" not in storage_options:
        fs, path = url_to_fs(url, **storage_options)
        return fs, path.rstrip("/")
    protocol, _ = split_protocol(url)
    fs = fsspec.filesystem(**{"protocol": protocol or "file", **storage_options})
    return fs, fs._strip_protocol(url).rstrip("/")


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    """Whether ``fs`` is the local disk (``file://`` or a bare path)."""
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol in ("file", "local")


def blocked_folder(path: str) -> str:
    """The nearest folder above the local ``path`` that this process may not search: where a permission error on
    ``path`` comes from (``path``'s parent if no ancestor refuses)."""
    parts = path.rstrip("/").split("/")
    for i in range(2, len(parts) + 1):
        try:
            os.stat("/".join(parts[:i]))
        except PermissionError:
            return "/".join(parts[: i - 1]) or "/"
        except OSError:
            break
    return os.path.dirname(path.rstrip("/")) or "/"


def path_exists(fs: fsspec.AbstractFileSystem, path: str, what: str = "") -> bool:
    """Like ``fs.exists(path)``, but only "not found" reads as False: a permission or network failure raises.

    (fsspec's ``exists`` returns False for any error, and on a local disk for a folder that cannot be searched.) A
    local permission error is a PermissionError naming the folder that refuses; ``what`` says what was looked up.
    """
    if is_local(fs):
        try:
            os.stat(path)
            return True
        except (FileNotFoundError, NotADirectoryError):
            return False
        except PermissionError as exc:
            folder = blocked_folder(path)
            message = f"{what or path} cannot be checked: permission denied (this user may not search) on the folder"
            raise PermissionError(errno.EACCES, message, folder) from exc
    try:
        fs.info(path)
        return True
    except FileNotFoundError:
        return False


def _ours(path: str) -> bool:
    """True for the store metadata folder and in-flight temporary files: never listed, by any listing."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return name == SQUIRREL_DIR or TMP_MARK in name


def _names(fs: fsspec.AbstractFileSystem, path: str) -> list[str]:
    entries = fs.ls(path, detail=False)
    return sorted(n for n in (e["name"] if isinstance(e, dict) else e for e in entries) if not _ours(n))


def _entries(fs: fsspec.AbstractFileSystem, path: str) -> list[tuple[str, bool, int | None]]:
    """(name, is a directory, size in bytes or None) of the entries of ``path``, in one listing request."""
    out = []
    for e in fs.ls(path, detail=True):
        name = e["name"] if isinstance(e, dict) else e
        if _ours(name):
            continue
        if isinstance(e, dict):
            out.append((name, e.get("type") == "directory", e.get("size")))
        else:  # a filesystem that ignores detail=True
            out.append((name, fs.isdir(name), None))
    return sorted(out)


def _walk(fs: fsspec.AbstractFileSystem, root: str, max_workers: int | None, max_dirs: int) -> list[tuple[str, Any]]:
    """(path, size) of every file below ``root``, one listing request per folder, folders listed in parallel."""
    files: list[tuple[str, Any]] = []
    with ThreadPoolExecutor(max_workers=max_workers or max_dirs) as pool:
        dirs = [root]
        while dirs:
            listings = list(pool.map(lambda d: _entries(fs, d), dirs))
            dirs = []
            for entries in listings:
                for name, is_dir, size in entries:
                    if is_dir:
                        dirs.append(name)
                    else:
                        files.append((name, size))
    return sorted(files)


def list_fs(
    fs: fsspec.AbstractFileSystem, root: str, nested: bool = False, max_workers: int | None = None, max_dirs: int = 10
) -> list[str]:
    """Sorted filesystem paths under ``root`` (all files below it when ``nested``); empty if it does not exist.
    Store metadata folders (``.squirrel``) and in-flight temporary files are left out at every level. A permission
    or network failure raises (it is not read as an empty listing)."""
    if not path_exists(fs, root):
        return []
    if not nested:
        return _names(fs, root)
    return [path for path, _ in _walk(fs, root, max_workers, max_dirs)]


def list_fs_sizes(
    fs: fsspec.AbstractFileSystem, root: str, nested: bool = False, max_workers: int | None = None, max_dirs: int = 10
) -> list[tuple[str, int | None]]:
    """Sorted ``(path, size in bytes)`` of the files directly in ``root`` (all below it when ``nested``), from the
    listing itself (no request per file); empty if ``root`` does not exist. Leaves out what :func:`list_fs` does."""
    if not path_exists(fs, root):
        return []
    if nested:
        return _walk(fs, root, max_workers, max_dirs)
    return sorted((name, size) for name, is_dir, size in _entries(fs, root) if not is_dir)


def list_paths(
    url: str, nested: bool = False, max_workers: int | None = None, max_dirs: int = 10, storage_options: Any = None
) -> Iterator[str]:
    """Sorted paths under ``url`` (all files below it when ``nested``), each prefixed with the URL's protocol.

    Unlike squirrel-core, nested listings are sorted too, so every process sees the same order.
    """
    fs, root = fs_and_path(url, **(storage_options or {}))
    protocol = get_protocol(url)
    return iter([protocol + p for p in list_fs(fs, root, nested, max_workers, max_dirs)])
