"""Drivers: squirrel-core's ``Driver``/``IterDriver``/``MapDriver`` and the store-backed drivers.

``MapDriver.get_iter`` does not return an opaque iterator: it builds plan nodes the optimizers can see — the key
listing (``keys``), key shuffle, key hooks, the shard ``fetch`` (in this thread or on a pool), flatten and item
shuffle — so split push-down, fusion and explain work on driver streams too.
"""

from __future__ import annotations

import functools
import os
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from squirrel_graph.graph import Fetch, KeySource, Node
from squirrel_graph.io.serialization import JsonSerializer, MessagepackSerializer, SquirrelSerializer
from squirrel_graph.stream.composable import Composable, Stage
from squirrel_graph.stream.validate import check_int

if TYPE_CHECKING:
    from squirrel_graph.io.catalog import Catalog


class Driver:
    """Base of all drivers; ``name`` is what catalogs refer to (no abstract methods, as in squirrel-core)."""

    name: str = "driver"

    def __init__(self, catalog: Catalog | None = None, **kwargs: Any) -> None:
        self._catalog = catalog
        if kwargs:  # squirrel-core swallowed these silently; say so instead of losing a typo
            warnings.warn(f"{type(self).__name__}: ignoring unknown keyword argument(s) {sorted(kwargs)}", stacklevel=3)

    @property
    def catalog(self) -> Catalog | None:
        """The catalog whose ``get_driver`` built this driver, None if built directly: drivers sit below catalogs
        (catalogs build drivers through the registry), so they never make one."""
        return self._catalog


class IterDriver(Driver, ABC):
    """A driver that only streams."""

    @abstractmethod
    def get_iter(self, **kwargs: Any) -> Composable:
        """A stream over the data."""


def _unpack_hook(hook: Any) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
    if isinstance(hook, functools.partial):
        return hook.func, hook.args, dict(hook.keywords)
    return hook, (), {}


class _KeyStream(Composable):
    """The handle of a driver's key listing."""

    def __init__(self, node: KeySource) -> None:
        super().__init__(node.source)
        self._op = node

    def _builtin_node(self) -> Node:
        return self._op


class _FetchStage(Stage):
    """The handle of a fetch stage; it reports the corrupt shards it skipped in its latest run."""

    def _skipped_here(self) -> list[tuple[Any, str]]:
        state = self._state_here()
        return list(state.skipped) if state is not None else []


class MapDriver(Driver, ABC):
    """A driver with random access by key: ``get(key)`` and ``keys()``, streamed by :meth:`get_iter`."""

    @abstractmethod
    def get(self, key: Any, **kwargs: Any) -> Any:
        """The value (or the samples of the shard) under ``key``."""

    @abstractmethod
    def keys(self, **kwargs: Any) -> Iterable[Any]:
        """All keys, in a deterministic order."""

    def _keys_to_read(self, **kwargs: Any) -> Iterable[Any]:
        """The keys ``get_iter()`` reads (a store may list a missing folder as empty, but reading one is an error)."""
        return self.keys(**kwargs)

    def fetch(self, key: Any, **kwargs: Any) -> Any:
        """``get(key)``, read completely now: a lazy shard is turned into a list, so that the worker thread that
        fetches a shard also reads and decodes it (squirrel-core's workers only created a generator)."""
        out = self.get(key, **kwargs)
        return list(out) if isinstance(out, Iterator) else out

    def _describe(self) -> str:
        return type(self).__name__

    def _fetch_halves(self) -> tuple[Any, Any]:
        """``(read, decode)`` callables that split :meth:`fetch` into I/O and CPU halves, or ``(None, None)``."""
        return None, None

    def _shard_counter(self) -> Any:
        """A callable key -> number of samples (used by ``equalize``); by default, fetch and count."""
        return self._count_by_fetching

    def _count_by_fetching(self, key: Any) -> int:
        out = self.fetch(key)
        return len(out) if hasattr(out, "__len__") else 1

    def get_iter(
        self,
        keys_iterable: Iterable[Any] | None = None,
        shuffle_key_buffer: int = 1,
        key_hooks: Iterable[Any] | None = None,
        max_workers: int | None = None,
        prefetch_buffer: int = 10,
        shuffle_item_buffer: int = 1,
        flatten: bool = False,
        keys_kwargs: dict[str, Any] | None = None,
        get_kwargs: dict[str, Any] | None = None,
        key_shuffle_kwargs: dict[str, Any] | None = None,
        item_shuffle_kwargs: dict[str, Any] | None = None,
        skip_corrupt: bool = False,
    ) -> Composable:
        """A stream over the samples: keys → key shuffle → key hooks → fetch → flatten → item shuffle.

        Keys are listed when the stream is iterated, not now. ``max_workers`` None or > 1 fetches shards on a
        thread pool, in order, at most ``prefetch_buffer`` keys ahead (``<= 0``: as many as there are workers);
        0 or 1 fetches in the consumer's thread. Key hooks are Composable classes (composed) or functions from
        a key iterator to a key iterator (``to``). ``skip_corrupt`` logs, counts and skips corrupt shards
        (see ``stream.skipped_shards``) instead of raising.
        """
        max_workers = check_int("get_iter", "max_workers", max_workers, -(2**31), allow_none=True)
        prefetch_buffer = check_int("get_iter", "prefetch_buffer", prefetch_buffer, -(2**31))
        keys: Any = (
            keys_iterable if keys_iterable is not None else functools.partial(self._keys_to_read, **(keys_kwargs or {}))
        )
        stream: Composable = _KeyStream(KeySource(source=keys, store=self._describe(), counts=self._shard_counter()))
        stream = stream.shuffle(shuffle_key_buffer, **(key_shuffle_kwargs or {}))
        for hook in key_hooks or ():
            func, args, kw = _unpack_hook(hook)
            if isinstance(func, type) and issubclass(func, Composable):
                stream = stream.compose(func, *args, **kw)
            elif callable(func):
                stream = stream.to(func, *args, **kw)
            else:
                raise ValueError(
                    f"get_iter(key_hooks=...): hook {hook!r} is neither a Composable subclass nor a callable"
                )
        workers = max_workers
        default_workers = min(32, (os.cpu_count() or 1) + 4)  # ThreadPoolExecutor's default
        buffer = prefetch_buffer if prefetch_buffer > 0 else (workers if workers and workers > 1 else default_workers)
        fetch = functools.partial(self.fetch, **(get_kwargs or {}))
        read, decode = self._fetch_halves() if not get_kwargs else (None, None)
        node = Fetch(
            fn=fetch,
            read=read,
            decode=decode,
            max_workers=workers,
            buffer=buffer,
            skip_corrupt=skip_corrupt,
            store=self._describe(),
        )
        stream = _FetchStage(node, stream)
        if flatten:
            stream = stream.flatten()
        return stream.shuffle(shuffle_item_buffer, **(item_shuffle_kwargs or {}))


class StoreDriver(MapDriver):
    """A MapDriver over a :class:`~squirrel_graph.io.store.SquirrelStore` (created on first use)."""

    name = "store_driver"

    def __init__(
        self,
        url: str,
        serializer: SquirrelSerializer,
        storage_options: dict[str, Any] | None = None,
        catalog: Any = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(url, str) or not url:
            raise ValueError(f"{type(self).__name__}(url=...): expected a non-empty store URL, got {url!r}")
        super().__init__(catalog=catalog, **kwargs)
        self.url = url
        self.serializer = serializer
        self.storage_options = dict(storage_options or {})
        self._store: Any = None
        self._store_pid = 0

    @property
    def store(self) -> Any:
        """The SquirrelStore behind this driver (nothing touches the filesystem until it is used)."""
        if self._store is None or self._store_pid != os.getpid():  # a forked child makes its own filesystem
            from squirrel_graph.io.store import SquirrelStore

            self._store = SquirrelStore(url=self.url, serializer=self.serializer, **self.storage_options)
            self._store_pid = os.getpid()
        return self._store

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_store"] = None  # a filesystem handle is per process; workers create their own
        return state

    def _describe(self) -> str:
        url = self.url if len(self.url) <= 40 else "..." + self.url[-37:]
        return f"{type(self).__name__}({url!r})"

    def get(self, key: Any, **kwargs: Any) -> Iterator[Any]:
        return self.store.get(key, **kwargs)

    def fetch(self, key: Any, **kwargs: Any) -> list[Any]:
        return self.store.get_shard(key, **kwargs)

    def _fetch_halves(self) -> tuple[Any, Any]:
        if getattr(self.serializer, "deserialize_shard_bytes", None) is None:
            return None, None
        return self._read_shard, self._decode_shard

    def _shard_counter(self) -> Any:
        return self._count

    def _count(self, key: Any) -> int:
        return self.store.count(key)

    def _read_shard(self, key: Any) -> tuple[Any, bytes]:
        return self.store.read_shard(key)

    def _decode_shard(self, key_and_raw: tuple[Any, bytes]) -> list[Any]:
        return self.store.decode_shard(key_and_raw)

    def keys(self, **kwargs: Any) -> Iterator[str]:
        return self.store.keys(**kwargs)

    def _keys_to_read(self, **kwargs: Any) -> Iterator[str]:
        return self.store.keys(**{"missing_ok": False, **kwargs})

    def get_iter(self, flatten: bool = True, **kwargs: Any) -> Composable:  # type: ignore[override]
        """Like :meth:`MapDriver.get_iter`, but shards are flattened into samples by default."""
        return super().get_iter(flatten=flatten, **kwargs)


class MessagepackDriver(StoreDriver):
    """A store of gzip msgpack shards (squirrel-core's default format)."""

    name = "messagepack"

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if "store" in kwargs:
            raise ValueError("MessagepackDriver(store=...): a store cannot be passed; give the url instead")
        super().__init__(url=url, serializer=MessagepackSerializer(), storage_options=storage_options, **kwargs)


class JsonlDriver(StoreDriver):
    """A store of gzip JSON-lines shards; ``deser_hook`` (a json object_hook) is applied when reading."""

    name = "jsonl"

    def __init__(
        self, url: str, deser_hook: Any = None, storage_options: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        if "store" in kwargs:
            raise ValueError("JsonlDriver(store=...): a store cannot be passed; give the url instead")
        super().__init__(url=url, serializer=JsonSerializer(deser_hook), storage_options=storage_options, **kwargs)


class FileDriver(Driver):
    """A single file behind an fsspec URL."""

    name = "file"

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None, catalog: Any = None, **kwargs: Any):
        if not isinstance(url, str) or not url:
            raise ValueError(f"FileDriver(url=...): expected a non-empty URL, got {url!r}")
        super().__init__(catalog=catalog, **kwargs)
        self.url = url
        self.storage_options = dict(storage_options or {})

    def open(self, mode: str = "r", create_if_not_exists: bool = False, **kwargs: Any) -> Any:
        """``fsspec.open`` of the file (parent folders created when writing with ``create_if_not_exists``)."""
        import fsspec

        return fsspec.open(self.url, mode, **{**self.storage_options, "auto_mkdir": create_if_not_exists, **kwargs})
