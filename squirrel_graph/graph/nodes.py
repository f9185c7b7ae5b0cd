"""Node types of the logical plan: the stages a user writes (optimizer output lives in :mod:`.physical`).

Each node is a frozen dataclass holding the parameters and user callables of one stage, compared by identity;
``@traits`` declares what passes may do around it (see :mod:`.base`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from squirrel_graph.graph.base import Node, callable_name, traits

# --------------------------------------------------------------------------------------------- sources


@traits(holds_state=True)
@dataclass(frozen=True, eq=False)
class IterSource(Node):
    """Items of an iterable, or of what a callable returns when called at iteration time."""

    kind: ClassVar[str] = "source"
    n_inputs: ClassVar[int | None] = 0
    source: Any = ()

    def label(self) -> str:
        src = self.source
        if callable(src):
            return f"source({callable_name(src)}())"
        if isinstance(src, range):
            return f"source({src!r})"
        return f"source({type(src).__name__})"


@traits(lists_keys=True, holds_state=True)
@dataclass(frozen=True, eq=False)
class KeySource(IterSource):
    """The shard keys of a driver's store, listed at iteration time (the top of every ``get_iter`` plan).

    Split push-down moves rank/worker splits right below this node, so each process fetches only its shards.
    """

    kind: ClassVar[str] = "keys"
    store: str = ""
    counts: Any = None  # callable key -> number of samples in that shard (for equalize), if the driver knows

    def label(self) -> str:
        return f"keys({self.store})"

    def params(self) -> dict[str, Any]:
        how = getattr(self.source, "explain_params", None)  # a store listing says how its latest run got keys/counts
        return dict(how()) if callable(how) else {}


@traits(holds_state=True)
@dataclass(frozen=True, eq=False)
class FilePaths(Node):
    """Paths under an fsspec URL, listed at iteration time (squirrel-core's FilePathGenerator)."""

    kind: ClassVar[str] = "file_paths"
    n_inputs: ClassVar[int | None] = 0
    url: str = ""
    nested: bool = False
    max_workers: int | None = None
    max_keys: int = 1_000_000
    max_dirs: int = 10
    storage_options: Mapping[str, Any] = field(default_factory=dict)
    lister: Any = None  # callable returning the paths (built by the io layer, so backends need not import it)

    def label(self) -> str:
        return f"file_paths({self.url!r}{', nested' if self.nested else ''})"


@traits(order_sensitive=True, keeps_items=True, holds_state=True)
@dataclass(frozen=True, eq=False)
class SamplerSource(Node):
    """Draws each next item from one of several inputs at random (IterableSamplerSource)."""

    kind: ClassVar[str] = "sampler"
    n_inputs: ClassVar[int | None] = None
    probs: tuple[float, ...] | None = None
    rng_state: Any = None  # state of a random.Random, copied at chain time; replayed on every iteration

    def label(self) -> str:
        return "sampler" + (f"(probs={list(self.probs)})" if self.probs else "(uniform)")


@traits(order_sensitive=True, keeps_items=True, holds_state=True)
@dataclass(frozen=True, eq=False)
class Multiplex(Node):
    """Interleaves several inputs by a MultiplexingStrategy (squirrel-core's Multiplexer)."""

    kind: ClassVar[str] = "multiplex"
    n_inputs: ClassVar[int | None] = None
    strategy: str = "RoundRobin"
    probas: tuple[float, ...] | None = None
    max_reinits: int = 0
    seed: Any = None

    def label(self) -> str:
        return f"multiplex({self.strategy})"


@traits(custom=True, holds_state=True)
@dataclass(frozen=True, eq=False)
class Opaque(Node):
    """A user Composable subclass with its own ``__iter__``: a black box that reads its own ``.source``.

    Its input edge (when ``.source`` is a stream) is shown in explain and seen by analyses, but the node
    iterates ``.source`` itself, so no pass moves anything across it.
    """

    kind: ClassVar[str] = "opaque"
    n_inputs: ClassVar[int | None] = None
    handle: Any = None

    def label(self) -> str:
        return f"opaque({type(self.handle).__name__})"


# --------------------------------------------------------------------------------------- per-item nodes


@traits(item_independent=True, preserves_count=True, reads_shards=True, holds_state=True)
@dataclass(frozen=True, eq=False)
class Fetch(Node):
    """Reads and decodes one shard per key: ``fn(key)`` returns the shard's samples (a list).

    Runs on a thread pool when ``max_workers`` is None or > 1 (ordered, at most ``buffer`` keys in flight), else
    in the consumer's thread. When the driver splits the fetch into ``read`` (key -> (key, raw bytes): I/O,
    releases the GIL) and ``decode`` ((key, raw) -> samples: CPU), a parallel fetch reads on ``max_workers``
    threads and decodes on ``decode_workers`` threads (one per core), so decoding does not fight for the GIL
    with a crowd of I/O threads. With ``skip_corrupt`` a corrupt shard is logged, counted and skipped.

    ``fn``/``read`` enforce ``timeout`` s per attempt (None: unbounded); the runtime retries them ``retries`` times
    after a transient error, ``backoff`` s later, doubled each time.
    """

    kind: ClassVar[str] = "fetch"
    fn: Any = None
    read: Any = None
    decode: Any = None
    decode_workers: int | None = None  # None: the cores, shared among the DataLoader workers
    max_workers: int | None = None
    buffer: int = 10
    skip_corrupt: bool = False
    store: str = ""
    timeout: float | None = None
    retries: int = 0
    backoff: float = 0.5

    @property
    def parallel(self) -> bool:
        return self.max_workers is None or self.max_workers == "auto" or self.max_workers > 1

    def label(self) -> str:
        return f"fetch({self.store})"

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"max_workers": self.max_workers, "prefetch_buffer": self.buffer}
        if self.parallel and self.decode is not None:
            out["decode_workers"] = self.decode_workers or "auto"
        if self.skip_corrupt:
            out["skip_corrupt"] = True
        if self.timeout is not None or self.retries:
            out["fetch_timeout"] = self.timeout if self.timeout is not None else "unbounded"
            out["fetch_retries"] = self.retries
            if self.retries:
                out["fetch_backoff"] = self.backoff
        return out


@traits(item_independent=True, preserves_count=True, fusable=True, per_key=True)
@dataclass(frozen=True, eq=False)
class Map(Node):
    """``fn(item, **kwargs)`` for every item, synchronously and in order."""

    kind: ClassVar[str] = "map"
    fn: Any = None
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        return f"map({callable_name(self.fn)})"

    def params(self) -> dict[str, Any]:
        return dict(self.kwargs)


@traits(item_independent=True, preserves_count=True, fusable=True)
@dataclass(frozen=True, eq=False)
class NumbaMap(Map):
    """A map the numba backend compiles (with the per-item stages fused around it) when numba can type it; it
    falls back to a plain call, with the reason in explain, when numba cannot."""

    kind: ClassVar[str] = "numba_map"

    def label(self) -> str:
        return f"numba_map({callable_name(self.fn)})"


@traits(item_independent=True, keeps_items=True, fusable=True, per_key=True)
@dataclass(frozen=True, eq=False)
class Filter(Node):
    """Keeps the items for which ``predicate(item)`` is truthy."""

    kind: ClassVar[str] = "filter"
    predicate: Any = None

    def label(self) -> str:
        return f"filter({callable_name(self.predicate)})"


@traits(item_independent=True, unnests=True, fusable=True, per_key=True)
@dataclass(frozen=True, eq=False)
class Flatten(Node):
    """Yields the elements of every item (``yield from item``)."""

    kind: ClassVar[str] = "flatten"


@traits(item_independent=True, preserves_count=True, holds_state=True)
@dataclass(frozen=True, eq=False)
class AsyncMap(Node):
    """``fn(item, **kwargs)`` on a thread pool or a user executor; output order equals input order."""

    kind: ClassVar[str] = "async_map"
    fn: Any = None
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    buffer: int = 100
    max_workers: int | None = None
    executor: Any = None

    def label(self) -> str:
        return f"async_map({callable_name(self.fn)})"

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"buffer": self.buffer, "max_workers": self.max_workers}
        if self.executor is not None:
            out["executor"] = type(self.executor).__name__
        return {**out, **self.kwargs}


@traits(item_independent=True, preserves_count=True, keeps_items=True, holds_state=True)
@dataclass(frozen=True, eq=False)
class Prefetch(Node):
    """Up to ``n`` items kept ready by a background thread between two stages, so the upstream stage works while
    the consumer is busy (tf.data's ``prefetch``). Items, order and errors are unchanged."""

    kind: ClassVar[str] = "prefetch"
    n: int = 1

    def label(self) -> str:
        return f"prefetch({self.n})"


# ------------------------------------------------------------------------------- order/count dependent


@traits(order_sensitive=True, batch_tail=True, holds_state=True)
@dataclass(frozen=True, eq=False)
class Batched(Node):
    """Lists of ``batchsize`` consecutive items; a short last batch is dropped if ``drop_last``."""

    kind: ClassVar[str] = "batched"
    batchsize: int = 1
    collation_fn: Any = None
    drop_last: bool = True

    def label(self) -> str:
        return f"batched({self.batchsize})"

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"drop_last_if_not_full": self.drop_last}
        if self.collation_fn is not None:
            out["collation_fn"] = callable_name(self.collation_fn)
        return out


@traits(order_sensitive=True, holds_state=True)
@dataclass(frozen=True, eq=False)
class Sliding(Node):
    """Sliding windows over the stream (a generalisation of batched)."""

    kind: ClassVar[str] = "sliding"
    window_size: int = 2
    deepcopy: bool = False
    stride: int = 1
    drop_last: bool = True
    min_window_size: int = 1
    fill_nan_on_partial: bool = False

    def label(self) -> str:
        return f"sliding({self.window_size}, stride={self.stride})"


@traits(preserves_count=True, keeps_items=True, holds_state=True)
@dataclass(frozen=True, eq=False)
class Shuffle(Node):
    """Buffered shuffle; ``rng_state`` (a random.Random state) makes every iteration replay the same order."""

    kind: ClassVar[str] = "shuffle"
    size: int = 1000
    initial: int = 100
    seed: Any = None
    rng_state: Any = None

    def label(self) -> str:
        seeded = self.seed is not None or self.rng_state is not None
        return f"shuffle({self.size}{', seeded' if seeded else ''})"

    @property
    def differs_between_processes(self) -> bool:  # type: ignore[override]
        return self.seed is None and self.rng_state is None and self.size >= 2

    def noop_reason(self) -> str | None:
        return f"shuffle buffer of size {self.size} cannot reorder items" if self.size < 2 else None


@traits(order_sensitive=True, keeps_items=True, holds_state=True)
@dataclass(frozen=True, eq=False)
class Take(Node):
    """The first ``n`` items (all of them when ``n`` is None)."""

    kind: ClassVar[str] = "take"
    n: int | None = None

    def label(self) -> str:
        return f"take({self.n})"

    def noop_reason(self) -> str | None:
        return "take(None) keeps every item" if self.n is None else None


@traits(order_sensitive=True, keeps_items=True, holds_state=True)
@dataclass(frozen=True, eq=False)
class Loop(Node):
    """Re-iterates its whole upstream ``n`` times (forever when None)."""

    kind: ClassVar[str] = "loop"
    n: int | None = None

    def label(self) -> str:
        return f"loop({self.n})"


@traits(order_sensitive=True, preserves_count=True, holds_state=True)
@dataclass(frozen=True, eq=False)
class ZipIndex(Node):
    """``(index, item)`` pairs; the index restarts at 0 on every iteration."""

    kind: ClassVar[str] = "zip_index"
    pad_length: int | None = None

    def label(self) -> str:
        return "zip_index" + (f"(pad_length={self.pad_length})" if self.pad_length else "")


@traits(item_independent=True, preserves_count=True, keeps_items=True)
@dataclass(frozen=True, eq=False)
class Tqdm(Node):
    """A tqdm progress bar over the items passing through."""

    kind: ClassVar[str] = "tqdm"
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@traits(custom=True, holds_state=True)
@dataclass(frozen=True, eq=False)
class IteratorFn(Node):
    """``fn(iterator, *args, **kwargs)``: an arbitrary iterator-to-iterator function (``Composable.to``)."""

    kind: ClassVar[str] = "to"
    fn: Any = None
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        return f"to({callable_name(self.fn)})"


@traits(order_sensitive=True, keeps_items=True, holds_state=True)
@dataclass(frozen=True, eq=False)
class Split(Node):
    """Keeps every ``parts``-th item starting at ``index``: one rank's (or one DataLoader worker's) share.

    ``axis`` is ``"rank"`` (index and parts captured when the stream was built, from torch.distributed) or
    ``"worker"`` (read from torch's worker info at iteration). ``level="auto"`` lets push_splits move it
    upstream, up to a driver's key listing; ``"item"`` pins it. ``equalize`` (rank splits) makes every rank
    yield the same number of items: ``"drop"`` the extra ones or ``"pad"`` by repeating.
    """

    kind: ClassVar[str] = "split"
    axis: str = "worker"
    index: int = 0
    parts: int = 1
    level: str = "auto"
    equalize: str | None = None
    shard_counts: Any = None

    def label(self) -> str:
        if self.axis == "rank":
            text = f"split_by_rank({self.index}/{self.parts}"
        else:
            text = "split_by_worker(" + ("at iteration" if self.parts == 1 else f"{self.index}/{self.parts}")
        if self.level != "auto":
            text += f", level={self.level!r}"
        if self.equalize:
            text += f", equalize={self.equalize!r}"
        return text + ")"


@traits(order_sensitive=True, keeps_items=True, holds_state=True)
@dataclass(frozen=True, eq=False)
class Equalize(Node):
    """Truncates (``drop``) or pads by repeating (``pad``) one process's stream to a count computed from
    per-shard counts, so every rank (and each DataLoader worker position) yields the same number of items."""

    kind: ClassVar[str] = "equalize"
    mode: str = "drop"
    rank: int = 0
    world_size: int = 1
    counts: Any = None  # a mapping or callable key -> item count; None: the key listing's own counts

    def label(self) -> str:
        return f"equalize({self.mode!r}, rank {self.rank}/{self.world_size})"

    def lets_split_pass(self, axis: str) -> bool:
        return axis == "worker"  # a worker split may pass a rank's equalize, which then sets a quota per worker


@traits(item_independent=True, preserves_count=True, keeps_items=True)
@dataclass(frozen=True, eq=False)
class TorchCheck(Node):
    """The end of a ``to_torch_iterable()`` stream: on the first item, checks that a multi-rank or multi-worker
    run has the matching split upstream (else PyTorchSplittingException)."""

    kind: ClassVar[str] = "torch_check"
    enforce_rank_check: bool = True
    enforce_worker_check: bool = True

    def label(self) -> str:
        return "torch_iterable"


@traits(item_independent=True, preserves_count=True)
@dataclass(frozen=True, eq=False)
class PackBatches(Node):
    """``to_torch_iterable(pack=True)``: in a DataLoader worker, each field of a batch whose values are arrays of one
    shape and dtype becomes one shared-memory tensor, and each item a view of it (decided when a run starts)."""

    kind: ClassVar[str] = "pack_batches"


@traits(item_independent=True, preserves_count=True, keeps_items=True, holds_state=True)
@dataclass(frozen=True, eq=False)
class Monitor(Node):
    """Passes items through and reports IOPS and throughput of the items reaching it to ``callback``.

    ``callback(metrics, **kwargs)`` is called every ``every`` items (sampled monitors also after ``heartbeat``
    seconds without a call, and once at the end), at most once per ``interval`` seconds. ``clock`` (seconds,
    monotonic) can be injected.
    """

    kind: ClassVar[str] = "monitor"
    callback: Any = None
    prefix: str = ""
    iops: bool = True
    throughput: bool = True
    unit: str = "MB"
    window_size: int = 5
    every: int = 1
    interval: float | None = None
    clock: Any = None
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    auto: bool = False  # inserted by compile(monitor=...), not written by the user
    heartbeat: float | None = 5.0  # sampled monitors: report at least this often (seconds) on a slow stream

    @property
    def sampled(self) -> bool:
        """Sampled monitors (``every > 1``) cost a counter per item and run inside fused loops."""
        return self.every > 1

    @property
    def fusable(self) -> bool:  # type: ignore[override]
        return self.sampled

    def label(self) -> str:
        if self.auto:
            return f"monitor(after {self.prefix[:-2]})"
        return f"monitor({self.prefix!r})" if self.prefix else "monitor"

    def params(self) -> dict[str, Any]:
        return {
            "window_size": self.window_size,
            "every": self.every,
            "interval": self.interval,
            "heartbeat": self.heartbeat,
        }


@traits(item_independent=True, preserves_count=True)
@dataclass(frozen=True, eq=False)
class DaskMap(Node):
    """Wraps each item in a ``dask.delayed`` call of ``fn`` (nothing is computed until materialized)."""

    kind: ClassVar[str] = "dask_map"
    fn: Any = None
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        return f"dask_map({callable_name(self.fn)})"


@traits(item_independent=True, preserves_count=True, holds_state=True)
@dataclass(frozen=True, eq=False)
class MaterializeDask(Node):
    """Computes the delayed items, in order, at most ``buffer`` at a time (squirrel-core's materialize_dask)."""

    kind: ClassVar[str] = "materialize_dask"
    buffer: int = 10
    max_workers: int | None = None
    partition_size: int = 1

    def label(self) -> str:
        return "materialize_dask"

    def params(self) -> dict[str, Any]:
        return {"buffer": self.buffer, "partition_size": self.partition_size}


@traits(item_independent=True, preserves_count=True, keeps_items=True, barrier=True)
@dataclass(frozen=True, eq=False)
class Barrier(Node):
    """A user hint: no optimization crosses this point. Costs nothing at run time."""

    kind: ClassVar[str] = "barrier"


#: every node class defined here (the IR package re-exports them, so a new node class needs no other edit)
__all__ = sorted(
    name
    for name, value in list(globals().items())
    if isinstance(value, type) and issubclass(value, Node) and value is not Node
)
