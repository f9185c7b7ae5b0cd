"""Checkpoints of a stream: ``state_dict()`` / ``load_state_dict()`` (torchdata's ``Stateful`` protocol).

A state is plain data (ints, strings, lists, dicts): the format and version, a structural fingerprint of the plan
(the same in every process, whatever the rank, world size or worker count), the epoch, where the consumer is
(each stage's position, see :mod:`squirrel_graph.runtime.resume`) and whether that position can be resumed (if
not, which stage prevents it and why). Loading a state makes the next run of the stream start right after the
item the consumer had received last when the state was taken.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from squirrel_graph.errors import SquirrelGraphError
from squirrel_graph.graph import Equalize, Node, Plan, Split
from squirrel_graph.runtime.resume import find_not_resumable

FORMAT = "squirrel_graph.stream_state"
VERSION = 1


class NotResumableError(SquirrelGraphError):
    """A state cannot be resumed (or a strict check found one that could not); the message names the stage."""


class StateMismatchError(SquirrelGraphError, ValueError):
    """A state was taken from a different pipeline (or format); the message names the first stage that differs."""


def stage_signature(node: Node) -> str:
    """What identifies a logical stage across processes: its kind and label, without rank/worker numbers."""
    if isinstance(node, Split):
        return f"split_by_{node.axis}(level={node.level}, equalize={node.equalize})"
    if isinstance(node, Equalize):
        return f"equalize({node.mode})"
    return f"{node.kind}:{node.label()}"


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
    """``value`` with tuples turned into lists (so a state equals itself after a JSON round trip)."""
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


def topology() -> dict[str, int]:
    """This process's place: rank and world size (torch.distributed, if initialized), DataLoader worker and count."""
    import sys

    from squirrel_graph.runtime.splits import worker_info

    rank, world = 0, 1
    torch = sys.modules.get("torch")
    if torch is not None and torch.distributed.is_available() and torch.distributed.is_initialized():
        rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    worker, workers = worker_info()
    return {"rank": rank, "world_size": world, "worker": worker, "num_workers": workers}


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
        position, epoch = None, self._epoch_of_chain()  # type: ignore[attr-defined]
        if run is not None:
            ctx, output = run
            position, epoch = plain(ctx.positions[output]()), ctx.epoch
        reason = find_not_resumable(position)
        return {
            "format": FORMAT,
            "version": VERSION,
            "fingerprint": fingerprint(stages),
            "stages": stages,
            "epoch": epoch,
            "topology": topology(),
            "resumable": reason is None,
            "reason": reason,
            "position": position,
        }

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
        mine, theirs = topology(), state.get("topology") or {}
        for key in ("world_size", "num_workers"):
            if key in theirs and theirs[key] != mine[key] and state.get("position") is not None:
                raise StateMismatchError(
                    f"load_state_dict(state): the state was taken with {key}={theirs[key]}, this process runs with "
                    f"{key}={mine[key]}; merge the states of every rank and worker with "
                    "squirrel_graph.checkpoint.merge_states() to resume on another topology"
                )
        self.__dict__["_pending_resume"] = dict(state)
        self.__dict__.pop("_last_run", None)
