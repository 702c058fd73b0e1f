"""ONNX both ways: export is serialisation of effplan's graph; import is deserialisation plus
ONNX shape inference into the same graph, so one cost registry serves both.

Export writes deterministic weights (seeded per tensor name), so the same command gives the
same bytes and a runtime does real arithmetic. Each node's place (stage, block, layer) travels
in its doc_string, so an exported graph imports back to the same rows. Import never reads
external weight data: initializer shapes are in the model proto itself.
"""
from __future__ import annotations

import heapq
import json
import math
import os
import re
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..base.version import __version__
from .ops import COSTS
from ..base.errors import EffplanError
from .builder import Weight
from ..base.units import MAX_DIM

DEFAULT_OPSET = 17
PROTO_LIMIT = 2**31 - 2**24  # protobuf's 2 GB limit, less headroom for the graph itself
ROLES = {  # positional ONNX inputs -> the roles effplan's cost functions and exporter use; a constant
    # in one of these slots is a parameter (BN's mean and var: buffers)
    "Conv": ("X", "W", "B"), "ConvTranspose": ("X", "W", "B"), "Gemm": ("A", "W", "B"),
    "MatMul": ("A", "W"), "BatchNormalization": ("X", "scale", "B", "mean", "var"),
    "InstanceNormalization": ("X", "scale", "B"), "LayerNormalization": ("X", "scale", "B"),
    "GroupNormalization": ("X", "scale", "B"), "PRelu": ("X", "slope"),
}
BUFFER_ROLES = ("mean", "var")
PASS_THROUGH = ("Identity", "Cast", "DequantizeLinear")  # a weight through these is still that weight
ELEMENTWISE_PARAMS = ("Add", "Sub", "Mul", "Div")  # a constant beyond a scalar here: a bias or scale
SMALL_INITIALIZER = 64  # elements; smaller initializers keep their values for shape inference
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


class OnnxError(EffplanError):
    pass


@dataclass(frozen=True, slots=True)
class SharedWeight(Weight):
    """A weight another op already counts (tied weights, or an exporter's Identity of one
    initializer): its shape serves this op's costs, and PyTorch counts it once."""

    @property
    def size(self) -> int:
        return 0


# ---------------------------------------------------------------- export

def weight_values(node: str, weight: Weight, mode: str) -> np.ndarray:
    """Deterministic values for one initializer: He-scaled normal weights, sane BN statistics."""
    shape = weight.shape
    if mode == "zeros":
        return np.ones(shape, np.float32) if weight.role in ("var", "scale") else np.zeros(shape, np.float32)
    rng = np.random.default_rng(zlib.crc32(f"{node}/{weight.role}".encode()))
    if weight.role == "W":
        fan_in = math.prod(shape[1:])
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(math.sqrt(2.0 / fan_in))
    if weight.role in ("scale", "var"):
        return rng.uniform(0.5, 1.5, shape).astype(np.float32)
    return rng.normal(0.0, 0.05, shape).astype(np.float32)  # biases, BN shift and mean


def _folded(graph, name: str, mode: str) -> dict[str, np.ndarray]:
    """A conv's weights with the BatchNormalization it absorbed folded in:
    W' = W * s / sqrt(var + eps), b' = shift + (b - mean) * s / sqrt(var + eps)."""
    bn_name, bn_weights, eps, conv_weights = graph.nodes[name]["folded_bn"]
    own = {w.role: weight_values(name, w, mode) for w in conv_weights}
    bn = {w.role: weight_values(bn_name, w, mode) for w in bn_weights}
    factor = bn["scale"] / np.sqrt(bn["var"] + eps)
    w = own["W"] * factor.reshape(-1, *([1] * (own["W"].ndim - 1)))
    b = bn["B"] + (own.get("B", 0.0) - bn["mean"]) * factor
    return {"W": w.astype(np.float32), "B": b.astype(np.float32)}


def _attributes(op: str, attrs: dict) -> dict:
    """effplan attributes that ONNX takes as attributes (the rest become Constant inputs)."""
    moved = {"Clip": ("min", "max"), "Reshape": ("shape",), "Slice": ("starts", "ends", "axes"),
             "Dropout": ("ratio",)}.get(op, ())
    return {k: list(v) if isinstance(v, tuple) else v for k, v in attrs.items() if k not in moved}


def _constant_inputs(op: str, attrs: dict, name: str) -> list[onnx.NodeProto]:
    if op == "Clip":
        values = [("min", np.array(attrs["min"], np.float32)), ("max", np.array(attrs["max"], np.float32))]
    elif op == "Reshape":
        shape = list(attrs["shape"])
        values = [("shape", np.array([0] + shape[1:], np.int64))]  # 0: keep the batch dimension
    elif op == "Slice":
        values = [(k, np.array(attrs[k], np.int64)) for k in ("starts", "ends", "axes")]
    else:
        return []
    return [helper.make_node("Constant", [], [f"{name}/{key}"], name=f"{name}/{key}",
                             value=numpy_helper.from_array(value, f"{name}/{key}")) for key, value in values]


def to_onnx(graph, design=None, *, opset: int = DEFAULT_OPSET, dynamic_batch: bool = False,
            weights: str = "random", with_data: bool = True) -> onnx.ModelProto:
    """The ModelProto of a graph. `with_data=False` writes initializer shapes without values
    (enough for costing, not for running)."""
    tensors = graph.graph["tensors"]
    batch = "N" if dynamic_batch else None

    def info(name: str) -> onnx.ValueInfoProto:
        shape = list(tensors[name])
        if batch:
            shape[0] = batch
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)

    nodes, initializers = [], []
    for name in graph.nodes:
        node = graph.nodes[name]
        op = node["op"]
        inputs = list(node["inputs"])
        values = _folded(graph, name, weights) if node.get("folded_bn") and with_data else None
        for w in node["weights"]:
            tensor_name = f"{name}.{w.role}"
            if with_data:
                array = values[w.role] if values else weight_values(name, w, weights)
                initializers.append(numpy_helper.from_array(array, tensor_name))
            else:
                initializers.append(TensorProto(name=tensor_name, data_type=TensorProto.FLOAT, dims=w.shape))
            inputs.append(tensor_name)
        constants = _constant_inputs(op, node["attrs"], name)
        nodes += constants
        inputs += [c.output[0] for c in constants]
        place = {"stage": node["stage"], "block": node["block"], "layer": node["layer"]}
        nodes.append(helper.make_node(op, inputs, list(node["outputs"]), name=name,
                                      doc_string="effplan " + json.dumps(place),
                                      **_attributes(op, node["attrs"])))

    (inp,), (out,) = graph.graph["inputs"], graph.graph["outputs"]
    inner = [info(t) for t in tensors if t not in (inp, out)]
    g = helper.make_graph(nodes, graph.graph["name"], [info(inp)], [info(out)], initializers, value_info=inner)
    model = helper.make_model(g, producer_name="effplan", producer_version=__version__,
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 9)  # readable by onnxruntime releases of the last years
    meta = {"effplan_version": __version__, "folded_bn": str(any(graph.nodes[n].get("folded_bn") for n in graph.nodes))}
    if design is not None:
        meta.update(model=design.name, spec=design.spec.name, phi="" if design.phi is None else repr(design.phi),
                    depth_mult=repr(design.depth_mult), width_mult=repr(design.width_mult),
                    resolution=str(design.resolution), classes=str(design.classes))
    helper.set_model_props(model, meta)
    return model


def needs_external_data(model: onnx.ModelProto) -> bool:
    """Whether the initializers' bytes pass the protobuf limit, from their shapes and types:
    model.ByteSize() itself fails on a message over 2 GB."""
    return sum(math.prod(t.dims) * helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
               for t in model.graph.initializer) > PROTO_LIMIT


def save(model: onnx.ModelProto, path: str) -> list[str]:
    """Write atomically; weights over the 2 GB protobuf limit go to `<file>.data` beside it (the
    model's initializers then point there). Returns the files written."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    external = needs_external_data(model)
    try:
        with tempfile.TemporaryDirectory(dir=folder, prefix=f".{target.name}.") as tmp:
            staged = Path(tmp) / target.name
            if external:
                onnx.save_model(model, staged, save_as_external_data=True, all_tensors_to_one_file=True,
                                location=f"{target.name}.data", size_threshold=1024)
                data = Path(tmp) / f"{target.name}.data"
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(data, 0o666 & ~umask)  # onnx creates it 0600: readable as the model file is
                os.replace(data, folder / f"{target.name}.data")
            else:
                onnx.save_model(model, staged)
            os.replace(staged, target)
    except OSError as exc:
        raise EffplanError(f"cannot write {path}: {exc.strerror or exc}") from None
    return [str(target)] + ([str(folder / f"{target.name}.data")] if external else [])


# ---------------------------------------------------------------- import

def load(path: str) -> onnx.ModelProto:
    """Parse a model file without its external data, checking that any external data stays
    inside the model's folder."""
    p = Path(path)
    if p.is_dir():
        raise OnnxError(f"{path}: is a directory, expected an .onnx file")
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise OnnxError(f"{path}: cannot read: {exc.strerror}") from None
    if size == 0:
        raise OnnxError(f"{path}: empty file, not an ONNX model")
    try:
        model = onnx.load_model(str(p), load_external_data=False)
    except Exception as exc:  # protobuf raises DecodeError, RuntimeError or ValueError by version
        raise OnnxError(f"{path}: not a readable ONNX model ({type(exc).__name__})") from None
    if not model.HasField("graph") or not model.graph.node or model.ir_version < 1:
        raise OnnxError(f"{path}: not an ONNX model (no graph nodes)")
    folder = p.resolve().parent
    for init in model.graph.initializer:
        if init.data_location == TensorProto.EXTERNAL:
            location = next((e.value for e in init.external_data if e.key == "location"), "")
            if not location or "\0" in location or os.path.isabs(location) \
                    or folder not in (folder / location).resolve().parents:
                raise OnnxError(f"{path}: initializer {init.name!r} points outside the model's folder "
                                f"or to no valid path ({location!r}); refusing to read it")
    return model


def _order(g: onnx.GraphProto, nodes: list, name: str) -> list[int]:
    """Node indices in a topological order (stored order where it is one), refusing dangling reads,
    tensors written twice and cycles before shape inference sees the graph."""
    known = {i.name for i in g.input} | {i.name for i in g.initializer}
    producer: dict[str, int] = {}
    for i, node in enumerate(nodes):
        for t in filter(None, node.output):
            if t in known or t in producer:
                first = "the graph's inputs" if t in known else f"node {_label(nodes[producer[t]])}"
                raise OnnxError(f"{name}: tensor {t!r} is written by {first} and by node {_label(node)}")
            producer[t] = i
    waiting, readers = [0] * len(nodes), [[] for _ in nodes]
    for i, node in enumerate(nodes):
        sources = set()
        for t in filter(None, node.input):
            if t in known:
                continue
            if t not in producer:
                raise OnnxError(f"{name}: node {_label(node)} reads {t!r}, which nothing produces")
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


def _label(node: onnx.NodeProto) -> str:
    return node.name or node.op_type


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
                if node.op_type in PASS_THROUGH and slot == 0:
                    todo += filter(None, node.output)
                elif not (slot > 0 and node.op_type in ROLES and node.op_type != "MatMul"):
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
                origin[t] = origin[node.input[0]] if node.op_type in PASS_THROUGH else t
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
            raise OnnxError(f"--dim {key}: the file has no dimension {key!r}; {have}")
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
                raise OnnxError(f"input {value.name!r} has a symbolic dimension {key or i!r}: "
                                f"give it a size with --dim {key or 'NAME'}=VALUE")
            if is_batch and batch is not None and size != batch:
                fixed = f"dimension {key!r} = {size} (--dim)" if key else f"a fixed batch of {size}"
                raise OnnxError(f"input {value.name!r} has {fixed}, which --batch {batch} cannot change"
                                + ("" if key else ": only symbolic dimensions are bound (export with a dynamic batch)"))
    return bound


def _dims(value: onnx.ValueInfoProto, bound: dict[str, int]) -> tuple | None:
    t = value.type.tensor_type
    if not t.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else bound.get(d.dim_param) for d in t.shape.dim)


def _attr_value(attr: onnx.AttributeProto):
    value = helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list):
        return tuple(v.decode() if isinstance(v, bytes) else v for v in value)
    return value


def _doc_place(doc: str):
    """(stage, block, layer) from the doc_string effplan writes, or None."""
    if doc.startswith("effplan "):
        try:
            place = json.loads(doc[len("effplan "):])
            return place["stage"], place["block"], place["layer"]
        except (ValueError, KeyError, TypeError):
            pass
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
    element in Add, Sub, Mul, Div or an op with no cost function, is a parameter; scalars and
    integer tensors (shapes) are not."""
    import networkx as nx

    g = model.graph
    nodes = list(g.node)  # indexing the protobuf list again and again is slow
    order = _order(g, nodes, name)
    weight_inputs = _weight_inputs(g, nodes)
    folded, origin = _constants(g, nodes, order, weight_inputs)
    initializers = {i.name for i in g.initializer}
    data_inputs = [v for v in g.input if v.name not in initializers and v.name not in weight_inputs]
    local = {(f.domain, f.name) for f in model.functions}
    no_schema = {t for n in nodes if not onnx.defs.has(n.op_type, n.domain) and (n.domain, n.op_type) not in local
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
            shape = _dims(v, binding)
            if shape is not None and (all(d for d in shape) or v.name not in shapes):
                shapes[v.name] = shape
            types[v.name] = v.type.tensor_type.elem_type or types.get(v.name, 0)

    def param_role(op: str, slot: int, t: str) -> str | None:
        if types.get(t) not in FLOAT_TYPES:
            return None  # shapes and indices
        roles = ROLES.get(op, ())
        if slot < len(roles):
            return roles[slot]
        size = math.prod(_concrete(shapes.get(t), t))
        return f"input{slot}" if size > 1 and (op in ELEMENTWISE_PARAMS or op not in COSTS) else None

    graph = nx.DiGraph(name=name, inputs=[v.name for v in data_inputs], outputs=[o.name for o in g.output],
                       tensors={}, weight_inputs=sorted(weight_inputs))
    tensors = graph.graph["tensors"]
    for t in graph.graph["inputs"]:
        tensors[t] = _concrete(shapes.get(t), t)
    first = next((tensors[t] for t in graph.graph["inputs"] if len(tensors[t]) >= 2), None)
    graph.graph["batch"] = first[0] if first else 1
    live = [i for i in order if i not in folded]
    places = _places([nodes[i] for i in live])
    used, counted, producer = set(), set(), {}
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
                kind = SharedWeight if origin[t] in counted else Weight
                counted.add(origin[t])
                weights.append(kind(role, _concrete(shapes.get(t), t), trainable=role not in BUFFER_ROLES))
        outs = tuple(filter(None, node.output))
        for o in outs:
            tensors[o] = _concrete(shapes.get(o), o)
            producer[o] = node_name
        graph.add_node(node_name, op=node.op_type, attrs={a.name: _attr_value(a) for a in node.attribute},
                       inputs=tuple(inputs), outputs=outs, weights=tuple(weights),
                       stage=stage, block=block, layer=layer)
        graph.add_edges_from((producer[t], node_name, {"tensor": t}) for t in dict.fromkeys(inputs)
                             if t in producer)
    return graph


def _concrete(shape, tensor: str) -> tuple:
    if shape is None:
        raise OnnxError(f"tensor {tensor!r} has no inferred shape")
    if any(not isinstance(d, int) or d <= 0 for d in shape):
        raise OnnxError(f"tensor {tensor!r} has an unknown dimension {shape}: bind it with --batch or --dim NAME=VALUE")
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
