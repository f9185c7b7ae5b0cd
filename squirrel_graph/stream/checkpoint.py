"""Checkpoints of a stream: ``state_dict()`` / ``load_state_dict()`` (torchdata's ``Stateful`` protocol).

A state is plain data (ints, strings, lists, dicts): the format and version, a structural fingerprint of the plan
(the same in every process, whatever the rank, world size or worker count), the epoch, where the consumer is
(each stage's position, see :mod:`squirrel_graph.runtime.resume`) and whether that position can be resumed (if
not, which stage prevents it and why). Loading a state makes the next run of the stream start right after the
item the consumer had received last when the state was taken.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from squirrel_graph.errors import SquirrelGraphError
from squirrel_graph.graph import Equalize, Node, Plan, Split
from squirrel_graph.runtime.resume import find_not_resumable
from squirrel_graph.stream.resumed_runs import MergedRun, assigned, share_key, topology

FORMAT = "squirrel_graph.stream_state"
VERSION = 1


class NotResumableError(SquirrelGraphError):
    """A state cannot be resumed (or a strict check found one that could not); the message names the stage."""


class StateMismatchError(SquirrelGraphError, ValueError):
    """A state was taken from a different pipeline (or format); the message names the first stage that differs."""


def stage_signature(node: Node) -> str:
    """What identifies a logical stage across processes: its kind and label, without rank/worker numbers and
    without the store's location (a job restarted with its data copied elsewhere resumes)."""
    if isinstance(node, Split):
        return f"split_by_{node.axis}(level={node.level}, equalize={node.equalize})"
    if isinstance(node, Equalize):
        return f"equalize({node.mode})"
    label = node.label()
    if node.reads_shards or node.lists_keys or node.n_inputs == 0:
        label = _QUOTED.sub("'…'", label)
    return f"{node.kind}:{label}"


_QUOTED = re.compile(r"'[^']*'")


def plan_signature(plan: Plan, options: Any) -> list[str]:
    """The stages of a logical plan in order, and the compile options that shape its runtime stages."""
    stages = [stage_signature(plan.node(nid)) for nid in plan.topo()]
    if options is not None:
        disabled = sorted(options.disable)
        stages.append(f"compile(optimize={options.optimize}, disable={disabled}, backend={options.backend})")
    return stages


def fingerprint(stages: list[str]) -> str:
    return hashlib.sha256("\n".join(stages).encode()).hexdigest()[:16]


def plain(value: Any) -> Any:
    """``value`` with tuples turned into lists (so a state equals itself after a JSON round trip), and parts a stage
    leaves to be read only when the state is taken (``__plain__``) read now."""
    to_plain = getattr(type(value), "__plain__", None)
    if to_plain is not None:
        value = to_plain(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def check_resumable(state: Any) -> None:
    """Raise :class:`NotResumableError`, naming the stage, if ``state`` (a stream's state, or any nesting of dicts
    and lists holding such states, e.g. a ``StatefulDataLoader`` state) holds a state that cannot be resumed.

    Call it on the first checkpoint of a training script to fail then rather than at the restart."""
    todo = [state]
    while todo:
        s = todo.pop()
        if isinstance(s, Mapping):
            if s.get("format") == FORMAT and not s.get("resumable", False):
                raise NotResumableError(f"this checkpoint cannot be resumed: {s.get('reason')}")
            todo.extend(s.values())
        elif isinstance(s, (list, tuple)):
            todo.extend(s)


class Resumable:
    """The checkpoint methods of a stream handle (mixed into ``Composable``)."""

    def state_dict(self) -> dict[str, Any]:
        """Where this stream is: after the last item the consumer received from the latest run in this process
        (before the first item if it has not run; the loaded state if it has not run since loading one).

        Never raises for a pipeline that cannot resume (a DataLoader asks after every batch): such a state says
        ``resumable: False`` and names the stage; :func:`check_resumable` turns that into an error."""
        from squirrel_graph.stream.planning import compiled_for

        compiled = compiled_for(self)
        stages = plan_signature(compiled.logical, compiled.options)
        pending = self.__dict__.get("_pending_resume")
        run = self.__dict__.get("_last_run")
        if pending is not None:
            return dict(pending)
        if isinstance(run, MergedRun):  # resuming a merged state: where each of this process's old shares is
            shares = plain(run.shares_now())
            return _state(stages, run.epoch, None, find_not_resumable(shares), compiled.logical, shares=shares)
        position, epoch = None, self._epoch_of_chain()  # type: ignore[attr-defined]
        if run is not None:
            ctx, output = run
            position, epoch = plain(ctx.positions[output]()), ctx.epoch
        return _state(stages, epoch, position, find_not_resumable(position), compiled.logical)

    def _resume_lines(self) -> list[str]:
        """Where the next run resumes, if a state is loaded (for ``explain()``); empty otherwise."""
        from squirrel_graph.runtime.resume_view import describe
        from squirrel_graph.stream.planning import compiled_for

        state = self.__dict__.get("_pending_resume")
        if state is None:
            return []
        compiled = compiled_for(self)
        if state.get("shares") is None:
            epoch = state.get("epoch")
            where = describe(compiled.physical, compiled.optimized, state["position"])
            return [f"epoch {epoch if epoch is not None else '(not set)'}", *where]
        mine = assigned(state["shares"], topology(compiled.logical))
        lines = [f"a merged state of {len(state['shares'])} share(s); this process resumes {len(mine)} of them"]
        for share in mine:
            lines.append(f"share of rank {share['rank']}, worker {share['worker']}:")
            if share.get("done"):
                lines.append("  finished")
                continue
            lines += [f"  {line}" for line in describe(compiled.physical, compiled.optimized, share.get("position"))]
        return lines

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Make the next run of this stream continue where ``state`` (from :meth:`state_dict`) was taken.

        Errors name what is wrong: another pipeline (the first stage that differs), another format or version, a
        state that cannot be resumed (the stage), another epoch than the one set with ``set_epoch``."""
        from squirrel_graph.stream.planning import compiled_for

        if not isinstance(state, Mapping) or state.get("format") != FORMAT:
            raise StateMismatchError(
                f"load_state_dict(state): expected a state from a squirrel_graph stream's state_dict() "
                f"(format {FORMAT!r}), got {type(state).__name__}"
            )
        if state.get("version") != VERSION:
            raise StateMismatchError(
                f"load_state_dict(state): state version {state.get('version')!r}; this squirrel_graph reads {VERSION}"
            )
        compiled = compiled_for(self)
        stages = plan_signature(compiled.logical, compiled.options)
        if state.get("fingerprint") != fingerprint(stages):
            theirs = list(state.get("stages") or [])
            for i, (mine, other) in enumerate(zip(stages, theirs)):
                if mine != other:
                    raise StateMismatchError(
                        f"load_state_dict(state): the state is from another pipeline; stage {i} differs: "
                        f"this stream has {mine!r}, the state has {other!r}"
                    )
            raise StateMismatchError(
                f"load_state_dict(state): the state is from another pipeline: it has {len(theirs)} stages, this "
                f"stream has {len(stages)} (first extra: {(stages + theirs)[min(len(stages), len(theirs))]!r})"
            )
        if not state.get("resumable", False):
            raise NotResumableError(f"load_state_dict(state): this state cannot be resumed: {state.get('reason')}")
        epoch = self._epoch_of_chain()  # type: ignore[attr-defined]
        if epoch is not None and state.get("epoch") is not None and epoch != state["epoch"]:
            raise StateMismatchError(
                f"load_state_dict(state): the state is from epoch {state['epoch']}, but set_epoch({epoch}) was "
                "called on this stream; call set_epoch after loading, with the state's epoch, to resume it"
            )
        mine, theirs = topology(compiled.logical), state.get("topology") or {}
        for key in ("world_size", "num_workers"):
            if state.get("shares") is None and key in theirs and theirs[key] != mine[key] and state.get("position"):
                raise StateMismatchError(
                    f"load_state_dict(state): the state was taken with {key}={theirs[key]}, this process runs with "
                    f"{key}={mine[key]}; merge the states of every rank and worker with "
                    "squirrel_graph.checkpoint.merge_states() to resume on another topology"
                )
        self.__dict__["_pending_resume"] = dict(state)
        self.__dict__.pop("_last_run", None)


def _state(
    stages: list[str], epoch: Any, position: Any, reason: str | None, plan: Any = None, **extra: Any
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "fingerprint": fingerprint(stages),
        "stages": stages,
        "epoch": epoch,
        "topology": topology(plan),
        "resumable": reason is None,
        "reason": reason,
        "position": position,
        **extra,
    }


def merge_states(*states: Any) -> dict[str, Any]:
    """One global state from the states of every rank and DataLoader worker of a run (any nesting: each rank's
    ``StatefulDataLoader.state_dict()``, lists of stream states, earlier merged states).

    Loading it into a stream run with any number of ranks and workers continues with exactly the samples the old
    run had not consumed: each old (rank, worker) share resumes from its position, with its old split numbers, in
    the process whose global index equals the share's index modulo the new number of processes. Errors name what
    is missing or inconsistent (shares absent or given twice, another pipeline, another epoch)."""
    found: list[Mapping[str, Any]] = []
    todo: list[Any] = list(states)
    while todo:
        s = todo.pop()
        if isinstance(s, Mapping):
            if s.get("format") == FORMAT:
                found.append(s)
            else:
                todo.extend(s.values())
        elif isinstance(s, (list, tuple)):
            todo.extend(s)
    if not found:
        raise StateMismatchError("merge_states(*states): no squirrel_graph stream state found in the arguments")
    first = found[0]
    shares: dict[tuple[int, int], dict[str, Any]] = {}
    for s in found:
        for what in ("fingerprint", "epoch", "version"):
            if s.get(what) != first.get(what):
                raise StateMismatchError(
                    f"merge_states(*states): states of different runs: {what} {s.get(what)!r} != {first.get(what)!r}"
                )
        own = s.get("shares")
        if own is None:
            own = [
                {
                    **{k: s["topology"][k] for k in ("rank", "world_size", "worker", "num_workers")},
                    "position": s.get("position"),
                }
            ]
        for share in own:
            key = share_key(share)
            if key in shares:
                raise StateMismatchError(
                    f"merge_states(*states): the share of rank {key[0]}, worker {key[1]} is given twice"
                )
            shares[key] = dict(share)
    sizes = {(int(s["world_size"]), int(s["num_workers"])) for s in shares.values()}
    if len(sizes) != 1:
        raise StateMismatchError(f"merge_states(*states): shares from runs of different sizes {sorted(sizes)}")
    world, workers = sizes.pop()
    missing = [(r, w) for r in range(world) for w in range(workers) if (r, w) not in shares]
    if missing:
        raise StateMismatchError(
            f"merge_states(*states): the run had {world} rank(s) x {workers} worker(s); no state for (rank, worker) "
            f"{missing[:8]}: pass the states of every rank (each holds its workers' states)"
        )
    ordered = [shares[k] for k in sorted(shares)]
    merged = _state(
        list(first.get("stages") or []), first.get("epoch"), None, find_not_resumable(ordered), shares=ordered
    )
    merged["fingerprint"] = first["fingerprint"]
    return plain(merged)
