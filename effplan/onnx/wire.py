"""The bytes of an ONNX file as protobuf reads them, and the plain objects import takes from them.

Protobuf (onnx's message classes) parses every byte effplan uses: a file is accepted exactly when
onnx.load accepts it, and read as onnx reads it (read.py). One pass goes before it, `skim`, the only
hand-written walk of the wire format in effplan: it cuts the raw bytes of large initializers (weights
whose values no rule reads: most of a file) and counts the nodes, so that a 250 MB file costs a scan of
its headers and a 10^6-node file is refused before it is parsed. It changes nothing protobuf validates:
it cuts only whole `raw_data` fields (bytes, which protobuf never checks) out of initializers whose
fields it walks exactly as protobuf does, and rewrites the lengths around them; whatever it does not
follow (a group, field number 0, an overlong tag or length, a field past its message) leaves the whole
file to protobuf. `from_proto` turns the parsed ModelProto into the objects below.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..base.errors import quote
from ..graph import dtypes
from ..graph.builder import MAX_OPS
from .common import OnnxError

# nodes of a file's graph: the largest real networks have 10^4; a 10^5-node chain takes 10 s and 1 GB to
# analyze (benchmarks/worst_case.py), and built designs keep graph.builder's MAX_OPS
MAX_NODES = min(MAX_OPS, 100_000)
SMALL_INITIALIZER = 64  # elements; smaller initializers keep their values (Resize scales, Clip bounds)
MAX_VALUES = 1 << 16  # elements of one evaluated tensor: shape arithmetic is a few dozen
FLOAT_TYPES = frozenset(dtypes.FLOAT_PRECISIONS)
EXTERNAL = 1  # TensorProto.DataLocation


class NotPlain(Exception):
    """effplan's own shape rules cannot shape a node (the reason says why): ONNX's inference does."""


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

GRAPH_TAG, INITIALIZER_TAG, RAW_DATA_TAG = 0x3A, 0x2A, 0x4A  # ModelProto 7, GraphProto 5, TensorProto 9; wire 2


class Unfollowed(Exception):
    """Bytes the skim does not walk as protobuf would: protobuf reads the whole file."""

    def __init__(self, at: int):
        super().__init__(f"byte {at}")
        self.at = at


@dataclass(slots=True)
class Skim:
    pieces: list = field(default_factory=list)  # the file less the cut raw_data, in order (b"".join them)
    cut: list = field(default_factory=list)  # indices in protobuf's graph.initializer of the tensors cut
    nodes: int = 0  # nodes of the graph, counted up to MAX_NODES + 1 (the skim stops there)
    initializers: int = 0


def skim(buf) -> Skim:
    """The file in `buf` less the raw_data of initializers that keep no values (keeps_values); or
    Unfollowed. Its reading of an initializer's dims and type only chooses what to cut: read.py checks
    the cut tensors against protobuf's reading of them."""
    found, edits = Skim(), []
    for number, wire, tag, body, stop in _fields(buf, 0, len(buf)):
        if number == 7 and wire == 2:
            if buf[tag] != GRAPH_TAG:
                raise Unfollowed(tag)  # an overlong tag: left to protobuf
            inner = _graph(buf, body, stop, found)
            if found.nodes > MAX_NODES:
                return found
            if inner:
                edits.append((tag, stop, _nested(GRAPH_TAG, _spliced(buf, body, stop, inner))))
    found.pieces = _spliced(buf, 0, len(buf), edits)
    return found


def _graph(buf, start: int, end: int, found: Skim) -> list:
    """The edits of one piece of the graph (protobuf merges the pieces): initializers less raw_data."""
    edits = []
    for number, wire, tag, body, stop in _fields(buf, start, end):
        if wire != 2:
            continue
        if number == 1:
            found.nodes += 1
            if found.nodes > MAX_NODES:
                return edits
        elif number == 5:
            if buf[tag] != INITIALIZER_TAG:
                raise Unfollowed(tag)
            cuts = _weight_bytes(buf, body, stop)
            if cuts:
                found.cut.append(found.initializers)
                edits.append((tag, stop, _nested(INITIALIZER_TAG, _spliced(buf, body, stop, cuts))))
            found.initializers += 1
    return edits


def _weight_bytes(buf, start: int, end: int) -> list:
    """The raw_data fields of a TensorProto (as edits that remove them) where its values are not kept."""
    dims, data_type, raw = [], 0, []
    for number, wire, tag, body, stop in _fields(buf, start, end):
        if number == 1 and wire in (0, 2):  # dims: one varint, or packed
            while body < stop:
                value, body = _varint(buf, body, stop)
                dims.append(value)
        elif number == 2 and wire == 0:
            data_type = _varint(buf, body, stop)[0]
        elif number == 9 and wire == 2 and buf[tag] == RAW_DATA_TAG:
            raw.append((tag, stop, ()))
    return [] if keeps_values(dims, data_type) else raw


def _fields(buf, start: int, end: int):
    """(number, wire type, tag's start, value's start, end) of each field of the message in buf[start:end],
    or Unfollowed where protobuf would refuse the bytes or could read them otherwise."""
    pos = start
    while pos < end:
        tag = pos
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0 or key >> 32 or pos - tag > 5 or wire not in (0, 1, 2, 5):
            raise Unfollowed(tag)
        body = pos
        if wire == 0:
            pos = _varint(buf, pos, end)[1]
        elif wire == 2:
            length, body = _varint(buf, pos, end)
            if body - pos > 5:
                raise Unfollowed(tag)
            pos = body + length
        else:
            pos += 8 if wire == 1 else 4
        if pos > end:
            raise Unfollowed(tag)
        yield number, wire, tag, body, pos


def _varint(buf, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while pos < end and shift < 70:  # ten bytes at most
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    raise Unfollowed(pos)


def _spliced(buf, start: int, end: int, edits: list) -> list:
    """buf[start:end] as pieces, each edit (from, to, pieces) replacing buf[from:to]."""
    pieces, at = [], start
    for a, b, replacement in edits:
        pieces += [buf[at:a], *replacement]
        at = b
    pieces.append(buf[at:end])
    return pieces


def _nested(tag: int, pieces: list) -> list:
    """A length-delimited field of one-byte tag `tag` holding `pieces`."""
    return [bytes([tag]), _encode(sum(map(len, pieces))), *pieces]


def _encode(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


# metadata_props the dynamo exporter writes on each node with the module path it came from (importer.py reads them)
SCOPE_KEYS = ("pkg.torch.onnx.name_scopes", "namespace")


# ---- onnx's objects --------------------------------------------------------------------------------

def from_proto(model) -> Model:
    """The objects of an onnx ModelProto (parsed by read.load, or built in Python): what protobuf read,
    with a tensor's values as onnx's numpy_helper reads them (where it keeps them at all: keeps_values)."""
    from onnx import AttributeProto, TensorProto, helper, numpy_helper

    def tensor(t) -> Tensor:
        out = Tensor(t.name, tuple(t.dims), t.data_type)
        if t.data_location != TensorProto.EXTERNAL and keeps_values(t.dims, t.data_type):
            try:
                out.value = numpy_helper.to_array(t)
            except Exception:  # noqa: BLE001 - values numpy_helper cannot read (an unknown type, short data) are none
                pass
        return out

    def attr(node, a):
        if a.ref_attr_name:
            raise OnnxError(f"node {quote(node.name or node.op_type)}: attribute {quote(a.name)} refers to an attribute "
                            f"of a function (ref_attr_name), which only a function's body may; not a well-formed "
                            f"ONNX model")
        if a.type == AttributeProto.INT:
            return a.i
        if a.type == AttributeProto.FLOAT:
            return a.f
        if a.type == AttributeProto.INTS:
            return tuple(a.ints)
        if a.type == AttributeProto.TENSOR:
            return tensor(a.t)
        if a.type not in KNOWN_ATTRIBUTES:
            raise OnnxError(f"node {quote(node.name or node.op_type)}: attribute {quote(a.name)} has no known type "
                            f"({a.type}); not a well-formed ONNX model")
        value = helper.get_attribute_value(a)
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        if isinstance(value, list):
            return tuple(v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in value)
        return value

    def node(n) -> Node:
        attrs = {a.name: attr(n, a) for a in n.attribute}
        if len(attrs) < len(n.attribute):
            raise OnnxError(f"node {quote(n.name or n.op_type)}: an attribute is given twice; not a well-formed "
                            f"ONNX model")
        return Node(n.name, n.op_type, _domain(n.domain), tuple(n.input), tuple(n.output), attrs, n.doc_string, n,
                    {p.key: p.value for p in n.metadata_props if p.key in SCOPE_KEYS})

    KNOWN_ATTRIBUTES = set(AttributeProto.AttributeType.values()) - {AttributeProto.UNDEFINED}
    g = model.graph
    return Model(g.name, [node(n) for n in g.node], [tensor(t) for t in g.initializer],
                 [proto_value(v) for v in g.input], [proto_value(v) for v in g.output],
                 [proto_value(v) for v in g.value_info], {_domain(o.domain): o.version for o in model.opset_import},
                 {p.key: p.value for p in model.metadata_props},
                 frozenset((f.domain, f.name) for f in model.functions), model)


def _domain(domain: str) -> str:
    return "" if domain == "ai.onnx" else domain  # ONNX's two names of its default domain


def proto_value(v) -> Value:
    """An onnx ValueInfoProto as a Value."""
    t = v.type.tensor_type
    dims = None
    if t.HasField("shape"):
        dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim)
    return Value(v.name, t.elem_type, dims)
