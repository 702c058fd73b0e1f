"""Reading an ONNX file safely and cheaply: the protobuf without its weights' values (shapes are what
costs need), external data that must stay inside the model's folder and inside its .data file,
subgraphs that would hide work, text that must be UTF-8. onnx_import.py turns what this reads into
effplan's graph."""
from __future__ import annotations

import math
import os
from pathlib import Path

import onnx
from google.protobuf.descriptor import FieldDescriptor  # loaded by onnx already
from onnx import TensorProto

from ..base.errors import quote
from ..base.resources import memory_left
from ..base.units import MAX_DIM, human_bytes
from ..graph.builder import MAX_OPS
from ..graph.ops import MATRIX, OPS
from .common import OnnxError, tensor_bytes
from .wire import _varint, keeps_values



def load(path: str) -> onnx.ModelProto:
    """Parse a model file without its external data and without the values of its weights (their
    shapes are what costs need), checking that any external data stays inside the model's folder."""
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
        model = _parse_shapes_only(p)  # holds the file less its weights' values: little memory
        if model is None:  # a text format (by its suffix), or bytes that are no protobuf: onnx's own reader
            left = memory_left()
            need = 2 * size + (64 << 20)  # its bytes and the parsed message (measured: EfficientNet-L2's 1.9 GB)
            if left is not None and need > left:
                raise OnnxError(f"{path}: parsing its {human_bytes(size)} needs about {human_bytes(need)} of "
                                f"memory; {human_bytes(left)} is left")
            model = onnx.load_model(str(p), load_external_data=False)
    except OnnxError:
        raise
    except Exception as exc:  # protobuf raises DecodeError, RuntimeError or ValueError by version
        raise OnnxError(f"{path}: not a readable ONNX model ({type(exc).__name__})") from None
    if not model.HasField("graph") or not model.graph.node or model.ir_version < 1:
        raise OnnxError(f"{path}: not an ONNX model (no graph nodes)")
    bad = _invalid_text(model)
    if bad:
        raise OnnxError(f"{path}: the text of {bad} is not valid UTF-8; not a well-formed ONNX model")
    _refuse_unsupported(model.graph, path, p.resolve().parent)
    return model


# TensorProto fields that hold values: float_data, int32_data (also int8, fp16 ... bits), string_data,
# int64_data, raw_data, double_data, uint64_data
VALUE_FIELDS = frozenset({4, 5, 6, 7, 9, 10, 11})


def _parse_shapes_only(p: Path) -> onnx.ModelProto | None:
    """The model with the values of its weights left out (costs need only their dims; what shape
    inference or evaluate.py reads stays: initializers up to SMALL_INITIALIZER elements, and the integer
    ones evaluate.py folds): the file is mapped and its protobuf fields walked, so a 255 MiB file costs a
    scan of its headers rather than a read and a copy of every weight. None where the file is no
    protobuf (a text format by its suffix, or bytes this walk cannot follow): onnx's own reader then
    answers."""
    import mmap

    if onnx.serialization.registry.get_format_from_file_extension(p.suffix) not in (None, "protobuf"):
        return None
    try:
        with open(p, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            model = _strip(buf, 0, len(buf), {7: lambda b, s, e: _strip(b, s, e, {5: _tensor_header})})
    except (OSError, IndexError, ValueError):  # OSError: no regular file to map (a pipe)
        return None
    return onnx.ModelProto.FromString(model)


def _strip(buf, start: int, end: int, inner: dict) -> bytes:
    """The message in buf[start:end], its fields copied as they are but those numbered in `inner`,
    which `inner[number](buf, start, end)` rewrites (a length-delimited message)."""
    out, pos = [], start
    while pos < end:
        tag = pos
        key, pos = _varint(buf, pos)
        wire = key & 7
        if wire == 0:
            pos = _varint(buf, pos)[1]
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if key >> 3 in inner:
                body = inner[key >> 3](buf, pos, pos + length)
                out.append(_encode(key) + _encode(len(body)) + body)
                pos += length
                continue
            pos += length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise ValueError("a group or an unknown wire type")  # ONNX has no groups
        if pos > end:
            raise ValueError("a field past the end of its message")
        out.append(buf[tag:pos])
    return b"".join(out)


def _tensor_header(buf, start: int, end: int) -> bytes:
    """An initializer (TensorProto) without its values, unless shape inference or evaluate.py reads them
    (see _parse_shapes_only)."""
    fields, dims, dtype, pos = [], [], 0, start
    while pos < end:
        tag = pos
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            dims += [value] * (number == 1)  # dims, unpacked
            dtype = value if number == 2 else dtype
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if number == 1:  # dims, packed
                at = pos
                while at < pos + length:
                    value, at = _varint(buf, at)
                    dims.append(value)
            pos += length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise ValueError("a group or an unknown wire type")
        if pos > end:
            raise ValueError("a field past the end of its message")
        fields.append((number, tag, pos))
    if keeps_values(dims, dtype):
        return buf[start:end]
    return b"".join(buf[tag:stop] for number, tag, stop in fields if number not in VALUE_FIELDS)


def _encode(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _invalid_text(message) -> str | None:
    """The first string field holding bytes that are not UTF-8 (protobuf then gives bytes, not str),
    as a path like 'graph.node.doc_string', or None. Every message of the model is visited: the path
    is made only on the way back from a find."""
    for field, value in message.ListFields():
        if field.type == _STRING:
            if value.__class__ is bytes or (value.__class__ is not str and any(v.__class__ is bytes for v in value)):
                return field.name
        elif field.type == _MESSAGE:
            for item in (value,) if hasattr(value, "ListFields") else value:
                found = _invalid_text(item)
                if found:
                    return f"{field.name}.{found}"
    return None


_STRING, _MESSAGE = FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_MESSAGE


# ops whose costs a skipped subgraph would lose: those with weights or matrix work
HEAVY_OPS = {op for op, e in OPS.items() if e.weights or e.unit == MATRIX}


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
    for t in tensors:  # the message names a tensor only where one is refused: a thousand quotes cost
        dims = t.dims
        if dims and (min(dims) < 0 or max(dims) > MAX_DIM or math.prod(dims) > MAX_DIM):
            raise OnnxError(f"{path}: tensor {quote(t.name)} declares dimensions {quote(list(dims))}: each, and "
                            f"their product, must be from 0 to 2^40")
        if t.data_location == TensorProto.EXTERNAL:
            where = f"{path}: tensor {quote(t.name)}"
            location = next((e.value for e in t.external_data if e.key == "location"), "")
            if not isinstance(location, str) or not location or "\0" in location or os.path.isabs(location) \
                    or folder not in (folder / location).resolve().parents:
                raise OnnxError(f"{where} has external data outside the model's folder "
                                f"or at no valid path ({quote(location)}); refusing to read it")
            _check_extent(t, folder / location, where)
    for value in [*g.input, *g.output, *g.value_info]:
        for d in value.type.tensor_type.shape.dim:
            if not 0 <= d.dim_value <= MAX_DIM:  # an unset dim_value reads 0: no HasField per dim
                raise OnnxError(f"{path}: tensor {quote(value.name)} has a dimension of {d.dim_value}; "
                                f"dimensions go from 0 to 2^40")
    for node in g.node:
        for a in node.attribute:
            for sub in [a.g] * a.HasField("g") + list(a.graphs):
                if depth == 0 and _holds_heavy(sub):
                    raise OnnxError(f"{path}: node {quote(label(node))} ({quote(node.op_type)}) holds a subgraph "
                                    f"with convs or matrix products; effplan does not cost control flow, and "
                                    f"would drop them")
                _refuse_unsupported(sub, path, folder, depth + 1)


def _check_extent(t: onnx.TensorProto, data: Path, where: str) -> None:
    """External data that its file cannot hold (an old model beside a newer, shorter data file) is
    refused; a data file that is absent is not (costs need only shapes)."""
    fields = {e.key: e.value for e in t.external_data}
    try:
        offset = int(fields.get("offset") or 0)
        length = int(fields["length"]) if fields.get("length") else tensor_bytes(t)
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


def label(node: onnx.NodeProto) -> str:
    return node.name or node.op_type
