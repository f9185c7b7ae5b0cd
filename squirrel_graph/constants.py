"""squirrel-core compatible path ``squirrel.constants``: type aliases and names shared by the I/O layer."""

from __future__ import annotations

from typing import Any

import fsspec

URL = str
FILESYSTEM = fsspec.AbstractFileSystem
SampleType = Any
ShardType = list[Any]
MetricsType = dict[str, int | float]
SeedType = int | float | str | bytes | bytearray | None

SQUIRREL_PREFIX = ".squirrel_"
SQUIRREL_DIR = ".squirrel"
SQUIRREL_BUCKET = "gs://squirrel-core-public-data"
SQUIRREL_TMP_DATA_BUCKET = "gs://squirrel-core-public-data-tmp"

#: squirrel_graph's per-store metadata (shard counts) lives in ``{store}/.squirrel/``; listings never show it
#: (squirrel-core's ``keys()`` skipped it too). In-flight atomic writes are hidden files named with TMP_MARK.
TMP_MARK = ".tmp-"
