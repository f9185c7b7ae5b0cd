"""The immutable logical plan: a networkx DiGraph of :mod:`nodes` with exactly one output node."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import networkx as nx

from squirrel_graph.graph.base import Node


class PlanError(ValueError):
    """A plan that violates the IR's invariants (cycles, dangling inputs, no single output)."""


@dataclass(frozen=True)
class Plan:
    """An immutable DAG of nodes with one output.

    Node ids are strings; each graph node carries its :class:`Node` under the ``op`` attribute, and each edge a
    ``port`` (the input position at the consumer). All rewriting methods return a new Plan.
    """

    graph: nx.DiGraph
    output: str

    def __post_init__(self) -> None:
        g = self.graph
        if self.output not in g:
            raise PlanError(f"output node {self.output!r} is not in the plan")
        if not nx.is_directed_acyclic_graph(g):
            raise PlanError("a plan must be acyclic")
        sinks = [n for n in g if g.out_degree(n) == 0]
        if sinks != [self.output]:
            raise PlanError(f"a plan must have exactly one output node, found sinks {sinks}")
        if not nx.is_frozen(g):
            object.__setattr__(self, "graph", nx.freeze(g))

    # ------------------------------------------------------------------ construction
    @classmethod
    def single(cls, nid: str, node: Node) -> Plan:
        """A plan of one source node."""
        g = nx.DiGraph()
        g.add_node(nid, op=node)
        return cls(g, nid)

    @classmethod
    def build(cls, nodes: Iterable[tuple[str, Node, Sequence[str]]], output: str) -> Plan:
        """A plan from ``(id, node, input ids in port order)`` triples, in one step (no copy per node), so plans
        of any length build in linear time."""
        g = nx.DiGraph()
        for nid, node, inputs in nodes:
            if nid in g:
                raise PlanError(f"node id used twice: {nid!r}")
            g.add_node(nid, op=node)
            for port, u in enumerate(inputs):
                if u not in g:
                    raise PlanError(f"input {u!r} of {nid!r} is not in the plan (list inputs before consumers)")
                g.add_edge(u, nid, port=port)
        return cls(g, output)

    @classmethod
    def combine(cls, nid: str, node: Node, inputs: Iterable[Plan]) -> Plan:
        """A plan whose output ``node`` consumes the outputs of ``inputs`` (in port order)."""
        g = nx.DiGraph()
        inputs = list(inputs)
        for p in inputs:
            clash = set(g) & set(p.graph)
            if clash:
                raise PlanError(f"node ids used twice: {sorted(clash)}")
            g.update(p.graph)
        g.add_node(nid, op=node)
        for port, p in enumerate(inputs):
            g.add_edge(p.output, nid, port=port)
        return cls(g, nid)

    # ------------------------------------------------------------------ queries
    def node(self, nid: str) -> Node:
        return self.graph.nodes[nid]["op"]

    def inputs(self, nid: str) -> list[str]:
        """Input node ids of ``nid`` in port order."""
        preds = self.graph.in_edges(nid, data="port")
        return [u for u, _, _ in sorted(preds, key=lambda e: e[2])]

    def consumers(self, nid: str) -> list[str]:
        return list(self.graph.successors(nid))

    def topo(self) -> list[str]:
        """Node ids, inputs before consumers, ties broken by id for a stable order (computed once per plan)."""
        return list(self._topo_order)

    @functools.cached_property
    def _topo_order(self) -> tuple[str, ...]:
        return tuple(nx.lexicographical_topological_sort(self.graph, key=_id_order))

    def items(self) -> Iterator[tuple[str, Node]]:
        for nid in self.topo():
            yield nid, self.node(nid)

    def chain_above(self, nid: str) -> list[str]:
        """Ids from ``nid`` upwards while each node has exactly one input (``nid`` first)."""
        out = [nid]
        while True:
            ins = self.inputs(out[-1])
            if len(ins) != 1:
                return out
            out.append(ins[0])

    def __len__(self) -> int:
        return self.graph.number_of_nodes()

    # ------------------------------------------------------------------ rewriting (pure)
    def replace_run(self, run: list[str], new_id: str, new_node: Node) -> Plan:
        """Replace a linear run of single-input nodes (listed top to bottom) by one node."""
        return self.replace_runs([(run, new_id, new_node)])

    def replace_runs(self, runs: Sequence[tuple[list[str], str, Node]]) -> Plan:
        """Replace several disjoint linear runs at once (one graph copy for all of them): ``(run, new_id, node)``."""
        g = nx.DiGraph(self.graph)
        output = self.output
        for run, new_id, new_node in runs:
            top, bottom = run[0], run[-1]
            ins = [u for u, _, _ in sorted(g.in_edges(top, data="port"), key=lambda e: e[2])]
            outs = list(g.out_edges(bottom, data="port"))
            g.remove_nodes_from(run)
            g.add_node(new_id, op=new_node)
            for port, u in enumerate(ins):
                g.add_edge(u, new_id, port=port)
            for _, v, port in outs:
                g.add_edge(new_id, v, port=port)
            output = new_id if bottom == output else output
        return Plan(g, output)

    def insert_after(self, inserts: Sequence[tuple[str, str, Node]]) -> Plan:
        """Put single-input nodes after existing ones, all at once: ``(after_id, new_id, node)``; every consumer of
        ``after_id`` then reads ``new_id`` instead (a new output node if ``after_id`` was the output)."""
        g = nx.DiGraph(self.graph)
        output = self.output
        for after, new_id, node in inserts:
            outs = list(g.out_edges(after, data="port"))
            g.add_node(new_id, op=node)
            for _, v, port in outs:
                g.remove_edge(after, v)
                g.add_edge(new_id, v, port=port)
            g.add_edge(after, new_id, port=0)
            output = new_id if after == output else output
        return Plan(g, output)

    def insert_above(self, nid: str, new_id: str, node: Node) -> Plan:
        """Insert a single-input ``node`` on the (single) input edge of ``nid``."""
        ins = self.inputs(nid)
        if len(ins) != 1:
            raise PlanError(f"can only insert above a single-input node, {nid!r} has {len(ins)} inputs")
        g = nx.DiGraph(self.graph)
        g.remove_edge(ins[0], nid)
        g.add_node(new_id, op=node)
        g.add_edge(ins[0], new_id, port=0)
        g.add_edge(new_id, nid, port=0)
        return Plan(g, self.output)

    def ancestors(self, nid: str) -> set[str]:
        """Every node ``nid`` (transitively) reads from."""
        return set(nx.ancestors(self.graph, nid))

    def remove(self, nid: str) -> Plan:
        """Splice out a single-input node, connecting its input to its consumers."""
        ins = self.inputs(nid)
        if len(ins) != 1:
            raise PlanError(f"only single-input nodes can be removed, {nid!r} has {len(ins)} inputs")
        g = nx.DiGraph(self.graph)
        (up,) = ins
        for _, v, port in self.graph.out_edges(nid, data="port"):
            g.add_edge(up, v, port=port)
        g.remove_node(nid)
        return Plan(g, up if nid == self.output else self.output)


def _id_order(nid: str) -> tuple[int, str]:
    head = nid.split(":", 1)[0]
    return (int(head), nid) if head.isdigit() else (1 << 30, nid)
