"""Differential fuzz of the ONNX reader against onnx.load: small valid models mutated (bit flips,
truncations, appended bytes, and field-level edits with every enclosing length fixed up: a field removed,
repeated, moved last, renumbered, given another wire type, 64-bit values in 32-bit fields, a oneof's other
member appended), each read by effplan (importer.read_file) and by onnx.load of the whole file.

Contract: a file protobuf refuses, effplan refuses in one line (OnnxError); a file protobuf accepts,
effplan reads with the values protobuf reads (nodes, attributes, initializers' headers and kept values,
inputs, outputs, opsets, metadata), or refuses for what the file says (never as corrupt); importing an
accepted file ends in a graph or an EffplanError, never another exception. The expected values are
read here off onnx's ModelProto, with onnx's numpy_helper for tensors' values.

`python benchmarks/fuzz.py --wire 10000` runs the same check on freshly seeded files and counts outcomes.
"""
import math
import os
import random
import struct
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import given, settings, strategies as st
from onnx import TensorProto, helper, numpy_helper

from effplan.base.errors import EffplanError
from effplan.onnx import importer
from effplan.onnx.common import OnnxError
from effplan.onnx.export import save

KEPT = 64  # elements: effplan keeps a tensor's values up to this, or an integer tensor up to 2^16
FLOATS = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.DOUBLE}


# ---- seeds ---------------------------------------------------------------------------------------

def _conv_model() -> onnx.ModelProto:
    rng = np.random.default_rng(1)
    inits = [numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "W"),  # 216: cut
             numpy_helper.from_array(np.zeros(8, np.float32), "B"),
             numpy_helper.from_array(np.array([0, -1], np.int64), "shape"),
             helper.make_tensor("S", TensorProto.FLOAT, [70], [0.5] * 70)]  # float_data, never cut
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                              strides=[1, 1], group=1, auto_pad="NOTSET", doc_string="stem"),
             helper.make_node("LeakyRelu", ["c"], ["r"], alpha=0.1),
             helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(np.array(2.0, np.float32))),
             helper.make_node("Mul", ["r", "k"], ["m"]),
             helper.make_node("Reshape", ["m", "shape"], ["y"])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 512])
    graph = helper.make_graph(nodes, "g", [x], [y], inits,
                              value_info=[helper.make_tensor_value_info("c", TensorProto.FLOAT, ["N", 8, 8, 8])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="t")
    helper.set_model_props(model, {"phi": "1.0"})
    return model


def _typed_model() -> onnx.ModelProto:
    inits = [helper.make_tensor("W", TensorProto.FLOAT16, [4, 2], [1.5] * 8),  # int32_data
             helper.make_tensor("a", TensorProto.INT64, [2], [3, 4]),  # int64_data
             helper.make_tensor("d", TensorProto.DOUBLE, [2], [0.25, -1.0])]
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"]),
             helper.make_node("Transpose", ["h"], ["y"], perm=[1, 0])]
    graph = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [3, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT16, [2, 3])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("ai.onnx.ml", 3)])


def _seeds() -> list[bytes]:
    with tempfile.TemporaryDirectory() as tmp:
        save(_conv_model(), f"{tmp}/pieces.onnx")  # the graph in pieces, as effplan's export writes it
        pieces = Path(f"{tmp}/pieces.onnx").read_bytes()
    return [_conv_model().SerializeToString(), pieces, _typed_model().SerializeToString()]


SEEDS = _seeds()


# ---- a test-side view of the wire format, to edit fields and fix lengths up ----------------------

def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if byte < 0x80:
            return value, pos


def _enc(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes(out + bytes([value]))


def decode(data: bytes, descriptor) -> list:
    """A message as [number, wire, value] fields: a varint's int, fixed bytes, a length-delimited field's
    bytes, or its fields (a list) where onnx's descriptor says it is a message."""
    out, pos = [], 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos:pos + length], pos + length
            field = descriptor.fields_by_number.get(number) if descriptor else None
            if field is not None and field.message_type is not None:
                value = decode(value, field.message_type)
        else:
            size = 8 if wire == 1 else 4
            value, pos = data[pos:pos + size], pos + size
        out.append([number, wire, value])
    return out


def encode(fields: list) -> bytes:
    out = bytearray()
    for number, wire, value in fields:
        out += _enc(number << 3 | wire)
        if wire == 0:
            out += _enc(value)
        elif wire == 2:
            body = encode(value) if isinstance(value, list) else value
            out += _enc(len(body)) + body
        else:
            out += value
    return bytes(out)


def _all_fields(fields: list, into: list) -> list:
    for i, f in enumerate(fields):
        into.append((fields, i))
        if isinstance(f[2], list):
            _all_fields(f[2], into)
    return into


WIDE = [2**31 - 1, 2**31, 2**32, 2**32 + 1, 2**32 + 7, 2**63 - 1, 2**63, 2**64 - 1, 2**64 - 2**31]


def _edit_field(fields: list, rng: random.Random) -> None:
    """One field-level edit somewhere in the message tree; lengths are fixed up by encode()."""
    parent, i = rng.choice(_all_fields(fields, []))
    f = parent[i]
    how = rng.randrange(9)
    if how == 0:
        del parent[i]
    elif how == 1:  # repeated: protobuf merges a repeated or singular message, keeps a scalar's last
        parent.insert(rng.randrange(len(parent) + 1), [f[0], f[1], _copy(f[2])])
    elif how == 2:  # moved last: protobuf keeps the last of a oneof (Dimension's dim_value / dim_param)
        parent.append(parent.pop(i))
    elif how == 3:
        f[0] = rng.choice([0, rng.randrange(1, 32), f[0] + 1, 2**29 - 1])
    elif how == 4:  # another wire type, the value re-made to suit it
        f[1] = rng.choice([0, 1, 2, 5, 3])
        f[2] = {0: rng.choice(WIDE + [0, 1, 7]), 1: bytes(8), 5: bytes(4), 2: b"\x08\x01", 3: b""}[f[1]]
        if f[1] == 3:
            f[1] = 2  # no groups written: a length-delimited empty value instead
    elif how == 5 and f[1] == 0:  # a 64-bit value in what may be an int32 or enum field
        f[2] = rng.choice(WIDE + [rng.getrandbits(64), rng.randrange(32)])
    elif how == 6 and f[1] == 2 and not isinstance(f[2], list):
        data = bytearray(f[2])
        if data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        f[2] = bytes(data) + rng.randbytes(rng.randrange(3))
    elif how == 7 and isinstance(f[2], list):  # a oneof's other member / a sibling given twice
        if f[2]:
            g = rng.choice(f[2])
            f[2].append([g[0], g[1], _copy(g[2])])
    elif how == 8 and f[1] == 2:  # a packed repeated field, or a value in pieces
        parent.insert(i + 1, [f[0], 0, rng.choice(WIDE + [1, 2, 3])])


def _copy(value):
    return [[n, w, _copy(v)] for n, w, v in value] if isinstance(value, list) else value


def mutate(rng: random.Random) -> bytes:
    """A seed with 1-3 field-level edits, then 0-2 byte-level ones."""
    data = rng.choice(SEEDS)
    if rng.random() < 0.7:
        fields = decode(data, onnx.ModelProto.DESCRIPTOR)
        for _ in range(rng.randrange(1, 4)):
            _edit_field(fields, rng)
        data = encode(fields)
    data = bytearray(data)
    for _ in range(rng.choice([0, 0, 1, 2]) if len(data) else 0):
        how = rng.randrange(3)
        if how == 0 and data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif how == 1:
            del data[rng.randrange(len(data) + 1):]
        else:
            data += rng.choice([b"\x00\x01", b"\x00", rng.randbytes(rng.randrange(1, 5))])
    return bytes(data)


# ---- the contract ---------------------------------------------------------------------------------

def _canon(value):
    """A value made comparable exactly (NaN equal to NaN, -0.0 unlike 0.0)."""
    if isinstance(value, (list, tuple)):
        return tuple(_canon(v) for v in value)
    if isinstance(value, float):
        return struct.pack("<d", value)
    if isinstance(value, np.ndarray):
        return value.dtype.str, value.shape, value.tobytes()
    return value


def _tensor(t) -> tuple:
    size = math.prod(t.dims)
    value = None
    if t.data_location != TensorProto.EXTERNAL and (size <= KEPT or (size <= 2**16 and t.data_type not in FLOATS)):
        try:
            value = numpy_helper.to_array(t)
        except Exception:  # noqa: BLE001 - values numpy_helper cannot read are none
            pass
    return t.name, tuple(t.dims), t.data_type, _canon(value)


def _attribute(a):
    if a.type == onnx.AttributeProto.TENSOR:
        return _tensor(a.t)
    value = helper.get_attribute_value(a)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list):
        return _canon([v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in value])
    return _canon(value)


def _value(v) -> tuple:
    t = v.type.tensor_type
    dims = None
    if t.HasField("shape"):
        dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim)
    return v.name, t.elem_type, dims


def _domain(d: str) -> str:
    return "" if d == "ai.onnx" else d  # ONNX's two names of its default domain


def expected(model: onnx.ModelProto) -> dict:
    g = model.graph
    return {
        "nodes": [(n.name, n.op_type, _domain(n.domain), tuple(n.input), tuple(n.output),
                   {a.name: _attribute(a) for a in n.attribute}, n.doc_string) for n in g.node],
        "initializers": [_tensor(t) for t in g.initializer],
        "values": [[_value(v) for v in vs] for vs in (g.input, g.output, g.value_info)],
        "opsets": {_domain(o.domain): o.version for o in model.opset_import},
        "metadata": {p.key: p.value for p in model.metadata_props}, "graph": g.name,
    }


def effplans(model) -> dict:
    def tensor(t):
        return t.name, t.dims, t.data_type, _canon(t.value)

    def attr(v):
        return tensor(v) if hasattr(v, "dims") and hasattr(v, "data_type") else _canon(v)

    return {
        "nodes": [(n.name, n.op_type, n.domain, n.input, n.output, {k: attr(v) for k, v in n.attrs.items()},
                   n.doc_string) for n in model.nodes],
        "initializers": [tensor(t) for t in model.initializers],
        "values": [[(v.name, v.elem_type, v.dims) for v in vs] for vs in (model.inputs, model.outputs, model.value_info)],
        "opsets": model.opsets, "metadata": model.metadata, "graph": model.graph_name,
    }


def check(data: bytes, folder: str) -> str:
    """Read `data` as an .onnx file both ways; the outcome ('refused by both', 'read alike', 'refused for
    what it says'), or an AssertionError."""
    path = os.path.join(folder, "m.onnx")
    with open(path, "wb") as fh:
        fh.write(data)
    try:
        proto = onnx.load(path, load_external_data=False)
    except Exception:  # noqa: BLE001 - whatever onnx.load raises is a refusal
        proto = None
    try:
        ours = importer.read_file(path)
    except OnnxError as exc:
        message = str(exc)
        assert "\n" not in message and "Error" not in message, message
        if proto is None:
            return "refused by both"
        assert "not a valid ONNX file" not in message, f"protobuf accepts what effplan calls corrupt: {message}"
        return "refused for what it says"
    assert proto is not None, "effplan accepted a file protobuf refuses"
    assert effplans(ours) == expected(proto)
    try:
        importer.from_onnx(ours, path, 1)
    except EffplanError:
        pass
    return "read alike"


EXAMPLES = int(os.environ.get("EFFPLAN_WIRE_EXAMPLES", "500"))  # about 2.5 s


def test_the_seeds_are_read_alike(tmp_path):
    for data in SEEDS:
        assert check(data, str(tmp_path)) == "read alike"


@settings(max_examples=EXAMPLES)
@given(st.randoms(use_true_random=False))
def test_effplan_reads_what_protobuf_reads(rng):
    with tempfile.TemporaryDirectory() as tmp:
        check(mutate(rng), tmp)


@pytest.mark.parametrize("tail", [b"\x00\x01", b"\x00", b"\x08"])
def test_bytes_appended_to_an_exported_model_are_refused(effplan, tmp_path, tail):
    """The reproducer: `00 01` appended to an exported EfficientNet makes it unloadable by any runtime;
    `check` must not pass it."""
    path = tmp_path / "b0.onnx"
    assert effplan("export", "efficientnet-b0", "--resolution", "32", "--width-mult", "0.25", "-o", str(path)).code == 0
    path.write_bytes(path.read_bytes() + tail)
    with pytest.raises(Exception):
        onnx.load(str(path))
    run = effplan("analyze", str(path))
    assert run.code == 2 and "not a valid ONNX file (truncated or corrupt" in run.err, run.err


def test_a_cut_header_protobuf_reads_otherwise_is_parsed_whole(tmp_path):
    """A dim written as a 10-byte varint of 2^64 + 10: protobuf keeps its low 64 bits (10: a small tensor,
    whose values effplan keeps); the skim, reading all of it, takes the tensor for a large weight and
    cuts its raw_data. read.py checks each cut tensor against protobuf's header and parses the whole
    file: the values are there."""
    values = np.arange(10, dtype=np.float32)
    model = _typed_model()
    model.graph.initializer.append(numpy_helper.from_array(values, "v"))
    fields = decode(model.SerializeToString(), onnx.ModelProto.DESCRIPTOR)
    graph = next(f for f in fields if f[0] == 7)[2]
    tensor = [f for f in graph if f[0] == 5][-1][2]
    dims = next(f for f in tensor if f[0] == 1)
    dims[1], dims[2] = 2, b"\x8a" + b"\x80" * 8 + b"\x02"  # packed: one varint of 2^64 + 10
    path = tmp_path / "m.onnx"
    path.write_bytes(encode(fields))
    assert list(onnx.load(str(path)).graph.initializer[-1].dims) == [10]
    read = importer.read_file(str(path))
    assert read.initializers[-1].dims == (10,) and read.initializers[-1].value.tolist() == values.tolist()
