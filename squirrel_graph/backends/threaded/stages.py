"""The threaded backend: runners for every node kind of the IR, using generated loops and thread pools."""

from __future__ import annotations

import functools
import itertools
import os
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from squirrel_graph.backends.lowering import Lowered, PhysicalStage
from squirrel_graph.errors import annotate
from squirrel_graph.graph import (
    AsyncMap,
    Barrier,
    Batched,
    ElasticSource,
    Equalize,
    Fetch,
    FilePaths,
    Filter,
    Flatten,
    Fused,
    IteratorFn,
    IterSource,
    KeySource,
    Loop,
    Map,
    Monitor,
    Multiplex,
    Node,
    Opaque,
    PackBatches,
    Plan,
    Prefetch,
    SamplerSource,
    Shuffle,
    Sliding,
    Split,
    Take,
    TorchCheck,
    Tqdm,
    ZipIndex,
)
from squirrel_graph.runtime import (
    autotune,
    elastic,
    interleave,
    monitoring,
    one_shot,
    ops,
    packing,
    resume,
    retry,
    shuffling,
    splits,
    windows,
)
from squirrel_graph.runtime.codegen import generate
from squirrel_graph.runtime.context import Opener, RunContext, Runner
from squirrel_graph.runtime.pool import StopFlag


class ThreadedBackend:
    """Runs every node kind in the consumer's thread, with thread pools for ``async_map``.

    ``inline``: write simple pure functions into generated loops instead of calling them.
    """

    name = "threaded"

    def __init__(self, inline: bool = True) -> None:
        self.inline = inline

    def lower_node(self, nid: str, node: Node, plan: Plan, built: Mapping[str, PhysicalStage]) -> Lowered | None:
        if isinstance(node, _LOOP_KINDS) or (isinstance(node, Monitor) and node.sampled):
            return _fused(nid, node, self.inline)
        if isinstance(node, Shuffle):
            return Lowered(_shuffle(nid, node, plan))
        if isinstance(node, Equalize):
            return Lowered(splits.equalize(nid, node, plan, lambda sid: built[sid].open))
        if isinstance(node, TorchCheck):
            return Lowered(_passing(nid, splits.check(nid, node, plan)))
        if isinstance(node, ElasticSource):
            return Lowered(_elastic(nid, node, plan), note="elastic mode: see the node's parameters")
        if isinstance(node, PackBatches):
            run, note = packing.runner(nid, plan)
            return Lowered(_passing(nid, run), note)
        make = _RUNNERS.get(type(node))
        if make is None:
            return None
        return Lowered(make(nid, node), needs_close=isinstance(node, _OWN_THREADS))


def _source(nid: str, node: IterSource) -> Runner:
    src = node.source
    label = node.label()

    def run(inputs: Sequence[Opener], ctx: RunContext) -> Iterator[Any]:
        if not callable(src):
            it = iter(src)
            if it is src:  # a one-shot iterator: warn when a run opens it again
                one_shot.opened(it, label, nid)
                ctx.positions[nid] = resume.not_resumable(label, "a one-shot iterator cannot be read again")
                return it
            return resume.counted(ctx, nid, src, label)
        try:
            items = src()
        except Exception as exc:  # the callable itself failed: name the source
            annotate(exc, label, nid)
            raise
        return resume.counted(ctx, nid, items, label)

    return run


def _elastic(nid: str, node: ElasticSource, plan: Plan) -> Runner:
    splits.check_elastic(nid, node, plan)

    def run(inputs: Sequence[Opener], ctx: RunContext) -> Iterator[Any]:
        keys = list(node.keys())
        counts = [node.counts(k) for k in keys]
        worker, workers = splits.worker_info()
        size = node.global_batch_size
        order = elastic.schedule(
            counts, node.seed, ctx.epoch, node.window, size, node.rank, node.world_size, worker, workers
        )
        start = resume.taken(ctx, nid)
        done = [int(start["n"]) if start else 0]
        wanted = itertools.islice(order, done[0], None)  # skipped by arithmetic: nothing is read for them
        ctx.positions[nid] = lambda: {"n": done[0]} if done[0] else None
        return _counting(elastic.samples(wanted, keys, node.fetch, node.window + 2), done)

    return run


def _file_paths(nid: str, node: FilePaths) -> Runner:
    def run(inputs: Sequence[Opener], ctx: RunContext) -> Iterator[Any]:
        return resume.counted(ctx, nid, node.lister(), node.label())

    return run


def _opaque(nid: str, node: Opaque) -> Runner:
    handle = node.handle

    label = node.label()

    def run(inputs: Sequence[Opener], ctx: RunContext) -> Iterator[Any]:
        return ops.annotated(type(handle).__iter__(handle), label, nid)

    return run


def _fused(nid: str, node: Node, inline: bool) -> Lowered:
    nodes, ids = (node.nodes, node.node_ids) if isinstance(node, Fused) else ((node,), (nid,))
    loop = generate(nodes, ids, inline=inline)

    def run(inputs: Sequence[Opener], ctx: RunContext) -> Iterator[Any]:
        if not loop.tracks_items:
            return loop.open(resume.passing(ctx, nid, inputs[0]), ctx)
        start = resume.taken(ctx, nid)
        resume.hand(ctx, inputs[0], start["item"] if start else None)
        tracker = resume.ItemTracker(resume.reader(ctx, inputs[0]), start)
        ctx.positions[nid] = tracker.position
        return loop.open(inputs[0](), ctx, tracker)

    note = f"generated loop; inlined {', '.join(loop.inlined)}" if loop.inlined else "generated loop"
    return Lowered(run, note)


def _async_map(nid: str, node: AsyncMap) -> Runner:
    fn = functools.partial(node.fn, **node.kwargs) if node.kwargs else node.fn
    label = node.label()

    def run(inputs: Sequence[Opener], ctx: RunContext) -> Iterator[Any]:
        position, box = resume.read_ahead(ctx, nid, inputs[0])
        tuner = _tuner(ctx, nid, label, node.max_workers if node.executor is None else None)
        return ctx.owns(
            ops.async_map_(
                inputs[0], fn, node.buffer, node.max_workers, node.executor, label, nid, position, box, tuner
            )
        )

    return run


def _tuner(ctx: RunContext, nid: str, label: str, setting: Any, knob: str = "max_workers") -> Any:
    """A stage's tuner when its setting is ``"auto"`` (kept in the run's state, so explain shows what it chose)."""
    if setting != autotune.AUTO:
        return None
    start = 2 if knob == "max_workers" else 1
    held = 2 if knob == "max_workers" else 1  # a pool keeps twice its threads in flight
    tuner = autotune.Tuner(label, knob, start=start, limit=64, held_per_unit=held)
    ctx.state[f"{nid}.autotune"] = tuner
    return tuner


def _fetch(nid: str, node: Fetch) -> Runner:
    label = node.label()

    def run(inputs: Sequence[Opener], ctx: RunContext) -> Iterator[Any]:
        state = ctx.state.setdefault(nid, ops.FetchState())  # accumulates over re-opens (loop) within a run
        stop = StopFlag()  # set when this open ends: reads in their backoff give up (no Python lock: Ctrl-C-safe)

        def retried(fn: Any) -> Any:
            return retry.retrying(fn, node.retries, node.backoff, node.timeout, label, stop)

        if not node.parallel or ctx.serial:  # retries in this thread: nothing to stop
            fn = retried(node.fn)
            fn = ops.skipping_corrupt(fn, state, label) if node.skip_corrupt else fn
            return ops.map_annotated(resume.passing(ctx, nid, inputs[0]), fn, label, nid)
        position, box = resume.read_ahead(ctx, nid, inputs[0])
        if node.decode is not None:  # read on the I/O pool, decode on one thread per core
            decode = ops.skipping_corrupt(node.decode, state, label) if node.skip_corrupt else node.decode
            read_box = [box[0]] if box is not None else None

            def read_all() -> Iterator[Any]:
                tuner = _tuner(ctx, nid, f"{label} reads", node.max_workers)
                read = retried(node.read)
                reads = ops.async_map_(
                    inputs[0], read, node.buffer, node.max_workers, None, label, nid, position, read_box, tuner
                )
                return ctx.owns(_stopping(reads, stop))

            workers = node.decode_workers or _decode_workers()
            read_position = (lambda: read_box[0]) if read_box is not None else None
            decoded = ops.async_map_(read_all, decode, workers + 1, workers, None, label, nid, read_position, box)
            return ctx.owns(_stopping(decoded, stop))
        fn = retried(node.fn)
        fn = ops.skipping_corrupt(fn, state, label) if node.skip_corrupt else fn
        tuner = _tuner(ctx, nid, label, node.max_workers)
        fetched = ops.async_map_(inputs[0], fn, node.buffer, node.max_workers, None, label, nid, position, box, tuner)
        return ctx.owns(_stopping(fetched, stop))

    return run


def _stopping(it: Iterator[Any], stop: StopFlag) -> Iterator[Any]:
    """The items of ``it``; when the consumer stops, ``stop`` is set before ``it`` is closed (and its pool joined)."""
    try:
        for item in it:  # noqa: UP028 - `yield from` would close `it` before `stop` is set
            yield item
    finally:
        stop.set()
        close = getattr(it, "close", None)
        if close is not None:
            close()


def _decode_workers() -> int:
    """Decode threads for this process: the cores, shared among the DataLoader workers it is one of."""
    return max(1, (os.cpu_count() or 1) // splits.worker_info()[1])


def _shuffle(nid: str, node: Shuffle, plan: Plan) -> Runner:
    above = [plan.node(a) for a in plan.ancestors(nid) if isinstance(plan.node(a), Split)]

    def run(inputs: Sequence[Opener], ctx: RunContext) -> Iterator[Any]:
        rng, seed = None, node.seed
        if node.rng_state is not None:
            rng = random.Random()
            rng.setstate(node.rng_state)  # a fresh copy per run: every iteration replays the same order
        if ctx.epoch is not None and (seed is not None or rng is not None):
            base = seed if seed is not None else rng.getrandbits(64)
            seed, rng = epoch_seed(base, ctx.epoch, above, ctx.shares), None
        return shuffling.resumable_shuffle(ctx, nid, inputs[0], node, rng, seed)

    return run


def epoch_seed(base: Any, epoch: int, ancestors: Sequence[Split], shares: Any = None) -> str:
    """The seed of a seeded shuffle in ``epoch``: from (seed, epoch) above any split, so every process shuffles
    alike and the split stays a partition; also from (rank, worker) below a split, where each process shuffles
    its own share (``shares``: the old shares a merged state resumes, by axis)."""
    shares = shares or {}
    parts = [repr(base), str(epoch)] + [f"{s.axis}{(shares.get(s.axis) or splits.share(s))[0]}" for s in ancestors]
    return "|".join(parts)


def _monitor(nid: str, node: Monitor) -> Runner:
    from squirrel_graph.metrics import DEFAULT_CLOCK

    label = node.label()
    clock = node.clock or DEFAULT_CLOCK

    name = node.prefix[:-2] if node.auto else label  # stats are keyed by the stage a monitor measures

    def run(inputs: Sequence[Opener], ctx: RunContext) -> Iterator[Any]:
        stats = ctx.state.setdefault(nid, monitoring.MonitorStats(name))
        return monitoring.monitor_(
            resume.passing(ctx, nid, inputs[0]),
            node.callback,
            node.prefix,
            node.iops,
            node.throughput,
            node.unit,
            node.window_size,
            node.every,
            node.interval,
            clock,
            dict(node.kwargs),
            label,
            nid,
            stats,
            node.heartbeat,
        )

    return run


def _prefetch(nid: str, node: Prefetch) -> Runner:
    label = node.label()

    def run(inputs: Sequence[Opener], ctx: RunContext) -> Iterator[Any]:
        position, box = resume.read_ahead(ctx, nid, inputs[0])
        tuner = _tuner(ctx, nid, label, node.n, knob="n")
        return ctx.owns(ops.prefetch_(inputs[0], node.n, label, nid, position, box, tuner))

    return run


def _take(nid: str, node: Take) -> Runner:
    def run(inputs: Sequence[Opener], ctx: RunContext) -> Iterator[Any]:
        done, source, box = resume.counter_stage(ctx, nid, inputs[0], "taken")
        return _counting(itertools.islice(source, None if node.n is None else max(0, node.n - done)), box)

    return run


def _loop(nid: str, node: Loop) -> Runner:
    def run(inputs: Sequence[Opener], ctx: RunContext) -> Iterator[Any]:
        state = ctx.state[nid] = ops.LoopState()
        start = resume.taken(ctx, nid)
        if start:
            state.counter = int(start["passes"])
            resume.hand(ctx, inputs[0], start.get("up"))
        up = resume.reader(ctx, inputs[0])

        def position() -> Any:
            inner = up()
            return {"passes": state.counter, "up": inner} if state.counter or inner is not None else None

        ctx.positions[nid] = position
        return ops.loop_(inputs[0], node.n, state)

    return run


def _sampler(nid: str, node: SamplerSource) -> Runner:
    def run(inputs: Sequence[Opener], ctx: RunContext) -> Iterator[Any]:
        return interleave.sampler(ctx, nid, inputs, node.probs, node.rng_state)

    return run


def _multiplex(nid: str, node: Multiplex) -> Runner:
    def run(inputs: Sequence[Opener], ctx: RunContext) -> Iterator[Any]:
        state = ctx.state[nid] = ops.MuxState(len(inputs))
        return interleave.multiplex(ctx, nid, inputs, node.strategy, node.probas, node.max_reinits, node.seed, state)

    return run


def _iterator_fn(nid: str, node: IteratorFn) -> Runner:
    label = node.label()

    def run(inputs: Sequence[Opener], ctx: RunContext) -> Iterator[Any]:
        return ops.annotated(node.fn(inputs[0](), *node.args, **node.kwargs), label, nid)

    return run


def _split(nid: str, node: Split) -> Runner:
    def run(inputs: Sequence[Opener], ctx: RunContext) -> Iterator[Any]:
        index, parts = ctx.shares.get(node.axis) or splits.share(node)  # a merged state's old share, if resumed
        start = resume.taken(ctx, nid)
        resume.hand(ctx, inputs[0], start)
        resume.alias(ctx, nid, inputs[0])  # it hands item k over right after its input produced it
        source = inputs[0]()
        if parts <= 1:
            return source
        # resumed right after an item of this share: the next one of the share is ``parts`` items further
        return itertools.islice(source, parts - 1 if start is not None else index, None, parts)

    return run


def _barrier(nid: str, node: Barrier) -> Runner:
    def run(inputs: Sequence[Opener], ctx: RunContext) -> Iterator[Any]:
        return resume.passing(ctx, nid, inputs[0])

    return run


def _passing(nid: str, runner: Runner) -> Runner:
    """``runner`` of a stage that hands each item over as soon as its input produced it (position: its input's)."""

    def run(inputs: Sequence[Opener], ctx: RunContext) -> Iterator[Any]:
        resume.hand(ctx, inputs[0], resume.taken(ctx, nid))
        resume.alias(ctx, nid, inputs[0])
        return runner(inputs, ctx)

    return run


def _zip_index(nid: str, node: ZipIndex) -> Runner:
    def run(inputs: Sequence[Opener], ctx: RunContext) -> Iterator[Any]:
        done, source, box = resume.counter_stage(ctx, nid, inputs[0], "index")
        indexed = ops.zip_index_(source, node.pad_length, start=done)
        return _counting(indexed, box)

    return run


def _counting(it: Iterator[Any], box: list[int]) -> Iterator[Any]:
    for item in it:
        box[0] += 1
        yield item


_LOOP_KINDS = (Map, Filter, Flatten, Batched, Fused)
_OWN_THREADS = (AsyncMap, Fetch, Prefetch)  # their runners start threads, released when the run ends
_RUNNERS: dict[type, Callable[[str, Any], Runner]] = {
    IterSource: _source,
    KeySource: _source,
    Fetch: _fetch,
    FilePaths: _file_paths,
    Opaque: _opaque,
    AsyncMap: _async_map,
    Take: _take,
    Loop: _loop,
    SamplerSource: _sampler,
    Multiplex: _multiplex,
    IteratorFn: _iterator_fn,
    Barrier: _barrier,
    Monitor: _monitor,
    Prefetch: _prefetch,
    Split: _split,
    Sliding: lambda nid, node: lambda inputs, ctx: windows.sliding(ctx, nid, inputs[0], node),
    ZipIndex: _zip_index,
    Tqdm: lambda nid, node: lambda inputs, ctx: ops.tqdm_(resume.passing(ctx, nid, inputs[0]), **node.kwargs),
}
