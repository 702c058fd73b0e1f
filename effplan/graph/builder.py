"""The graph: a DiGraph (digraph.py) whose nodes are ONNX ops and whose edges are tensors.

Node attributes: `op` (ONNX op_type), `attrs` (ONNX attribute names), `inputs` and `outputs`
(tensor names, in ONNX input order), `weights` (the initializers the op owns), and its place:
`stage` ("stem", 1..n, "head"), `block` (from 0 within the stage) and `layer` (the group of
ops inside the block, e.g. "expand" or "se"). Graph attributes: `name`, `inputs`, `outputs`
and `tensors` (tensor name -> shape, NCHW, batch included). Nodes are stored in execution
order, which is a topological order. Each added node's output shape comes from its op's one shape
rule, the op table entry's `infer`, the rule import uses too.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from .digraph import DiGraph
from .dtypes import FLOAT
from .infer import CannotInfer
from .ops import OPS, node_cost
from .shapes import Shape, ShapeError

MAX_OPS = 200_000  # ops in one graph, built or imported: 5,000 blocks of the largest kinds fit
# The opset a built node's attributes are read at by its shape rule. Builders write an operand that later
# opsets take as an input (Reshape's shape, Slice's starts, Clip's min) as the attribute of the op's first
# version; the rules read either (infer._operand), and export moves them to inputs (onnx/export.py).
OPSET = 17


@dataclass(frozen=True, slots=True)
class Weight:
    """An initializer. Trainable ones are params; the rest (BN running statistics) are buffers."""

    role: str  # the ONNX input it feeds: W, B, scale, mean, var
    shape: Shape
    trainable: bool = True

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@lru_cache(maxsize=4096)  # pure, and asked again for every repeated block
def same_pads(size: Shape, kernel: Shape, stride: Shape) -> tuple[int, ...]:
    """'Same' padding (ONNX SAME_UPPER): output side ceil(in / stride), any extra pixel at the end."""
    begins, ends = [], []
    for n, k, s in zip(size, kernel, stride):
        total = max((-(-n // s) - 1) * s + k - n, 0)
        begins.append(total // 2)
        ends.append(total - total // 2)
    return (*begins, *ends)


# (op, attributes, operand shapes) -> output shape: a design repeats most of its ops with the same
# shapes (a stage's blocks), so the rules (pure functions) run for a third of a design's ops, and for
# a sixth of the ops of all built-in models built in one process
_SHAPES: dict[tuple, Shape] = {}


def output_shape(op: str, attrs: dict, shapes: list[Shape], name: str) -> Shape:
    """A built node's output shape, by its op's one shape rule (the entry's `infer`, as import uses it)."""
    if op not in OPS:
        raise ShapeError(f"layer {name}: no shape rule for {op} (not in the op table)")
    if len(_SHAPES) > 100_000:
        _SHAPES.clear()
    try:
        ((shape, _),) = OPS[op].infer(attrs, shapes, (FLOAT,) * len(shapes), (None,) * len(shapes), OPSET, 1)
    except CannotInfer as exc:
        raise ShapeError(f"layer {name} ({op}): {exc}") from None
    return shape


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
        tensors, nodes = self.tensors, self.nodes
        if name in tensors:
            raise ShapeError(f"two ops named {name}")
        if len(nodes) >= MAX_OPS:
            raise ShapeError(f"{self.name_}: more than {MAX_OPS:,} ops; not a network effplan plans")
        attrs = attrs or {}
        # the operands as export writes them: the inputs, then the node's weights in their order
        shapes = [tensors[t] for t in inputs]
        if weights:
            shapes += [w.shape for w in weights]
        key = (op, *attrs.items(), *shapes)
        try:
            out_shape = _SHAPES.get(key)
        except TypeError:  # an attribute given as a list: shaped, not kept
            key, out_shape = None, None
        if out_shape is None:
            out_shape = output_shape(op, attrs, shapes, name)
            if key is not None:
                _SHAPES[key] = out_shape
        nodes[name] = {"op": op, "attrs": attrs, "inputs": tuple(inputs), "outputs": (name,), "weights": weights,
                       "stage": self.stage, "block": self.block, "layer": layer}
        if len(inputs) == 1:  # most ops: no repeated operand to drop
            if inputs[0] in nodes:
                self.edges.append((inputs[0], name, {"tensor": inputs[0]}))
        else:
            self.edges += [(t, name, {"tensor": t}) for t in dict.fromkeys(inputs) if t in nodes]
        tensors[name] = out_shape
        return name

    def finish(self, output: str):
        """The DiGraph of everything added (each op's output tensor has the op's name)."""
        graph = DiGraph(name=self.name_, inputs=self.inputs, outputs=[output], tensors=self.tensors)
        return graph.adopt(self.nodes, self.edges)  # the node dicts were made for it: no copies


def _derived(graph, key: str, compute):
    """A fact derived from a finished graph, computed once (graphs are not changed once built)."""
    cache = graph.graph.setdefault("derived", {})
    if key not in cache or cache[key][0] != graph.number_of_nodes():
        cache[key] = (graph.number_of_nodes(), compute(graph))
    return cache[key][1]


def cost_rows(graph, dtype_bytes: int) -> dict:
    """Node -> its cost row (ops.node_cost, costed_only=False), once per graph and dtype size: the profile,
    the roofline and the memory plan ask for the same rows of the same graph."""
    return _derived(graph, ("rows", dtype_bytes),
                    lambda g: {name: node_cost(g, name, dtype_bytes, costed_only=False) for name in g.nodes})


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


def gelu_chains(graph) -> dict[str, list[str]]:
    """Input tensor -> the nodes of every GELU written as exporters write it at opset <= 19:
    x / sqrt(2) (or x * 0.7071) -> Erf -> + 1 -> times x -> times 0.5 (or x * 0.5 first, then times the
    sum). Frameworks run it as one op (GELU) that keeps only x."""
    return _derived(graph, "gelu", _gelu_chains)


def _gelu_chains(graph) -> dict[str, list[str]]:
    nodes, read, outputs = graph.nodes, readers(graph), set(graph.graph["outputs"])

    def only_reader(node: str, op: str) -> str | None:
        (out,) = nodes[node]["outputs"][:1]
        users = read.get(out, [])
        return users[0] if len(users) == 1 and nodes[users[0]]["op"] == op and out not in outputs else None

    def scaled(node: str, x: str) -> bool:  # x times (or over) a constant
        return nodes[node]["op"] in ("Mul", "Div") and nodes[node]["inputs"] == (x,)

    chains = {}
    for name in nodes:
        if nodes[name]["op"] != "Erf":
            continue
        source = next(iter(graph.predecessors(name)), None)
        if source is None or not scaled(source, nodes[source]["inputs"][0] if nodes[source]["inputs"] else ""):
            continue
        (x,) = nodes[source]["inputs"]
        add = only_reader(name, "Add")
        mul = add and only_reader(add, "Mul")
        if not add or nodes[add]["inputs"] != nodes[name]["outputs"] or not mul:
            continue
        other = next((t for t in nodes[mul]["inputs"] if t not in nodes[add]["outputs"]), None)
        if other == x and (half := only_reader(mul, "Mul")) and nodes[half]["inputs"] == nodes[mul]["outputs"]:
            chain = [source, name, add, mul, half]
        elif (half := next((n for n in graph.predecessors(mul) if nodes[n]["outputs"] == (other,)), None)) \
                and scaled(half, x):
            chain = [source, half, name, add, mul]
        else:
            continue
        if all(set(read.get(nodes[n]["outputs"][0], ())) <= set(chain) and nodes[n]["outputs"][0] not in outputs
               for n in chain[:-1]):  # nothing else reads what GELU keeps inside
            chains[x] = chain
    return chains


def fold_batch_norm(graph):
    """The inference graph: every BatchNormalization that is the only reader of a Conv's output
    is folded into that conv, which gains a bias (or keeps its own). The conv takes over the BN's
    output tensor, so readers are unchanged; `folded_bn` keeps the BN's weights for exporters
    that fold real values."""
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
    out = DiGraph(**{**attrs, "tensors": dict(graph.graph["tensors"])})
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
