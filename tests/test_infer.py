"""effplan's own per-node inference (graph/infer.py) against ONNX's: each case builds one node with
onnx.helper and runs it through both effplan's rule and onnx.shape_inference.infer_node_outputs,
which must agree on every output's shape and element type. Where onnx's C++ inference departs from
the ONNX spec (a ceil-mode pool window starting in the end padding), the expected shape is onnx's
reference implementation's, and the spec's formula is worked by hand in a comment."""
import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from effplan.graph import dtypes
from effplan.graph.infer import CannotInfer, constant_value
from effplan.graph.ops import OPS

F, I64, I32, I8, U8, B, F16 = (TensorProto.FLOAT, TensorProto.INT64, TensorProto.INT32, TensorProto.INT8,
                               TensorProto.UINT8, TensorProto.BOOL, TensorProto.FLOAT16)
INT64_MAX, INT64_MIN = 2 ** 63 - 1, -2 ** 63
PROPERTY = settings(max_examples=50, deadline=None, derandomize=True)


def x(*shape, elem=F):
    """An input of this shape and type, value not known."""
    return (tuple(shape), elem, None)


def ints(*values, elem=I64):
    """A known 1-D integer input."""
    return ((len(values),), elem, np.array(values, dtypes.np_dtype(elem)))


def floats(*values):
    return ((len(values),), F, np.array(values, np.float32))


def scalar(value, elem):
    return ((), elem, np.array(value, dtypes.np_dtype(elem)))


EMPTY = None  # an input slot named ""


def make(op, attrs, inputs, outputs=1):
    names = ["" if spec is EMPTY else f"in{i}" for i, spec in enumerate(inputs)]
    return helper.make_node(op, names, [f"out{i}" for i in range(outputs)], **attrs)


def python_attrs(node) -> dict:
    """The node's attributes as effplan's rules take them: INTS a tuple, STRING a str, TENSOR an array."""
    found = {}
    for a in node.attribute:
        value = helper.get_attribute_value(a)
        if isinstance(value, onnx.TensorProto):
            value = numpy_helper.to_array(value)
        elif isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, list):
            value = tuple(v.decode() if isinstance(v, bytes) else v for v in value)
        found[a.name] = value
    return found


def ours(op, attrs, inputs, opset, outputs=1):
    node = make(op, attrs, inputs, outputs)
    specs = [spec or (None, None, None) for spec in inputs]
    return OPS[op].infer(python_attrs(node), [s for s, _, _ in specs], [t for _, t, _ in specs],
                         [v for _, _, v in specs], opset, outputs)


def onnx_inferred(op, attrs, inputs, opset, outputs=1):
    """onnx's own inference of the node: (shape, type) per output, shape None where it leaves it open."""
    node = make(op, attrs, inputs, outputs)
    types, data = {}, {}
    for name, spec in zip(node.input, inputs):
        if spec is not EMPTY:
            shape, elem, value = spec
            types[name] = helper.make_tensor_type_proto(elem, list(shape))
            if value is not None:
                data[name] = numpy_helper.from_array(np.asarray(value), name)
    found = onnx.shape_inference.infer_node_outputs(onnx.defs.get_schema(op, opset), node, types, data)
    results = []
    for name in node.output:
        tensor = found[name].tensor_type
        shape = tuple(d.dim_value for d in tensor.shape.dim) if tensor.HasField("shape") else None
        results.append((shape, tensor.elem_type))
    return results


def reference_shape(op, attrs, shape, opset, *more):
    """The output shape of onnx's reference implementation, run on zeros (and the arrays `more`)."""
    names = ["x"] + [f"in{i}" for i in range(len(more))]
    node = helper.make_node(op, names, ["y"], **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(n, F, None) for n in names],
                              [helper.make_tensor_value_info("y", F, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    feeds = dict(zip(names, [np.zeros(shape, np.float32), *more]))
    return ReferenceEvaluator(model).run(None, feeds)[0].shape


def tensor_attr(array):
    return numpy_helper.from_array(np.asarray(array))


# (op, attrs, inputs, opset, outputs): each checked against onnx's inference
CASES = [
    # same shape and type as input 0
    *[(op, {}, [x(2, 3, 4)], 17, 1) for op in
      ("Relu", "Neg", "Abs", "Ceil", "Floor", "Exp", "Tanh", "Sqrt", "Sigmoid", "Erf", "Reciprocal", "HardSigmoid",
       "HardSwish", "LeakyRelu", "Identity", "Softmax", "LogSoftmax")],
    ("Softmax", {"axis": 1}, [x(2, 3, 4)], 11, 1),
    ("Gelu", {"approximate": "tanh"}, [x(2, 3, 4, elem=F16)], 20, 1),
    ("Attention", {}, [x(2, 4, 5, 8), x(2, 2, 7, 8), x(2, 2, 7, 6)], 23, 1),  # grouped-query: 4 heads, 2 kv
    ("Not", {}, [x(2, 3, elem=B)], 13, 1),
    ("Clip", {}, [x(2, 3), scalar(0, F), scalar(6, F)], 13, 1),
    ("Clip", {}, [x(2, 3), EMPTY, scalar(6, F)], 13, 1),
    ("Clip", {"min": 0.0, "max": 6.0}, [x(2, 3)], 6, 1),
    ("InstanceNormalization", {}, [x(2, 3, 5, 5), x(3), x(3)], 6, 1),
    ("BatchNormalization", {}, [x(2, 3, 5, 5), x(3), x(3), x(3), x(3)], 15, 1),
    ("BatchNormalization", {}, [x(2, 3, 5, 5), x(3), x(3), x(3), x(3)], 9, 1),
    # training mode: the running mean and variance, (C,) of the mean's type
    ("BatchNormalization", {"training_mode": 1}, [x(2, 3, 5), x(3), x(3), x(3, elem=F16), x(3, elem=F16)], 15, 3),
    ("LayerNormalization", {}, [x(2, 5, 8), x(8), x(8)], 17, 1),
    # Mean and InvStdDev: X's shape up to axis, then 1s, of stash_type (float)
    ("LayerNormalization", {"axis": -2}, [x(2, 5, 8, elem=F16), x(5, 8, elem=F16)], 17, 3),
    ("LayerNormalization", {"axis": 1}, [x(2, 5, 8), x(5, 8)], 17, 2),
    ("Dropout", {}, [x(2, 3)], 13, 1),
    ("Dropout", {}, [x(2, 3), scalar(0.5, F)], 13, 2),  # the mask: bool
    ("QuantizeLinear", {}, [x(2, 3), scalar(0.1, F)], 13, 1),  # no zero point: uint8
    ("QuantizeLinear", {}, [x(2, 3), scalar(0.1, F), scalar(0, I8)], 13, 1),
    ("QuantizeLinear", {"output_dtype": I8}, [x(2, 3), scalar(0.1, F)], 21, 1),
    ("DequantizeLinear", {}, [x(2, 3, elem=I8), scalar(0.1, F), scalar(0, I8)], 13, 1),
    ("DequantizeLinear", {}, [x(2, 3, elem=U8), scalar(0.1, F16)], 21, 1),  # the scale's type
    ("Cast", {"to": F16}, [x(2, 3)], 13, 1),
    ("Cast", {"to": I64}, [x(4)], 19, 1),
    # broadcasting
    *[(op, {}, [x(2, 1, 4), x(3, 1)], 14, 1) for op in ("Add", "Sub", "Mul", "Div")],
    ("Pow", {}, [x(3, 4), x(4, elem=I64)], 15, 1),  # the base's type
    ("Mod", {}, [x(5, 1, elem=I32), x(1, 6, elem=I32)], 13, 1),
    ("Mod", {"fmod": 1}, [x(5, 1), x(6)], 13, 1),
    ("Max", {}, [x(2, 1), x(3), x(1, 1, 1)], 13, 1),  # variadic: all three broadcast
    ("Min", {}, [x(4, 1, 5), x(1)], 13, 1),
    ("Max", {}, [x(2, 3)], 13, 1),
    ("Add", {}, [x(0, 3), x(1, 3)], 14, 1),  # 1 broadcasts to 0
    ("Add", {}, [x(), x(2, 3)], 14, 1),
    ("PRelu", {}, [x(2, 3, 4), x(3, 1)], 16, 1),
    ("Where", {}, [x(2, 1, elem=B), x(3, elem=I64), x(1, elem=I64)], 16, 1),  # input 1's type
    *[(op, {}, [x(2, 1, 4), x(3, 1)], 16, 1) for op in ("Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual")],
    *[(op, {}, [x(4, 1, elem=B), x(5, elem=B)], 13, 1) for op in ("And", "Or")],
    # Conv: out = floor((in + pads - ((k-1)*dilation + 1)) / stride) + 1
    ("Conv", {}, [x(1, 3, 8, 8), x(16, 3, 3, 3)], 11, 1),  # 8 - 3 + 1 = 6
    ("Conv", {"pads": [1, 1, 1, 1], "strides": [2, 2]}, [x(2, 3, 7, 8), x(4, 3, 3, 3), x(4)], 11, 1),
    ("Conv", {"pads": [2, 0, 1, 3], "strides": [3, 1], "dilations": [2, 3]}, [x(1, 4, 11, 9), x(5, 4, 3, 2)], 11, 1),
    ("Conv", {"kernel_shape": [3, 3], "group": 8, "pads": [1, 1, 1, 1]}, [x(1, 8, 5, 5), x(8, 1, 3, 3)], 11, 1),
    ("Conv", {"group": 2}, [x(1, 4, 9), x(6, 2, 3)], 11, 1),  # 1-D, grouped
    ("Conv", {"strides": [2, 1, 3]}, [x(1, 2, 5, 6, 7), x(3, 2, 1, 2, 3)], 11, 1),  # 3-D
    # SAME_*: ceil(in / stride); VALID: ceil((in - ((k-1)*d + 1) + 1) / stride)
    ("Conv", {"auto_pad": "SAME_UPPER", "strides": [2, 3]}, [x(1, 3, 7, 8), x(4, 3, 3, 3)], 11, 1),
    ("Conv", {"auto_pad": "SAME_LOWER", "dilations": [2, 2]}, [x(1, 3, 7, 8), x(4, 3, 3, 3)], 11, 1),
    ("Conv", {"auto_pad": "VALID", "strides": [2, 2], "dilations": [1, 2]}, [x(1, 3, 9, 10), x(4, 3, 3, 3)], 11, 1),
    # ConvTranspose: stride*(in-1) + output_padding + (k-1)*dilation + 1 - pads; channels W[1]*group
    ("ConvTranspose", {}, [x(1, 4, 5, 5), x(4, 8, 3, 3)], 11, 1),
    ("ConvTranspose", {"strides": [2, 3], "pads": [1, 0, 0, 1], "output_padding": [1, 2], "dilations": [1, 2],
                       "group": 2}, [x(1, 4, 5, 6), x(4, 3, 3, 2)], 11, 1),
    ("Gemm", {}, [x(4, 3), x(3, 5), x(5)], 13, 1),
    ("Gemm", {"transA": 1, "transB": 1}, [x(3, 4), x(5, 3)], 13, 1),
    ("MatMul", {}, [x(4, 3), x(3, 5)], 13, 1),
    ("MatMul", {}, [x(4), x(2, 4, 5)], 13, 1),  # a 1-D left operand: a row, dropped after
    ("MatMul", {}, [x(3, 2, 4), x(4)], 13, 1),  # a 1-D right operand: a column, dropped after
    ("MatMul", {}, [x(4), x(4)], 13, 1),  # a scalar
    ("MatMul", {}, [x(3, 1, 2, 4), x(5, 4, 6)], 13, 1),  # batch dims broadcast
    ("GlobalAveragePool", {}, [x(2, 3, 7, 7)], 13, 1),
    ("GlobalAveragePool", {}, [x(2, 3, 4, 5, 6)], 13, 1),
    # reductions: axes by attribute or input, keepdims, noop_with_empty_axes
    ("ReduceMean", {"axes": [-1, 1]}, [x(2, 3, 4)], 13, 1),
    ("ReduceMean", {"keepdims": 0}, [x(2, 3, 4), ints(-1)], 18, 1),
    ("ReduceMean", {"keepdims": 0}, [x(2, 3, 4)], 18, 1),  # no axes: all
    ("ReduceSum", {}, [x(2, 3, 4), ints(0, 2)], 13, 1),
    ("ReduceSum", {"noop_with_empty_axes": 1}, [x(2, 3, 4)], 13, 1),
    ("ReduceSum", {"axes": [1], "keepdims": 0}, [x(2, 3, 4)], 11, 1),
    ("ReduceProd", {}, [x(2, 3, 4, elem=I64), ints(1)], 18, 1),
    ("ReduceProd", {"axes": [0]}, [x(2, 3)], 13, 1),
    # pools: the conv formula; ceil_mode rounds up
    ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}, [x(1, 8, 112, 112)], 12, 1),
    ("MaxPool", {"kernel_shape": [2, 2]}, [x(1, 8, 5, 6)], 12, 2),  # Indices: int64
    ("MaxPool", {"kernel_shape": [3], "strides": [2], "ceil_mode": 1}, [x(1, 2, 8)], 12, 1),  # ceil(5/2)+1
    ("MaxPool", {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1}, [x(1, 2, 7, 6)], 12, 2),
    ("MaxPool", {"kernel_shape": [3], "dilations": [2], "strides": [2]}, [x(1, 2, 10)], 12, 1),
    ("MaxPool", {"kernel_shape": [3], "strides": [2], "auto_pad": "SAME_LOWER"}, [x(1, 1, 7)], 12, 1),
    ("AveragePool", {"kernel_shape": [3, 3], "strides": [1, 1], "pads": [1, 1, 1, 1], "count_include_pad": 1},
     [x(1, 8, 7, 7)], 11, 1),
    ("AveragePool", {"kernel_shape": [2], "strides": [2], "auto_pad": "SAME_UPPER"}, [x(1, 1, 7)], 11, 1),
    ("AveragePool", {"kernel_shape": [3], "strides": [2], "auto_pad": "VALID"}, [x(1, 1, 8)], 19, 1),
    ("AveragePool", {"kernel_shape": [3], "strides": [2], "auto_pad": "SAME_UPPER"}, [x(1, 1, 8)], 19, 1),
    ("AveragePool", {"kernel_shape": [3], "strides": [3], "ceil_mode": 1, "pads": [0, 1]}, [x(1, 1, 7)], 19, 1),
    # Resize: sizes, or floor(in * scale); Upsample the same
    ("Resize", {}, [x(1, 3, 5, 7), floats(1, 1, 2, 2)], 10, 1),
    ("Resize", {"mode": "linear"}, [x(1, 3, 5, 7), floats(), floats(1, 1, 1.5, 0.5)], 11, 1),
    ("Resize", {}, [x(1, 3, 5, 7), floats(), floats(), ints(1, 3, 9, 2)], 11, 1),  # empty scales: sizes
    ("Resize", {}, [x(1, 3, 5, 7), EMPTY, EMPTY, ints(1, 3, 9, 2)], 13, 1),
    ("Resize", {}, [x(1, 3, 5, 7), EMPTY, floats(1, 1, 0.3, 0.7)], 13, 1),  # floor(1.5), floor(4.9)
    ("Resize", {"mode": "cubic"}, [x(2, 10, 3), EMPTY, floats(1, 1, 1 / 3)], 19, 1),
    ("Upsample", {}, [x(1, 3, 5, 7), floats(1, 1, 2, 2.5)], 9, 1),
    ("Upsample", {"scales": [1.0, 1.0, 2.0, 2.5]}, [x(1, 3, 5, 7)], 7, 1),
    # Einsum: each output letter's size
    ("Einsum", {"equation": "bij,bjk->bik"}, [x(2, 3, 4), x(2, 4, 5)], 12, 1),
    ("Einsum", {"equation": "bij, bjk -> bki"}, [x(2, 3, 4), x(2, 4, 5)], 12, 1),
    ("Einsum", {"equation": "ij->ji"}, [x(3, 4)], 12, 1),
    ("Einsum", {"equation": "ii->i"}, [x(3, 3)], 12, 1),
    ("Einsum", {"equation": "ij->"}, [x(3, 4)], 12, 1),
    ("Einsum", {"equation": "bhqd,bhkd->bhqk"}, [x(2, 4, 7, 8, elem=F16), x(2, 4, 9, 8, elem=F16)], 12, 1),
    # layout
    ("Flatten", {}, [x(2, 3, 4, 5)], 13, 1),
    ("Flatten", {"axis": 0}, [x(2, 3, 4)], 13, 1),
    ("Flatten", {"axis": -1}, [x(2, 3, 4)], 13, 1),
    ("Flatten", {"axis": 3}, [x(2, 3, 4)], 13, 1),
    ("Reshape", {}, [x(2, 3, 4), ints(0, -1, 2)], 14, 1),  # 0 copies 2, -1 is 24 / (2*2)
    ("Reshape", {}, [x(2, 3, 4), ints(-1)], 14, 1),
    ("Reshape", {}, [x(2, 3, 4), ints(4, 0, 2)], 5, 1),  # the 0 copies input dim 1
    ("Reshape", {"allowzero": 1}, [x(0, 3, 4), ints(0, 4, 3)], 14, 1),  # allowzero: 0 is a zero
    ("Reshape", {}, [x(2, 3), ints(6, 1, 1)], 14, 1),
    ("Squeeze", {"axes": [0, -1]}, [x(1, 3, 1)], 11, 1),
    ("Squeeze", {}, [x(1, 3, 1, 4), ints(-2)], 13, 1),
    ("Squeeze", {}, [x(1, 3, 1)], 13, 1),  # no axes: every 1
    ("Unsqueeze", {"axes": [0, 3]}, [x(3, 4)], 11, 1),
    ("Unsqueeze", {}, [x(3, 4), ints(-1, 0)], 13, 1),  # axes count in the output's rank
    ("Unsqueeze", {}, [x(), ints(0)], 13, 1),
    ("Concat", {"axis": -1}, [x(2, 3), x(2, 5), x(2, 1)], 13, 1),
    ("Concat", {"axis": 0}, [x(2, 3), x(0, 3)], 13, 1),
    # Slice: negative indices count from the end, then clamp to [0, d] (or [0, d-1] / [-1, d-1] stepping back)
    ("Slice", {"starts": [1], "ends": [1000], "axes": [1]}, [x(10, 10)], 1, 1),
    ("Slice", {}, [x(10, 10), ints(1, -3), ints(INT64_MAX, -1)], 10, 1),
    ("Slice", {}, [x(10, 10, 10), ints(-1, 20, 2), ints(INT64_MIN, -100, INT64_MAX), ints(0, -2, 2),
                   ints(-1, -3, 4)], 13, 1),
    ("Slice", {}, [x(6, 7), ints(5), ints(2), ints(1)], 13, 1),  # empty: start past end
    ("Slice", {}, [x(6, 7), ints(2, 0), ints(0, 7), ints(0, 1), ints(-1, 3)], 13, 1),
    ("Slice", {}, [x(6, 7), ints(0, 0, elem=I32), ints(3, 3, elem=I32)], 13, 1),
    ("Transpose", {}, [x(2, 3, 4)], 13, 1),  # reversed
    ("Transpose", {"perm": [0, 2, 3, 1]}, [x(2, 3, 4, 5)], 13, 1),
    # Split
    ("Split", {"axis": 1, "split": [2, 4]}, [x(3, 6)], 11, 2),
    ("Split", {}, [x(6, 4)], 11, 3),  # equal parts
    ("Split", {"axis": -1}, [x(3, 7), ints(3, 4)], 13, 2),
    ("Split", {}, [x(6, 4)], 13, 2),
    ("Split", {"num_outputs": 3}, [x(7)], 18, 3),  # chunks of ceil(7/3) = 3: 3, 3, 1
    ("Split", {"num_outputs": 3}, [x(4)], 18, 3),  # 2, 2, 0
    ("Split", {"num_outputs": 2, "axis": -1}, [x(3, 8)], 18, 2),
    ("Split", {}, [x(5, 2), ints(1, 4)], 18, 2),
    # Pad: [begins..., ends...]
    ("Pad", {"pads": [1, 0, 0, 1, 0, 2]}, [x(2, 3, 4)], 2, 1),
    ("Pad", {"mode": "reflect"}, [x(1, 3, 8, 8), ints(0, 0, 1, 2, 0, 0, 3, 4)], 11, 1),
    ("Pad", {}, [x(2, 3, 4), ints(1, 2, 3, -1), EMPTY, ints(-1, 0)], 18, 1),  # axes: (2, 0)
    ("Pad", {}, [x(2, 3, 4), ints(0, 0, -1, 0, 0, -2), scalar(0, F)], 13, 1),  # negative pads crop
    ("Tile", {}, [x(2, 3), ints(3, 1)], 13, 1),
    ("Expand", {}, [x(3, 1), ints(2, 1, 4)], 13, 1),  # both ways: the 1 keeps 3
    ("Expand", {}, [x(2, 1, 6), ints(5, 1)], 13, 1),
    # Shape: int64 (length,)
    ("Shape", {}, [x(2, 3, 4, 5)], 13, 1),
    ("Shape", {"start": 1}, [x(2, 3, 4, 5)], 15, 1),
    ("Shape", {"start": -3, "end": 100}, [x(2, 3, 4, 5)], 15, 1),  # clamped: dims 1..4
    ("Shape", {"start": 3, "end": 1}, [x(2, 3, 4, 5)], 15, 1),  # empty
    ("Shape", {"end": -1}, [x(2, 3, 4, 5, elem=I8)], 19, 1),
    # Gather: data[:axis] + indices.shape + data[axis+1:]
    ("Gather", {}, [x(5, 6), x(2, 3, elem=I64)], 13, 1),
    ("Gather", {"axis": -2}, [x(5, 6, 7), scalar(1, I64)], 13, 1),
    ("Gather", {"axis": 2}, [x(5, 6, 7), ints(0, 3)], 13, 1),
    ("GatherElements", {"axis": 1}, [x(5, 6, 7), x(5, 2, 7, elem=I64)], 13, 1),  # the indices' shape
    ("GatherND", {}, [x(5, 6, 7), x(3, 4, 2, elem=I64)], 13, 1),  # (3, 4) + data[2:]: (3, 4, 7)
    ("GatherND", {"batch_dims": 1}, [x(5, 6, 7), x(5, 4, 1, elem=I64)], 13, 1),  # (5, 4) + data[2:]
    ("RandomUniformLike", {}, [x(2, 3)], 13, 1),  # the input's shape and type (a train-mode drop path)
    ("RandomNormalLike", {}, [x(2, 3)], 13, 1),
    ("Bernoulli", {}, [x(2, 3)], 15, 1),
    ("ConstantOfShape", {}, [ints(3, 4)], 13, 1),  # float zeros by default
    ("ConstantOfShape", {"value": tensor_attr(np.array([1], np.int32))}, [ints(3, 0)], 13, 1),
    ("ConstantOfShape", {"value": tensor_attr(np.array([True]))}, [((0,), I64, np.zeros(0, np.int64))], 13, 1),
    # Range: max(ceil((limit - start) / delta), 0)
    ("Range", {}, [scalar(0, I64), scalar(10, I64), scalar(3, I64)], 11, 1),  # ceil(10/3) = 4
    ("Range", {}, [scalar(10, I32), scalar(0, I32), scalar(-4, I32)], 11, 1),  # ceil(-10/-4) = 3
    ("Range", {}, [scalar(5, I64), scalar(0, I64), scalar(1, I64)], 11, 1),  # none
    ("Range", {}, [scalar(0.1, F), scalar(1.0, F), scalar(0.3, F)], 11, 1),
    ("Range", {}, [scalar(-1.5, F), scalar(2.25, F), scalar(0.5, F)], 11, 1),  # ceil(7.5) = 8
]


def case_id(case):
    op, attrs, inputs, opset, outputs = case
    return f"{op}-{opset}-{'-'.join(map(str, attrs.values()))[:40]}-{len(inputs)}in-{outputs}out"


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_agrees_with_onnx_inference(case):
    op, attrs, inputs, opset, outputs = case
    expected = onnx_inferred(op, attrs, inputs, opset, outputs)
    assert all(shape is not None for shape, _ in expected), expected  # a case onnx answers in full
    assert ours(op, attrs, inputs, opset, outputs) == expected


def test_every_op_has_a_rule_and_a_case():
    assert [op for op, entry in OPS.items() if not callable(entry.infer)] == []
    assert set(OPS) - {case[0] for case in CASES} == {"GroupNormalization"}  # tested on its own below


# ---- where onnx's inference leaves a shape open or departs from the spec

def test_a_ceil_mode_window_may_not_start_in_the_end_padding():
    """MaxPool-12's spec: "sliding windows that would start in the right padded region are ignored".
    in 5, kernel 2, stride 2, pads 1+1: ceil((5 + 2 - 2) / 2) + 1 = 4 windows, the last starting at
    (4-1)*2 = 6 >= 5 + 1 (the input and its begin padding): 3. onnx's C++ inference says 4; its
    reference implementation (and PyTorch) 3."""
    attrs = {"kernel_shape": [2], "strides": [2], "pads": [1, 1], "ceil_mode": 1}
    assert ours("MaxPool", attrs, [x(1, 1, 5)], 12, 2) == [((1, 1, 3), F), ((1, 1, 3), I64)]
    assert reference_shape("MaxPool", attrs, (1, 1, 5), 12) == (1, 1, 3)
    # in 1: ceil((1 + 2 - 2) / 2) + 1 = 2, the second window at 2 >= 1 + 1: 1
    assert ours("AveragePool", attrs, [x(1, 1, 1)], 19)[0][0] == (1, 1, 1) == \
        reference_shape("AveragePool", attrs, (1, 1, 1), 19)


def test_group_normalization_keeps_its_input_shape():
    """GroupNormalization-21's Y: "the same shape as X"; onnx's inference gives its type only."""
    assert onnx_inferred("GroupNormalization", {"num_groups": 2}, [x(2, 4, 5), x(4), x(4)], 21) == [(None, F)]
    assert ours("GroupNormalization", {"num_groups": 2}, [x(2, 4, 5), x(4), x(4)], 21) == [((2, 4, 5), F)]
    ones = np.ones(4, np.float32)
    assert reference_shape("GroupNormalization", {"num_groups": 2}, (2, 4, 5), 21, ones, ones) == (2, 4, 5)


def test_dropout_before_opset_10_masks_in_its_input_type():
    """Dropout-7's mask is of type T, the input's (bool from Dropout-10), and of the output's shape;
    onnx infers its type only."""
    assert onnx_inferred("Dropout", {}, [x(2, 3)], 7, 2)[1] == (None, F)
    assert ours("Dropout", {}, [x(2, 3)], 7, 2) == [((2, 3), F), ((2, 3), F)]


# ---- CannotInfer: values not known, inputs ONNX would refuse, modes left to ONNX

# operands the spec types alike (one T) but the file mixes: ONNX refuses them (checked below)
MIXED_TYPES = [
    ("Add", {}, [x(2, 3), x(2, 3, elem=I64)], 14, 1),
    ("Max", {}, [x(2, 3), x(3), x(1, elem=I64)], 13, 1),
    ("Equal", {}, [x(2, 3), x(3, elem=I64)], 13, 1),
    ("Where", {}, [x(2, elem=B), x(2), x(2, elem=I64)], 16, 1),
]

REFUSED = [
    *MIXED_TYPES,
    ("Reshape", {}, [x(2, 3), x(2, elem=I64)], 14, 1),  # the target not known
    ("Reshape", {}, [x(2, 3), ints(4, -1)], 14, 1),  # 6 is no multiple of 4
    ("Reshape", {}, [x(2, 3), ints(5)], 14, 1),
    ("Reshape", {}, [x(2, 3), ints(-1, -1)], 14, 1),
    ("Reshape", {"allowzero": 1}, [x(2, 3), ints(0, -1)], 14, 1),
    ("Reshape", {}, [None, ints(6)], 14, 1),  # the data shape not known
    ("Expand", {}, [x(3, 1), x(2, elem=I64)], 13, 1),
    ("Expand", {}, [x(3, 2), ints(4, 3)], 13, 1),  # does not broadcast
    ("Tile", {}, [x(2, 3), x(2, elem=I64)], 13, 1),
    ("Tile", {}, [x(2, 3), ints(2)], 13, 1),  # one repeat for two axes
    ("Pad", {}, [x(2, 3), x(4, elem=I64)], 13, 1),
    ("Pad", {}, [x(2, 3), ints(0, -3, 0, -1)], 13, 1),  # cropped below zero
    ("Slice", {}, [x(6, 7), x(1, elem=I64), ints(3)], 13, 1),
    ("Slice", {}, [x(6, 7), ints(0), ints(3), ints(0), ints(0)], 13, 1),  # a zero step
    ("Slice", {}, [x(6, 7), ints(0, 0), ints(3, 3), ints(1, -1)], 13, 1),  # axis 1 twice
    ("Slice", {}, [x(6, 7), ints(0), ints(3), EMPTY, ints(2)], 13, 1),  # an empty slot is not told from an unknown
    ("Squeeze", {}, [x(1, 3), x(1, elem=I64)], 13, 1),
    ("Squeeze", {"axes": [1]}, [x(1, 3)], 11, 1),  # not a 1
    ("Squeeze", {}, [x(1, 3), ((0,), I64, np.zeros(0, np.int64))], 13, 1),  # empty axes: left to ONNX
    ("Unsqueeze", {}, [x(3), x(1, elem=I64)], 13, 1),
    ("Unsqueeze", {}, [x(3), ints(1, 1)], 13, 1),
    ("Unsqueeze", {}, [x(3)], 13, 1),
    ("ReduceSum", {}, [x(2, 3), x(1, elem=I64)], 13, 1),
    ("ReduceMean", {"axes": [2]}, [x(2, 3)], 13, 1),
    ("Split", {}, [x(6), x(2, elem=I64)], 13, 2),
    ("Split", {}, [x(7)], 13, 2),  # not evenly splittable
    ("Split", {}, [x(6)], 18, 2),  # opset 18 needs split or num_outputs
    ("Split", {"num_outputs": 4}, [x(5)], 18, 4),  # chunks of 2: the last -1
    ("Split", {}, [x(6), ints(2, 2)], 13, 2),  # sizes that do not add up
    ("Resize", {}, [x(1, 3, 5, 7), EMPTY, x(4)], 13, 1),  # scales not known
    ("Resize", {"coordinate_transformation_mode": "tf_crop_and_resize"},
     [x(1, 3, 5, 7), floats(0, 0, 0, 0, 1, 1, 1, 1), floats(1, 1, 2, 2)], 13, 1),
    ("Resize", {"keep_aspect_ratio_policy": "not_larger"}, [x(1, 3, 5, 7), EMPTY, EMPTY, ints(1, 3, 9, 2)], 18, 1),
    ("Resize", {"axes": [2, 3]}, [x(1, 3, 5, 7), EMPTY, floats(2, 2)], 18, 1),
    ("Resize", {}, [x(1, 3, 5, 7), EMPTY, floats(1, 1, 2)], 13, 1),  # a scale short
    ("Resize", {}, [x(1, 3, 5, 7), EMPTY, floats(1, 1, 2, 2), x(4, elem=I64)], 13, 1),  # sizes given too
    ("Resize", {}, [x(1, 3, 5, 7), EMPTY, floats(1, 1, 2, 2), ints(1, 3, 10, 14)], 13, 1),
    ("Split", {"num_outputs": 2}, [x(6), ints(3, 3)], 18, 2),  # both split and num_outputs
    ("Tile", {}, [x(2), scalar(3, I64), scalar(0, I64)], 1, 1),  # Tile-1: tiles and axis, left to ONNX
    ("Upsample", {}, [x(1, 3, 5, 7), x(4)], 9, 1),
    ("Range", {}, [scalar(0, I64), x(elem=I64), scalar(1, I64)], 11, 1),
    ("Range", {}, [scalar(0, I64), scalar(5, I64), scalar(0, I64)], 11, 1),  # a zero delta
    ("Range", {}, [ints(0), ints(5), ints(1)], 11, 1),  # not scalars: ONNX refuses
    ("ConstantOfShape", {}, [x(2, elem=I64)], 13, 1),
    ("ConstantOfShape", {}, [ints(2, -1)], 13, 1),
    ("Add", {}, [x(3, 4), x(5)], 14, 1),  # does not broadcast
    ("Where", {}, [x(2, elem=B), x(3), x(1)], 16, 1),
    ("Max", {}, [x(2, 3), x(3), x(4, 1, 2)], 13, 1),
    ("PRelu", {}, [x(1, 3, 4), x(2, 1, 1)], 16, 1),  # the slope must broadcast to X
    ("Add", {}, [x(3), None], 14, 1),  # a shape not known
    ("Relu", {}, [((2, 3), None, None)], 14, 1),  # a type not known
    ("Relu", {}, [x(2, 3)], 14, 2),  # one output only
    ("Conv", {}, [x(1, 4, 7, 7), x(8, 3, 3, 3)], 11, 1),  # 4 input channels, weight for 3
    ("Conv", {"group": 2}, [x(1, 4, 7), x(5, 2, 3)], 11, 1),  # 5 filters in 2 groups
    ("Conv", {}, [x(1, 4, 2, 2), x(8, 4, 3, 3)], 11, 1),  # output side 0
    ("Conv", {"auto_pad": "VALID"}, [x(1, 4, 2), x(8, 4, 5)], 11, 1),
    ("Conv", {"kernel_shape": [5]}, [x(1, 4, 9), x(8, 4, 3)], 11, 1),
    ("Conv", {"pads": [1, 1]}, [x(1, 4, 9, 9), x(8, 4, 3, 3)], 11, 1),  # pads for one axis
    ("Conv", {"kernel_shape": "3x3"}, [x(1, 4, 9, 9), x(8, 4, 3, 3)], 11, 1),  # a hostile attribute
    ("Conv", {}, [x(1, 4, 9, 9), None], 11, 1),
    ("ConvTranspose", {"output_shape": [10, 10]}, [x(1, 4, 5, 5), x(4, 3, 3, 3)], 11, 1),
    ("ConvTranspose", {"auto_pad": "SAME_UPPER", "strides": [2, 2]}, [x(1, 4, 5, 5), x(4, 3, 3, 3)], 11, 1),
    ("ConvTranspose", {}, [x(1, 4, 5, 5), x(3, 3, 3, 3)], 11, 1),
    ("MaxPool", {}, [x(1, 4, 5, 5)], 12, 1),  # no kernel_shape
    ("MaxPool", {"kernel_shape": [3, 3]}, [x(1, 4, 2, 2)], 12, 1),
    ("MaxPool", {"kernel_shape": [2, 2]}, [x(1, 4, 5, 5)], 12, 3),
    # VALID with ceil_mode: the spec's ceil((8 - 3 + 1) / 2) = 3, onnx's inference ceil((8 - 3) / 2) + 1 = 4
    ("AveragePool", {"kernel_shape": [3], "strides": [2], "auto_pad": "VALID", "ceil_mode": 1}, [x(1, 1, 8)], 19, 1),
    # SAME with ceil_mode: the spec's ceil(2 / 2) = 1, onnx's inference 2
    ("MaxPool", {"kernel_shape": [1], "strides": [2], "auto_pad": "SAME_UPPER", "ceil_mode": 1}, [x(1, 1, 2)], 12, 1),
    ("Gemm", {}, [x(4, 3), x(4, 5)], 13, 1),
    ("MatMul", {}, [x(4, 3), x(4, 5)], 13, 1),
    ("MatMul", {}, [x(2, 4, 3), x(3, 3, 5)], 13, 1),  # batch dims 2 and 3
    ("Einsum", {"equation": "...ij,...jk->...ik"}, [x(2, 3, 4), x(2, 4, 5)], 12, 1),
    ("Einsum", {"equation": "ij,jk"}, [x(3, 4), x(4, 5)], 12, 1),  # implicit output
    ("Einsum", {"equation": "ij,jk->ik"}, [x(3, 4), x(5, 5)], 12, 1),  # j is 4 and 5
    ("Einsum", {"equation": "ij->ik"}, [x(3, 4)], 12, 1),
    ("Einsum", {"equation": "i1->i"}, [x(3, 4)], 12, 1),  # letters only
    ("Concat", {"axis": 1}, [x(2, 3), x(2, 3, 1)], 13, 1),
    ("Concat", {"axis": 1}, [x(2, 3), x(3, 3)], 13, 1),
    ("Concat", {"axis": 2}, [x(2, 3), x(2, 3)], 13, 1),
    ("Transpose", {"perm": [0, 0, 1]}, [x(2, 3, 4)], 13, 1),
    ("Transpose", {"perm": [1, 0]}, [x(2, 3, 4)], 13, 1),
    ("Gather", {"axis": 2}, [x(5, 6), ints(1)], 13, 1),
    ("Flatten", {"axis": 4}, [x(2, 3, 4)], 13, 1),
    ("Cast", {"to": 99}, [x(2)], 13, 1),
    ("LayerNormalization", {"stash_type": TensorProto.DOUBLE}, [x(2, 5, 8), x(8)], 17, 3),
    ("BatchNormalization", {}, [x(2, 3, 5), x(3), x(3), x(3), x(3)], 9, 5),  # no shapes before opset 14
    ("BatchNormalization", {}, [x(2, 3, 5), x(3), x(3), x(3), x(3)], 15, 3),  # extra outputs need training
    ("QuantizeLinear", {"output_dtype": U8}, [x(2, 3), scalar(0.1, F), scalar(0, I8)], 21, 1),
]


@pytest.mark.parametrize("case", REFUSED, ids=[case_id(c) for c in REFUSED])
def test_cannot_infer(case):
    op, attrs, inputs, opset, outputs = case
    with pytest.raises(CannotInfer):
        ours(op, attrs, inputs, opset, outputs)


def test_a_refused_broadcast_is_one_onnx_refuses_too():
    with pytest.raises(onnx.shape_inference.InferenceError):
        onnx_inferred("Add", {}, [x(3, 4), x(5)], 14)


@pytest.mark.parametrize("case", MIXED_TYPES, ids=[case_id(c) for c in MIXED_TYPES])
def test_mixed_operand_types_are_ones_onnx_refuses_too(case):
    op, attrs, inputs, opset, outputs = case
    with pytest.raises((onnx.shape_inference.InferenceError, onnx.checker.ValidationError), match="type"):
        onnx_inferred(op, attrs, inputs, opset, outputs)


# ---- properties, against onnx's inference (or, for ceil-mode pools, its reference implementation)

def onnx_or_refusal(op, attrs, inputs, opset, outputs=1):
    try:
        return onnx_inferred(op, attrs, inputs, opset, outputs)
    except onnx.shape_inference.InferenceError:
        return None


def valid(found) -> bool:
    return found is not None and all(s is not None and min(s, default=1) >= 0 for s, _ in found)


def check_against(op, attrs, inputs, opset, expected, outputs=1, smallest=0):
    """effplan agrees with `expected`, or refuses where that answer is no valid shape (ONNX refused, or
    left a side below `smallest`)."""
    try:
        found = ours(op, attrs, inputs, opset, outputs)
    except CannotInfer:
        assert expected is None or not all(
            s is not None and min(s, default=smallest) >= smallest for s, _ in expected), expected
        return
    assert found == expected


def fits(spatial, kernel, attrs) -> bool:
    """Whether every window fits in the (explicitly) padded input: else ONNX's runtimes refuse the node,
    while onnx's inference truncates a negative count toward zero and answers."""
    n = len(spatial)
    pads = attrs.get("pads", [0] * 2 * n)
    return attrs.get("auto_pad", "NOTSET").startswith("SAME") or all(
        (k - 1) * d + 1 <= size + pads[i] + pads[i + n]
        for i, (size, k, d) in enumerate(zip(spatial, kernel, attrs["dilations"])))


@st.composite
def windows(draw, transposed=False):
    rank = draw(st.integers(1, 2))
    spatial = draw(st.lists(st.integers(1, 12), min_size=rank, max_size=rank))
    kernel = draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank))
    attrs = {"strides": draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank)),
             "dilations": draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank))}
    auto_pad = "NOTSET" if transposed else draw(st.sampled_from(["NOTSET", "NOTSET", "VALID", "SAME_UPPER",
                                                                 "SAME_LOWER"]))
    if auto_pad == "NOTSET":
        attrs["pads"] = draw(st.lists(st.integers(0, 3), min_size=2 * rank, max_size=2 * rank))
    else:
        attrs["auto_pad"] = auto_pad
    return spatial, kernel, attrs


@PROPERTY
@given(windows(), st.integers(1, 3), st.integers(1, 2), st.booleans())
def test_conv_property(window, group, per_group, kernel_attr):
    spatial, kernel, attrs = window
    channels = group * 2
    if kernel_attr:
        attrs["kernel_shape"] = kernel
    attrs["group"] = group
    inputs = [x(2, channels, *spatial), x(group * per_group, 2, *kernel)]
    expected = onnx_or_refusal("Conv", attrs, inputs, 11) if fits(spatial, kernel, attrs) else None
    check_against("Conv", attrs, inputs, 11, expected, smallest=1)


@PROPERTY
@given(windows(transposed=True), st.integers(1, 2), st.integers(0, 2))
def test_conv_transpose_property(window, group, extra):
    spatial, kernel, attrs = window
    attrs["group"] = group
    attrs["output_padding"] = [min(extra, s - 1) for s in attrs["strides"]]  # below the stride
    inputs = [x(1, 2 * group, *spatial), x(2 * group, 3, *kernel)]
    check_against("ConvTranspose", attrs, inputs, 11, onnx_or_refusal("ConvTranspose", attrs, inputs, 11),
                  smallest=1)


@PROPERTY
@given(windows(), st.sampled_from(["MaxPool", "AveragePool"]), st.booleans())
def test_pool_property(window, op, ceil_mode):
    spatial, kernel, attrs = window
    attrs.update(kernel_shape=kernel, ceil_mode=int(ceil_mode))
    if "pads" in attrs:  # a pad below the kernel, as ONNX's runtimes ask
        attrs["pads"] = [min(p, kernel[i % len(kernel)] - 1) for i, p in enumerate(attrs["pads"])]
    inputs = [x(1, 2, *spatial)]
    expected = onnx_or_refusal(op, attrs, inputs, 19) if fits(spatial, kernel, attrs) else None
    if ceil_mode and "auto_pad" in attrs:
        expected = None  # refused: onnx's inference departs from the spec (test_cannot_infer)
    if ceil_mode and "pads" in attrs and valid(expected) and min(expected[0][0]) >= 1:
        # onnx's C++ inference does not drop a window that starts in the end padding; its reference does
        expected = [(reference_shape(op, attrs, (1, 2, *spatial), 19), F)]
    check_against(op, attrs, inputs, 19, expected, smallest=1)


BOUNDS = st.one_of(st.integers(-12, 12), st.sampled_from([INT64_MAX, INT64_MIN, 2 ** 31, -2 ** 31]))


@PROPERTY
@given(st.lists(st.integers(0, 8), min_size=1, max_size=3), st.data())
def test_slice_property(shape, data):
    n = data.draw(st.integers(1, len(shape)))
    axes = data.draw(st.permutations(range(-len(shape), 0) if data.draw(st.booleans()) else range(len(shape))))[:n]
    starts = data.draw(st.lists(BOUNDS, min_size=n, max_size=n))
    ends = data.draw(st.lists(BOUNDS, min_size=n, max_size=n))
    steps = data.draw(st.lists(st.integers(-4, 4).filter(bool), min_size=n, max_size=n))
    inputs = [x(*shape), ints(*starts), ints(*ends), ints(*axes), ints(*steps)]
    expected = onnx_inferred("Slice", {}, inputs, 13)
    assert ours("Slice", {}, inputs, 13) == expected
    if min(steps) > 0:  # and numpy's slicing, which clamps the same way stepping forward (stepping back, a
        index = [slice(None)] * len(shape)  # start before 0 is 0 in ONNX, before the first element in numpy)
        for a, s, e, t in zip(axes, starts, ends, steps):
            index[a] = slice(s, e, t)
        assert expected[0][0] == np.zeros(shape)[tuple(index)].shape


@PROPERTY
@given(st.lists(st.integers(0, 6), min_size=0, max_size=4), st.data())
def test_reshape_property(shape, data):
    size = int(np.prod(shape))
    target = data.draw(st.lists(st.integers(-1, 6), min_size=1, max_size=4))
    allowzero = data.draw(st.sampled_from([0, 0, 1]))
    if data.draw(st.booleans()):  # often a target that fits: the input's own dims, some 0 or -1
        target = [data.draw(st.sampled_from([d, 0, -1])) for d in shape] or [-1]
    inputs = [x(*shape), ints(*target)]
    attrs = {"allowzero": allowzero}
    expected = onnx_or_refusal("Reshape", attrs, inputs, 14)
    if expected is not None and int(np.prod(expected[0][0])) != size:
        expected = None  # onnx's inference does not check every size: the reshape is still invalid
    check_against("Reshape", attrs, inputs, 14, expected)


@PROPERTY
@given(st.lists(st.lists(st.sampled_from([0, 1, 2, 3, 5]), max_size=4), min_size=2, max_size=3))
def test_broadcast_property(shapes):
    op = "Add" if len(shapes) == 2 else "Max"
    inputs = [x(*s) for s in shapes]
    expected = onnx_or_refusal(op, {}, inputs, 14 if op == "Add" else 13)
    check_against(op, {}, inputs, 14 if op == "Add" else 13, expected)
    try:  # numpy's broadcasting is ONNX's multidirectional one
        numpy_shape = np.broadcast_shapes(*map(tuple, shapes))
    except ValueError:
        numpy_shape = None
    assert (expected[0][0] if expected else None) == numpy_shape


# ---- element types, the Constant op, and the evaluators that no longer need onnx

def test_element_types_are_onnx_numbers():
    for name in ("FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32", "INT64", "STRING", "BOOL", "FLOAT16",
                 "DOUBLE", "UINT32", "UINT64", "BFLOAT16"):
        assert getattr(dtypes, name) == getattr(TensorProto, name), name
    for number in dtypes.ELEM_TYPES - {dtypes.STRING, dtypes.BFLOAT16}:
        expected = helper.tensor_dtype_to_np_dtype(number)
        assert dtypes.np_dtype(number) == expected and dtypes.elem_type(expected) == number
    assert dtypes.elem_type(np.float32) == TensorProto.FLOAT and dtypes.elem_type("int64") == TensorProto.INT64
    with pytest.raises(ValueError):
        dtypes.np_dtype(dtypes.BFLOAT16)
    with pytest.raises(KeyError):
        dtypes.np_dtype(99)
    with pytest.raises(KeyError):
        dtypes.elem_type(np.dtype(object))


@pytest.mark.parametrize("attr, value", [("value_int", 3), ("value_ints", [1, 2]), ("value_float", 0.5),
                                         ("value_floats", [1.0, 2.0, 3.0]),
                                         ("value", tensor_attr(np.arange(6, dtype=np.int32).reshape(2, 3)))])
def test_constant_values_match_onnx(attr, value):
    node = helper.make_node("Constant", [], ["c"], **{attr: value})
    (shape, elem), = onnx_inferred("Constant", {attr: value}, [], 13)
    found = constant_value(python_attrs(node))
    assert (found.shape, dtypes.elem_type(found.dtype)) == (shape, elem)
    assert found.reshape(-1).tolist() == np.asarray(value if attr != "value" else np.arange(6)).reshape(-1).tolist()


def test_constants_effplan_cannot_read():
    with pytest.raises(CannotInfer):
        constant_value({"value_string": "abc"})
    with pytest.raises(CannotInfer):
        constant_value({"sparse_value": object()})


def test_cast_and_constant_of_shape_evaluate_without_onnx():
    cast = OPS["Cast"].evaluate({"to": TensorProto.FLOAT16}, np.array([1, 2], np.int64))
    assert cast.dtype == np.float16 and cast.tolist() == [1.0, 2.0]
    filled = OPS["ConstantOfShape"].evaluate({"value": np.array([7], np.int32)}, np.array([2, 3], np.int64))
    assert filled.dtype == np.int32 and filled.shape == (2, 3) and (filled == 7).all()
    zeros = OPS["ConstantOfShape"].evaluate({}, np.array([4], np.int64))
    assert zeros.dtype == np.float32 and zeros.tolist() == [0.0] * 4
