"""Shape arithmetic evaluated with numpy, where ONNX's data propagation stops.

Exporters compute padding, reshape targets and expand shapes at run time from `Shape` of an
activation: TF-'same' padding is Shape -> Gather -> Cast -> Div -> Ceil -> ... -> Max -> Pad,
a class token is expanded with ConstantOfShape / Equal / Where / Expand. ONNX's data propagation
gives up at Div, Ceil, Max, Clip, Equal, Where and Reshape, which leaves later shapes unknown.
Once the batch is bound every such value is a small constant: this pass walks the nodes in order,
evaluates each node whose inputs are all known values (initializers, Constant nodes, Shape and Size
of a tensor of known shape), and infers each output shape the whole-graph inference left open with
ONNX's own per-node inference, given those values. The nodes it evaluates are folded, as a runtime
folds them once the input shape is fixed.

Hostile files: a node's output shape is known before it is evaluated, and a node whose output
would hold more than MAX_VALUES elements is not evaluated (its shape still is).
"""
from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .ops import OPS

MAX_VALUES = 1 << 16  # elements of one evaluated tensor: shape arithmetic is a few dozen


def evaluate_op(op: str):
    """The function that computes an op's value (its op table entry's `evaluate`), or None."""
    return OPS[op].evaluate if op in OPS else None


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _constant_value(node: onnx.NodeProto) -> np.ndarray | None:
    """The value of a Constant node (value, value_int(s), value_float(s)), if small."""
    for attr in node.attribute:
        if attr.name == "value":
            return numpy_helper.to_array(attr.t) if _seeds(attr.t) else None
        if attr.name in ("value_int", "value_ints", "value_float", "value_floats"):
            value = np.array(helper.get_attribute_value(attr), np.int64 if "int" in attr.name else np.float32)
            return value if value.size <= (MAX_VALUES if "int" in attr.name else 1) else None
    return None


def _seeds(tensor: onnx.TensorProto) -> bool:
    """Whether a constant seeds the evaluation: integers and booleans (shapes, indices) and float
    scalars (a stride as a float) do; a float tensor is a weight (a class token to expand), never folded."""
    if tensor.data_location == onnx.TensorProto.EXTERNAL:
        return False
    size = math.prod(tensor.dims)
    return size <= 1 or (size <= MAX_VALUES and tensor.data_type not in FLOATS)


FLOATS = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16, onnx.TensorProto.DOUBLE)


def initial_values(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """The values of the initializers that seed the evaluation (a file may give shapes only)."""
    values = {}
    for i in graph.initializer:
        if _seeds(i):
            try:
                values[i.name] = numpy_helper.to_array(i)
            except (ValueError, TypeError):
                pass
    return values


def fold_shapes(model: onnx.ModelProto, nodes: list, order: list[int], shapes: dict, types: dict) -> set[int]:
    """Evaluate shape arithmetic and complete `shapes` (tensor -> tuple, None where unknown) and `types`
    in place. Returns the indices of the nodes evaluated (they fold away)."""
    values = initial_values(model.graph)
    opsets = {o.domain or "": o.version for o in model.opset_import}
    evaluated = set()
    for i in order:
        node = nodes[i]
        outs = [t for t in node.output if t]
        if node.domain not in ("", "ai.onnx"):
            continue
        if node.op_type == "Constant":
            value = _constant_value(node)
            if value is not None:
                values[outs[0]] = value
                shapes[outs[0]], types[outs[0]] = value.shape, helper.np_dtype_to_tensor_dtype(value.dtype)
            continue
        args = [values.get(t) if t else None for t in node.input]
        if node.op_type in ("Shape", "Size") and node.input and _known(shapes.get(node.input[0])):
            shape = shapes[node.input[0]]
            a = _attrs(node)
            value = np.array(shape[a.get("start", 0):a.get("end", len(shape))] if node.op_type == "Shape"
                             else math.prod(shape), np.int64)
        elif evaluate_op(node.op_type) and all(a is not None for t, a in zip(node.input, args) if t):
            if not all(_known(shapes.get(t)) for t in outs):
                _infer(node, shapes, types, values, opsets)
            if not _known(shapes.get(outs[0])) or math.prod(shapes[outs[0]]) > MAX_VALUES:
                continue  # too large to hold: its shape is all that is needed
            try:
                with np.errstate(all="ignore"):  # a division by zero in a hostile file: a value, not a warning
                    value = np.asarray(evaluate_op(node.op_type)(_attrs(node), *args))
            except (ValueError, TypeError, IndexError, ArithmeticError, KeyError):
                continue  # not evaluable as written: inference decides, as for any other node
        else:
            if not all(_known(shapes.get(t)) for t in outs):
                _infer(node, shapes, types, values, opsets)
            continue
        values[outs[0]] = value
        shapes[outs[0]] = value.shape
        types[outs[0]] = helper.np_dtype_to_tensor_dtype(value.dtype)
        evaluated.add(i)
    return evaluated


def _known(shape) -> bool:
    return shape is not None and all(isinstance(d, int) and d >= 0 for d in shape)


def _infer(node, shapes: dict, types: dict, values: dict, opsets: dict) -> None:
    """ONNX's inference of one node, given its inputs' shapes and the values known: fills the output
    shapes it can. A node whose inputs are not all typed and shaped is left alone."""
    if not onnx.defs.has(node.op_type, node.domain):
        return
    inputs = {}
    for t in node.input:
        if t and t not in inputs:
            if not _known(shapes.get(t)) or not types.get(t):
                return
            inputs[t] = helper.make_tensor_type_proto(types[t], list(shapes[t]))
    data = {t: numpy_helper.from_array(values[t], t) for t in inputs if t in values}
    try:
        schema = onnx.defs.get_schema(node.op_type, opsets.get(node.domain or "", 1), node.domain)
        found = onnx.shape_inference.infer_node_outputs(schema, node, inputs, data)
    except Exception:  # onnx raises InferenceError, SchemaError or RuntimeError: the tensor stays unknown
        return
    for t, kind in found.items():
        tensor = kind.tensor_type
        if tensor.HasField("shape"):
            dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)
            if _known(dims) and not _known(shapes.get(t)):
                shapes[t] = dims
        if tensor.elem_type and not types.get(t):
            types[t] = tensor.elem_type
