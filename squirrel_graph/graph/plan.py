"""The immutable logical plan: a networkx DiGraph of :mod:`nodes` with exactly one output node."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import networkx as nx

from squirrel_graph.graph.nodes import Node


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
        """Node ids, inputs before consumers, ties broken by id for a stable order."""
        return list(nx.lexicographical_topological_sort(self.graph, key=_id_order))

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
        g = nx.DiGraph(self.graph)
        top, bottom = run[0], run[-1]
        ins = self.inputs(top)
        outs = list(self.graph.out_edges(bottom, data="port"))
        g.remove_nodes_from(run)
        g.add_node(new_id, op=new_node)
        for port, u in enumerate(ins):
            g.add_edge(u, new_id, port=port)
        for _, v, port in outs:
            g.add_edge(new_id, v, port=port)
        output = new_id if bottom == self.output else self.output
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
