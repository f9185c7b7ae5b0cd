"""squirrel-core's ``squirrel.zarr.store``: a zarr ``FSStore`` on squirrel's fsspec filesystems, and a compressor.

``SquirrelFSStore`` subclasses ``zarr.storage.FSStore`` and is built on first access (zarr<3).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fsspec.core import split_protocol

from squirrel_graph.constants import URL
from squirrel_graph.io.fs import fs_and_path
from squirrel_graph.io.zarr.key import is_squirrel_key, is_zarr_key
from squirrel_graph.io.zarr.lazy import import_zarr, lazy_classes

if TYPE_CHECKING:
    from numcodecs.abc import Codec

__all__ = ["SquirrelFSStore", "suggest_compression"]

#: store modes: "r" is read-only, the others may write
STORE_MODES = ("r", "r+", "a", "w")
KEY_SEPARATORS = (".", "/")


def suggest_compression() -> Codec:
    """squirrel's suggested compressor for zarr arrays: Blosc lz4hc, level 5, bit shuffle."""
    import_zarr()
    from numcodecs import Blosc

    return Blosc(cname="lz4hc", clevel=5, shuffle=Blosc.BITSHUFFLE)


def _check_store_args(url: Any, key_separator: Any, mode: Any, exceptions: Any) -> None:
    if not isinstance(url, str) or not url:
        raise ValueError(f"SquirrelFSStore(url=...): expected a non-empty URL string, got {url!r}")
    if key_separator not in KEY_SEPARATORS:
        raise ValueError(f"SquirrelFSStore(key_separator=...): expected one of {KEY_SEPARATORS}, got {key_separator!r}")
    if mode not in STORE_MODES:
        raise ValueError(f"SquirrelFSStore(mode=...): expected one of {STORE_MODES}, got {mode!r}")
    classes = isinstance(exceptions, (tuple, list)) and all(
        isinstance(e, type) and issubclass(e, BaseException) for e in exceptions
    )
    if not classes:
        raise TypeError(f"SquirrelFSStore(exceptions=...): expected a tuple of exception classes, got {exceptions!r}")


class _StoreMethods:
    """zarr's FSStore on the filesystem squirrel_graph picks for the URL (storage options win, chained URLs work);
    ``listdir`` leaves out zarr metadata and squirrel keys, so listing a group does not probe them as members."""

    fs: Any
    path: str

    def __init__(
        self,
        url: URL,
        key_separator: str = ".",
        mode: str = "w",
        exceptions: Sequence[type[BaseException]] = (KeyError, PermissionError, IOError),
        check_exists: bool = False,
        **storage_options: Any,
    ) -> None:
        _check_store_args(url, key_separator, mode, exceptions)
        options = dict(storage_options)
        if "::" not in url and split_protocol(url)[0] in (None, "file", "local"):
            options.setdefault("auto_mkdir", True)  # as zarr's FSStore: nested chunk keys need their folders
        fs, path = fs_and_path(url, **options)
        super().__init__(path, key_separator=key_separator, mode=mode, exceptions=tuple(exceptions), fs=fs)
        self.url = url
        if check_exists and fs.exists(self.path) and not fs.isdir(self.path):
            from zarr.errors import FSPathExistNotDir

            raise FSPathExistNotDir(url)

    def listdir(self, path: str | None = None) -> list[str]:
        """Sorted names under ``path`` (chunk names included), without zarr metadata and squirrel keys; with
        ``key_separator="/"`` the nested chunk files of an array are listed as chunk keys (``"1.0"``)."""
        dir_path = self.dir_path(path)  # type: ignore[attr-defined]
        try:
            children = sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(dir_path, detail=False))
            if self.key_separator == "/" and ".zarray" in children:  # type: ignore[attr-defined]
                children = self._nested_chunk_keys(dir_path, children)
        except OSError:
            return []
        return [c for c in children if not (is_zarr_key(c) or is_squirrel_key(c) or c.endswith(".zip"))]

    def _nested_chunk_keys(self, dir_path: str, children: list[str]) -> list[str]:
        """zarr's FSStore does this too, but builds wrong keys for relative paths (S3, GCS)."""
        prefix = dir_path.rstrip("/") + "/"
        out = []
        for name in children:
            if name.isdigit() and self.fs.isdir(prefix + name):
                files = self.fs.find(prefix + name)
                out += [f[len(prefix) :].replace("/", ".") for f in files if f.startswith(prefix)]
            else:
                out.append(name)
        return sorted(out)

    def getsize(self, path: str | None = None) -> int:
        """Total size in bytes of the files under ``path`` (the whole store by default)."""
        return self.fs.du(self.dir_path(path), total=True, maxdepth=None)  # type: ignore[attr-defined]


def _build_store() -> type:
    import_zarr()
    from zarr.storage import FSStore

    return type("SquirrelFSStore", (_StoreMethods, FSStore), {"__doc__": _StoreMethods.__doc__})


__getattr__ = lazy_classes(globals(), {"SquirrelFSStore": _build_store})

if TYPE_CHECKING:
    from zarr.storage import FSStore

    class SquirrelFSStore(_StoreMethods, FSStore):
        """What type checkers see; the runtime class is built by ``_build_store``."""
