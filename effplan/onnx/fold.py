"""Shape arithmetic evaluated with numpy, and every node's output shapes, in one walk over the nodes.

Exporters compute padding, reshape targets and expand shapes at run time from `Shape` of an
activation: TF-'same' padding is Shape -> Gather -> Cast -> Div -> Ceil -> ... -> Max -> Pad,
a class token is expanded with ConstantOfShape / Equal / Where / Expand. ONNX's data propagation
gives up at Div, Ceil, Max, Clip, Equal, Where and Reshape, which leaves later shapes unknown.
Once the batch is bound every such value is a small constant: this pass walks the nodes in order,
evaluates each node whose inputs are all known values (initializers, Constant nodes, Shape and Size
of a tensor of known shape), and shapes each output still unknown with a per-node inference given
those values: effplan's own rules (each op's `infer`, raising NotPlain where they cannot), or ONNX's
per-node inference on onnx's path. The nodes it evaluates are folded, as a runtime folds them once
the input shape is fixed.

Hostile files: a node's output shape is known before it is evaluated, and a node whose output
would hold more than MAX_VALUES elements is not evaluated (its shape still is).
"""
from __future__ import annotations

import math

import numpy as np

from ..graph import dtypes
from ..graph.infer import CannotInfer, constant_value
from ..graph.ops import OPS
from .wire import MAX_VALUES, Model, NotPlain, Tensor, seeds


def evaluate_op(op: str):
    """The function that computes an op's value (its op table entry's `evaluate`), or None."""
    return OPS[op].evaluate if op in OPS else None


def _values_of(attrs: dict) -> dict:
    """Attributes as rules and evaluators take them: a tensor attribute as its value (None where its
    values were left out)."""
    return {k: (v.value if isinstance(v, Tensor) else v) for k, v in attrs.items()}


def _known(shape) -> bool:
    return shape is not None and all(isinstance(d, int) and d >= 0 for d in shape)


def fold_shapes(model: Model, order: list[int], shapes: dict, types: dict, infer) -> set[int]:
    """Evaluate shape arithmetic and complete `shapes` (tensor -> tuple) and `types` in place, shaping
    what is still unknown with `infer(node, attrs, shapes, types, values, constants, opsets)`. Returns the
    indices of the nodes evaluated (they fold away)."""
    constants = {t.name: t.value for t in model.initializers if t.value is not None}  # Resize scales too
    values = {t.name: t.value for t in model.initializers if seeds(t)}  # what evaluation starts from
    opsets = model.opsets  # domain -> version
    evaluated = set()
    for i in order:
        node = model.nodes[i]
        outs = [t for t in node.output if t]
        if node.domain not in ("", "ai.onnx") or not outs:
            if outs and not all(_known(shapes.get(t)) for t in outs):
                infer(node, node.attrs, shapes, types, values, constants, opsets)
            continue
        attrs = _values_of(node.attrs)
        if node.op_type == "Constant":
            _constant(node, attrs, shapes, types, values, constants)
            continue
        args = [values.get(t) if t else None for t in node.input]
        if node.op_type in ("Shape", "Size") and node.input and _known(shapes.get(node.input[0])):
            shape = shapes[node.input[0]]
            if node.op_type == "Shape":
                start, end = attrs.get("start", 0), attrs.get("end", len(shape))
                value = np.array(shape[start:end], np.int64)
            else:
                value = np.array(math.prod(shape), np.int64)
        elif evaluate_op(node.op_type) and all(a is not None for t, a in zip(node.input, args) if t):
            if not all(_known(shapes.get(t)) for t in outs):
                infer(node, attrs, shapes, types, values, constants, opsets)
            if not _known(shapes.get(outs[0])) or math.prod(shapes[outs[0]]) > MAX_VALUES:
                continue  # too large to hold: its shape is all that is needed
            try:
                with np.errstate(all="ignore"):  # a division by zero in a hostile file: a value, not a warning
                    value = np.asarray(evaluate_op(node.op_type)(attrs, *args))
            except (ValueError, TypeError, IndexError, ArithmeticError, KeyError):
                continue  # not evaluable as written: inference decides, as for any other node
        else:
            if not all(_known(shapes.get(t)) for t in outs):
                infer(node, attrs, shapes, types, values, constants, opsets)
            continue
        try:
            kind = dtypes.elem_type(value.dtype)
        except (KeyError, ValueError, TypeError):
            continue
        values[outs[0]] = constants[outs[0]] = value
        shapes[outs[0]] = value.shape
        types[outs[0]] = kind
        evaluated.add(i)
    return evaluated


def _constant(node, attrs: dict, shapes: dict, types: dict, values: dict, constants: dict) -> None:
    """A Constant node's output: its value where small enough to hold, else its tensor's header."""
    (out,) = [t for t in node.output if t][:1]
    header = node.attrs.get("value")
    if isinstance(header, Tensor):
        shapes[out], types[out] = header.dims, header.data_type
        if header.value is not None:
            constants[out] = header.value
            if seeds(header):
                values[out] = header.value
        return
    try:
        value = constant_value(attrs)
        kind = dtypes.elem_type(value.dtype)
    except (CannotInfer, KeyError, ValueError, TypeError):
        return
    shapes[out], types[out], constants[out] = value.shape, kind, value
    if value.size <= (MAX_VALUES if value.dtype.kind in "iub" else 1):
        values[out] = value


def own_inference(node, attrs: dict, shapes: dict, types: dict, values: dict, constants: dict, opsets: dict) -> None:
    """effplan's rules for the node's outputs; NotPlain where they cannot (onnx's path then shapes the file)."""
    entry = OPS.get(node.op_type)
    if entry is None or entry.infer is None or node.domain not in ("", "ai.onnx"):
        raise NotPlain(f"no rule of effplan's shapes {node.op_type}")
    slots = node.input
    try:
        found = entry.infer(attrs, [shapes.get(t) if t else None for t in slots],
                            [types.get(t) if t else None for t in slots],
                            [(values.get(t) if t in values else constants.get(t)) if t else None for t in slots],
                            opsets.get("", 1), len(node.output))
    except CannotInfer as exc:
        raise NotPlain(f"{node.op_type}: {exc}") from None
    for t, (shape, kind) in zip(node.output, found):
        if t:
            shapes[t], types[t] = tuple(shape), kind


def onnx_inference(node, attrs: dict, shapes: dict, types: dict, values: dict, constants: dict, opsets: dict) -> None:
    """ONNX's inference of one node (its proto), given its inputs' shapes and the values known: fills the
    output shapes it can. A node whose inputs are not all typed and shaped is left alone."""
    import onnx
    from onnx import helper, numpy_helper

    proto = node.proto
    if proto is None or not onnx.defs.has(node.op_type, node.domain):
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
        found = onnx.shape_inference.infer_node_outputs(schema, proto, inputs, data)
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
