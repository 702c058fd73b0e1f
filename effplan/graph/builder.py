"""The graph: a networkx DiGraph whose nodes are ONNX ops and whose edges are tensors.

Node attributes: `op` (ONNX op_type), `attrs` (ONNX attribute names), `inputs` and `outputs`
(tensor names, in ONNX input order), `weights` (the initializers the op owns), and its place:
`stage` ("stem", 1..n, "head"), `block` (from 0 within the stage) and `layer` (the group of
ops inside the block, e.g. "expand" or "se"). Graph attributes: `name`, `inputs`, `outputs`
and `tensors` (tensor name -> shape, NCHW, batch included). Nodes are stored in execution
order, which is a topological order.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..base.errors import EffplanError

Shape = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Weight:
    """An initializer. Trainable ones are params; the rest (BN running statistics) are buffers."""

    role: str  # the ONNX input it feeds: W, B, scale, mean, var
    shape: Shape
    trainable: bool = True

    @property
    def size(self) -> int:
        return math.prod(self.shape)


class ShapeError(EffplanError):
    pass


def _broadcast(shapes: list[Shape]) -> Shape:
    if all(s == shapes[0] for s in shapes):
        return shapes[0]
    if len(shapes) == 2 and len(shapes[0]) == len(shapes[1]) and all(
            a == b or b == 1 for a, b in zip(*shapes)):
        return shapes[0]  # the common case: a per-channel gate scaling a feature map
    rank = max(len(s) for s in shapes)
    padded = [(1,) * (rank - len(s)) + tuple(s) for s in shapes]
    out = []
    for dims in zip(*padded):
        sizes = {d for d in dims if d != 1}
        if len(sizes) > 1:
            raise ShapeError(f"shapes {shapes} do not broadcast")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def _conv_shape(attrs, inputs, weights) -> Shape:
    (n, c, *spatial) = inputs[0]
    w = weights["W"]
    group = attrs.get("group", 1)
    if c != w[1] * group:
        raise ShapeError(f"{c} input channels do not match weight {w} with group {group}")
    k, s = attrs["kernel_shape"], attrs["strides"]
    pads, dil = attrs["pads"], attrs.get("dilations", (1,) * len(k))
    rank = len(spatial)
    out = tuple((spatial[i] + pads[i] + pads[i + rank] - dil[i] * (k[i] - 1) - 1) // s[i] + 1
                for i in range(rank))
    if min(out) < 1:
        raise ShapeError(f"input {inputs[0]} is too small for kernel {k} stride {s}")
    return (n, w[0], *out)


def _gemm_shape(attrs, inputs, weights) -> Shape:
    (n, k) = inputs[0]
    w = weights["W"]
    out, k_w = w if attrs.get("transB", 0) else w[::-1]
    if k != k_w:
        raise ShapeError(f"input {inputs[0]} does not match weight {w}")
    return (n, out)


def _same(attrs, inputs, weights) -> Shape:
    return inputs[0]


def _pool_shape(attrs, inputs, weights) -> Shape:
    """Output side floor (or ceil, with ceil_mode) of (n + pads - k) / s, plus 1; as PyTorch, a
    ceil-mode window may not start in the end padding."""
    (n, c, *spatial) = inputs[0]
    k, s, pads = attrs["kernel_shape"], attrs["strides"], attrs["pads"]
    rank, out = len(spatial), []
    for i in range(rank):
        span = spatial[i] + pads[i] + pads[i + rank] - k[i]
        size = (-(-span // s[i]) if attrs.get("ceil_mode") else span // s[i]) + 1
        if attrs.get("ceil_mode") and (size - 1) * s[i] >= spatial[i] + pads[i]:
            size -= 1
        out.append(size)
    if min(out) < 1:
        raise ShapeError(f"input {inputs[0]} is too small for a {k} window")
    return (n, c, *out)


def _concat_shape(attrs, inputs, weights) -> Shape:
    axis = attrs["axis"]
    first = inputs[0]
    for other in inputs[1:]:
        if len(other) != len(first) or any(a != b for i, (a, b) in enumerate(zip(first, other)) if i != axis):
            raise ShapeError(f"cannot concatenate {inputs} on axis {axis}")
    return (*first[:axis], sum(s[axis] for s in inputs), *first[axis + 1:])


def _reshape_shape(attrs, inputs, weights) -> Shape:
    shape = tuple(attrs["shape"])
    if math.prod(shape) != math.prod(inputs[0]):
        raise ShapeError(f"cannot reshape {inputs[0]} to {shape}")
    return shape


def _slice_shape(attrs, inputs, weights) -> Shape:
    out = list(inputs[0])
    for axis, start, end in zip(attrs["axes"], attrs["starts"], attrs["ends"]):
        out[axis] = min(end, out[axis]) - start
    return tuple(out)


# Shape rules of the ops the builders emit (imported graphs get ONNX's own shape inference).
SHAPE_RULES = {
    "Conv": _conv_shape,
    "Gemm": _gemm_shape,
    "GlobalAveragePool": lambda a, i, w: (*i[0][:2], *(1,) * (len(i[0]) - 2)),
    "Flatten": lambda a, i, w: (math.prod(i[0][:a.get("axis", 1)]), math.prod(i[0][a.get("axis", 1):])),
    "MaxPool": _pool_shape,
    "AveragePool": _pool_shape,
    "Concat": _concat_shape,
    "Reshape": _reshape_shape,
    "Transpose": lambda a, i, w: tuple(i[0][p] for p in a["perm"]),
    "Slice": _slice_shape,
    "Add": lambda a, i, w: _broadcast(i),
    "Mul": lambda a, i, w: _broadcast(i),
    **{op: _same for op in ("BatchNormalization", "Relu", "Sigmoid", "Clip", "HardSwish",
                            "HardSigmoid", "Dropout", "Identity")},
}


def same_pads(size: Shape, kernel: Shape, stride: Shape) -> tuple[int, ...]:
    """'Same' padding (ONNX SAME_UPPER): output side ceil(in / stride), any extra pixel at the end."""
    begins, ends = [], []
    for n, k, s in zip(size, kernel, stride):
        total = max((-(-n // s) - 1) * s + k - n, 0)
        begins.append(total // 2)
        ends.append(total - total // 2)
    return (*begins, *ends)


class GraphBuilder:
    """Appends ops in execution order, inferring each output's shape as it goes."""

    def __init__(self, name: str, input_shape: Shape, input_name: str = "input"):
        self.name_, self.inputs = name, [input_name]
        self.tensors: dict[str, Shape] = {input_name: tuple(input_shape)}
        self.nodes: dict[str, dict] = {}  # the graph is made in one go by finish(): far cheaper than op by op
        self.edges: list[tuple[str, str, dict]] = []
        self.stage: str | int | None = None
        self.block = 0
        self.prefix = ""

    def at(self, stage: str | int, block: int, prefix: str | None = None) -> None:
        """Place the ops added next in this stage and block (named under `prefix`)."""
        self.stage, self.block = stage, block
        if prefix is None:
            prefix = f"stage{stage}.block{block}" if isinstance(stage, int) else f"{stage}.{block}"
        self.prefix = prefix

    def name(self, layer: str, role: str) -> str:
        name = f"{self.prefix}.{layer}" if self.prefix and layer else self.prefix or layer
        return f"{name}.{role}" if name and role else name or role

    def shape(self, tensor: str) -> Shape:
        return self.tensors[tensor]

    def add(self, op: str, inputs: list[str], layer: str, role: str,
            attrs: dict | None = None, weights: tuple[Weight, ...] = ()) -> str:
        """Add one op; returns the name of its output tensor (which is also the node's name)."""
        name = self.name(layer, role)
        if name in self.tensors:
            raise ShapeError(f"two ops named {name}")
        attrs = attrs or {}
        try:
            out_shape = SHAPE_RULES[op](attrs, [self.tensors[t] for t in inputs],
                                        {w.role: w.shape for w in weights})
        except ShapeError as exc:
            raise ShapeError(f"layer {name} ({op}): {exc}") from None
        self.nodes[name] = dict(op=op, attrs=attrs, inputs=tuple(inputs), outputs=(name,),
                                weights=weights, stage=self.stage, block=self.block, layer=layer)
        self.edges += [(t, name, {"tensor": t}) for t in dict.fromkeys(inputs) if t in self.nodes]
        self.tensors[name] = out_shape
        return name

    def finish(self, output: str):
        """The networkx DiGraph of everything added (each op's output tensor has the op's name)."""
        import networkx as nx

        graph = nx.DiGraph(name=self.name_, inputs=self.inputs, outputs=[output], tensors=self.tensors)
        graph.add_nodes_from(self.nodes.items())
        graph.add_edges_from(self.edges)
        return graph


def _derived(graph, key: str, compute):
    """A fact derived from a finished graph, computed once (graphs are not changed once built)."""
    cache = graph.graph.setdefault("derived", {})
    if key not in cache or cache[key][0] != graph.number_of_nodes():
        cache[key] = (graph.number_of_nodes(), compute(graph))
    return cache[key][1]


def readers(graph) -> dict[str, list[str]]:
    """Tensor name -> the nodes that read it, in stored order."""
    return _derived(graph, "readers", _readers)


def _readers(graph) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name in graph.nodes:
        for t in dict.fromkeys(graph.nodes[name]["inputs"]):
            found.setdefault(t, []).append(name)
    return found


def swish_pairs(graph) -> dict[str, str]:
    """Sigmoid node -> Mul node for every Swish written as x * Sigmoid(x), the form ONNX exporters
    use: frameworks run it as one op (SiLU) that keeps only x, so the gate is never stored."""
    return _derived(graph, "swish", _swish_pairs)


def _swish_pairs(graph) -> dict[str, str]:
    nodes, read = graph.nodes, readers(graph)
    pairs = {}
    for name in nodes:
        node = nodes[name]
        if node["op"] != "Sigmoid":
            continue
        (gate,) = node["outputs"]
        users = read.get(gate, [])
        if len(users) == 1 and nodes[users[0]]["op"] == "Mul" \
                and set(nodes[users[0]]["inputs"]) == {node["inputs"][0], gate} \
                and gate not in graph.graph["outputs"]:
            pairs[name] = users[0]
    return pairs


def fold_batch_norm(graph):
    """The inference graph: every BatchNormalization that is the only reader of a Conv's output
    is folded into that conv, which gains a bias (or keeps its own). The conv takes over the BN's
    output tensor, so readers are unchanged; `folded_bn` keeps the BN's weights for exporters
    that fold real values."""
    import networkx as nx

    read = readers(graph)
    folded: dict[str, str] = {}  # conv -> bn
    for name in graph.nodes:
        node = graph.nodes[name]
        if node["op"] != "BatchNormalization":
            continue
        (source,) = node["inputs"]
        producer = next(iter(graph.predecessors(name)), None)
        if producer and graph.nodes[producer]["op"] == "Conv" and read.get(source) == [name] \
                and source not in graph.graph["outputs"]:
            folded[producer] = name
    attrs = {k: v for k, v in graph.graph.items() if k != "derived"}
    out = nx.DiGraph(**{**attrs, "tensors": dict(graph.graph["tensors"])})
    absorbed = set(folded.values())
    for name in graph.nodes:
        if name in absorbed:
            continue
        attrs = dict(graph.nodes[name])
        if name in folded:
            bn = graph.nodes[folded[name]]
            channels = attrs["weights"][0].shape[0]
            attrs["weights"] = (attrs["weights"][0], Weight("B", (channels,)))  # W, and a bias even if it had none
            attrs["outputs"] = bn["outputs"]
            attrs["folded_bn"] = (folded[name], bn["weights"], bn["attrs"].get("epsilon", 1e-5),
                                  graph.nodes[name]["weights"])
            del out.graph["tensors"][graph.nodes[name]["outputs"][0]]
        out.add_node(name, **attrs)
    producer = {t: n for n in out.nodes for t in out.nodes[n]["outputs"]}
    for name in out.nodes:
        for t in set(out.nodes[name]["inputs"]):
            if t in producer:
                out.add_edge(producer[t], name, tensor=t)
    return out
