"""Reading an ONNX file: protobuf parses it (onnx's message classes, after wire.skim has cut the bytes of
large weights), so a file is accepted exactly when onnx.load accepts it and read with the values onnx
reads; then what import cannot honour is refused: external data outside the model's folder or past the
end of its .data file, subgraphs that would hide work, text that is not UTF-8, too many nodes.
importer.py turns what this reads into effplan's graph."""
from __future__ import annotations

import math
import mmap
import os
from pathlib import Path

import onnx
from google.protobuf.descriptor import FieldDescriptor  # loaded by onnx already
from google.protobuf.message import DecodeError
from onnx import TensorProto

from ..base.errors import quote
from ..base.files import reads
from ..base.resources import memory_left
from ..base.units import MAX_DIM, human_bytes
from ..graph.ops import MATRIX, OPS
from .common import OnnxError, tensor_bytes
from .wire import MAX_NODES, Unfollowed, keeps_values, skim


def load(path: str) -> onnx.ModelProto:
    """Parse a model file without its external data and without the values of its large weights (their
    shapes are what costs need), refusing in one line what protobuf refuses and what import cannot honour."""
    p = Path(path)
    reads(path)
    if p.is_dir():
        raise OnnxError(f"{path}: is a directory, expected an .onnx file")
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise OnnxError(f"{path}: cannot read: {exc.strerror}") from None
    if size == 0:
        raise OnnxError(f"{path}: empty file, not an ONNX model")
    form = onnx.serialization.registry.get_format_from_file_extension(p.suffix)
    model = _parse(p, path, size) if form in (None, "protobuf") else _parse_text(p, path, size, form)
    if not model.HasField("graph") or not model.graph.node or model.ir_version < 1:
        raise OnnxError(f"{path}: not an ONNX model (no graph nodes)")
    bad = _invalid_text(model)
    if bad:
        raise OnnxError(f"{path}: the text of {bad} is not valid UTF-8; not a well-formed ONNX model")
    _refuse_unsupported(model.graph, path, p.resolve().parent)
    _refuse_mistyped(model, path)
    return model


def _parse(p: Path, path: str, size: int) -> onnx.ModelProto:
    """The binary model: the file mapped, skimmed (wire.skim) and the rest parsed by protobuf; the whole
    file parsed where the skim cannot follow it or read a cut tensor's header otherwise than protobuf."""
    try:
        with open(p, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            try:
                found, stopped = skim(buf), None
            except Unfollowed as exc:
                found, stopped = None, exc.at
            if found is not None and found.nodes > MAX_NODES:
                raise OnnxError(f"{path}: more than {MAX_NODES:,} nodes; at most {MAX_NODES:,}")
            if found is not None:
                model = _protobuf(b"".join(found.pieces), path, None)
                inits = model.graph.initializer
                if not any(i >= len(inits) or keeps_values(inits[i].dims, inits[i].data_type) for i in found.cut):
                    return model
            _room(path, size)
            return _protobuf(buf[:], path, stopped)
    except OSError as exc:  # no regular file to map (a pipe, a device)
        raise OnnxError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _room(path: str, size: int) -> None:
    """Refuse a parse of the whole file that memory cannot hold."""
    left = memory_left()
    need = 2 * size + (64 << 20)  # its bytes and the parsed message (measured: EfficientNet-L2's 1.9 GB)
    if left is not None and need > left:
        raise OnnxError(f"{path}: parsing its {human_bytes(size)} needs about {human_bytes(need)} of "
                        f"memory; {human_bytes(left)} is left")


def _protobuf(data: bytes, path: str, stopped: int | None) -> onnx.ModelProto:
    try:
        return onnx.ModelProto.FromString(data)
    except DecodeError:
        where = f" at byte {stopped:,}" if stopped is not None else ""
        raise OnnxError(f"{path}: not a valid ONNX file (truncated or corrupt{where}: protobuf cannot parse "
                        f"it)") from None


def _parse_text(p: Path, path: str, size: int, form: str) -> onnx.ModelProto:
    """A model in one of onnx's text formats (by its suffix), read by onnx."""
    _room(path, size)
    try:
        return onnx.load_model(str(p), format=form, load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - text_format's ParseError, json's, UnicodeDecodeError by format
        reason = (str(exc).strip().splitlines() or ["cannot be parsed"])[0][:200]
        raise OnnxError(f"{path}: not a valid ONNX {form} file ({reason})") from None


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
    if len(g.node) > MAX_NODES:
        raise OnnxError(f"{path}: {len(g.node):,} nodes; at most {MAX_NODES:,}")
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


def _refuse_mistyped(model: onnx.ModelProto, path: str) -> None:
    """Refuse an attribute of another type than ONNX's schema of the op declares (a Conv `group` given as a
    list, a `kernel_shape` as one int): effplan's rules read attributes as ONNX defines them."""
    version = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    declared: dict[str, dict] = {}
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx"):
            continue
        if node.op_type not in declared:
            try:
                schema = onnx.defs.get_schema(node.op_type, min(max(version, 1), 2**31 - 1), "")  # an int32 there
                declared[node.op_type] = {name: a.type for name, a in schema.attributes.items()}
            except onnx.defs.SchemaError:  # an op this opset does not define: inference says so
                declared[node.op_type] = {}
        types = declared[node.op_type]
        for a in node.attribute:
            if a.name in types and a.type != types[a.name]:
                kind = onnx.AttributeProto.AttributeType.Name
                raise OnnxError(f"{path}: node {quote(label(node))} ({quote(node.op_type)}): attribute {quote(a.name)} "
                                f"is {kind(a.type)}; ONNX's {node.op_type} takes {kind(types[a.name])}")


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
