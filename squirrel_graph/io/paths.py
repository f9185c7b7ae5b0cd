"""FilePathGenerator: a stream of the file paths under an fsspec URL (squirrel-core's source of the same name)."""

from __future__ import annotations

import functools
from typing import Any

from squirrel_graph.graph import FilePaths, Node
from squirrel_graph.io.fs import get_protocol, list_paths
from squirrel_graph.stream.composable import Composable
from squirrel_graph.stream.validate import check_int


class FilePathGenerator(Composable):
    """Sorted paths under an fsspec ``url``, listed when iterated (all files below it when ``nested``)."""

    def __init__(
        self,
        url: str,
        nested: bool = False,
        max_workers: int | None = None,
        max_keys: int = 1_000_000,
        max_dirs: int = 10,
        **storage_options: Any,
    ) -> None:
        if not isinstance(url, str) or not url:
            raise TypeError(f"FilePathGenerator(url=...): expected a non-empty URL string, got {url!r}")
        max_dirs = check_int("FilePathGenerator", "max_dirs", max_dirs, 1)
        super().__init__(None)
        self.url = url
        self.nested = nested
        self.max_workers = max_workers
        self.max_keys = max_keys
        self.max_dirs = max_dirs
        self.storage_options = storage_options
        self.protocol = get_protocol(url)

    def _builtin_node(self) -> Node:
        return FilePaths(
            url=self.url,
            nested=self.nested,
            max_workers=self.max_workers,
            max_keys=self.max_keys,
            max_dirs=self.max_dirs,
            storage_options=dict(self.storage_options),
            lister=functools.partial(
                list_paths, self.url, self.nested, self.max_workers, self.max_dirs, dict(self.storage_options)
            ),
        )
