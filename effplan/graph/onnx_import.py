"""ONNX import: deserialisation plus ONNX shape inference into effplan's graph, so one op table
serves built and imported graphs alike. Import never reads external weight data: initializer shapes
are in the model proto itself. What an op type means on import (its weight slots, whether a weight
passes through it, whether a constant operand is learned) is its entry in the op table (ops.py).
"""
from __future__ import annotations

import heapq
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import onnx
from onnx import TensorProto, helper

from ..base.errors import quote
from ..base.units import MAX_DIM
from .builder import Weight
from .ops import OPS
from .onnx_common import OnnxError
from .onnx_read import SMALL_INITIALIZER, label as _label, load  # noqa: F401  (load: read, then from_onnx)

BUFFER_ROLES = ("mean", "var")
_NUMBERS = {onnx.AttributeProto.INT: "i", onnx.AttributeProto.FLOAT: "f", onnx.AttributeProto.INTS: "ints",
            onnx.AttributeProto.FLOATS: "floats"}  # attribute type -> its field
FLOAT_TYPES = {TensorProto.FLOAT: "fp32", TensorProto.FLOAT16: "fp16", TensorProto.BFLOAT16: "bf16",
               TensorProto.DOUBLE: "fp32"}
PLACE_RE = [  # module paths exporters write -> (stage, block), with what to add to the stage number: a
    # Python index (blocks.0) counts from 0, a name (layer1, block1a) from 1; torchvision's features.0 is the stem
    (re.compile(r"(?:^|[/.])features[._](\d+)(?:[._](\d+))?(?=[/._]|$)"), 0),  # torchvision features.N.M
    (re.compile(r"(?:^|[/.])stages[._](\d+)[._]blocks[._](\d+)(?=[/._]|$)"), 1),  # timm stages.S.blocks.B
    (re.compile(r"(?:^|[/.])(?:blocks|layers)[._](\d+)[._](\d+)(?=[/._]|$)"), 1),  # timm blocks.S.B
    (re.compile(r"(?:^|[/.])layer(\d+)[._](\d+)(?=[/._]|$)"), 0),  # torchvision ResNet layer1.0
    (re.compile(r"(?:^|[/_])block(\d+)([a-z])_"), 0),  # Keras block2b_expand_conv: stage 2, block b
]


def _roles(op: str) -> tuple[str, ...]:
    """The roles of an op's positional inputs (its op table entry's `weights`): a constant in one of these
    slots is a parameter; () for an op without weights or without an entry."""
    return OPS[op].weights if op in OPS else ()


def _passes_weight(op: str) -> bool:
    """Whether a weight through the op's first input is still that weight (its entry's `passes_weight`)."""
    return op in OPS and OPS[op].passes_weight


@dataclass(frozen=True, slots=True)
class SourcedWeight(Weight):
    """A weight that reaches its op reshaped (Gather, Transpose, Reshape): its shape at the op serves
    the op's costs, its size is the initializer's the file stores."""

    elements: int = 0

    @property
    def size(self) -> int:
        return self.elements


def _order(g: onnx.GraphProto, nodes: list, name: str) -> list[int]:
    """Node indices in a topological order (stored order where it is one), refusing dangling reads,
    tensors written twice and cycles before shape inference sees the graph."""
    known = {i.name for i in g.input} | {i.name for i in g.initializer}
    producer: dict[str, int] = {}
    for i, node in enumerate(nodes):
        for t in filter(None, node.output):
            if t in known or t in producer:
                first = "the graph's inputs" if t in known else f"node {_label(nodes[producer[t]])}"
                raise OnnxError(f"{name}: tensor {quote(t)} is written by {first} and by node {_label(node)}")
            producer[t] = i
    waiting, readers = [0] * len(nodes), [[] for _ in nodes]
    for i, node in enumerate(nodes):
        sources = set()
        for t in filter(None, node.input):
            if t in known:
                continue
            if t not in producer:
                raise OnnxError(f"{name}: node {_label(node)} reads {quote(t)}, which nothing produces")
            sources.add(producer[t])
        waiting[i] = len(sources)
        for j in sources:
            readers[j].append(i)
    ready = [i for i, n in enumerate(waiting) if n == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for j in readers[i]:
            waiting[j] -= 1
            if not waiting[j]:
                heapq.heappush(ready, j)
    if len(order) < len(nodes):  # what is left waits on itself: walk back to a node seen twice
        left = {i for i, n in enumerate(waiting) if n}
        path, i = [], min(left)
        while i not in path:
            path.append(i)
            i = next(producer[t] for t in nodes[i].input if producer.get(t) in left)
        cycle = path[path.index(i):][::-1]
        raise OnnxError(f"{name}: the graph has a cycle through {' -> '.join(_label(nodes[j]) for j in cycle)}")
    return order


def _weight_inputs(g: onnx.GraphProto, nodes: list) -> set[str]:
    """Graph inputs that feed only the weight slots of ops, maybe through Identity, Cast or
    DequantizeLinear: weights fed at run time (PyTorch's export_params=False), not data. MatMul's
    operands are alike, so a graph input there is data."""
    uses: dict[str, list] = {}
    for node in nodes:
        for slot, t in enumerate(node.input):
            uses.setdefault(t, []).append((node, slot))
    outputs = {o.name for o in g.output}

    def weight_only(tensor: str) -> bool:
        todo, seen = [tensor], set()
        while todo:
            t = todo.pop()
            if t in seen:
                continue
            seen.add(t)
            if t in outputs or t not in uses:
                return False
            for node, slot in uses[t]:
                if _passes_weight(node.op_type) and slot == 0:
                    todo += filter(None, node.output)
                elif not (slot > 0 and _roles(node.op_type) and node.op_type != "MatMul"):
                    return False
        return True

    initializers = {i.name for i in g.initializer}
    return {i.name for i in g.input if i.name not in initializers and weight_only(i.name)}


def _constants(g: onnx.GraphProto, nodes: list, order: list[int], weight_inputs: set[str]):
    """Which nodes compute only from constants (initializers, Constant nodes, weight inputs): a runtime
    folds them, so they are no ops of the graph, and their outputs count like initializers. Returns
    (folded node indices, {constant tensor: the tensor it carries}): a weight seen through Identity,
    Cast or DequantizeLinear is still that weight, so an op sharing it does not count it again."""
    origin = {t: t for t in [i.name for i in g.initializer] + sorted(weight_inputs)}
    outputs = {o.name for o in g.output}
    folded = set()
    for i in order:
        node = nodes[i]
        sources = [t for t in node.input if t]
        if node.op_type == "Constant" or (sources and all(t in origin for t in sources)
                                          and not outputs.intersection(node.output)):
            folded.add(i)
            for t in filter(None, node.output):
                origin[t] = origin[node.input[0]] if _passes_weight(node.op_type) else t
    return folded, origin


def _skeleton(model: onnx.ModelProto, keep_info: set[str]) -> onnx.ModelProto:
    """A copy of the model without the weights' data, for shape inference: initializers up to
    SMALL_INITIALIZER elements stay (shapes, Resize scales: inference reads their values); larger or
    external ones become typed graph inputs (their shapes are all inference needs). Value_info
    stays only for the tensors in `keep_info`; the rest is inferred again from the bound inputs."""
    light = onnx.ModelProto(ir_version=model.ir_version)
    light.opset_import.extend(model.opset_import)
    light.functions.extend(model.functions)  # model-local functions that nodes may call
    g, out = model.graph, light.graph
    out.name = g.name
    out.node.extend(g.node)
    out.input.extend(g.input)
    out.sparse_initializer.extend(g.sparse_initializer)
    if keep_info:
        out.value_info.extend(v for v in g.value_info if v.name in keep_info)
    present = {i.name for i in g.input}
    for init in g.initializer:
        if math.prod(init.dims) <= SMALL_INITIALIZER and init.data_location != TensorProto.EXTERNAL:
            out.initializer.append(init)
        elif init.name not in present:
            out.input.append(helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    return light


def _bind_dims(inputs, batch: int | None, dims: dict[str, int]) -> dict[str, int]:
    """Give every symbolic dimension of the data inputs a value: --dim NAME=VALUE, else --batch
    (default 1) for the first dimension of an input of rank 2 or more. A fixed batch is checked,
    never overridden. Returns {dimension name: value}."""
    names = {d.dim_param for v in inputs for d in v.type.tensor_type.shape.dim if d.dim_param}
    for key, value in dims.items():
        if key not in names:
            have = f"its symbolic dimensions: {', '.join(sorted(names))}" if names else "it has no symbolic dimensions"
            raise OnnxError(f"--dim {key}: the file has no dimension {quote(key)}; {have}")
    for what, value in [("--batch", batch), *((f"--dim {k}", v) for k, v in dims.items())]:
        if value is not None and not 1 <= value <= MAX_DIM:
            raise OnnxError(f"{what} {value}: expected a size from 1 to 2^40")
    bound = dict(dims)
    for value in inputs:
        shape = value.type.tensor_type.shape
        for i, dim in enumerate(shape.dim):
            is_batch = i == 0 and len(shape.dim) >= 2
            key = dim.dim_param
            if dim.HasField("dim_value") and dim.dim_value > 0:
                size = dim.dim_value
            elif key in bound:
                size = dim.dim_value = bound[key]
            elif is_batch:
                size = dim.dim_value = batch or 1
                if key:
                    bound[key] = size
            else:
                raise OnnxError(f"input {quote(value.name)} has a symbolic dimension {key or i!r}: "
                                f"give it a size with --dim {key or 'NAME'}=VALUE")
            if is_batch and batch is not None and size != batch:
                fixed = f"dimension {quote(key)} = {size} (--dim)" if key else f"a fixed batch of {size}"
                raise OnnxError(f"input {quote(value.name)} has {fixed}, which --batch {batch} cannot change"
                                + ("" if key else ": only symbolic dimensions are bound (export with a dynamic batch)"))
    return bound


def _dims(t: onnx.TypeProto.Tensor, bound: dict[str, int]) -> tuple | None:
    if not t.HasField("shape"):
        return None
    # a nonzero dim_value is set; only a 0 needs HasField to tell a set 0 from a symbolic dimension
    return tuple(d.dim_value or (0 if d.HasField("dim_value") else bound.get(d.dim_param)) for d in t.shape.dim)


def _attr_value(attr: onnx.AttributeProto):
    field = _NUMBERS.get(attr.type)
    if field and not attr.ref_attr_name:  # most attributes: read directly, cheaper than helper's dispatch
        value = getattr(attr, field)
        return value if field in ("i", "f") else tuple(value)
    value = helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list):
        return tuple(v.decode() if isinstance(v, bytes) else v for v in value)
    return value


def _doc_place(doc: str):
    """(stage, block, layer) from the doc_string effplan writes, or None."""
    if doc.startswith("effplan ") and len(doc) < 1000:  # effplan writes about 50 characters
        try:
            place = json.loads(doc[len("effplan "):])
            stage, block, layer = place["stage"], place["block"], place["layer"]
        except (ValueError, KeyError, TypeError, RecursionError):
            return None
        number = lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_DIM  # noqa: E731
        if (stage in ("stem", "head") or number(stage)) and number(block) and isinstance(layer, str):
            return stage, block, layer
    return None


def _name_place(name: str):
    """(stage, block) from a module path, or None."""
    for pattern, offset in PLACE_RE:
        found = list(pattern.finditer(name))
        if found:
            stage, block = found[-1].groups()  # the deepest module: features.3.1, not features.3
            stage = int(stage) + offset
            block = ord(block) - ord("a") if block and block.isalpha() else int(block or 0)
            return ("stem", 0) if stage == 0 else (stage, block)
    return None


def _places(nodes: list[onnx.NodeProto]) -> list[tuple]:
    """(stage, block, layer) of each node: effplan's doc_string, else its module path. Ops before the
    first placed op are the stem, ops after the last the head, ops between take the place before."""
    found = [_doc_place(n.doc_string) or _name_place(n.name) for n in nodes]
    last = max((i for i, p in enumerate(found) if p), default=-1)
    places, current = [], ("stem", 0, "")
    for i, p in enumerate(found):
        current = (*p, "")[:3] if p else ("head", 0, "") if i > last >= 0 else current
        places.append(current)
    return places


def from_onnx(model: onnx.ModelProto, name: str = "model", batch: int | None = None,
              dims: dict[str, int] | None = None):
    """effplan's graph of an ONNX model: shape-inferred, symbolic dimensions bound. Nodes that compute
    only from constants are folded away; a constant in a weight slot (Conv W and B, Gemm B and C,
    MatMul's constant operand, normalisation scale and bias, PRelu slope), or one of more than one
    element in Add, Sub, Mul, Div, Expand, Concat, Tile or an op with no cost function, is a parameter of
    that op, sized as the initializer it comes from; scalars and integer tensors (shapes) are not. Shape
    arithmetic ONNX's inference leaves open is evaluated and folded (evaluate.py)."""
    import networkx as nx

    g = model.graph
    nodes = list(g.node)  # indexing the protobuf list again and again is slow
    order = _order(g, nodes, name)
    weight_inputs = _weight_inputs(g, nodes)
    folded, origin = _constants(g, nodes, order, weight_inputs)
    initializers = {i.name for i in g.initializer}
    data_inputs = [v for v in g.input if v.name not in initializers and v.name not in weight_inputs]
    local = {(f.domain, f.name) for f in model.functions}
    unknown = {(n.domain, n.op_type) for n in nodes} - local  # asked once per op type, not once per node
    unknown = {key for key in unknown if not onnx.defs.has(key[1], key[0])}
    no_schema = {t for n in nodes if (n.domain, n.op_type) in unknown
                 for t in n.output}  # custom ops (com.microsoft...): inference cannot type their outputs
    light = _skeleton(model, no_schema)
    kept = {v.name for v in data_inputs}
    bound = _bind_dims([v for v in light.graph.input if v.name in kept], batch, dims or {})
    for v in light.graph.value_info:  # the file's shapes of custom ops' outputs, bound like the inputs
        for d in v.type.tensor_type.shape.dim:
            if d.dim_param in bound:
                d.dim_value = bound[d.dim_param]
    try:
        inferred = onnx.shape_inference.infer_shapes(light, check_type=True, strict_mode=True, data_prop=True).graph
    except Exception as exc:
        raise OnnxError(f"{name}: ONNX shape inference failed: {str(exc).splitlines()[0][:300]}") from None

    # shapes: inferred where complete, else the file's own (bound), else an initializer's dims
    shapes = {i.name: tuple(i.dims) for i in g.initializer}
    types = {i.name: i.data_type for i in g.initializer}
    for values, binding in ((list(g.value_info) + list(g.output), bound),
                            (list(inferred.input) + list(inferred.value_info), {})):
        for v in values:
            tensor, key = v.type.tensor_type, v.name
            shape = _dims(tensor, binding)
            if shape is not None and (all(shape) or key not in shapes):
                shapes[key] = shape
            types[key] = tensor.elem_type or types.get(key, 0)
    from .evaluate import fold_shapes  # shape arithmetic ONNX's data propagation left open, folded
    graph_outputs = {o.name for o in g.output}
    for i in fold_shapes(model, nodes, order, shapes, types):
        if not graph_outputs.intersection(nodes[i].output):
            folded.add(i)
            for t in filter(None, nodes[i].output):
                origin.setdefault(t, t)  # a weight through Identity or Gather keeps its source

    def param_role(op: str, slot: int, t: str) -> str | None:
        if types.get(t) not in FLOAT_TYPES:
            return None  # shapes and indices
        roles = _roles(op)
        if slot < len(roles):
            return roles[slot]
        size = math.prod(_concrete(shapes.get(t), t))
        return f"input{slot}" if size > 1 and (op not in OPS or OPS[op].learned) else None

    graph = nx.DiGraph(name=name, inputs=[v.name for v in data_inputs], outputs=[o.name for o in g.output],
                       tensors={}, weight_inputs=sorted(weight_inputs))
    tensors = graph.graph["tensors"]
    for t in graph.graph["inputs"]:
        tensors[t] = _concrete(shapes.get(t), t)
    first = next((tensors[t] for t in graph.graph["inputs"] if len(tensors[t]) >= 2), None)
    graph.graph["batch"] = first[0] if first else 1
    live = [i for i in order if i not in folded]
    places = _places([nodes[i] for i in live])
    used, owners, producer, edges = set(), {}, {}, []  # owners: source initializer -> the ops that own it as a weight
    for i, (stage, block, layer) in zip(live, places):
        node = nodes[i]
        node_name = node.name or f"{node.op_type}_{i}"
        while node_name in used:
            node_name = f"{node_name}_{i}"
        used.add(node_name)
        weights, inputs = [], []
        for slot, t in enumerate(node.input):
            if t and t not in origin:
                inputs.append(t)
            elif t and (role := param_role(node.op_type, slot, t)):
                shape, source = _concrete(shapes.get(t), t), origin[t]
                stored = math.prod(_concrete(shapes.get(source), source))
                weights.append(Weight(role, shape, trainable=role not in BUFFER_ROLES) if stored == math.prod(shape)
                               else SourcedWeight(role, shape, role not in BUFFER_ROLES, stored))
                owners.setdefault(source, []).append(node_name)
        outs = tuple(filter(None, node.output))
        for o in outs:
            tensors[o] = _concrete(shapes.get(o), o)
            producer[o] = node_name
        graph.add_node(node_name, op=node.op_type, attrs={a.name: _attr_value(a) for a in node.attribute},
                       inputs=tuple(inputs), outputs=outs, weights=tuple(weights),
                       stage=stage, block=block, layer=layer)
        edges += [(producer[t], node_name, {"tensor": t}) for t in dict.fromkeys(inputs) if t in producer]
    graph.add_edges_from(edges)  # one call: the same edges in the same order as one call per node
    # each op owns the weights in its slots (the totals sum the rows); what the file stores counts each
    # initializer once: an exporter's merged equal tensors (all-zero biases) and tied weights differ here
    graph.graph["distinct_weight_elements"] = sum(math.prod(shapes[s]) for s in owners)
    graph.graph["shared_initializers"] = {s: ops for s, ops in owners.items() if len(ops) > 1}
    return graph


def _concrete(shape, tensor: str) -> tuple:
    if shape is None:
        raise OnnxError(f"tensor {quote(tensor)} has no inferred shape")
    if any(not isinstance(d, int) or d <= 0 for d in shape):
        raise OnnxError(f"tensor {quote(tensor)} has an unknown dimension {shape}: "
                        f"bind it with --batch or --dim NAME=VALUE")
    return tuple(shape)


def resolution(graph) -> int | None:
    """The input's side (its width), NCHW or NHWC: the layout whose channels match the first conv's."""
    shape = graph.graph["tensors"][graph.graph["inputs"][0]] if graph.graph["inputs"] else ()
    if len(shape) != 4:
        return None
    conv = next((n for n in graph.nodes if graph.nodes[n]["op"] == "Conv" and graph.nodes[n]["inputs"]), None)
    channels = graph.graph["tensors"][graph.nodes[conv]["inputs"][0]][1] if conv else shape[1]
    return shape[2] if shape[3] == channels != shape[1] else shape[3]


def analyze_file(path: str, batch: int | None = None, dims: dict[str, int] | None = None):
    """(graph, model metadata, dtype) of an ONNX file."""
    model = load(path)
    graph = from_onnx(model, str(path), batch, dims)
    graph.graph["name"] = Path(path).stem
    meta = {p.key: p.value for p in model.metadata_props}
    first = graph.graph["inputs"][0] if graph.graph["inputs"] else None
    elem = next((v.type.tensor_type.elem_type for v in model.graph.input if v.name == first), TensorProto.FLOAT)
    return graph, meta, FLOAT_TYPES.get(elem, "fp32")
