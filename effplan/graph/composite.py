"""Composite ops: chains of ONNX ops that a framework runs as one op, recognised once per graph.

Exporters write what PyTorch runs as one op (one kernel, one set of saved tensors) as several ONNX nodes:
  Swish (SiLU)        x * Sigmoid(x)
  Gelu                x * 0.5 * (1 + Erf(x / sqrt 2)); or 0.5 x (1 + Tanh(sqrt(2/pi) (x + 0.044715 x^3)))
  HardSwish           x * HardSigmoid(x); or x * Clip(x + 3, 0, 6) / 6
  HardSigmoid         Clip(x + 3, 0, 6) / 6
  LayerNormalization  (x - mean(x)) / sqrt(mean((x - mean(x))^2) + eps), then times scale plus bias (opset < 17)
Each is a single-entry, single-exit region of elementwise ops (and LayerNorm's two means): every node reads
only x, constants or the region's own tensors, and nothing outside reads a tensor inside but its output.
memory.py counts what the one op saves (Swish, Gelu, HardSwish, HardSigmoid: x; LayerNorm: x and a mean and
inverse std per row) and never stores the tensors inside; training.py times one backward kernel for it.
The layer rows still show every node.
  Attention           scale q, scale and transpose k -> MatMul(q, k^T) [scaled] [plus a mask] -> Softmax
                      [-> Dropout] -> MatMul(., v): scaled_dot_product_attention in its exported form (q and k^T
                      each scaled), as timm and transformers run it by default (flash or memory-efficient kernels):
                      it keeps q, k, v, its output and a logsumexp per row, never the scores; training time runs
                      its fused backward kernel; a Dropout on the probabilities (dropout_p) runs inside it, keeping
                      no mask (the flash kernels draw it again in backward from a saved seed). Attention a model
                      writes out itself (no sqrt(scale) on both q and k^T: how a file shows an sdpa call, below)
                      is its ops, scores kept.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from .builder import _derived, readers

PARTS = frozenset({"Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Erf", "Tanh", "Sigmoid", "HardSigmoid", "Clip",
                   "ReduceMean"})
LARGEST = 10  # nodes in one composite (tanh GELU with its constants folded: 8; affine LayerNorm: 9)


@dataclass(frozen=True)
class Composite:
    kind: str  # the op the framework runs: an op table entry, or "Swish"
    nodes: tuple[str, ...]  # in graph order; the last writes the output
    input: str  # x
    inner: frozenset  # tensors inside, never stored
    groups: int = 0  # LayerNorm: rows normalised, at the graph's batch; Attention: query rows
    operands: tuple[str, ...] = ()  # Attention: q, k, v as scaled_dot_product_attention reads them, then any mask


def composites(graph) -> dict[str, Composite]:
    """Node -> the composite it belongs to, for every composite op in the graph (computed once per graph),
    attention included."""
    return _derived(graph, "composites", lambda g: {**_composites(g), **attention_blocks(g)})


def _composites(graph) -> dict[str, Composite]:
    nodes, tensors, read = graph.nodes, graph.graph["tensors"], readers(graph)
    position = {n: i for i, n in enumerate(nodes)}
    outputs = set(graph.graph["outputs"])
    claimed: dict[str, Composite] = {}
    inside: set[str] = set()
    # a region's first node is a part that reads x alone (its other parts read what it made): only those x start one
    starts = {nodes[n]["inputs"][0] for n in nodes
              if nodes[n]["op"] in PARTS and nodes[n]["inputs"] and len(set(nodes[n]["inputs"])) == 1}
    for x in [*graph.graph["inputs"], *(t for n in nodes for t in nodes[n]["outputs"][:1])]:
        if x in inside or x not in starts:
            continue
        found = _recognise(graph, x, read, position, outputs, tensors, claimed)
        if found:
            claimed.update(dict.fromkeys(found.nodes, found))
            inside |= found.inner
    return claimed


def _recognise(graph, x, read, position, outputs, tensors, claimed) -> Composite | None:
    """The largest recognised region growing from x, or None."""
    nodes = graph.nodes
    members, made = [], {x}
    grew = True
    while grew and len(members) < LARGEST:
        grew = False
        for t in list(made):
            for n in read.get(t, ()):
                if n in members or n in claimed or nodes[n]["op"] not in PARTS:
                    continue
                if all(i in made for i in nodes[n]["inputs"]):
                    members.append(n)
                    made.update(nodes[n]["outputs"])
                    grew = True
    members.sort(key=position.get)
    best = None
    producer = {t: n for n in members for t in nodes[n]["outputs"]}
    for end in members:  # the region ending at each member: its ancestors inside
        region = _ancestors(graph, end, producer)
        if len(region) < 2:
            continue  # every composite has two ops or more (_shape_of)
        ordered = sorted(region, key=position.get)
        inner = {t for n in ordered[:-1] for t in nodes[n]["outputs"]}
        if any(set(read.get(t, ())) - region or t in outputs for t in inner):
            continue  # something outside reads a tensor inside
        kind = _kind(graph, ordered, x)
        if kind and (best is None or len(ordered) > len(best.nodes)):
            groups = 0
            if kind == "LayerNormalization":
                mean = next(n for n in ordered if nodes[n]["op"] == "ReduceMean")
                groups = math.prod(tensors[nodes[mean]["outputs"][0]])
            best = Composite(kind, tuple(ordered), x, frozenset(inner), groups)
    return best


def _ancestors(graph, end: str, producer: dict) -> set:
    """The nodes `end` depends on among the region's (`producer`: tensor -> the region's node making it)."""
    region, todo = set(), [end]
    while todo:
        n = todo.pop()
        if n not in region:
            region.add(n)
            todo += [producer[t] for t in graph.nodes[n]["inputs"] if t in producer]
    return region


def _kind(graph, ordered: list, x: str) -> str | None:
    """The op a region runs as, or None. Only LayerNorm holds weights: its scale and bias, at its end."""
    kind = _shape_of(graph, ordered, x)
    weighted = [i for i, n in enumerate(ordered) if graph.nodes[n]["weights"]]
    if weighted and (kind != "LayerNormalization" or weighted[0] < len(ordered) - 2):
        return None
    return kind


def _shape_of(graph, ordered: list, x: str) -> str | None:
    nodes = graph.nodes
    ops = Counter(nodes[n]["op"] for n in ordered)
    size, kinds = len(ordered), set(ops)
    # a multiply of x by a tensor of the region (the gate), not by a constant
    gated = sum(1 for n in ordered if nodes[n]["op"] == "Mul" and x in nodes[n]["inputs"]
                and len(nodes[n]["inputs"]) == 2 and nodes[n]["inputs"] != (x, x))
    if kinds == {"Sigmoid", "Mul"} and size == 2:
        return "Swish"
    if ops["Erf"] == 1 and kinds <= {"Erf", "Div", "Mul", "Add"} and size == 5 and gated == 1:
        return "Gelu"
    if ops["Tanh"] == 1 and kinds <= {"Tanh", "Mul", "Add", "Pow"} and 6 <= size <= 9 and gated >= 1:
        return "Gelu"
    if kinds == {"HardSigmoid", "Mul"} and size == 2:
        return "HardSwish"
    if ops["Clip"] == 1 and ops["Add"] == 1 and kinds <= {"Clip", "Add", "Div", "Mul"} and 3 <= size <= 4:
        return "HardSwish" if gated == 1 else "HardSigmoid" if gated == 0 else None
    if ops["ReduceMean"] == 2 and ops["Sub"] == 1 and ops["Sqrt"] == 1 and ops["Div"] == 1 \
            and kinds <= {"ReduceMean", "Sub", "Pow", "Mul", "Add", "Sqrt", "Div"} and 7 <= size <= 9:
        return "LayerNormalization"
    return None


def slice_groups(graph) -> dict[str, str]:
    """Slice node -> the last of its group: Slices that together cover the tensor they read, each element once
    (the dynamo exporter writes PyTorch's unbind/chunk/split as one Slice per piece, TorchScript's as one
    Split). PyTorch's backward of such a split is one kernel (split_backward, stack: a cat of the pieces'
    gradients), as Split's; each Slice on its own would be a slice_backward and a gradient accumulation."""
    return _derived(graph, "slice_groups", _slice_groups)


def _slice_groups(graph) -> dict[str, str]:
    nodes, tensors, read = graph.nodes, graph.graph["tensors"], readers(graph)
    groups = {}
    for t, names in read.items():
        slices = [n for n in names if nodes[n]["op"] == "Slice"]
        if len(slices) >= 2 and sum(math.prod(tensors[nodes[n]["outputs"][0]]) for n in slices) == \
                math.prod(tensors[t]):
            groups.update(dict.fromkeys(slices, slices[-1]))
    return groups


def whole_slices(graph) -> frozenset:
    """Slice nodes that keep their whole input (output shape = input shape: timm Swin's crop x[:, :H, :W] where
    nothing was padded). PyTorch's indexing returns the tensor itself there, no op at all (aten/src/ATen/
    TensorIndexing.h applySlice: start 0, stop the length, step 1), and only a tracer records it: TorchScript's
    files keep such Slices, the dynamo exporter's drop them. They run no kernel, forward or backward."""
    def compute(g):
        tensors = g.graph["tensors"]
        return frozenset(n for n in g.nodes if g.nodes[n]["op"] == "Slice" and g.nodes[n]["inputs"]
                         and tensors.get(g.nodes[n]["inputs"][0]) == tensors.get(g.nodes[n]["outputs"][0]))
    return _derived(graph, "whole_slices", compute)


# How a file shows that the model called scaled_dot_product_attention: both exporters write aten's math
# decomposition (aten/src/ATen/native/transformers/attention.cpp _scaled_dot_product_attention_math: q and k each
# times sqrt(scale) "for numerical stability"; torch/onnx/symbolic_opset14.py and onnxscript's torchlib
# aten_scaled_dot_product_attention: Mul(q, Sqrt(scale)), Mul(Transpose(k), Sqrt(scale)), with dynamo's reshapes to
# 3-D and back). The fused kernel reads q, k and v as they are and scales the scores itself (FlashAttention-2, Dao
# 2023, Algorithm 1), so these prologue ops run inside it. Attention a model writes out itself (timm Swin's and
# LeViT's, an older timm ViT's) scales q or the scores once: PyTorch runs its ops and autograd keeps its scores,
# and so does effplan.
PROLOGUE = ("Mul", "Div", "Transpose", "Reshape")


def _prologue(graph, t: str, reader: str, producer, only) -> tuple[list[str], str]:
    """The prologue ops (PROLOGUE, each with one activation input and no weights: a scale by a constant, a
    transpose, a view) that make operand `t` of `reader`, each read by the next alone; and the tensor they start
    from."""
    nodes, found = graph.nodes, []
    while t in producer and only(t) == reader:
        n = producer[t]
        if nodes[n]["op"] not in PROLOGUE or nodes[n]["weights"] or len(nodes[n]["inputs"]) != 1:
            break
        found.insert(0, n)
        t, reader = nodes[n]["inputs"][0], n
    return found, t


def _attention(graph, softmax: str, read, producer, outputs, position) -> Composite | None:
    """[scale, transpose] -> MatMul(q, k^T) -> [times or over a constant] -> [plus a mask or bias] -> Softmax ->
    MatMul(., v), each tensor inside read only by the next: scaled dot-product attention, as torch's
    scaled_dot_product_attention (timm's and transformers' default) runs it, never storing the scores."""
    nodes = graph.nodes

    def only(t):
        users = read.get(t, [])
        return users[0] if len(users) == 1 and t not in outputs else None

    chain, t = [softmax], nodes[softmax]["inputs"][0]
    while t in producer and nodes[producer[t]]["op"] in ("Mul", "Div", "Add") and len(chain) < 3:
        chain.insert(0, producer[t])
        t = nodes[producer[t]]["inputs"][0] if nodes[producer[t]]["op"] != "Add" else next(
            (i for i in nodes[producer[t]]["inputs"] if i in producer and nodes[producer[i]]["op"] in
             ("MatMul", "Mul", "Div")), nodes[producer[t]]["inputs"][0])
    if t not in producer or nodes[producer[t]]["op"] != "MatMul" or nodes[producer[t]]["weights"]:
        return None
    chain.insert(0, producer[t])
    probs = nodes[softmax]["outputs"][0]
    last = only(probs)
    if last is not None and nodes[last]["op"] == "Dropout":  # sdpa's dropout_p, inside the kernel
        chain.append(last)
        probs = nodes[last]["outputs"][0]
        last = only(probs)
    if last is None or nodes[last]["op"] != "MatMul" or nodes[last]["weights"] or nodes[last]["inputs"][0] != probs:
        return None
    chain.append(last)
    inner = [nodes[n]["outputs"][0] for n in chain[:-1]]
    if any(only(x) not in chain for x in inner):
        return None
    for n in chain[1:-2]:  # a scale by a constant (one activation operand), or a mask added
        if nodes[n]["op"] in ("Mul", "Div") and len(nodes[n]["inputs"]) != 1:
            return None
    first = chain[0]
    (q_ops, q), (k_ops, k) = (_prologue(graph, t, first, producer, only) for t in nodes[first]["inputs"][:2])
    if not all(any(nodes[n]["op"] in ("Mul", "Div") for n in ops) for ops in (q_ops, k_ops)):
        return None  # no sqrt(scale) on both q and k^T: attention the model wrote out itself
    v = nodes[last]["inputs"][1]
    masks = [i for n in chain[1:-2] if nodes[n]["op"] == "Add" for i in nodes[n]["inputs"] if i not in inner]
    inner += [nodes[n]["outputs"][0] for n in q_ops + k_ops]
    members = tuple(sorted({*q_ops, *k_ops, *chain}, key=position.get))
    rows = math.prod(graph.graph["tensors"][nodes[softmax]["outputs"][0]][:-1])
    return Composite("Attention", members, q, frozenset(inner), rows, (q, k, v, *masks))


def attention_views(graph) -> dict[str, str]:
    """Tensors that are an attention's output seen another way, each -> that output: its Transpose(0, 2, 1, 3)
    back to (batch, tokens, heads, d) and any Reshape or Flatten of that (timm's x.transpose(1, 2).reshape(B, N,
    C)). The fused kernels write the output as (batch, tokens, heads, d) and return it transposed
    (aten/src/ATen/native/transformers/cuda/attention.cu, _scaled_dot_product_flash_attention: `attention =
    output.transpose(1, 2)`), so in PyTorch these are views of the one storage the attention saved: the
    projection after it saves no tensor of its own, and the transpose runs no kernel, forward or backward."""
    return _derived(graph, "attention_views", _attention_views)


def _attention_views(graph) -> dict[str, str]:
    nodes, read, views = graph.nodes, readers(graph), {}
    for block in set(attention_blocks(graph).values()):
        out = nodes[block.nodes[-1]]["outputs"][0]
        for n in read.get(out, ()):
            if nodes[n]["op"] == "Transpose" and tuple(nodes[n]["attrs"].get("perm", ())) == (0, 2, 1, 3):
                todo = [nodes[n]["outputs"][0]]
                while todo:
                    t = todo.pop()
                    views[t] = out
                    todo += [nodes[r]["outputs"][0] for r in read.get(t, ())
                             if nodes[r]["op"] in ("Reshape", "Flatten")]
    return views


def attention_transposes(graph) -> frozenset:
    """The Transpose nodes attention_views sees through: no kernel where the runtime runs the fused attention."""
    views = attention_views(graph)
    return frozenset(n for n in graph.nodes if graph.nodes[n]["op"] == "Transpose" and graph.nodes[n]["outputs"]
                     and graph.nodes[n]["outputs"][0] in views and graph.nodes[n]["inputs"][0] not in views)


def attention_blocks(graph) -> dict[str, Composite]:
    """Node -> the attention it belongs to (see _attention), for every one in the graph."""
    return _derived(graph, "attention", _attention_blocks)


def _attention_blocks(graph) -> dict[str, Composite]:
    read = readers(graph)
    producer = {t: n for n in graph.nodes for t in graph.nodes[n]["outputs"]}
    outputs, found = set(graph.graph["outputs"]), {}
    position = {n: i for i, n in enumerate(graph.nodes)}
    for name in graph.nodes:
        if graph.nodes[name]["op"] == "Softmax":
            block = _attention(graph, name, read, producer, outputs, position)
            if block:
                found.update(dict.fromkeys(block.nodes, block))
    return found
