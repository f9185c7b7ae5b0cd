"""``ZarrDriver`` (squirrel-core's ``squirrel.driver.zarr``): a MapDriver over the members of a zarr v2 root group.

Building the driver touches nothing; the store and the root group are made on first use and need ``zarr<3``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from squirrel_graph.io.drivers import MapDriver

if TYPE_CHECKING:
    from zarr.hierarchy import Group

    from squirrel_graph.io.zarr.group import SquirrelGroup
    from squirrel_graph.io.zarr.store import SquirrelFSStore
    from squirrel_graph.stream.composable import Composable

__all__ = ["ZarrDriver", "fetch"]


def fetch(group: Group, key: str) -> Any:
    """The default fetcher: the member ``key`` of ``group`` (an array or a sub-group)."""
    return group[key]


class ZarrDriver(MapDriver):
    """Keys are the names in the root zarr group at ``url``; ``get(key)`` yields ``fetcher_func(root, key)``."""

    name = "zarr"

    def __init__(
        self, url: str, storage_options: dict[str, Any] | None = None, catalog: Any = None, **kwargs: Any
    ) -> None:
        if not isinstance(url, str) or not url:
            raise ValueError(f"ZarrDriver(url=...): expected a non-empty URL, got {url!r}")
        if storage_options is not None and not isinstance(storage_options, dict):
            raise TypeError(f"ZarrDriver(storage_options=...): expected a dict or None, got {storage_options!r}")
        super().__init__(catalog=catalog, **kwargs)
        self.url = url
        self.storage_options = dict(storage_options or {})
        self._lock = threading.Lock()
        self._root_group: SquirrelGroup | None = None
        self._root_group_args: tuple[str, dict[str, Any]] | None = None
        self._root_group_pid = 0

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(_lock=None, _root_group=None, _root_group_args=None)  # per process: workers open their own
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _describe(self) -> str:
        url = self.url if len(self.url) <= 40 else "..." + self.url[-37:]
        return f"{type(self).__name__}({url!r})"

    def _options(self, overrides: dict[str, Any]) -> dict[str, Any]:
        return {**self.storage_options, **overrides}

    def get_store(self, mode: str = "r", **kwargs: Any) -> SquirrelFSStore:
        """A new :class:`SquirrelFSStore` at ``url`` (``kwargs``: key_separator, check_exists, storage options,
        over the driver's ``storage_options``)."""
        from squirrel_graph.io.zarr.store import SquirrelFSStore

        return SquirrelFSStore(self.url, mode=mode, **self._options(kwargs))

    def get_root_group(self, mode: str = "r", **storage_options: Any) -> SquirrelGroup:
        """The root group at ``url`` from :func:`get_group` (mode "r" read-only; "a"/"w" create it if missing);
        kept for the next call with the same mode and options, in this process."""
        from squirrel_graph.io.zarr.group import get_group

        args = (mode, self._options(storage_options))
        with self._lock:
            if self._root_group is None or self._root_group_args != args or self._root_group_pid != os.getpid():
                self._root_group = get_group(self.url, mode=mode, **args[1])
                self._root_group_args = args
                self._root_group_pid = os.getpid()
            return self._root_group

    def keys(self, **storage_options: Any) -> Iterator[str]:
        """Sorted member names of the root group (opened read-only unless ``mode`` is given)."""
        yield from self.get_root_group(**storage_options).keys()

    def get(
        self, key: str, /, fetcher_func: Callable[[Group, str], Any] = fetch, **storage_options: Any
    ) -> Iterator[Any]:
        """Yields ``fetcher_func(root_group, key)`` (one item: ``get_iter`` flattens it by default); ``key`` is
        positional-only, so that an S3 ``key`` option can travel in ``storage_options``."""
        if not callable(fetcher_func):
            raise TypeError(f"ZarrDriver.get(fetcher_func=...): expected a callable, got {fetcher_func!r}")
        yield fetcher_func(self.get_root_group(**storage_options), key)

    def fetch(self, key: Any, /, **kwargs: Any) -> Any:
        """``get(key)`` read now (see :meth:`MapDriver.fetch`), with ``key`` positional-only as in :meth:`get`."""
        return list(self.get(key, **kwargs))

    def get_iter(  # type: ignore[override]
        self,
        fetcher_func: Callable[[Group, str], Any] = fetch,
        storage_options: dict[str, Any] | None = None,
        flatten: bool = True,
        **kwargs: Any,
    ) -> Composable:
        """A stream of ``fetcher_func(root_group, key)`` over the keys; ``storage_options`` reach the root group
        of both the key listing and the fetches; other ``kwargs`` go to :meth:`MapDriver.get_iter`."""
        if not callable(fetcher_func):
            raise TypeError(f"ZarrDriver.get_iter(fetcher_func=...): expected a callable, got {fetcher_func!r}")
        if storage_options is not None and not isinstance(storage_options, dict):
            raise TypeError(
                f"ZarrDriver.get_iter(storage_options=...): expected a dict or None, got {storage_options!r}"
            )
        options = dict(storage_options or {})
        get_kwargs = {**options, "fetcher_func": fetcher_func}
        keys_kwargs = kwargs.pop("keys_kwargs", None) or options
        return super().get_iter(get_kwargs=get_kwargs, keys_kwargs=keys_kwargs, flatten=flatten, **kwargs)
