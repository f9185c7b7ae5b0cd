"""squirrel-core's ``squirrel.zarr.group``: ``get_group`` opens a zarr group on a :class:`SquirrelFSStore`.

``SquirrelGroup`` subclasses ``zarr.hierarchy.Group`` and is built on first access (zarr<3); its ``keys`` lists a
group with one filesystem ``ls`` instead of probing every child for zarr metadata.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

from squirrel_graph.constants import URL
from squirrel_graph.io.zarr.key import normalize_key
from squirrel_graph.io.zarr.lazy import import_zarr, lazy_classes
from squirrel_graph.io.zarr.store import STORE_MODES

__all__ = ["SquirrelGroup", "get_group"]


def get_group(path: URL, mode: str = "a", overwrite: bool = False, **storage_options: Any) -> SquirrelGroup:
    """The root group of the zarr store at ``path``: read-only for ``mode="r"``, else writable with a thread
    synchronizer, the group being created if missing (or emptied and recreated with ``overwrite=True``).

    As in squirrel-core, ``"w"`` does not empty an existing store; only ``overwrite`` does.
    """
    import_zarr()
    from zarr.errors import ReadOnlyError
    from zarr.storage import contains_group, init_group

    from squirrel_graph.io.zarr.group import SquirrelGroup  # built on first access, like the two below
    from squirrel_graph.io.zarr.store import SquirrelFSStore
    from squirrel_graph.io.zarr.sync import SquirrelThreadSynchronizer

    if mode not in STORE_MODES:
        raise ValueError(f"get_group(mode=...): expected one of {STORE_MODES}, got {mode!r}")
    if not isinstance(overwrite, bool):
        raise TypeError(f"get_group(overwrite=...): expected a bool, got {overwrite!r}")
    if mode == "r" and overwrite:
        err = ReadOnlyError()
        err.args = (f"get_group(mode='r', overwrite=True): a read-only group cannot be overwritten ({path!r})",)
        raise err
    store = SquirrelFSStore(path, mode=mode, **storage_options)
    if mode == "r":
        return SquirrelGroup(store=store, read_only=True, cache_attrs=True)
    if overwrite or not contains_group(store):
        init_group(store, overwrite=overwrite)
    return SquirrelGroup(store=store, read_only=False, cache_attrs=True, synchronizer=SquirrelThreadSynchronizer())


class _GroupMethods:
    """A zarr group whose ``keys(prefix)`` lists names with one ``ls`` of the filesystem (much faster on object
    stores than zarr's per-child metadata probes); a missing group names its store URL in the error."""

    store: Any
    path: str

    def __init__(
        self,
        store: MutableMapping,
        path: str | None = None,
        read_only: bool = False,
        chunk_store: MutableMapping | None = None,
        cache_attrs: bool = True,
        synchronizer: Any = None,
        **kwargs: Any,
    ) -> None:
        """As ``zarr.hierarchy.Group``; ``kwargs`` (zarr_version, meta_array) go to it, so pickling works."""
        from zarr.errors import GroupNotFoundError

        try:
            super().__init__(  # type: ignore[call-arg]
                store=store,
                path=path,
                read_only=read_only,
                chunk_store=chunk_store,
                cache_attrs=cache_attrs,
                synchronizer=synchronizer,
                **kwargs,
            )
        except GroupNotFoundError as e:
            where = str(getattr(store, "url", type(store).__name__)) + (f" (path {path!r})" if path else "")
            raise GroupNotFoundError(where) from e

    def keys(self, prefix: str = "") -> Iterator[str]:
        """Sorted names one level below ``prefix`` (relative to this group), hidden names (``.zgroup``, ...) left
        out. All names are fetched at once by ``ls``; a store without a filesystem falls back to zarr's listing."""
        fs = getattr(self.store, "fs", None)
        if fs is None:
            from zarr.hierarchy import Group

            yield from sorted(Group.keys(self[prefix] if prefix else self))  # type: ignore[index,arg-type]
            return
        parts = [self.store.path.rstrip("/"), self.path, normalize_key(prefix).strip("/") if prefix else ""]
        listing = fs.ls("/".join(p for p in parts if p), detail=False)
        names = sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in listing)
        yield from (name for name in names if not name.startswith("."))


def _build_group() -> type:
    import_zarr()
    from zarr.hierarchy import Group

    return type("SquirrelGroup", (_GroupMethods, Group), {"__doc__": _GroupMethods.__doc__})


__getattr__ = lazy_classes(globals(), {"SquirrelGroup": _build_group})

if TYPE_CHECKING:
    from zarr.hierarchy import Group

    class SquirrelGroup(_GroupMethods, Group):
        """What type checkers see; the runtime class is built by ``_build_group``."""
