"""ONNX both ways: export is serialisation of effplan's graph; import is deserialisation plus
ONNX shape inference into the same graph, so one cost registry serves both.

Export writes deterministic weights (seeded per tensor name), so the same command gives the
same bytes and a runtime does real arithmetic. Each node's place (stage, block, layer) travels
in its doc_string, so an exported graph imports back to the same rows. Import never reads
external weight data: initializer shapes are in the model proto itself.
"""
from __future__ import annotations

import json
import math
import os
import re
import tempfile
import zlib
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from . import __version__
from .errors import EffplanError
from .graph import Weight

DEFAULT_OPSET = 17
PROTO_LIMIT = 2**31 - 2**24  # protobuf's 2 GB limit, less headroom for the graph itself
ROLES = {  # positional ONNX inputs -> the roles effplan's cost functions and exporter use
    "Conv": ("X", "W", "B"), "ConvTranspose": ("X", "W", "B"), "Gemm": ("X", "W", "B"),
    "MatMul": ("X", "W"), "BatchNormalization": ("X", "scale", "B", "mean", "var"),
    "InstanceNormalization": ("X", "scale", "B"), "PRelu": ("X", "slope"),
}
BUFFER_ROLES = ("mean", "var")
FLOAT_TYPES = {TensorProto.FLOAT: "fp32", TensorProto.FLOAT16: "fp16", TensorProto.BFLOAT16: "bf16",
               TensorProto.DOUBLE: "fp32"}
PLACE_RE = [  # how exporters name modules, for graphs effplan did not write
    (re.compile(r"(?:^|[/.])(?:features|blocks|stages|layers?)[./_]?(\d+)[./_](\d+)(?:[./_]|$)"), "stage-block"),
    (re.compile(r"(?:^|[/.])layer(\d+)[./_](\d+)(?:[./_]|$)"), "stage-block"),
]


class OnnxError(EffplanError):
    pass


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


def save(model: onnx.ModelProto, path: str) -> list[str]:
    """Write atomically; weights over the 2 GB protobuf limit go to `<file>.data` beside it.
    Returns the files written."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    external = model.ByteSize() > PROTO_LIMIT
    try:
        with tempfile.TemporaryDirectory(dir=folder, prefix=f".{target.name}.") as tmp:
            staged = Path(tmp) / target.name
            if external:
                onnx.save_model(model, staged, save_as_external_data=True, all_tensors_to_one_file=True,
                                location=f"{target.name}.data", size_threshold=1024)
                os.replace(Path(tmp) / f"{target.name}.data", folder / f"{target.name}.data")
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
            target = (folder / location).resolve()
            if not location or os.path.isabs(location) or folder not in target.parents:
                raise OnnxError(f"{path}: initializer {init.name!r} points outside the model's folder "
                                f"({location!r}); refusing to read it")
    return model


def _bind_dims(model: onnx.ModelProto, batch: int | None, dims: dict[str, int], skip=()) -> None:
    """Give every symbolic input dimension a value: --dim name=value, else --batch for the first."""
    for value in model.graph.input:
        if value.name in skip:  # weights, not data
            continue
        shape = value.type.tensor_type.shape
        for i, dim in enumerate(shape.dim):
            if dim.HasField("dim_value") and dim.dim_value > 0:
                continue
            if dim.dim_param in dims:
                dim.dim_value = dims[dim.dim_param]
            elif i == 0:
                dim.dim_value = batch or 1
            else:
                raise OnnxError(f"input {value.name!r} has a symbolic dimension {dim.dim_param or i!r}: "
                                f"give it a size with --dim {dim.dim_param or 'NAME'}=VALUE")
        if batch and shape.dim and not shape.dim[0].dim_param:
            shape.dim[0].dim_value = batch


def _attr_value(attr: onnx.AttributeProto):
    value = helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list):
        return tuple(v.decode() if isinstance(v, bytes) else v for v in value)
    return value


def _place(name: str, doc: str, index: int):
    """(stage, block, layer) from effplan's doc_string, from module names, or per layer."""
    if doc.startswith("effplan "):
        try:
            place = json.loads(doc[len("effplan "):])
            return place["stage"], place["block"], place["layer"]
        except (ValueError, KeyError, TypeError):
            pass
    for pattern, _ in PLACE_RE:
        m = pattern.search(name)
        if m:
            return int(m.group(1)), int(m.group(2)), ""
    return "graph", 0, ""


def _constant_value(node: onnx.NodeProto):
    for attr in node.attribute:
        if attr.name == "value":
            return numpy_helper.to_array(attr.t)
    return None


def from_onnx(model: onnx.ModelProto, name: str = "model", batch: int | None = None,
              dims: dict[str, int] | None = None):
    """effplan's graph of an ONNX model: shape-inferred, symbolic dimensions bound."""
    import networkx as nx

    _check_structure(model.graph, name)
    model, lifted = _skeleton(model)
    _bind_dims(model, batch, dims or {}, skip=lifted)
    outputs = [o.name for o in model.graph.output]
    del model.graph.value_info[:]  # infer every shape again from the bound inputs
    del model.graph.output[:]  # outputs may carry stale symbolic shapes: infer them as value_info
    try:
        g = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True).graph
    except Exception as exc:
        raise OnnxError(f"{name}: ONNX shape inference failed: {str(exc).splitlines()[0][:300]}") from None

    shapes = {v.name: tuple(d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim)
              for v in list(g.input) + list(g.value_info) if v.type.tensor_type.HasField("shape")}
    initializers = {i.name: (i.data_type, tuple(i.dims)) for i in g.initializer} | lifted
    constants = {n.output[0] for n in g.node if n.op_type == "Constant"}
    graph_inputs = [i.name for i in g.input if i.name not in initializers]
    named = []  # (unique node name, node) of every op that runs
    for index, node in enumerate(g.node):
        if node.op_type != "Constant":
            node_name = node.name or f"{node.op_type}_{index}"
            named.append((node_name if node_name not in dict(named) else f"{node_name}_{index}", node))
    producer = {o: node_name for node_name, node in named for o in node.output if o}

    graph = nx.DiGraph(name=name, inputs=graph_inputs, outputs=outputs, tensors={})
    tensors = graph.graph["tensors"]
    for t in graph_inputs:
        tensors[t] = _concrete(shapes.get(t), t)
    for index, (node_name, node) in enumerate(named):
        roles = ROLES.get(node.op_type, ())
        weights, inputs = [], []
        for i, t in enumerate(node.input):
            if not t or t in constants:
                continue
            if t in initializers:
                data_type, dims_of = initializers[t]
                if data_type in FLOAT_TYPES:  # integer initializers are shapes, not weights
                    role = roles[i] if i < len(roles) else f"input{i}"
                    weights.append(Weight(role, dims_of, trainable=role not in BUFFER_ROLES))
                continue
            if t not in producer and t not in graph_inputs:
                raise OnnxError(f"{name}: node {node_name} reads {t!r}, which nothing produces")
            inputs.append(t)
        outs = tuple(o for o in node.output if o)
        for o in outs:
            tensors[o] = _concrete(shapes.get(o), o)
        stage, block, layer = _place(node_name, node.doc_string, index)
        graph.add_node(node_name, op=node.op_type, attrs={a.name: _attr_value(a) for a in node.attribute},
                       inputs=tuple(inputs), outputs=outs, weights=tuple(weights),
                       stage=stage, block=block, layer=layer)
    for node_name in list(graph.nodes):
        for t in set(graph.nodes[node_name]["inputs"]):
            if t in producer:
                graph.add_edge(producer[t], node_name, tensor=t)
    if not nx.is_directed_acyclic_graph(graph):
        raise OnnxError(f"{name}: the graph has a cycle")
    order = list(nx.topological_sort(graph))
    if not _is_topological(graph):
        ordered = nx.DiGraph(**graph.graph)
        ordered.add_nodes_from((n, graph.nodes[n]) for n in order)
        ordered.add_edges_from(graph.edges(data=True))
        graph = ordered
    return graph


def _skeleton(model: onnx.ModelProto) -> tuple[onnx.ModelProto, dict]:
    """A new model without the weights' data, for shape inference: float initializers become typed
    graph inputs (their shapes are all inference needs); integer ones, which may hold shapes, stay.
    Returns it and {name: (data type, dims)} of the lifted initializers."""
    light = onnx.ModelProto(ir_version=model.ir_version)
    light.opset_import.extend(model.opset_import)
    light.functions.extend(model.functions)  # model-local functions that nodes may call
    g, out = model.graph, light.graph
    out.name = g.name
    for part in ("node", "input", "output", "value_info", "sparse_initializer"):
        getattr(out, part).extend(getattr(g, part))
    lifted = {}
    present = {i.name for i in g.input}
    for init in g.initializer:
        if init.data_type in FLOAT_TYPES:
            lifted[init.name] = (init.data_type, tuple(init.dims))
            if init.name not in present:
                out.input.append(helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
        else:
            out.initializer.append(init)
    return light, lifted


def _check_structure(g: onnx.GraphProto, name: str) -> None:
    """Every input produced somewhere, and no cycles, before shape inference sees the graph."""
    import networkx as nx

    known = {i.name for i in g.input} | {i.name for i in g.initializer}
    producer = {o: i for i, n in enumerate(g.node) for o in n.output if o}
    deps = nx.DiGraph()
    deps.add_nodes_from(range(len(g.node)))
    for i, node in enumerate(g.node):
        for t in node.input:
            if not t or t in known:
                continue
            if t not in producer:
                raise OnnxError(f"{name}: node {node.name or node.op_type} reads {t!r}, which nothing produces")
            deps.add_edge(producer[t], i)
    if not nx.is_directed_acyclic_graph(deps):
        cycle = [g.node[i].name or g.node[i].op_type for i, _ in nx.find_cycle(deps)]
        raise OnnxError(f"{name}: the graph has a cycle through {' -> '.join(cycle)}")


def _is_topological(graph) -> bool:
    seen: set[str] = set()
    for node_name in graph.nodes:
        if any(p not in seen for p in graph.predecessors(node_name)):
            return False
        seen.add(node_name)
    return True


def _concrete(shape, tensor: str) -> tuple:
    if shape is None:
        raise OnnxError(f"tensor {tensor!r} has no inferred shape")
    if any(not isinstance(d, int) or d <= 0 for d in shape):
        raise OnnxError(f"tensor {tensor!r} has an unknown dimension {shape}: bind it with --batch or --dim NAME=VALUE")
    return tuple(shape)


def analyze_file(path: str, batch: int | None = None, dims: dict[str, int] | None = None):
    """(graph, model metadata, dtype) of an ONNX file."""
    model = load(path)
    graph = from_onnx(model, str(path), batch, dims)
    graph.graph["name"] = Path(path).stem
    meta = {p.key: p.value for p in model.metadata_props}
    elem = model.graph.input[0].type.tensor_type.elem_type if model.graph.input else TensorProto.FLOAT
    return graph, meta, FLOAT_TYPES.get(elem, "fp32")
