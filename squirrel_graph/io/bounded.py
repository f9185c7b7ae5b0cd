"""Reads with a deadline: a stalled object store raises ``TimeoutError`` instead of blocking a thread for minutes.

fsspec's synchronous API waits for its event loop without a timeout, whatever botocore's timeouts say. On an
async filesystem (s3, gcs, http, ...) we run the filesystem's coroutine through ``fsspec.asyn.sync(...,
timeout=)``: at the deadline the request is cancelled on fsspec's loop and our thread returns. A synchronous
filesystem (local disk, ``memory://``, caching wrappers such as ``simplecache::s3://``) offers no way to
interrupt a read, so its reads are not bounded.
"""

from __future__ import annotations

import asyncio
from typing import Any


def is_async(fs: Any) -> bool:
    """True if ``fs`` is an fsspec async filesystem (its reads can be bounded)."""
    return bool(getattr(fs, "async_impl", False)) and hasattr(fs, "_cat_file")


def read_within(fs: Any, path: str, timeout: float, name: str) -> bytes:
    """The bytes of ``path`` on the async filesystem ``fs``, or ``TimeoutError`` naming ``name`` after ``timeout``
    seconds (the request is cancelled: no thread stays blocked on it)."""
    from fsspec.asyn import sync

    try:
        return sync(fs.loop, fs._cat_file, path, timeout=timeout)
    except asyncio.TimeoutError as exc:  # fsspec's FSTimeoutError; also TimeoutError itself on Python >= 3.11
        raise TimeoutError(f"reading {name}: no answer within {timeout:g} s") from exc
