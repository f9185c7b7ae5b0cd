"""Store keys: which key strings name a place inside a store, checked before any path is built from one.

A key is a relative POSIX path below the store URL: segments joined by ``/`` (``"shard-0"``, ``"train/shard-0"``),
none of them empty, ``.`` or ``..``, no NUL byte, no backslash, and not inside the store's metadata folder. Such a
key can only name a path below the store on every fsspec filesystem (local, ``file://``, ``memory://``, s3, ...).
"""

from __future__ import annotations

import os
from typing import Any

from squirrel_graph.constants import SQUIRREL_DIR

_RULE = (
    "a store key is a relative path inside the store, such as 'shard-0' or 'train/shard-0': '/' between folders,"
    " no empty, '.' or '..' segment, no NUL byte, no backslash"
)


def _reason(text: str) -> str | None:
    """Why ``text`` cannot be a key, or None if it can."""
    if not text:
        return "is empty"
    if "\x00" in text:
        return "contains a NUL byte"
    if "\\" in text:
        return "contains a backslash"
    if text[0] == "/":
        return "is absolute"
    segments = text.split("/")
    for segment in segments:
        if segment in ("", ".", ".."):
            return "has an empty segment ('//' or a trailing '/')" if not segment else f"has a {segment!r} segment"
    if segments[0] == SQUIRREL_DIR:
        return f"is inside the store's metadata folder {SQUIRREL_DIR!r}"
    return None


def check_key(key: Any, where: str = "store") -> str:
    """The text of ``key`` as it goes into a path (``str(key)``), if it names a place inside the store; else a
    ValueError naming the key, ``where`` it was used and the rule. Pure string checks: cheap enough for every read."""
    text = key if isinstance(key, str) else str(key)
    reason = _reason(text)
    if reason is not None:
        raise ValueError(f"{where}: key {key!r} {reason}; {_RULE}")
    return text


def check_local_write(root: str, path: str, key: Any, where: str = "store") -> None:
    """On a local disk: ValueError unless ``path`` (to be written for ``key``) stays below ``root`` once symlinks are
    resolved, so a write never goes through a symlinked folder to outside the store. Nothing is created."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(os.path.dirname(path))
    if real != real_root and not real.startswith(real_root.rstrip("/") + "/"):
        raise ValueError(
            f"{where}: key {key!r} resolves to {real}, outside the store folder {real_root} (through a symlink);"
            " writes stay inside the store"
        )


__all__ = ["check_key", "check_local_write"]
