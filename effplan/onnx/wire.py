"""An ONNX file read without onnx: its binary protobuf decoded in Python into the few plain objects
import needs (nodes, initializers' headers, inputs, outputs, opsets, metadata), skipping the weights'
values. Importing onnx and running its shape inference cost more than reading and costing a small
model; effplan's own rules (infer.py) shape what this reads.

Anything this reader does not take plainly (subgraphs, functions, sparse or external tensors, ops of
other domains, text that is not UTF-8, bytes it cannot follow) raises NotPlain: import then reads the
file with onnx (onnx_read.py), which refuses what must be refused with its own messages. `from_proto`
turns a parsed onnx ModelProto (that path, or a model built in Python) into the same objects.
"""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

import numpy as np

from ..base.units import MAX_DIM
from ..graph import dtypes
from ..graph.builder import MAX_OPS

SMALL_INITIALIZER = 64  # elements; smaller initializers keep their values (Resize scales, Clip bounds)
MAX_VALUES = 1 << 16  # elements of one evaluated tensor: shape arithmetic is a few dozen
FLOAT_TYPES = frozenset(dtypes.FLOAT_PRECISIONS)
EXTERNAL = 1  # TensorProto.DataLocation


class NotPlain(Exception):
    """The file needs onnx's own reader (the reason says why)."""


@dataclass(slots=True)
class Tensor:
    """An initializer or a tensor attribute: its header, and its values where they are small or integer."""
    name: str
    dims: tuple
    data_type: int
    value: np.ndarray | None = None

    @property
    def size(self) -> int:
        return math.prod(self.dims)


@dataclass(slots=True)
class Value:
    """A graph input, output or value_info: `dims` None without a shape, else one entry per dimension:
    an int where its size is set, the symbol's name (str) where it is symbolic, None where neither."""
    name: str
    elem_type: int
    dims: tuple | None


@dataclass(slots=True)
class Node:
    name: str
    op_type: str
    domain: str
    input: tuple
    output: tuple
    attrs: dict
    doc_string: str = ""
    proto: object = None  # the NodeProto, on onnx's path (its per-node inference needs it)
    scopes: dict = field(default_factory=dict)  # the exporter's module path, of its metadata_props (SCOPE_KEYS)


@dataclass(slots=True)
class Model:
    graph_name: str
    nodes: list
    initializers: list
    inputs: list
    outputs: list
    value_info: list  # the file's own intermediate shapes: from onnx's parse only (see _graph)
    opsets: dict  # domain -> version
    metadata: dict = field(default_factory=dict)
    functions: frozenset = frozenset()  # (domain, name) of model-local functions
    proto: object = None  # the ModelProto, on onnx's path


def seeds(t: Tensor) -> bool:
    """Whether a constant seeds shape evaluation: integers and booleans (shapes, indices) and float scalars
    (a stride as a float) do; a float tensor is a weight (a class token to expand), never folded."""
    return t.value is not None and (t.size <= 1 or (t.size <= MAX_VALUES and t.data_type not in FLOAT_TYPES))


def keeps_values(dims, data_type: int) -> bool:
    size = math.prod(dims)
    return size <= SMALL_INITIALIZER or (size <= MAX_VALUES and data_type not in FLOAT_TYPES)


# ---- the wire format -------------------------------------------------------------------------------

def read(path: str) -> Model:
    """The model in an .onnx file, or NotPlain."""
    import mmap

    if not str(path).lower().endswith(".onnx"):
        raise NotPlain("not an .onnx file")
    try:
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return _model(buf, 0, len(buf))
    except NotPlain:
        raise
    except (OSError, ValueError, IndexError, UnicodeDecodeError, struct.error, KeyError, TypeError) as exc:
        raise NotPlain(f"{type(exc).__name__}") from None


def _varint(buf, pos: int) -> tuple[int, int]:
    value = buf[pos]
    if value < 0x80:
        return value, pos + 1
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("a varint of more than ten bytes")


def _fields(buf, start: int, end: int):
    """(field number, wire type, value or start, end) of each field of the message in buf[start:end]:
    a varint's value, a length-delimited field's bounds, a fixed field's start."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos)
        wire = key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield key >> 3, 0, value, pos
        elif wire == 2:
            length, pos = _varint(buf, pos)
            stop = pos + length
            if stop > end:
                raise ValueError("a field past the end of its message")
            yield key >> 3, 2, pos, stop
            pos = stop
        elif wire == 5 or wire == 1:
            stop = pos + (4 if wire == 5 else 8)
            if stop > end:
                raise ValueError("a field past the end of its message")
            yield key >> 3, wire, pos, stop
            pos = stop
        else:
            raise ValueError("a group or an unknown wire type")  # ONNX has no groups


def _text(buf, start: int, end: int) -> str:
    return str(buf[start:end], "utf-8")  # strict: text that is no UTF-8 is onnx's path to refuse


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _ints(buf, wire: int, a: int, b: int) -> list[int]:
    """A repeated int64 field's entries in this occurrence: packed (wire 2) or one varint."""
    if wire == 0:
        return [_signed(a)]
    out, pos = [], a
    while pos < b:
        value, pos = _varint(buf, pos)
        out.append(_signed(value))
    return out


def _model(buf, start: int, end: int) -> Model:
    graphs, opsets, metadata, ir_version = [], {}, {}, 0
    for number, wire, a, b in _fields(buf, start, end):
        if number == 7 and wire == 2:  # in pieces where a writer streams its tensors: protobuf merges them
            graphs.append((a, b))
        elif number == 8 and wire == 2:
            domain, version = "", 1
            for n, w, x, y in _fields(buf, a, b):
                if n == 1 and w == 2:
                    domain = _text(buf, x, y)
                elif n == 2 and w == 0:
                    version = x
            opsets[domain] = version
        elif number == 14 and wire == 2:
            key, value = _entry(buf, a, b)
            metadata[key] = value
        elif number == 1 and wire == 0:
            ir_version = a
        elif number in (2, 3, 4, 6) and wire == 2:  # producer, its version, domain, doc_string
            _text(buf, a, b)
        elif number in (20, 25, 26):
            raise NotPlain("training info, functions or configuration")
    if not graphs or ir_version < 1:
        raise NotPlain("no graph")
    model = _graph(buf, *graphs[0])
    for piece in graphs[1:]:
        more = _graph(buf, *piece)
        for part in ("nodes", "initializers", "inputs", "outputs", "value_info"):
            getattr(model, part).extend(getattr(more, part))
        model.graph_name = more.graph_name or model.graph_name
    model.opsets, model.metadata = {("" if d == "ai.onnx" else d): v for d, v in opsets.items()}, metadata
    if not model.nodes:
        raise NotPlain("no nodes")
    return model


def _entry(buf, a: int, b: int) -> tuple[str, str]:
    key = value = ""
    for n, w, x, y in _fields(buf, a, b):
        if n == 1 and w == 2:
            key = _text(buf, x, y)
        elif n == 2 and w == 2:
            value = _text(buf, x, y)
    return key, value


def _graph(buf, start: int, end: int) -> Model:
    nodes, initializers, inputs, outputs, info, name = [], [], [], [], [], ""
    for number, wire, a, b in _fields(buf, start, end):
        if wire != 2:
            continue
        if number == 1:
            nodes.append(_node(buf, a, b))
            if len(nodes) > MAX_OPS:
                raise NotPlain("too many nodes")
        elif number == 5:
            initializers.append(_tensor(buf, a, b))
        elif number == 11:
            inputs.append(_value(buf, a, b))
        elif number == 12:
            outputs.append(_value(buf, a, b))
        # value_info (13) is not read: effplan's rules shape every tensor, and where they cannot, the
        # file is read again by onnx, whose inference weighs the file's own shapes
        elif number == 2:
            name = _text(buf, a, b)
        elif number == 10:
            _text(buf, a, b)
        elif number == 16:
            _entry(buf, a, b)
        elif number in (15, 14):
            raise NotPlain("sparse initializers or quantization annotations")
    return Model(name, nodes, initializers, inputs, outputs, info, {})


# metadata_props the dynamo exporter writes on each node with the module path it came from (importer.py reads them)
SCOPE_KEYS = ("pkg.torch.onnx.name_scopes", "namespace")


def _node(buf, start: int, end: int) -> Node:
    """A node: its fields are all length-delimited, walked inline (the reader's hottest loop)."""
    inputs, outputs, attrs, name, op, domain, doc, scopes = [], [], {}, "", "", "", "", {}
    pos = start
    while pos < end:
        key = buf[pos]
        if key < 0x80:
            pos += 1
        else:
            key, pos = _varint(buf, pos)
        if key & 7 != 2:
            raise ValueError("a node field that is not length-delimited")
        a = buf[pos]
        if a < 0x80:
            a, pos = pos + 1, pos + 1 + a
        else:
            length, a = _varint(buf, pos)
            pos = a + length
        if pos > end:
            raise ValueError("a field past the end of its message")
        number = key >> 3
        if number == 1:
            inputs.append(str(buf[a:pos], "utf-8"))
        elif number == 2:
            outputs.append(str(buf[a:pos], "utf-8"))
        elif number == 5:
            attr, value = _attribute(buf, a, pos)
            attrs[attr] = value
        elif number == 4:
            op = str(buf[a:pos], "utf-8")
        elif number == 3:
            name = str(buf[a:pos], "utf-8")
        elif number == 7:
            domain = str(buf[a:pos], "utf-8")
        elif number in (6, 8):  # doc_string, overload
            doc = str(buf[a:pos], "utf-8") if number == 6 else doc
        elif number == 9:
            key, value = _entry(buf, a, pos)
            if key in SCOPE_KEYS:
                scopes[key] = value
    if domain not in ("", "ai.onnx"):
        raise NotPlain(f"an op of domain {domain}")
    return Node(name, op, "", tuple(inputs), tuple(outputs), attrs, doc, scopes=scopes)


INT, FLOAT, STRING, TENSOR, INTS, FLOATS, STRINGS = 2, 1, 3, 4, 7, 6, 8  # AttributeProto.AttributeType


def _attribute(buf, start: int, end: int):
    """(name, value): an int, a float, a str, a Tensor, or a tuple of ints, floats or strs."""
    name, kind, found = "", 0, {}
    for number, wire, a, b in _fields(buf, start, end):
        if number == 1 and wire == 2:
            name = _text(buf, a, b)
        elif number == 20 and wire == 0:
            kind = a
        elif number == 3 and wire == 0:
            found[INT] = _signed(a)
        elif number == 2 and wire == 5:
            found[FLOAT] = struct.unpack_from("<f", buf, a)[0]
        elif number == 4 and wire == 2:
            found[STRING] = str(buf[a:b], "utf-8", "replace")  # bytes in ONNX: text where it is text
        elif number == 5 and wire == 2:
            found[TENSOR] = _tensor(buf, a, b)
        elif number == 8 and wire in (0, 2):
            found.setdefault(INTS, []).extend(_ints(buf, wire, a, b))
        elif number == 7 and wire in (2, 5):
            found.setdefault(FLOATS, []).extend(struct.unpack_from(f"<{(b - a) // 4}f", buf, a))
        elif number == 9 and wire == 2:
            found.setdefault(STRINGS, []).append(str(buf[a:b], "utf-8", "replace"))
        elif number == 13 and wire == 2:
            _text(buf, a, b)
        elif number in (6, 10, 11, 14, 15, 21, 22, 23):
            raise NotPlain("a subgraph, tensor list, type, sparse or referenced attribute")
    kind = kind or (next(iter(found)) if len(found) == 1 else 0)
    if kind in found:
        value = found[kind]
    elif kind in (INTS, FLOATS, STRINGS):
        value = ()
    else:
        raise NotPlain(f"attribute {name} of type {kind}")
    return name, tuple(value) if isinstance(value, list) else value


def _tensor(buf, start: int, end: int) -> Tensor:
    dims, dtype, name, raw, typed = [], 1, "", None, None
    for number, wire, a, b in _fields(buf, start, end):
        if number == 1:
            dims += _ints(buf, wire, a, b)
        elif number == 2 and wire == 0:
            dtype = a
        elif number == 8 and wire == 2:
            name = _text(buf, a, b)
        elif number == 9 and wire == 2:
            raw = (a, b)
        elif number in (4, 5, 7, 10, 11):
            typed = (number, wire, a, b) if typed is None else typed
            if typed[:2] != (number, wire) or wire == 0:
                raise NotPlain("typed tensor data in pieces")
        elif number == 12 and wire == 2:
            _text(buf, a, b)
        elif number in (3, 6, 13) or (number == 14 and a == EXTERNAL):  # segments, strings, external data
            raise NotPlain("a segmented, string or external tensor")
        elif number == 16 and wire == 2:
            _entry(buf, a, b)
    if any(not 0 <= d <= MAX_DIM for d in dims) or math.prod(dims) > MAX_DIM:
        raise NotPlain("dimensions past 2^40")
    t = Tensor(name, tuple(dims), dtype)
    if keeps_values(dims, dtype) and (raw or typed):
        t.value = _values(buf, t, raw, typed)
    return t


def _values(buf, t: Tensor, raw, typed) -> np.ndarray | None:
    try:
        dtype = dtypes.np_dtype(t.data_type)
    except (KeyError, ValueError, TypeError):
        return None
    if raw:
        if raw[1] - raw[0] != t.size * dtype.itemsize:  # checked before the bytes are copied
            raise NotPlain(f"tensor {t.name}: {raw[1] - raw[0]} bytes for dimensions {t.dims}")
        data = np.frombuffer(buf[raw[0]:raw[1]], dtype.newbyteorder("<"))
    else:
        number, wire, a, b = typed
        if number == 4:
            data = np.frombuffer(buf[a:b], "<f4")
        elif number == 10:
            data = np.frombuffer(buf[a:b], "<f8")
        else:  # int32_data (also small ints, bool, fp16 bits), int64_data, uint64_data: varints
            ints = _ints(buf, wire, a, b)
            if number == 5 and t.data_type == dtypes.FLOAT16:
                data = np.array(ints, np.uint16).view(np.float16)
            else:
                data = np.array([v & ((1 << 64) - 1) for v in ints] if number == 11 else ints).astype(dtype)
    if data.size != t.size:
        raise NotPlain(f"tensor {t.name}: {data.size} values for dimensions {t.dims}")
    return data.astype(dtype, copy=False).reshape(t.dims)


def _value(buf, start: int, end: int) -> Value:
    name, elem, dims = "", 0, None
    for number, wire, a, b in _fields(buf, start, end):
        if number == 1 and wire == 2:
            name = _text(buf, a, b)
        elif number == 2 and wire == 2:
            for n, w, x, y in _fields(buf, a, b):
                if n == 1 and w == 2:
                    elem, dims = _tensor_type(buf, x, y)
                elif n == 6 and w == 2:
                    _text(buf, x, y)
                else:
                    raise NotPlain("a sequence, map, optional or sparse type")
        elif number == 3 and wire == 2:
            _text(buf, a, b)
    return Value(name, elem, dims)


def _tensor_type(buf, start: int, end: int):
    elem, dims = 0, None
    for number, wire, a, b in _fields(buf, start, end):
        if number == 1 and wire == 0:
            elem = a
        elif number == 2 and wire == 2:
            dims = []
            for n, w, x, y in _fields(buf, a, b):
                if n == 1 and w == 2:
                    dim = None
                    for m, v, p, q in _fields(buf, x, y):
                        if m == 1 and v == 0:
                            dim = _signed(p)
                            if not 0 <= dim <= MAX_DIM:
                                raise NotPlain("a dimension past 2^40")
                        elif m == 2 and v == 2:
                            dim = _text(buf, p, q) if dim is None else dim
                        elif m == 3 and v == 2:
                            _text(buf, p, q)
                    dims.append(dim)
            dims = tuple(dims)
    return elem, dims


# ---- onnx's objects --------------------------------------------------------------------------------

def from_proto(model) -> Model:
    """The same objects from an onnx ModelProto (read by onnx_read.load, or built in Python)."""
    from onnx import AttributeProto, TensorProto, helper, numpy_helper

    def tensor(t) -> Tensor:
        out = Tensor(t.name, tuple(t.dims), t.data_type)
        if t.data_location != TensorProto.EXTERNAL and keeps_values(t.dims, t.data_type):
            try:
                out.value = numpy_helper.to_array(t)
            except (ValueError, TypeError):
                pass
        return out

    def attr(a):
        if a.type == AttributeProto.INT and not a.ref_attr_name:
            return a.i
        if a.type == AttributeProto.FLOAT and not a.ref_attr_name:
            return a.f
        if a.type == AttributeProto.INTS:
            return tuple(a.ints)
        if a.type == AttributeProto.TENSOR:
            return tensor(a.t)
        value = helper.get_attribute_value(a)
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        if isinstance(value, list):
            return tuple(v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in value)
        return value

    g = model.graph
    nodes = [Node(n.name, n.op_type, n.domain, tuple(n.input), tuple(n.output),
                  {a.name: attr(a) for a in n.attribute}, n.doc_string, n,
                  {p.key: p.value for p in n.metadata_props if p.key in SCOPE_KEYS}) for n in g.node]
    return Model(g.name, nodes, [tensor(t) for t in g.initializer], [proto_value(v) for v in g.input],
                 [proto_value(v) for v in g.output], [proto_value(v) for v in g.value_info],
                 {o.domain or "": o.version for o in model.opset_import},
                 {p.key: p.value for p in model.metadata_props},
                 frozenset((f.domain, f.name) for f in model.functions), model)


def proto_value(v) -> Value:
    """An onnx ValueInfoProto as a Value."""
    t = v.type.tensor_type
    dims = None
    if t.HasField("shape"):
        dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim)
    return Value(v.name, t.elem_type, dims)
