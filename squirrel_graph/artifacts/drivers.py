"""DirectoryDriver (catalog name ``"directory"``): the files below a folder, the driver of artifacts logged as files.

Unlike squirrel-core, importing this module registers nothing: where ``"directory"`` is made available to catalogs is
decided by the registry (:mod:`squirrel_graph.io.plugins`), since imports must not have side effects.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from squirrel_graph.io.drivers import StoreDriver
from squirrel_graph.io.store import AbstractStore, FilesystemStore
from squirrel_graph.stream.composable import Composable

__all__ = ["DirectoryDriver"]


def _one_item(key: Any) -> int:
    """Each file is one item (what equal-counts-per-rank needs to know)."""
    return 1


class DirectoryDriver(StoreDriver):
    """Every file below ``url`` (any fsspec URL): keys are the paths relative to ``url`` (sorted), values the raw
    bytes of each file, read through a :class:`FilesystemStore` without a serializer."""

    name = "directory"

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if "store" in kwargs:
            raise ValueError("DirectoryDriver(store=...): the store is fixed; give the url (and storage_options)")
        super().__init__(url=url, serializer=None, storage_options=storage_options, **kwargs)  # type: ignore[arg-type]

    @property
    def store(self) -> AbstractStore:
        """The FilesystemStore on ``url`` (made on first use, and again in a forked child)."""
        if self._store is None or self._store_pid != os.getpid():
            self._store = FilesystemStore(url=self.url, serializer=None, **self.storage_options)
            self._store_pid = os.getpid()
        return self._store

    def get(self, key: Any, **kwargs: Any) -> bytes:  # type: ignore[override]
        """The bytes of the file ``key`` (a path relative to ``url``)."""
        return self.store.get(key, **kwargs)

    def fetch(self, key: Any, **kwargs: Any) -> bytes:  # type: ignore[override]
        return self.get(key, **kwargs)

    def keys(self, nested: bool = True, **kwargs: Any) -> Iterator[str]:
        """Paths of the files below ``url``, relative to it and sorted (only the top level if not ``nested``)."""
        return self.store.keys(nested=nested, **kwargs)

    def _fetch_halves(self) -> tuple[Any, Any]:
        return None, None

    def _shard_counter(self) -> Any:
        return _one_item

    def get_iter(self, flatten: bool = False, **kwargs: Any) -> Composable:  # type: ignore[override]
        """A stream of the files' bytes in key order: one item per file (squirrel-core flattened by default, which
        turned each file into its byte values)."""
        return super().get_iter(flatten=flatten, **kwargs)
