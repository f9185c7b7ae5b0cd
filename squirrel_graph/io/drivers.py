"""Drivers: squirrel-core's ``Driver``/``IterDriver``/``MapDriver`` and the store-backed drivers.

``MapDriver.get_iter`` does not return an opaque iterator: it builds plan nodes the optimizers can see — the key
listing (``keys``), key shuffle, key hooks, the shard ``fetch`` (in this thread or on a pool), flatten and item
shuffle — so split push-down, fusion and explain work on driver streams too.
"""

from __future__ import annotations

import functools
import inspect
import os
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from squirrel_graph.graph import ElasticSource, Fetch, KeySource, Node
from squirrel_graph.io.bounded import is_async, read_within
from squirrel_graph.io.serialization import JsonSerializer, MessagepackSerializer, SquirrelSerializer
from squirrel_graph.io.store_listing import StoreListing, list_on_rank0
from squirrel_graph.stream.composable import Composable, Stage
from squirrel_graph.stream.validate import check_auto_int, check_int, check_kwargs, check_seconds

if TYPE_CHECKING:
    from squirrel_graph.io.catalog import Catalog

DEFAULT_FETCH_TIMEOUT = 120.0  # seconds per attempt to read one shard from an object store
DEFAULT_FETCH_RETRIES = 2  # further attempts after a transient error (3 in all)
DEFAULT_FETCH_BACKOFF = 0.5  # seconds before the first retry, doubled before each next one
_SHUFFLE_KWARGS = ("initial", "rng", "seed")


class _DriverSetting:
    """The default of ``get_iter``'s fetch options: the value the driver was constructed with."""

    def __repr__(self) -> str:
        return "<the driver's setting>"


DRIVER_SETTING: Any = _DriverSetting()


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


def _named_parameters(fn: Callable[..., Any], skip: int) -> tuple[str, ...] | None:
    """The keyword names ``fn`` takes after its first ``skip`` parameters, or None if it takes ``**kwargs``."""
    params = list(inspect.signature(fn).parameters.values())[skip:]
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return tuple(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


def _shuffled(stream: Composable, size: int | None, kwargs: Any, arg: str) -> Composable:
    """``stream.shuffle(size, **kwargs)``, an error naming ``get_iter``'s argument ``arg``."""
    kwargs = check_kwargs("get_iter", arg, kwargs, _SHUFFLE_KWARGS, "shuffle()")
    try:
        return stream.shuffle(size, **kwargs)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"get_iter({arg}=...): {exc}") from None


def _check_fetch_options(method: str, timeout: Any, retries: Any, backoff: Any) -> tuple[float | None, int, float]:
    """Validated ``(fetch_timeout, fetch_retries, fetch_backoff)``; errors name ``method`` and the argument."""
    return (
        check_seconds(method, "fetch_timeout", timeout, positive=True, allow_none=True),
        check_int(method, "fetch_retries", retries, 0),
        check_seconds(method, "fetch_backoff", backoff, positive=False),
    )


class _KeyStream(Composable):
    """The handle of a driver's key listing."""

    def __init__(self, node: KeySource | ElasticSource) -> None:
        super().__init__(getattr(node, "source", None))
        self._op = node

    def _builtin_node(self) -> Node:
        return self._op


class _FetchStage(Stage):
    """The handle of a fetch stage; it reports the corrupt shards it skipped in its latest run."""

    def _skipped_here(self) -> list[tuple[Any, str]]:
        state = self._state_here()
        return list(state.skipped) if state is not None else []


class MapDriver(Driver, ABC):
    """A driver with random access by key: ``get(key)`` and ``keys()``, streamed by :meth:`get_iter`; fetches are
    retried after transient errors (:mod:`squirrel_graph.runtime.retry`), and only store drivers bound them in time."""

    fetch_timeout: float | None = None  # get() is arbitrary code: it cannot be bounded from outside
    fetch_retries: int = DEFAULT_FETCH_RETRIES
    fetch_backoff: float = DEFAULT_FETCH_BACKOFF

    @abstractmethod
    def get(self, key: Any, **kwargs: Any) -> Any:
        """The value (or the samples of the shard) under ``key``."""

    @abstractmethod
    def keys(self, **kwargs: Any) -> Iterable[Any]:
        """All keys, in a deterministic order."""

    def _keys_to_read(self, **kwargs: Any) -> Iterable[Any]:
        """The keys ``get_iter()`` reads (a store may list a missing folder as empty, but reading one is an error)."""
        return self.keys(**kwargs)

    def _key_listing(self, keys_kwargs: dict[str, Any]) -> tuple[Any, Any]:
        """``(keys, counts)`` of ``get_iter()``'s key listing: a callable run at iteration, and key -> samples."""
        return functools.partial(self._keys_to_read, **keys_kwargs), self._shard_counter()

    def _bound_fetchers(self, keys: Any, fetch: Any, read: Any, decode: Any) -> tuple[Any, Any, Any]:
        """The fetch callables tied to the key listing ``keys`` (a store checks shards against its index)."""
        return fetch, read, decode

    def _keys_kwargs_names(self) -> tuple[str, ...] | None:
        """The ``keys_kwargs`` that :meth:`keys` takes (None: it takes ``**kwargs``, so they are not checked)."""
        return _named_parameters(self.keys, 0)

    def _get_kwargs_names(self) -> tuple[str, ...] | None:
        """The ``get_kwargs`` that :meth:`get` takes after the key (None: not checked)."""
        return _named_parameters(self.get, 1)

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

    def _fetchers(self, get_kwargs: dict[str, Any], timeout: float | None) -> tuple[Any, Any, Any, float | None]:
        """``(fetch, read, decode, timeout)``: the fetch callables, bounded by ``timeout`` where the driver can,
        and the timeout they enforce (None: unbounded). This driver cannot bound ``get()``."""
        if timeout is not None:
            raise ValueError(
                f"get_iter(fetch_timeout=...): {type(self).__name__}.get() is its own code and cannot be bounded "
                "from outside; leave fetch_timeout unset or None (fetch_retries still applies)"
            )
        read, decode = self._fetch_halves() if not get_kwargs else (None, None)
        return functools.partial(self.fetch, **get_kwargs), read, decode, None

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
        fetch_timeout: float | None = DRIVER_SETTING,
        fetch_retries: int = DRIVER_SETTING,
        fetch_backoff: float = DRIVER_SETTING,
    ) -> Composable:
        """A stream over the samples: keys → key shuffle → key hooks → fetch → flatten → item shuffle.

        Keys are listed when the stream is iterated, not now. ``max_workers`` None or > 1 fetches shards on a
        thread pool, in order, at most ``prefetch_buffer`` keys ahead (``<= 0``: as many as there are workers);
        0 or 1 fetches in the consumer's thread. Key hooks are Composable classes (composed) or functions from
        a key iterator to a key iterator (``to``). ``skip_corrupt`` logs, counts and skips corrupt shards
        (see ``stream.skipped_shards``) instead of raising.

        ``keys_kwargs`` go to :meth:`keys` and ``get_kwargs`` to :meth:`get`; names those methods do not take are
        refused now (a store driver's ``get_kwargs`` go on to its serializer and fsspec's ``open``, which decide).
        ``key_shuffle_kwargs``/``item_shuffle_kwargs`` take ``initial``, ``rng`` and ``seed`` (see ``shuffle``).
        ``fetch_timeout`` (seconds per attempt, None: no limit), ``fetch_retries`` and ``fetch_backoff`` override
        the driver's settings for this stream; see the driver's constructor.
        """
        max_workers = check_auto_int("get_iter", "max_workers", max_workers, -(2**31), allow_none=True)
        prefetch_buffer = check_int("get_iter", "prefetch_buffer", prefetch_buffer, -(2**31))
        shuffle_key_buffer = check_int("get_iter", "shuffle_key_buffer", shuffle_key_buffer, 0, allow_none=True)
        shuffle_item_buffer = check_int("get_iter", "shuffle_item_buffer", shuffle_item_buffer, 0, allow_none=True)
        if isinstance(keys_iterable, (str, bytes)):
            raise TypeError(
                f"get_iter(keys_iterable=...): expected an iterable of keys, got the {type(keys_iterable).__name__} "
                f"{keys_iterable!r:.60} (its characters would be read as keys); pass [key]"
            )
        if callable(key_hooks):
            raise TypeError(f"get_iter(key_hooks=...): expected a list of hooks, got one hook {key_hooks!r:.60}")
        owner = type(self).__name__
        keys_kwargs = check_kwargs("get_iter", "keys_kwargs", keys_kwargs, self._keys_kwargs_names(), f"{owner}.keys()")
        get_kwargs = check_kwargs("get_iter", "get_kwargs", get_kwargs, self._get_kwargs_names(), f"{owner}.get()")
        timeout, retries, backoff = _check_fetch_options(
            "get_iter",
            self.fetch_timeout if fetch_timeout is DRIVER_SETTING else fetch_timeout,
            self.fetch_retries if fetch_retries is DRIVER_SETTING else fetch_retries,
            self.fetch_backoff if fetch_backoff is DRIVER_SETTING else fetch_backoff,
        )
        if keys_iterable is not None:
            keys, counts = keys_iterable, self._shard_counter()
        else:
            keys, counts = self._key_listing(keys_kwargs)
        stream: Composable = _KeyStream(KeySource(source=keys, store=self._describe(), counts=counts))
        stream = _shuffled(stream, shuffle_key_buffer, key_shuffle_kwargs, "key_shuffle_kwargs")
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
        fixed = isinstance(workers, int) and workers > 1  # "auto": the tuner sets the keys in flight
        buffer = prefetch_buffer if prefetch_buffer > 0 else (workers if fixed else default_workers)
        fetch, read, decode, timeout = self._fetchers(get_kwargs, timeout)
        fetch, read, decode = self._bound_fetchers(keys, fetch, read, decode)
        node = Fetch(
            fn=fetch,
            read=read,
            decode=decode,
            max_workers=workers,
            buffer=buffer,
            skip_corrupt=skip_corrupt,
            store=self._describe(),
            timeout=timeout,
            retries=retries,
            backoff=backoff,
        )
        stream = _FetchStage(node, stream)
        if flatten:
            stream = stream.flatten()
        return _shuffled(stream, shuffle_item_buffer, item_shuffle_kwargs, "item_shuffle_kwargs")

    def elastic_iter(
        self, global_batch_size: int, seed: Any = 0, window: int = 4, torch_dist_group: Any = None
    ) -> Composable:
        """Elastic determinism: this rank's and DataLoader worker's samples such that the samples of each global
        step (``global_batch_size`` of them, over all ranks) are the same for any number of ranks and workers.

        Follow it with per-item maps only and ``.batched(global_batch_size // world_size)``; rank and world size are
        read from torch.distributed now (as ``split_by_rank_pytorch`` does), the worker when a run starts. Keys and
        sample counts come from the store's listing (its index or count files); see ``docs/checkpointing.md``."""
        size = check_int("elastic_iter", "global_batch_size", global_batch_size, 1)
        window = check_int("elastic_iter", "window", window, 1)
        rank, world = _rank_and_world(torch_dist_group)
        keys, counts = self._key_listing({})
        fetch = self._fetchers({}, None)[0]
        node = ElasticSource(
            keys=keys if callable(keys) else (lambda: list(keys)),
            counts=counts,
            fetch=fetch,
            store=self._describe(),
            global_batch_size=size,
            seed=seed,
            window=window,
            rank=rank,
            world_size=world,
        )
        return _KeyStream(node)


def _rank_and_world(group: Any) -> tuple[int, int]:
    """(rank, world size) of torch.distributed now (0, 1 when it is not initialized or torch is absent)."""
    import sys

    torch = sys.modules.get("torch")
    if torch is None or not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return 0, 1
    return torch.distributed.get_rank(group), torch.distributed.get_world_size(group)


class StoreDriver(MapDriver):
    """A MapDriver over a :class:`~squirrel_graph.io.store.SquirrelStore` (created on first use). A shard read from an
    async filesystem (s3, gcs, http) gives up after ``fetch_timeout`` s; see :mod:`squirrel_graph.runtime.retry`.
    Keys and counts come from the store index when there is one (``use_index=False``: always list the store), or from
    a table rank 0 broadcast (:meth:`list_on_rank0`); see :mod:`squirrel_graph.io.store_index`."""

    name = "store_driver"

    def __init__(
        self,
        url: str,
        serializer: SquirrelSerializer,
        storage_options: dict[str, Any] | None = None,
        catalog: Any = None,
        fetch_timeout: float | None = DEFAULT_FETCH_TIMEOUT,
        fetch_retries: int = DEFAULT_FETCH_RETRIES,
        fetch_backoff: float = DEFAULT_FETCH_BACKOFF,
        use_index: bool = True,
        **kwargs: Any,
    ) -> None:
        if not isinstance(url, str) or not url:
            raise ValueError(f"{type(self).__name__}(url=...): expected a non-empty store URL, got {url!r}")
        name = type(self).__name__
        self.fetch_timeout, self.fetch_retries, self.fetch_backoff = _check_fetch_options(
            name, fetch_timeout, fetch_retries, fetch_backoff
        )
        super().__init__(catalog=catalog, **kwargs)
        self.url = url
        self.serializer = serializer
        self.storage_options = dict(storage_options or {})
        self.use_index = bool(use_index)
        self.shared_listing: Any = None  # a key table given by use_listing() / list_on_rank0(), read instead of listing
        self._store: Any = None
        self._store_pid = 0

    @property
    def store(self) -> Any:
        """The SquirrelStore behind this driver (nothing touches the filesystem until it is used)."""
        if self._store is None or self._store_pid != os.getpid():  # a forked child makes its own filesystem
            from squirrel_graph.io.store import SquirrelStore

            options = {**self.storage_options, "use_index": self.use_index}
            self._store = SquirrelStore(url=self.url, serializer=self.serializer, **options)
            self._store_pid = os.getpid()
        return self._store

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_store"] = None  # a filesystem handle is per process; workers create their own
        return state

    def _describe(self) -> str:
        url = self.url if len(self.url) <= 40 else "..." + self.url[-37:]
        return f"{type(self).__name__}({url!r})"

    def _keys_kwargs_names(self) -> tuple[str, ...] | None:
        return ("nested", "missing_ok")  # SquirrelStore.keys takes **kwargs but uses only these

    def _get_kwargs_names(self) -> tuple[str, ...] | None:
        return None  # the serializer's deserialize_shard_from_file, then fsspec's open: they decide

    def get(self, key: Any, **kwargs: Any) -> Iterator[Any]:
        return self.store.get(key, **kwargs)

    def fetch(self, key: Any, **kwargs: Any) -> list[Any]:
        return self.store.get_shard(key, **kwargs)

    def _fetch_halves(self) -> tuple[Any, Any]:
        if getattr(self.serializer, "deserialize_shard_bytes", None) is None:
            return None, None
        return self._read_shard, self._decode_shard

    def _fetchers(self, get_kwargs: dict[str, Any], timeout: float | None) -> tuple[Any, Any, Any, float | None]:
        """Reads bounded by ``timeout`` on an async filesystem; with ``get_kwargs`` (fsspec's ``open`` reads the
        shard) or a filesystem that cannot be bounded, ``timeout`` is None."""
        if get_kwargs:
            return functools.partial(self.fetch, **get_kwargs), None, None, None
        read, decode = self._fetch_halves()
        if timeout is None or read is None or not self._reads_can_be_bounded():
            return self.fetch, read, decode, None
        read = functools.partial(self._read_shard, timeout=timeout)
        return functools.partial(self._fetch_within, timeout=timeout), read, decode, timeout

    def _reads_can_be_bounded(self) -> bool:
        """True if the store's filesystem class is async (found without creating it: nothing runs before iteration)."""
        import fsspec
        from fsspec.asyn import AsyncFileSystem
        from fsspec.core import split_protocol

        protocol = self.storage_options.get("protocol") or split_protocol(self.url)[0] or "file"
        try:
            cls = fsspec.get_filesystem_class(str(protocol).split("::", 1)[0])
        except (ImportError, ValueError):
            return True  # unknown here; decided per read (a read on a filesystem that is not async is not bounded)
        return issubclass(cls, AsyncFileSystem)

    def _shard_counter(self) -> Any:
        return self._count

    def _count(self, key: Any) -> int:
        return self.store.count(key)

    def _read_shard(self, key: Any, timeout: float | None = None) -> tuple[Any, bytes]:
        """``(key, raw bytes)`` of shard ``key``; on an async filesystem, a ``TimeoutError`` after ``timeout`` s."""
        store = self.store
        if timeout is None or not is_async(store.fs):
            return store.read_shard(key)
        path = store._shard_path(key)  # the store's own key -> path rule (and its key checks)
        try:
            return key, read_within(store.fs, path, timeout, f"shard {store.url}/{key}.gz")
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"SquirrelStore.get: no shard {key!r} in store {store.url} ({path})") from exc

    def _fetch_within(self, key: Any, timeout: float) -> list[Any]:
        """:meth:`fetch` whose read is bounded by ``timeout`` where the filesystem allows it."""
        if not is_async(self.store.fs):
            return self.fetch(key)
        return self._decode_shard(self._read_shard(key, timeout))

    def _decode_shard(self, key_and_raw: tuple[Any, bytes]) -> list[Any]:
        return self.store.decode_shard(key_and_raw)

    def keys(self, **kwargs: Any) -> Iterator[str]:
        return self.store.keys(**kwargs)

    def _keys_to_read(self, **kwargs: Any) -> Iterator[str]:
        return self.store.keys(**{"missing_ok": False, **kwargs})

    def _key_listing(self, keys_kwargs: dict[str, Any]) -> tuple[Any, Any]:
        if self.serializer is None or type(self).store is not StoreDriver.store:  # not a SquirrelStore: no index
            return super()._key_listing(keys_kwargs)
        listing = StoreListing(self, bool(keys_kwargs.get("nested", False)), bool(keys_kwargs.get("missing_ok", False)))
        return listing, listing.count

    def _bound_fetchers(self, keys: Any, fetch: Any, read: Any, decode: Any) -> tuple[Any, Any, Any]:
        if isinstance(keys, StoreListing):
            return keys.bind_fetchers(fetch, read, decode)
        return fetch, read, decode

    def list_on_rank0(self, nested: bool = False, counts: bool = True, group: Any = None) -> Any:
        """Rank-0 listing, a collective: call it on every rank (after ``init_process_group``, before iterating). Rank 0
        reads the store index (or lists the store and, with ``counts``, reads its count files) and broadcasts the
        table; this driver's streams, in DataLoader workers too, then read keys and counts from it with no request,
        until the next call or ``use_listing(None)``. Returns the table."""
        return list_on_rank0(self, nested=nested, counts=counts, group=group)

    def use_listing(self, table: Any) -> None:
        """Read keys (and counts) from ``table`` (a ShardTable, e.g. from ``list_on_rank0``) instead of the store; None:
        read the store again."""
        self.shared_listing = table

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
