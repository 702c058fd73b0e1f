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
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..base.version import __version__
from .ops import COSTS, OPS
from ..base.errors import EffplanError, quote
from .builder import MAX_OPS, Weight
from ..base.files import atomic_file
from ..base.resources import disk_free, memory_left
from ..base.units import MAX_DIM, human_bytes

DEFAULT_OPSET = 17
PROTO_LIMIT = 2**31 - 2**24  # protobuf's 2 GB limit, less headroom for the graph itself
BUFFER_ROLES = ("mean", "var")
# a weight through these is still that weight, sized as the initializer the file stores (LeViT's attention
# bias table gathered by constant indices is the table, not the gathered output)
PASS_THROUGH = ("Identity", "Cast", "DequantizeLinear", "Gather", "Transpose", "Reshape")
ELEMENTWISE_PARAMS = ("Add", "Sub", "Mul", "Div")  # a constant beyond a scalar here: a bias or scale
LEARNED_DATA = ("Expand", "Concat", "Tile")  # a constant tensor here: a learned token (ViT's cls_token)
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


def _roles(op: str) -> tuple[str, ...]:
    """The roles of an op's positional inputs (its op table entry's `weights`): a constant in one of these
    slots is a parameter; () for an op without weights or without an entry."""
    return OPS[op].weights if op in OPS else ()


class OnnxError(EffplanError):
    pass


@dataclass(frozen=True, slots=True)
class SourcedWeight(Weight):
    """A weight that reaches its op reshaped (Gather, Transpose, Reshape): its shape at the op serves
    the op's costs, its size is the initializer's the file stores."""

    elements: int = 0

    @property
    def size(self) -> int:
        return self.elements


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
        for w in node["weights"]:
            tensor_name = f"{name}.{w.role}"
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
    if with_data:
        del model.graph.initializer[:]
        model.graph.initializer.extend(initializer_tensors(graph, weights))
    return model


def initializer_tensors(graph, mode: str):
    """The initializers of `to_onnx` with their values, one at a time in the file's order: an export
    streams them to disk and holds one tensor at a time, never the whole model."""
    for name in graph.nodes:
        node = graph.nodes[name]
        values = _folded(graph, name, mode) if node.get("folded_bn") else None
        for w in node["weights"]:
            yield numpy_helper.from_array(values[w.role] if values else weight_values(name, w, mode), f"{name}.{w.role}")


def needs_external_data(model: onnx.ModelProto) -> bool:
    """Whether the initializers' bytes pass the protobuf limit, from their shapes and types:
    model.ByteSize() itself fails on a message over 2 GB."""
    return sum(math.prod(t.dims) * helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
               for t in model.graph.initializer) > PROTO_LIMIT


def export(graph, design, path: str, *, opset: int = DEFAULT_OPSET, dynamic_batch: bool = False,
           weights: str = "random") -> list[str]:
    """Write a graph as an ONNX file (and `<file>.data` past 2 GB): checked, then sized against the
    memory and disk left (refused with one line rather than killed midway), then streamed. Returns the
    files written."""
    model = to_onnx(graph, design, opset=opset, dynamic_batch=dynamic_batch, with_data=False)
    _check_exported(model, opset)
    sizes = [_tensor_bytes(t) for t in model.graph.initializer]
    # one tensor at a time: its values, their float32 copy, the TensorProto and its serialised bytes,
    # beside the model without its weights (small: nodes and shapes)
    need = 4 * max(sizes, default=0) + (128 << 20)
    left = memory_left()
    if left is not None and need > left:
        raise OnnxError(f"exporting {graph.graph['name']} needs about {human_bytes(need)} of memory at once "
                        f"(its largest tensor is {human_bytes(max(sizes))}); {human_bytes(left)} is left")
    folder = Path(os.path.realpath(path)).parent
    free = disk_free(str(folder)) if not os.path.exists(path) or os.path.isfile(path) else None
    if free is not None and sum(sizes) > free:
        raise OnnxError(f"{path}: the model's weights take {human_bytes(sum(sizes))}; {human_bytes(free)} "
                        f"is free on that disk")
    return save(model, path, initializer_tensors(graph, weights))


def _check_exported(model: onnx.ModelProto, opset: int) -> None:
    """The ONNX checker on a model without its weights' values: initializers become typed graph inputs
    (the checker wants values, and they are what the graph is fed either way)."""
    bare = onnx.ModelProto()
    bare.CopyFrom(model)
    bare.graph.input.extend(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
                            for t in bare.graph.initializer)
    del bare.graph.initializer[:]
    try:
        onnx.checker.check_model(bare)
    except onnx.checker.ValidationError as exc:
        raise OnnxError(f"the exported graph is not valid at opset {opset}: {str(exc).splitlines()[0]}") from None


def _tensor_bytes(t: onnx.TensorProto) -> int:
    return math.prod(t.dims) * helper.tensor_dtype_to_np_dtype(t.data_type).itemsize


def save(model: onnx.ModelProto, path: str, tensors=None) -> list[str]:
    """Write a model through base.files.atomic_file (whole or absent; a link followed, a device written
    into). `tensors` gives the initializers' values one at a time, in the order of the model's
    initializers (which then need only name, type and dims); by default they are the model's own.
    Protobuf merges a message that appears twice, so each initializer is appended as a fragment of
    its own and the whole model is never one message in memory. Weights over the 2 GB protobuf limit go
    to `<file>.data` beside it (tensors under 1 KB stay inline): the data file is written first, and the
    old model file is removed before it is renamed into place, so a run killed between the renames
    leaves no model rather than an old model beside new data. Returns the files written."""
    tensors = iter(model.graph.initializer) if tensors is None else tensors
    header = onnx.ModelProto()
    header.CopyFrom(model)
    del header.graph.initializer[:]
    if not needs_external_data(model):
        with atomic_file(path) as fh:
            fh.write(header.SerializeToString())
            for t in tensors:
                part = onnx.ModelProto()
                part.graph.initializer.append(t)
                fh.write(part.SerializeToString())
        return [str(path)]
    if os.path.exists(path) and not os.path.isfile(path):
        raise OnnxError(f"{path}: weights over 2 GB go to a .data file beside the model; give a file path")
    target = Path(os.path.realpath(path))
    data = target.with_name(f"{target.name}.data")
    with atomic_file(path) as model_fh:
        with atomic_file(str(data)) as data_fh:
            offset = 0
            for t in tensors:
                raw = t.raw_data if t.HasField("raw_data") else numpy_helper.to_array(t).tobytes()
                if len(raw) >= 1024:
                    data_fh.write(raw)
                    t = TensorProto(name=t.name, data_type=t.data_type, dims=t.dims,
                                    data_location=TensorProto.EXTERNAL)
                    for key, value in (("location", data.name), ("offset", offset), ("length", len(raw))):
                        t.external_data.add(key=key, value=str(value))
                    offset += len(raw)
                header.graph.initializer.append(t)
            if target.is_file():
                target.unlink()
        model_fh.write(header.SerializeToString())
    return [str(path), str(data)]


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
    left = memory_left()
    need = 2 * size + (64 << 20)  # the file's bytes and the parsed message (measured: EfficientNet-L2's 1.9 GB)
    if left is not None and need > left:
        raise OnnxError(f"{path}: parsing its {human_bytes(size)} needs about {human_bytes(need)} of memory; "
                        f"{human_bytes(left)} is left")
    try:
        model = onnx.load_model(str(p), load_external_data=False)
    except Exception as exc:  # protobuf raises DecodeError, RuntimeError or ValueError by version
        raise OnnxError(f"{path}: not a readable ONNX model ({type(exc).__name__})") from None
    if not model.HasField("graph") or not model.graph.node or model.ir_version < 1:
        raise OnnxError(f"{path}: not an ONNX model (no graph nodes)")
    bad = _invalid_text(model)
    if bad:
        raise OnnxError(f"{path}: the text of {bad} is not valid UTF-8; not a well-formed ONNX model")
    _refuse_unsupported(model.graph, path, p.resolve().parent)
    return model


def _invalid_text(message, where: str = "") -> str | None:
    """The first string field holding bytes that are not UTF-8 (protobuf then gives bytes, not str),
    as a path like 'graph.node.doc_string', or None."""
    from google.protobuf.descriptor import FieldDescriptor

    for field, value in message.ListFields():
        name = f"{where}{field.name}"
        if field.type == FieldDescriptor.TYPE_STRING:
            if any(isinstance(v, bytes) for v in ([value] if isinstance(value, (str, bytes)) else value)):
                return name
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            for item in [value] if hasattr(value, "ListFields") else value:
                found = _invalid_text(item, f"{name}.")
                if found:
                    return found
    return None


HEAVY_OPS = {*(op for op, e in OPS.items() if e.weights), "Einsum"}  # ops whose costs a skipped subgraph would lose


def _tensors(node: onnx.NodeProto):
    """The tensors a node's attributes hold (a Constant's value, sparse tensors' values and indices)."""
    for a in node.attribute:
        for t in [a.t] * a.HasField("t") + list(a.tensors):
            yield t
        for sp in [a.sparse_tensor] * a.HasField("sparse_tensor") + list(a.sparse_tensors):
            yield from (sp.values, sp.indices)


def _refuse_unsupported(g: onnx.GraphProto, path: str, folder: Path, depth: int = 0) -> None:
    """Refuse, rather than skip, what import cannot honour: external data outside the model's folder
    (initializers, sparse initializers, Constant nodes, at any depth: never read, but refused as
    promised), dimensions past 2^40, and If/Loop/Scan subgraphs holding convs or matrix products
    (their costs would silently drop out)."""
    if depth > 16:
        raise OnnxError(f"{path}: subgraphs nested more than 16 deep")
    if len(g.node) > MAX_OPS:
        raise OnnxError(f"{path}: {len(g.node):,} nodes; at most {MAX_OPS:,}")
    tensors = [*g.initializer, *(t for sp in g.sparse_initializer for t in (sp.values, sp.indices)),
               *(t for node in g.node for t in _tensors(node))]
    for t in tensors:
        where = f"{path}: tensor {quote(t.name)}"
        if any(d < 0 or d > MAX_DIM for d in t.dims) or math.prod(t.dims) > MAX_DIM:
            raise OnnxError(f"{where} declares dimensions {quote(list(t.dims))}: each, and their product, "
                            f"must be from 0 to 2^40")
        if t.data_location == TensorProto.EXTERNAL:
            location = next((e.value for e in t.external_data if e.key == "location"), "")
            if not isinstance(location, str) or not location or "\0" in location or os.path.isabs(location) \
                    or folder not in (folder / location).resolve().parents:
                raise OnnxError(f"{where} has external data outside the model's folder "
                                f"or at no valid path ({quote(location)}); refusing to read it")
            _check_extent(t, folder / location, where)
    for value in [*g.input, *g.output, *g.value_info]:
        for d in value.type.tensor_type.shape.dim:
            if d.HasField("dim_value") and not 0 <= d.dim_value <= MAX_DIM:
                raise OnnxError(f"{path}: tensor {quote(value.name)} has a dimension of {d.dim_value}; "
                                f"dimensions go from 0 to 2^40")
    for node in g.node:
        for a in node.attribute:
            for sub in [a.g] * a.HasField("g") + list(a.graphs):
                if depth == 0 and _holds_heavy(sub):
                    raise OnnxError(f"{path}: node {quote(_label(node))} ({quote(node.op_type)}) holds a subgraph "
                                    f"with convs or matrix products; effplan does not cost control flow, and "
                                    f"would drop them")
                _refuse_unsupported(sub, path, folder, depth + 1)


def _check_extent(t: onnx.TensorProto, data: Path, where: str) -> None:
    """External data that its file cannot hold (an old model beside a newer, shorter data file) is
    refused; a data file that is absent is not (costs need only shapes)."""
    fields = {e.key: e.value for e in t.external_data}
    try:
        offset = int(fields.get("offset") or 0)
        length = int(fields["length"]) if fields.get("length") else _tensor_bytes(t)
    except (ValueError, TypeError, KeyError):  # KeyError: no length and a data type onnx does not know
        raise OnnxError(f"{where}: external data with no valid offset, length or data type") from None
    try:
        size = data.stat().st_size if data.is_file() else None
    except OSError:
        size = None
    if offset < 0 or length < 0:
        raise OnnxError(f"{where}: external data at a negative offset or length")
    if size is not None and offset + length > size:
        raise OnnxError(f"{where}: its external data ends at byte {offset + length:,}, past the end of "
                        f"{quote(data.name)} ({size:,} bytes): the data file is not this model's")


def _holds_heavy(g: onnx.GraphProto) -> bool:
    return any(n.op_type in HEAVY_OPS or any(_holds_heavy(s) for a in n.attribute
                                             for s in [a.g] * a.HasField("g") + list(a.graphs))
               for n in g.node)


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
        return f"input{slot}" if size > 1 and (op in ELEMENTWISE_PARAMS + LEARNED_DATA or op not in COSTS) else None

    graph = nx.DiGraph(name=name, inputs=[v.name for v in data_inputs], outputs=[o.name for o in g.output],
                       tensors={}, weight_inputs=sorted(weight_inputs))
    tensors = graph.graph["tensors"]
    for t in graph.graph["inputs"]:
        tensors[t] = _concrete(shapes.get(t), t)
    first = next((tensors[t] for t in graph.graph["inputs"] if len(tensors[t]) >= 2), None)
    graph.graph["batch"] = first[0] if first else 1
    live = [i for i in order if i not in folded]
    places = _places([nodes[i] for i in live])
    used, owners, producer = set(), {}, {}  # owners: source initializer -> the ops that own it as a weight
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
        graph.add_edges_from((producer[t], node_name, {"tensor": t}) for t in dict.fromkeys(inputs)
                             if t in producer)
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
