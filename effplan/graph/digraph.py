"""The directed graph every pass reads: ops as nodes, tensors as edges, nodes in execution order.

It offers the part of networkx's DiGraph interface effplan uses, with the same meaning: `nodes[n]` (a
node's attribute dict), `nodes(data=True)`, `edges`, `predecessors`, `successors`, the degrees, and
graph attributes in `graph`. effplan keeps a class of its own because importing networkx (0.05-0.07 s:
its package loads all its algorithms) cost more than reading and costing a small ONNX file, and
effplan needs no graph algorithm beyond walking ops in stored order.
"""
from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator


class FrozenGraphError(TypeError):
    """Adding a node or an edge to a graph that is shared (a cached build)."""


class NodeView(dict):
    """Node -> its attribute dict, in insertion order; called like networkx's view for (node, attrs) pairs."""

    __slots__ = ()

    def __call__(self, data: bool = False):
        return self.items() if data else self.keys()


class EdgeView:
    """The (u, v) pairs, in insertion order of their sources' successors; called for (u, v, attrs)."""

    __slots__ = ("_succ",)

    def __init__(self, succ: dict[Hashable, dict]):
        self._succ = succ

    def __iter__(self) -> Iterator[tuple]:
        return ((u, v) for u, out in self._succ.items() for v in out)

    def __len__(self) -> int:
        return sum(map(len, self._succ.values()))

    def __contains__(self, edge) -> bool:
        u, v = edge
        return v in self._succ.get(u, ())

    def __getitem__(self, edge) -> dict:
        u, v = edge
        return self._succ[u][v]

    def __call__(self, data: bool = False):
        if not data:
            return iter(self)
        return ((u, v, d) for u, out in self._succ.items() for v, d in out.items())


class DiGraph:
    """A directed graph with node, edge and graph attributes. Adding a node that exists updates its
    attributes; adding an edge adds its missing ends (as networkx does). `freeze()` makes any later
    addition raise, so a graph shared by a cache cannot be changed by one of its users."""

    __slots__ = ("graph", "nodes", "_succ", "_pred", "_frozen")

    def __init__(self, **attrs):
        self.graph: dict = dict(attrs)
        self.nodes: NodeView = NodeView()
        self._succ: dict[Hashable, dict] = {}
        self._pred: dict[Hashable, dict] = {}
        self._frozen = False

    @property
    def name(self) -> str:
        return self.graph.get("name", "")

    @property
    def edges(self) -> EdgeView:
        return EdgeView(self._succ)

    def __iter__(self) -> Iterator:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def __contains__(self, node) -> bool:
        return node in self.nodes

    def __repr__(self) -> str:
        return f"<DiGraph {self.name!r}: {len(self.nodes)} nodes, {len(self.edges)} edges>"

    def _check_open(self) -> None:
        if self._frozen:
            raise FrozenGraphError(f"graph {self.name!r} is frozen (shared by a cache): copy it to change it")

    def add_node(self, node: Hashable, **attrs) -> None:
        self._check_open()
        if node in self.nodes:
            self.nodes[node].update(attrs)
        else:
            self.nodes[node], self._succ[node], self._pred[node] = attrs, {}, {}

    def add_nodes_from(self, nodes: Iterable) -> None:
        """Nodes, or (node, attribute dict) pairs (the dict is copied, as add_node's keywords are)."""
        self._check_open()
        view, succ, pred = self.nodes, self._succ, self._pred
        for item in nodes:  # add_node's rule, inline: a build adds thousands of nodes at once
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], dict):
                node, attrs = item[0], dict(item[1])
            else:
                node, attrs = item, {}
            if node in view:
                view[node].update(attrs)
            else:
                view[node], succ[node], pred[node] = attrs, {}, {}

    def add_edge(self, u: Hashable, v: Hashable, **attrs) -> None:
        self.add_edges_from([(u, v, attrs)])

    def add_edges_from(self, edges: Iterable[tuple]) -> None:
        """(u, v) pairs or (u, v, attribute dict) triples; an edge added again has its attributes updated."""
        self._check_open()
        nodes, succ, pred = self.nodes, self._succ, self._pred
        for edge in edges:
            u, v = edge[0], edge[1]
            if u not in nodes:
                nodes[u], succ[u], pred[u] = {}, {}, {}
            if v not in nodes:
                nodes[v], succ[v], pred[v] = {}, {}, {}
            out = succ[u]
            data = out.get(v)
            if data is None:
                data = out[v] = pred[v][u] = {}
            if len(edge) == 3:
                data.update(edge[2])

    def adopt(self, nodes: dict, edges: Iterable[tuple]) -> DiGraph:
        """Fill an empty graph with nodes (node -> attribute dict, taken as it is: no copy) and the edges
        between them (as add_edges_from): for a maker handing over dicts it made for the graph (the builder)."""
        self._check_open()
        if self.nodes:
            raise ValueError(f"graph {self.name!r} is not empty: adopt fills an empty graph")
        self.nodes.update(nodes)
        self._succ, self._pred = {n: {} for n in nodes}, {n: {} for n in nodes}
        self.add_edges_from(edges)
        return self

    def predecessors(self, node: Hashable) -> Iterator:
        return iter(self._pred[node])

    def successors(self, node: Hashable) -> Iterator:
        return iter(self._succ[node])

    def in_degree(self, node: Hashable) -> int:
        return len(self._pred[node])

    def out_degree(self, node: Hashable) -> int:
        return len(self._succ[node])

    def number_of_nodes(self) -> int:
        return len(self.nodes)

    def number_of_edges(self) -> int:
        return len(self.edges)

    def freeze(self) -> DiGraph:
        self._frozen = True
        return self

    @property
    def frozen(self) -> bool:
        return self._frozen
