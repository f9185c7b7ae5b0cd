"""Key helpers of squirrel-core's ``squirrel.zarr.key``: tell zarr metadata, chunk and squirrel keys from folders."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable

from squirrel_graph.constants import SQUIRREL_DIR, SQUIRREL_PREFIX

#: a zarr chunk name such as ``0.0`` or ``200.0.40``: digit groups joined by dots (matched at the start of a name)
ZARR_CHUNK_PATTERN = re.compile(r"(\d+\.)+\d+")

_ZARR_META_SUFFIXES = (".zarray", ".zgroup", ".zattrs")


def _check_str(func: str, arg: str, value: object, allow_empty: bool = True) -> None:
    if not isinstance(value, str) or (not allow_empty and not value):
        kind = "a string" if allow_empty else "a non-empty string"
        raise TypeError(f"{func}({arg}=...): expected {kind}, got {value!r}")


def is_zarr_key(key: str) -> bool:
    """True for zarr's metadata keys (``.zarray``, ``.zgroup``, ``.zattrs``), which are files, not members."""
    _check_str("is_zarr_key", "key", key)
    return key.endswith(_ZARR_META_SUFFIXES)


def is_squirrel_key(key: str) -> bool:
    """True for keys squirrel writes itself (a last part starting with ``.squirrel_``, or inside ``.squirrel``)."""
    _check_str("is_squirrel_key", "key", key)
    return key_end(key).startswith(SQUIRREL_PREFIX) or SQUIRREL_DIR in key


def is_zarr_chunk(key: str) -> bool:
    """True if the last part of ``key`` starts like a zarr chunk name (``0.0``, ``3.1.4``)."""
    _check_str("is_zarr_chunk", "key", key)
    return ZARR_CHUNK_PATTERN.match(key_end(key)) is not None


def is_dir(key: str) -> bool:
    """Guess whether ``key`` names a folder: anything but zarr metadata, chunks, ``.zip`` files and squirrel keys."""
    _check_str("is_dir", "key", key)
    return not (is_zarr_key(key) or is_zarr_chunk(key) or key.endswith(".zip") or is_squirrel_key(key))


def key_end(key: str, separator: str = "/") -> str:
    """The last part of ``key`` split at ``separator``: ``key_end("a/b.c") == "b.c"``."""
    _check_str("key_end", "key", key)
    _check_str("key_end", "separator", separator, allow_empty=False)
    return key.rsplit(separator, 1)[-1]


def normalize_key(key: str, key_separator: str = "/") -> str:
    """``key`` without surrounding whitespace and separators, plus one trailing separator if it names a folder.

    An empty key stays empty; ``" /a/b/ "`` becomes ``"a/b/"`` and ``"a/.zarray"`` stays as it is.
    """
    _check_str("normalize_key", "key", key)
    _check_str("normalize_key", "key_separator", key_separator, allow_empty=False)
    if not key:
        return key
    key = key.strip().strip(key_separator)
    if is_dir(key.split(key_separator)[-1]):
        key += key_separator
    return key


def flatten(nested_keys: Iterable[Iterable[str]]) -> list[str]:
    """One list of the keys of several key lists, in order."""
    return list(itertools.chain.from_iterable(nested_keys))
