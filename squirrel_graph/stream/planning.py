"""From handles to plans and runs: build the logical plan of a chain (iteratively, so chains of any length
work), cache its compilation per chain, and open runs of it.

Handles are recognised by their methods, so this module sits below the fluent classes and never imports them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from squirrel_graph.compiler import Compiled, compile_plan
from squirrel_graph.graph import IterSource, Node, Opaque, Plan
from squirrel_graph.runtime.context import RunContext
from squirrel_graph.stream.resumed_runs import MergedRun, assigned, topology


def is_handle(obj: Any) -> bool:
    """Is ``obj`` a fluent handle (a Composable) rather than a plain iterable?"""
    return hasattr(type(obj), "_builtin_node")


def _unwrap(h: Any) -> Any:
    while getattr(h, "_transparent", False):  # compile(...) wrappers add no node
        h = h.source
    return h


def _node_and_inputs(h: Any, root: bool, builtin_root: bool) -> tuple[Node, list[Any]]:
    node = h._builtin_node() if root and builtin_root else h._node()
    if node.n_inputs == 0:
        return node, []
    if isinstance(node, Opaque):  # show (and let analyses see) what a custom stage reads
        return node, [h.source] if is_handle(h.source) else []
    inputs = list(h._inputs())
    if node.n_inputs == 1 and (not inputs or inputs[0] is None):
        raise ValueError(f"{node.label()}: this stage has no source; build it with compose() or source_()")
    return node, inputs


def build_plan(handle: Any, builtin_root: bool = False, record: dict[str, Any] | None = None) -> Plan:
    """Walk ``.source`` links from ``handle`` and build the logical plan (ids are ``"<n>:<kind>"``, growing from
    the sources to the output).

    ``builtin_root`` plans the root handle's own stage even if its class overrides ``__iter__``; ``record``
    receives node id -> handle, so a run can tell each handle where its state is. Iterative, never recursive.
    """
    counter = 0
    entries: list[tuple[str, Node, tuple[str, ...]]] = []
    # a frame: [handle, is_root, node, inputs, ids of the inputs planned so far]
    stack: list[list[Any]] = [[_unwrap(handle), True, None, None, []]]
    output = ""
    while stack:
        frame = stack[-1]
        h, root, node, inputs, done = frame
        if node is None:
            if not is_handle(h):
                node, inputs = IterSource(source=h), []
            else:
                node, inputs = _node_and_inputs(h, root, builtin_root)
            frame[2], frame[3] = node, inputs
        if len(done) < len(inputs):
            stack.append([_unwrap(inputs[len(done)]), False, None, None, []])
            continue
        nid = f"{counter}:{node.kind}"
        counter += 1
        entries.append((nid, node, tuple(done)))
        if record is not None and is_handle(h):
            record[nid] = h
        stack.pop()
        if stack:
            stack[-1][4].append(nid)
        else:
            output = nid
    return Plan.build(entries, output)


def chain_fingerprint(handle: Any) -> tuple[Any, ...]:
    """Identity of every handle and source link reachable from ``handle``: equal fingerprints, equal plans."""
    out: list[Any] = []
    todo: list[Any] = [handle]
    while todo:
        h = todo.pop()
        out.append(id(h))
        if is_handle(h):
            ins = h._planned_inputs()
            out.append(tuple(id(x) for x in ins))
            todo.extend(x for x in ins if is_handle(x))
    return tuple(out)


def compiled_for(handle: Any, builtin_root: bool = False) -> Compiled:
    """The compilation of ``handle``'s chain, cached on the handle (keyed by the identity of every handle and link
    in the chain and by the compile options), so explain and runs share one compilation."""
    compiled, _ = _cached(handle, builtin_root)
    return compiled


def _cached(handle: Any, builtin_root: bool) -> tuple[Compiled, tuple[tuple[str, Any], ...]]:
    options = handle._compile_options()
    key = (chain_fingerprint(handle), options, builtin_root)
    cached = handle.__dict__.get("_compiled_cache")
    if cached is None or cached[0] != key:
        record: dict[str, Any] = {}
        compiled = compile_plan(build_plan(handle, builtin_root=builtin_root, record=record), options)
        cached = (key, compiled, tuple(record.items()))
        handle.__dict__["_compiled_cache"] = cached
    return cached[1], cached[2]


def open_stream(handle: Any, builtin_root: bool = False) -> Iterator[Any]:
    """Open a run of ``handle``'s compiled plan; runtime state lives in a fresh RunContext per run, which the
    handles of the chain can read afterwards (``loop.counter``, ``Multiplexer.num_samples``, ``skipped_shards``)."""
    compiled, record_items = _cached(handle, builtin_root)
    loaded = handle.__dict__.pop("_pending_resume", None)  # from load_state_dict(): this run resumes there
    epoch = handle._epoch_of_chain()
    ctx = RunContext(epoch=epoch if epoch is not None or loaded is None else loaded.get("epoch"))
    output = compiled.physical.output.sid
    if loaded is not None and loaded.get("shares") is not None:  # a merged state: this process's old shares
        merged = MergedRun(assigned(loaded["shares"], topology(compiled.logical)), output, ctx.epoch)
        handle.__dict__["_last_run"] = merged
        for _, h in record_items:
            h.__dict__.pop("_last_state", None)
        return merged.run(compiled.physical)
    if loaded is not None and loaded.get("position") is not None:
        ctx.resume[output] = loaded["position"]
    handle.__dict__["_last_run"] = (ctx, output)  # state_dict() asks this run where its consumer is
    for nid, h in record_items:
        h.__dict__["_last_state"] = (ctx.state, nid)
    handle.__dict__["_last_state"] = (ctx.state, compiled.logical.output)  # also a transparent compiled handle
    return compiled.physical.open(ctx)
