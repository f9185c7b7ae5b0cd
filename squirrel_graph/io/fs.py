"""fsspec helpers: every URL (local path, ``file://``, ``memory://``, ``s3://``, ``simplecache::``) uses fsspec."""

from __future__ import annotations

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


def _ours(path: str) -> bool:
    """True for the store metadata folder and in-flight temporary files: never listed, by any listing."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return name == SQUIRREL_DIR or TMP_MARK in name


def _names(fs: fsspec.AbstractFileSystem, path: str) -> list[str]:
    entries = fs.ls(path, detail=False)
    return sorted(n for n in (e["name"] if isinstance(e, dict) else e for e in entries) if not _ours(n))


def _entries(fs: fsspec.AbstractFileSystem, path: str) -> list[tuple[str, bool]]:
    """(name, is a directory) of the entries of ``path``, in one listing request."""
    out = []
    for e in fs.ls(path, detail=True):
        name = e["name"] if isinstance(e, dict) else e
        if _ours(name):
            continue
        if isinstance(e, dict):
            out.append((name, e.get("type") == "directory"))
        else:  # a filesystem that ignores detail=True
            out.append((name, fs.isdir(name)))
    return sorted(out)


def list_fs(
    fs: fsspec.AbstractFileSystem, root: str, nested: bool = False, max_workers: int | None = None, max_dirs: int = 10
) -> list[str]:
    """Sorted filesystem paths under ``root`` (all files below it when ``nested``); empty if it does not exist.
    Store metadata folders (``.squirrel``) and in-flight temporary files are left out at every level."""
    if not fs.exists(root):
        return []
    if not nested:
        return _names(fs, root)
    files: list[str] = []
    with ThreadPoolExecutor(max_workers=max_workers or max_dirs) as pool:
        dirs = [root]
        while dirs:
            listings = list(pool.map(lambda d: _entries(fs, d), dirs))
            dirs = []
            for entries in listings:
                for name, is_dir in entries:
                    (dirs if is_dir else files).append(name)
    return sorted(files)


def list_paths(
    url: str, nested: bool = False, max_workers: int | None = None, max_dirs: int = 10, storage_options: Any = None
) -> Iterator[str]:
    """Sorted paths under ``url`` (all files below it when ``nested``), each prefixed with the URL's protocol.

    Unlike squirrel-core, nested listings are sorted too, so every process sees the same order.
    """
    fs, root = fs_and_path(url, **(storage_options or {}))
    protocol = get_protocol(url)
    return iter([protocol + p for p in list_fs(fs, root, nested, max_workers, max_dirs)])
