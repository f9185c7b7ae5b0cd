"""fsspec helpers: every URL (local path, ``file://``, ``memory://``, ``s3://``, ``simplecache::``) uses fsspec."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import fsspec
from fsspec.core import split_protocol


def get_protocol(url: str) -> str:
    """``"xx://"`` for a URL with a protocol, ``""`` for a bare path."""
    protocol, _ = split_protocol(url)
    return f"{protocol}://" if protocol else ""


def get_fs_from_url(url: str, **storage_options: Any) -> fsspec.AbstractFileSystem:
    """The fsspec filesystem for ``url``; storage options win over the URL (so they can select a caching fs)."""
    protocol, _ = split_protocol(url)
    return fsspec.filesystem(**{"protocol": protocol or "file", **storage_options})


def _names(fs: fsspec.AbstractFileSystem, path: str) -> list[str]:
    entries = fs.ls(path, detail=False)
    return sorted(e["name"] if isinstance(e, dict) else e for e in entries)


def list_paths(
    url: str, nested: bool = False, max_workers: int | None = None, max_dirs: int = 10, storage_options: Any = None
) -> Iterator[str]:
    """Sorted paths under ``url`` (all files below it when ``nested``), each prefixed with the URL's protocol.

    Unlike squirrel-core, nested listings are sorted too, so every process sees the same order.
    """
    fs = get_fs_from_url(url, **(storage_options or {}))
    protocol = get_protocol(url)
    _, path = split_protocol(url)
    if not fs.exists(path):
        return iter(())
    if not nested:
        return iter([protocol + p for p in _names(fs, path)])
    files: list[str] = []
    with ThreadPoolExecutor(max_workers=max_workers or max_dirs) as pool:
        dirs = [path]
        while dirs:
            listings = list(pool.map(lambda d: _names(fs, d), dirs))
            dirs = []
            for names in listings:
                for name in names:
                    (dirs if fs.isdir(name) else files).append(name)
    return iter([protocol + p for p in sorted(files)])
