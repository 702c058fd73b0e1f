"""The op table: everything effplan knows about an ONNX op type, in one entry per op type, and the
cost row of a graph's node.

An entry (`Op`) says, for one op type:
  shape   its output shape from (attrs, input shapes, weight shapes by role), as the builder computes
          it (shapes.py); or IMPORTED_ONLY: the builders never emit it, only imported graphs hold it
  cost    (attrs, input shapes, output shape, weight shapes by role) -> (macs, flops). Only arithmetic
          on the shape entries, so the same function accepts numpy arrays of shapes and costs many
          designs at once. Params and bytes do not depend on the op type: they come from the node's
          weights and output shape. `free`: why an op deliberately costs nothing.
  saves   what its backward keeps, as PyTorch's autograd saves it (memory.py sizes them): INPUT (the
          first input), INPUTS (every activation input), OUTPUT, STATISTICS (two fp32 values per
          normalised group; `statistics` counts the groups), INDICES (an int64 argmax per output
          element), MASK (one byte per output element)
  unit    the compute unit its FLOPs run on (roofline.py): MATRIX or VECTOR, or a function of
          (attrs, input shapes, weight shapes by role) that says which
  fusion  its part in the roofline's kernels: an ANCHOR (Conv, Gemm) runs as one kernel with its
          epilogue: NORM, then ACTIVATION, then a RESIDUAL add, then ACTIVATION. CONTRACTION (a matrix
          product whose epilogue is not fused), POINTWISE, REDUCTION and LAYOUT ops run as kernels of
          their own; a VIEW moves nothing and takes no time. NORM, ACTIVATION, RESIDUAL, POINTWISE
          and VIEW ops may write their output over a same-shaped input (memory.py's in-place mode).
  weights the roles of its positional inputs; a constant in one of these slots is a parameter (BN's
          mean and var: buffers) that the cost functions and the exporter find by role (onnx_export.py)
  weighted whether it is one of the profile's `layers`: an op whose weights multiply its input
  evaluate (attrs, *input values) -> output value with numpy: how evaluate.py folds shape arithmetic
          (Shape -> Gather -> Div -> ...) once the input shape is known; None: never folded
  infer   (attrs, shapes, types, values, opset, outputs) -> [(shape, elem_type)] per output: an imported
          node's outputs with ONNX's semantics, without onnx (infer.py, infer_layout.py); raises
          CannotInfer where it cannot
  backward what training time (plan/training.py) times for its backward (`Backward`); None: no rule,
          refused by name rather than timed as zero
  passes_weight  on import (onnx_import.py), a weight through its first input is still that weight, sized
          as the initializer the file stores (LeViT's bias table gathered by constant indices)
  learned on import, a float constant of more than one element in an input slot beyond `weights` is a
          parameter: a bias or scale (Add, Mul), a learned token (ViT's cls_token through Concat)
An op type with no entry is unknown: reported, never a silent zero. Adding an op is one entry:
`register` with its cost function, or `elementwise` or `free` for ops whose cost is shared.

Conventions (also printed in every report):
  macs   multiply-accumulates of Conv (incl. depthwise/grouped) and Gemm/MatMul:
         N*Hout*Wout*Cout*(Cin/group)*Kh*Kw and N*In*Out. The EfficientNet paper's "FLOPS".
         ConvTranspose: N*Cin*Hin*Win*(Cout/group)*Kh*Kw; MatMul: prod(batch dims)*M*K*N.
  flops  2*macs, plus bias adds, plus a fixed count per output element of every other op
         (the `elementwise` calls below).
  params trainable parameters (conv/linear weights, biases, BatchNormalization scale and shift);
         BN running mean and variance are buffers, counted apart.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from ..base.errors import EffplanError
from . import dtypes
from . import infer as rules, infer_layout as layout_rules
from .shapes import (broadcast_shape, concat_shape, conv_shape, flatten_shape, gemm_shape, global_pool_shape,
                     pool_shape, reshape_shape, same, slice_shape, transpose_shape)

IMPORTED_ONLY = "imported graphs only"
SAVED_KINDS = INPUT, INPUTS, OUTPUT, STATISTICS, INDICES, MASK = (
    "input", "inputs", "output", "statistics", "indices", "mask")
UNITS = MATRIX, VECTOR = "matrix", "vector"
FUSION_CLASSES = ANCHOR, NORM, ACTIVATION, RESIDUAL, CONTRACTION, POINTWISE, REDUCTION, LAYOUT, VIEW = (
    "anchor", "norm", "activation", "residual", "contraction", "pointwise", "reduction", "layout", "view")
IN_PLACE = frozenset({NORM, ACTIVATION, RESIDUAL, POINTWISE, VIEW})


@dataclass(frozen=True)
class Backward:
    """What an op's backward computes in training, from its gradient formula in PyTorch's
    tools/autograd/derivatives.yaml (plan/training.py says how each is timed)."""
    flops: int | None = None  # per element of its output gradient (per_input: of its input); None: no rule
    per_input: bool = False  # `flops` count per element of its first input (BN, global pooling)
    shape_only: bool = False  # its saved input is read for its shape only (pooling's backward reads dY)
    kernel: bool = True  # False: its input gradients are dY or views of it (narrow, cat): no kernel
    broadcast_only: bool = False  # a kernel only when an operand is broadcast (Add: else dY passes on)
    products: bool = False  # with weights: dX and dW, two matrix products of the forward's MACs each
    taps: Callable | None = None  # products: (weight shapes by role) -> kernel taps per input channel
    statistics: int = 0  # training's forward first runs a batch-statistics kernel: FLOPs per input element


VIEW_GRADIENT = Backward(kernel=False)


@dataclass(frozen=True)
class Op:
    """One op type's entry; checked when registered, so every entry is complete."""
    name: str
    shape: Callable | str  # a shape rule, or IMPORTED_ONLY
    cost: Callable
    saves: tuple[str, ...]
    unit: Callable | str
    fusion: str
    free: str = ""  # why it costs nothing; "" when it is costed
    statistics: Callable | None = None  # (attrs, output shape) -> normalised groups, with STATISTICS
    gemm: Callable | None = None  # matrix-unit ops: (attrs, inputs, output, weights) -> (groups, M, N, K)
    weights: tuple[str, ...] = ()  # the roles of its positional inputs
    weighted: bool = False
    evaluate: Callable | None = None
    infer: Callable | None = None
    backward: Backward | None = None
    passes_weight: bool = False
    learned: bool = False

    def __post_init__(self):
        problems = [what for what, ok in (
            ("shape", callable(self.shape) or self.shape == IMPORTED_ONLY),
            ("cost", callable(self.cost)),
            ("saves", isinstance(self.saves, tuple) and set(self.saves) <= set(SAVED_KINDS)),
            ("unit", callable(self.unit) or self.unit in UNITS),
            ("fusion", self.fusion in FUSION_CLASSES),
            ("statistics", (STATISTICS in self.saves) == callable(self.statistics)),
            ("weights", isinstance(self.weights, tuple) and all(isinstance(r, str) for r in self.weights)),
            ("weighted", not self.weighted or bool(self.weights)),
            ("evaluate", self.evaluate is None or callable(self.evaluate)),
            ("infer", self.infer is None or callable(self.infer)),
            ("backward", self.backward is None or isinstance(self.backward, Backward))) if not ok]
        if problems:
            raise ValueError(f"the entry of {self.name} has a bad {', '.join(problems)}")

    def unit_of(self, attrs, inputs, weights) -> str:
        return self.unit(attrs, inputs, weights) if callable(self.unit) else self.unit

    @property
    def in_place(self) -> bool:
        return self.fusion in IN_PLACE


OPS: dict[str, Op] = {}


class _Costs(Mapping):
    """op type -> cost function: a view of OPS."""

    def __getitem__(self, op):
        return OPS[op].cost

    def __iter__(self):
        return iter(OPS)

    def __len__(self):
        return len(OPS)


COSTS = _Costs()


def register(*ops: str, **entry):
    """Decorator: the cost function of these op types, with the rest of their entry (Op's fields).
    Registering an op twice is an error."""
    def decorate(fn):
        for op in ops:
            if op in OPS:
                raise ValueError(f"two entries registered for {op}")
        for op in ops:
            OPS[op] = Op(op, cost=fn, **entry)
        return fn
    return decorate


def free(reason: str, *ops: str, **entry) -> None:
    """Ops that deliberately cost nothing, for `reason`; they run on the vector unit if at all."""
    register(*ops, free=reason, unit=VECTOR, **entry)(lambda attrs, inputs, output, weights: (0, 0))


def elementwise(flops_per_element: int, *ops: str, **entry) -> None:
    """Ops whose cost is a fixed number of FLOPs per output element and no MACs, on the vector unit."""
    register(*ops, unit=VECTOR, **entry)(
        lambda attrs, inputs, output, weights: (0, flops_per_element * math.prod(output)))


# The values ops compute, for folding shape arithmetic (evaluate.py): numpy on small tensors.
def _int_list(a) -> list[int]:
    return [int(v) for v in np.asarray(a).reshape(-1)]


def _input_or_attr(inputs, index: int, attrs: dict, key: str):
    """An operand that later opsets take as an input and earlier ones as an attribute."""
    if len(inputs) > index and inputs[index] is not None:
        return _int_list(inputs[index])
    return list(attrs[key]) if key in attrs else None


def _unsqueeze(attrs, x, axes=None):
    axes = _input_or_attr([x, axes], 1, attrs, "axes")
    rank = x.ndim + len(axes)
    for axis in sorted(a % rank for a in axes):
        x = np.expand_dims(x, axis)
    return x


def _squeeze(attrs, x, axes=None):
    axes = _input_or_attr([x, axes], 1, attrs, "axes")
    return np.squeeze(x, axis=tuple(a % x.ndim for a in axes)) if axes else np.squeeze(x)


def _slice(attrs, x, starts=None, ends=None, axes=None, steps=None):
    starts = _input_or_attr([x, starts], 1, attrs, "starts")
    ends = _input_or_attr([x, starts, ends], 2, attrs, "ends")
    axes = _input_or_attr([x, starts, ends, axes], 3, attrs, "axes") or list(range(len(starts)))
    steps = _int_list(steps) if steps is not None else [1] * len(starts)
    index = [slice(None)] * x.ndim
    for start, end, axis, step in zip(starts, ends, axes, steps):
        index[axis % x.ndim] = slice(start, end, step)
    return x[tuple(index)]


def _reshape(attrs, x, shape):
    target = _int_list(shape)
    if not attrs.get("allowzero", 0):
        target = [x.shape[i] if d == 0 else d for i, d in enumerate(target)]
    return x.reshape(target)


def _div(attrs, a, b):
    if np.issubdtype(a.dtype, np.integer):  # ONNX integer division truncates toward zero
        return (np.sign(a) * np.sign(b) * (np.abs(a) // np.abs(b))).astype(a.dtype)
    return a / b


def _clip(attrs, x, lo=None, hi=None):
    lo = lo if lo is not None else attrs.get("min")
    hi = hi if hi is not None else attrs.get("max")
    return np.clip(x, lo if lo is not None else x.min(), hi if hi is not None else x.max()).astype(x.dtype)


def _reduce_prod(attrs, x, axes=None):
    axes = _input_or_attr([x, axes], 1, attrs, "axes")
    return np.prod(x, axis=tuple(axes) if axes else None, keepdims=bool(attrs.get("keepdims", 1))).astype(x.dtype)


def _constant_of_shape(attrs, shape):
    value = np.asarray(attrs["value"]) if "value" in attrs else np.zeros(1, np.float32)  # decoded on import
    return np.full(_int_list(shape), value.reshape(-1)[0], value.dtype)


def _expand(attrs, x, shape):
    return np.broadcast_to(x, np.broadcast_shapes(x.shape, tuple(_int_list(shape)))).copy()


def _range(attrs, start, limit, delta):
    return np.arange(start.item(), limit.item(), delta.item()).astype(start.dtype)


def _cast(attrs, x):
    return x.astype(dtypes.np_dtype(attrs["to"]))


def _binary(fn):
    return lambda attrs, x, y: fn(x, y)


def _unary(fn):
    return lambda attrs, x: fn(x)


def _kernel(weights, inputs):
    """A conv's weight shape: its initializer, or input 1 when an imported graph computes it."""
    return weights["W"] if "W" in weights else inputs[1]


def _conv_gemm(attrs, inputs, output, weights):
    """A conv as `group` GEMMs: M = N*Hout*Wout, N = Cout/group, K = (Cin/group)*Kh*Kw."""
    group = attrs.get("group", 1)
    return group, output[0] * math.prod(output[2:]), output[1] // group, math.prod(_kernel(weights, inputs)[1:])


def _inner(attrs, inputs, weights):
    """K of a matrix product, read off the left operand, which may be the weight ("A", a constant on the left)."""
    a = weights["A"] if "A" in weights else inputs[0]
    return a[0] if attrs.get("transA", 0) else a[-1]


def _matmul_gemm(attrs, inputs, output, weights):
    """One GEMM: M = the product of the output's leading dims, N its last, K the contracted dim."""
    return 1, math.prod(output[:-1]), output[-1], _inner(attrs, inputs, weights)


def _conv_unit(attrs, inputs, weights) -> str:
    return VECTOR if _kernel(weights, inputs)[1] == 1 else MATRIX  # one input channel per group: depthwise


CONV_WEIGHTS = ("X", "W", "B")
# PyTorch's convolution_backward (cuDNN's backward-data and backward-filter) and mm's two products
PRODUCTS = Backward(products=True)


@register("Conv", shape=conv_shape, saves=(INPUT,), unit=_conv_unit, fusion=ANCHOR, gemm=_conv_gemm,
          weights=CONV_WEIGHTS, weighted=True,
          backward=Backward(products=True, taps=lambda weights: math.prod(weights["W"][2:]) if "W" in weights else 1),
          infer=rules.conv)
def conv_cost(attrs, inputs, output, weights):
    per_output = math.prod(_kernel(weights, inputs)[1:])  # (Cin/group) * Kh * Kw
    macs = math.prod(output) * per_output
    return macs, 2 * macs + (math.prod(output) if "B" in weights else 0)


def _conv_transpose_gemm(attrs, inputs, output, weights):
    """A transposed conv as `group` GEMMs of its input with its kernel, whose products are then added
    into the output (col2im): M = N*Hin*Win, N = (Cout/group)*Kh*Kw, K = Cin/group (W is
    [Cin, Cout/group, Kh, Kw])."""
    group, x, w = attrs.get("group", 1), inputs[0], _kernel(weights, inputs)
    return group, x[0] * math.prod(x[2:]), math.prod(w[1:]), w[0] // group


def _conv_transpose_unit(attrs, inputs, weights) -> str:
    return VECTOR if _kernel(weights, inputs)[0] // attrs.get("group", 1) == 1 else MATRIX  # depthwise


# a convolution on the matrix unit, but fused with nothing: runtimes anchor Conv, Gemm and MatMul only
@register("ConvTranspose", shape=IMPORTED_ONLY, saves=(INPUT,), unit=_conv_transpose_unit, fusion=CONTRACTION,
          gemm=_conv_transpose_gemm, weights=CONV_WEIGHTS, weighted=True, infer=rules.conv_transpose)
def conv_transpose_cost(attrs, inputs, output, weights):
    # every input element meets (Cout/group) * Kh * Kw weights (W is [Cin, Cout/group, Kh, Kw])
    macs = math.prod(inputs[0]) * math.prod(_kernel(weights, inputs)[1:])
    return macs, 2 * macs + (math.prod(output) if "B" in weights else 0)


@register("Gemm", shape=gemm_shape, saves=(INPUT,), unit=MATRIX, fusion=ANCHOR, gemm=_matmul_gemm,
          weights=("A", "W", "B"), weighted=True, backward=PRODUCTS, infer=rules.gemm)
@register("MatMul", shape=IMPORTED_ONLY, saves=(INPUTS,), unit=MATRIX, fusion=ANCHOR,  # takes its bias Add
          gemm=_matmul_gemm, weights=("A", "W"), weighted=True, backward=PRODUCTS, infer=rules.matmul)
def matmul_cost(attrs, inputs, output, weights):
    macs = math.prod(output) * _inner(attrs, inputs, weights)  # prod(output) * K
    bias = "B" in weights or len(inputs) > 2
    return macs, 2 * macs + (math.prod(output) if bias else 0)


# backward: dy / (H W) broadcast back, per input element; the saved input read for its shape only
# (adaptive_avg_pool2d_backward reads dY)
MEAN_BACKWARD = Backward(1, per_input=True, shape_only=True)


@register("GlobalAveragePool", shape=global_pool_shape, saves=(INPUT,), fusion=REDUCTION, unit=VECTOR,
          backward=MEAN_BACKWARD, infer=rules.global_pool)
@register("ReduceMean", shape=IMPORTED_ONLY, saves=(), fusion=REDUCTION, unit=VECTOR, backward=MEAN_BACKWARD,
          infer=rules.reduce)
def mean_pool_cost(attrs, inputs, output, weights):
    # one add per input element, one divide per output element
    return 0, math.prod(inputs[0]) + math.prod(output)


# backward: dy scattered through the window (max: through the saved indices); avg_pool2d_backward and
# max_pool2d_with_indices_backward read the saved input for its shape only
@register("MaxPool", shape=pool_shape, saves=(INPUT, INDICES), fusion=REDUCTION, unit=VECTOR,
          backward=Backward(1, shape_only=True), infer=rules.max_pool)
@register("AveragePool", shape=pool_shape, saves=(INPUT,), fusion=REDUCTION, unit=VECTOR,
          backward=Backward(1, shape_only=True), infer=rules.average_pool)
def window_pool_cost(attrs, inputs, output, weights):
    # one compare (or add) per window element; AveragePool's divide is counted as one of them
    return 0, math.prod(output) * math.prod(attrs["kernel_shape"])


@register("Resize", shape=IMPORTED_ONLY, saves=(), fusion=LAYOUT, unit=VECTOR, infer=rules.resize)
@register("Upsample", shape=IMPORTED_ONLY, saves=(), fusion=LAYOUT, unit=VECTOR, infer=rules.upsample)
def resize_cost(attrs, inputs, output, weights):
    # each output element is a weighted sum of its neighbours, 2 (linear) or 4 (cubic) per spatial
    # axis: that many multiplies and one add fewer; nearest mode copies
    neighbours = {"linear": 2, "cubic": 4}.get(attrs.get("mode", "nearest"))
    if neighbours is None:
        return 0, 0
    taps = neighbours ** (len(output) - 2)
    return 0, (2 * taps - 1) * math.prod(output)


def _einsum_sizes(equation: str, inputs) -> dict[str, int]:
    """Each index letter's size, read off the operand it labels ('...' spans the dims it leaves)."""
    sizes: dict[str, int] = {}
    for term, shape in zip(equation.replace(" ", "").split("->")[0].split(","), inputs):
        head, dots, tail = term.partition("...")
        for letter, size in zip(head, shape):
            sizes[letter] = size
        for letter, size in zip(tail, shape[len(shape) - len(tail):] if tail else ()):
            sizes[letter] = size
    return sizes


@register("Einsum", shape=IMPORTED_ONLY, saves=(INPUTS,), unit=MATRIX, fusion=CONTRACTION, infer=rules.einsum)
def einsum_cost(attrs, inputs, output, weights):
    # a product of operands: every output element sums over the contracted indices (the letters no
    # output keeps), one multiply-add each: prod(output) * prod(contracted sizes). One operand
    # (a sum or a transpose): an add per input element
    equation = attrs["equation"]
    if len(inputs) < 2:
        return 0, math.prod(inputs[0]) if inputs else 0
    sizes = _einsum_sizes(equation, inputs)
    terms = equation.replace(" ", "").replace("...", "")
    # implicit mode (no '->'): the output keeps the letters that appear once
    kept = terms.split("->")[1] if "->" in terms else {c for c in terms if c.isalpha() and terms.count(c) == 1}
    macs = math.prod(output) * math.prod(size for letter, size in sizes.items() if letter not in kept)
    return macs, 2 * macs


@register("ReduceSum", shape=IMPORTED_ONLY, saves=(), fusion=REDUCTION, unit=VECTOR, infer=rules.reduce)
@register("ReduceProd", shape=IMPORTED_ONLY, saves=(INPUT, OUTPUT), fusion=REDUCTION, unit=VECTOR,
          evaluate=_reduce_prod, infer=rules.reduce)
def sum_cost(attrs, inputs, output, weights):
    return 0, math.prod(inputs[0])  # one add (multiply) per input element, over any axes


# Backward FLOPs per element, each from its gradient formula in derivatives.yaml. Memory-bound on every
# device in the catalog, so they only decide time on a device with a very slow vector unit.
# Add, Sub, Mul, Div: a constant beyond a scalar is a bias or scale (learned). Add's backward only
# reduces dY to a broadcast operand's shape
elementwise(1, "Relu", shape=same, saves=(OUTPUT,), fusion=ACTIVATION,
            backward=Backward(1), infer=rules.same)  # threshold_backward: select dy where y > 0
elementwise(1, "Add", shape=broadcast_shape, saves=(), fusion=RESIDUAL, evaluate=_binary(np.add),
            backward=Backward(1, broadcast_only=True), learned=True, infer=rules.broadcasting)
elementwise(1, "Sub", shape=broadcast_shape, saves=(), fusion=POINTWISE, evaluate=_binary(np.subtract),
            backward=Backward(1), learned=True, infer=rules.broadcasting)
elementwise(1, "Mul", shape=broadcast_shape, saves=(INPUTS,), fusion=POINTWISE, evaluate=_binary(np.multiply),
            backward=Backward(3), learned=True,  # dy * b, dy * a, the add of a broadcast operand's reduction
            infer=rules.broadcasting)
elementwise(1, "Div", shape=broadcast_shape, saves=(INPUTS,), fusion=POINTWISE, evaluate=_div,
            backward=Backward(4), learned=True, infer=rules.broadcasting)
elementwise(1, "Max", shape=broadcast_shape, saves=(INPUTS,), fusion=POINTWISE,
            evaluate=lambda attrs, *xs: np.maximum.reduce(np.broadcast_arrays(*xs)), backward=Backward(1),
            infer=rules.broadcasting)
elementwise(1, "Min", shape=broadcast_shape, saves=(INPUTS,), fusion=POINTWISE,
            evaluate=lambda attrs, *xs: np.minimum.reduce(np.broadcast_arrays(*xs)), backward=Backward(1),
            infer=rules.broadcasting)
elementwise(1, "Mod", shape=IMPORTED_ONLY, saves=(INPUTS,), fusion=POINTWISE,
            evaluate=lambda attrs, x, y: np.fmod(x, y) if attrs.get("fmod", 0) else np.mod(x, y),
            infer=rules.broadcasting)
elementwise(1, "Neg", shape=same, saves=(), fusion=POINTWISE, evaluate=_unary(np.negative), backward=Backward(1),
            infer=rules.same)
elementwise(1, "Abs", shape=IMPORTED_ONLY, saves=(INPUT,), fusion=POINTWISE, evaluate=_unary(np.abs),
            infer=rules.same)
elementwise(1, "Ceil", shape=IMPORTED_ONLY, saves=(), fusion=POINTWISE, evaluate=_unary(np.ceil), infer=rules.same)
elementwise(1, "Floor", shape=IMPORTED_ONLY, saves=(), fusion=POINTWISE, evaluate=_unary(np.floor), infer=rules.same)
# comparisons and logic: one op per element, no gradient
for _op, _fn in (("Equal", np.equal), ("Less", np.less), ("Greater", np.greater), ("LessOrEqual", np.less_equal),
                 ("GreaterOrEqual", np.greater_equal), ("And", np.logical_and), ("Or", np.logical_or)):
    elementwise(1, _op, shape=IMPORTED_ONLY, saves=(), fusion=POINTWISE, evaluate=_binary(_fn), infer=rules.compare)
del _op, _fn
elementwise(1, "Not", shape=IMPORTED_ONLY, saves=(), fusion=POINTWISE, evaluate=_unary(np.logical_not),
            infer=rules.logical_not)
elementwise(1, "Exp", shape=same, saves=(OUTPUT,), fusion=POINTWISE, backward=Backward(1), infer=rules.same)
elementwise(1, "Tanh", shape=same, saves=(OUTPUT,), fusion=POINTWISE, backward=Backward(3), infer=rules.same)
elementwise(1, "Sqrt", shape=same, saves=(OUTPUT,), fusion=POINTWISE, evaluate=_unary(np.sqrt), backward=Backward(2),
            infer=rules.same)
# BN at inference: x*a + b with folded a, b; it keeps one mean and inverse std per channel for the batch.
# Training first computes the batch statistics, a read of its input: sum, square, add (PyTorch's CUDA
# batch norm: batch_norm_collect_statistics, then batch_norm_elemt). Backward per input element:
# x_hat (2), sum dy (1), sum dy*x_hat (2), dx = k (dy - a - x_hat b) (3)
elementwise(2, "BatchNormalization", shape=same, saves=(INPUT, STATISTICS), fusion=NORM,
            statistics=lambda attrs, output: output[1], weights=("X", "scale", "B", "mean", "var"),
            backward=Backward(8, per_input=True, statistics=3), infer=rules.batch_norm)
# PRelu and LeakyRelu: a compare and a multiply (backward: the same); Clip's backward (hardtanh_backward):
# two compares, a select
elementwise(2, "Clip", shape=same, saves=(INPUT,), fusion=ACTIVATION, evaluate=_clip, backward=Backward(2),
            infer=rules.same)
elementwise(2, "LeakyRelu", shape=same, saves=(INPUT,), fusion=ACTIVATION, backward=Backward(2), infer=rules.same)
elementwise(2, "PRelu", shape=broadcast_shape, saves=(INPUT,), fusion=POINTWISE, weights=("X", "slope"),
            backward=Backward(2), infer=rules.prelu)
# statistics (an add for the sum, a multiply and an add for the sum of squares), then x*a + b with
# a, b folded per channel (instance, group) or per row (layer); per-row divides are not counted.
# Backward keeps a mean and inverse std per sample and channel, group or row.
NORM_WEIGHTS = ("X", "scale", "B")
elementwise(5, "InstanceNormalization", shape=same, saves=(INPUT, STATISTICS), fusion=REDUCTION,
            statistics=lambda attrs, output: output[0] * output[1], weights=NORM_WEIGHTS, infer=rules.same)
elementwise(5, "GroupNormalization", shape=same, saves=(INPUT, STATISTICS), fusion=REDUCTION,
            statistics=lambda attrs, output: output[0] * attrs["num_groups"], weights=NORM_WEIGHTS, infer=rules.same)
elementwise(5, "LayerNormalization", shape=same, saves=(INPUT, STATISTICS), fusion=REDUCTION,
            statistics=lambda attrs, output: math.prod(output[:attrs.get("axis", -1) % len(output)]),
            weights=NORM_WEIGHTS, infer=rules.layer_norm)
elementwise(3, "Sigmoid", shape=same, saves=(OUTPUT,), fusion=ACTIVATION,  # exp, add, divide
            backward=Backward(3), infer=rules.same)  # sigmoid_backward: dy * y * (1 - y)
elementwise(3, "Softmax", shape=same, saves=(OUTPUT,), fusion=REDUCTION, backward=Backward(4), infer=rules.same)
elementwise(3, "LogSoftmax", shape=same, saves=(OUTPUT,), fusion=REDUCTION,  # exp, add, subtract (the row's log apart)
            backward=Backward(3), infer=rules.same)
# erf, like exp and tanh, one transcendental; GELU x * 0.5 * (1 + erf(x / sqrt 2)): divide, erf, add and
# two multiplies, the five ops exporters write it as at opset <= 19. PyTorch's GELU keeps its input.
elementwise(1, "Erf", shape=same, saves=(INPUT,), fusion=POINTWISE, infer=rules.same)
elementwise(5, "Gelu", shape=same, saves=(INPUT,), fusion=ACTIVATION, backward=Backward(8), infer=rules.same)
elementwise(1, "Pow", shape=broadcast_shape, saves=(INPUTS,), fusion=POINTWISE, infer=rules.power)
elementwise(1, "Reciprocal", shape=same, saves=(OUTPUT,), fusion=POINTWISE, infer=rules.same)
elementwise(1, "Where", shape=IMPORTED_ONLY, saves=(MASK,), fusion=POINTWISE,
            evaluate=lambda attrs, c, x, y: np.where(c, x, y),  # a select; backward keeps the condition
            infer=rules.where)
# on activations: x / scale + zero point, clamped (rounding is the conversion): 3; back: (q - zero point) * scale: 2
elementwise(3, "QuantizeLinear", shape=same, saves=(), fusion=POINTWISE, infer=rules.quantize)
elementwise(2, "DequantizeLinear", shape=same, saves=(), fusion=POINTWISE, passes_weight=True, infer=rules.dequantize)
# multiply, add, min, max. An activation like Sigmoid, so fused into a conv's epilogue as MobileNetV3's
# squeeze-excitation gate: TensorRT's Layer Fusion Catalog fuses a Convolution with an Activation layer
# (HardSigmoid is ActivationType kHARD_SIGMOID), and onnxruntime's FusedConv takes HardSigmoid
# (contrib_ops/cpu/fused_activation.cc: MlasHardSigmoidActivation)
elementwise(4, "HardSigmoid", shape=same, saves=(INPUT,), fusion=ACTIVATION, backward=Backward(2), infer=rules.same)
elementwise(5, "HardSwish", shape=same, saves=(INPUT,), fusion=ACTIVATION,  # HardSigmoid, then multiply
            backward=Backward(4), infer=rules.same)
# A view's gradient is dY itself (VIEW_GRADIENT). Dropout's training backward (dy * mask, 1 FLOP an
# element) is not timed: a stated simplification, as it is a view at inference
free("identity at inference", "Dropout", shape=same, saves=(MASK,), fusion=VIEW, backward=VIEW_GRADIENT,
     infer=rules.dropout)
free("identity at inference", "Identity", shape=same, saves=(), fusion=VIEW, evaluate=lambda attrs, x: x,
     backward=VIEW_GRADIENT, passes_weight=True, infer=rules.same)
VIEW_REASON = "a view of the same data: no arithmetic"
free(VIEW_REASON, "Flatten", shape=flatten_shape, saves=(), fusion=VIEW, backward=VIEW_GRADIENT,
     infer=layout_rules.flatten)
free(VIEW_REASON, "Reshape", shape=reshape_shape, saves=(), fusion=VIEW, evaluate=_reshape, backward=VIEW_GRADIENT,
     passes_weight=True, infer=layout_rules.reshape)
free(VIEW_REASON, "Squeeze", shape=IMPORTED_ONLY, saves=(), fusion=VIEW, evaluate=_squeeze, backward=VIEW_GRADIENT,
     infer=layout_rules.squeeze)
free(VIEW_REASON, "Unsqueeze", shape=IMPORTED_ONLY, saves=(), fusion=VIEW, evaluate=_unsqueeze,
     backward=VIEW_GRADIENT, infer=layout_rules.unsqueeze)
MOVE_REASON = "data movement: no arithmetic"
# Concat, Slice, Split: their input gradients are views of dY (narrow, cat). Concat and Tile (and Expand)
# of a constant tensor: a learned token (ViT's cls_token)
free(MOVE_REASON, "Concat", shape=concat_shape, saves=(), fusion=LAYOUT,
     evaluate=lambda attrs, *xs: np.concatenate(xs, axis=attrs["axis"]), backward=VIEW_GRADIENT, learned=True,
     infer=layout_rules.concat)
free(MOVE_REASON, "Slice", shape=slice_shape, saves=(), fusion=LAYOUT, evaluate=_slice, backward=VIEW_GRADIENT,
     infer=layout_rules.slice_)
free(MOVE_REASON, "Transpose", shape=transpose_shape, saves=(), fusion=LAYOUT,
     evaluate=lambda attrs, x: np.transpose(x, attrs.get("perm")), backward=Backward(0), passes_weight=True,
     infer=layout_rules.transpose)
free(MOVE_REASON, "Split", shape=IMPORTED_ONLY, saves=(), fusion=LAYOUT, backward=VIEW_GRADIENT,
     infer=layout_rules.split)
free(MOVE_REASON, "Pad", shape=IMPORTED_ONLY, saves=(), fusion=LAYOUT, infer=layout_rules.pad)
free(MOVE_REASON, "Tile", shape=IMPORTED_ONLY, saves=(), fusion=LAYOUT, learned=True, infer=layout_rules.tile)
free(MOVE_REASON, "Expand", shape=IMPORTED_ONLY, saves=(), fusion=LAYOUT, evaluate=_expand, learned=True,
     infer=layout_rules.expand)
SHAPE_REASON = "shape arithmetic on small integer tensors"
free(SHAPE_REASON, "Shape", shape=IMPORTED_ONLY, saves=(), fusion=LAYOUT,  # evaluate.py reads it off the shape
     infer=layout_rules.shape_of)
# Gather: a weight table gathered by constant indices is the table (LeViT's attention bias)
free(SHAPE_REASON, "Gather", shape=IMPORTED_ONLY, saves=(), fusion=LAYOUT,
     evaluate=lambda attrs, x, i: np.take(x, i, axis=attrs.get("axis", 0)), passes_weight=True,
     infer=layout_rules.gather)
free(SHAPE_REASON, "Cast", shape=IMPORTED_ONLY, saves=(), fusion=LAYOUT, evaluate=_cast, passes_weight=True,
     infer=rules.cast)
free(SHAPE_REASON, "ConstantOfShape", shape=IMPORTED_ONLY, saves=(), fusion=LAYOUT, evaluate=_constant_of_shape,
     infer=layout_rules.constant_of_shape)
free(SHAPE_REASON, "Range", shape=IMPORTED_ONLY, saves=(), fusion=LAYOUT, evaluate=_range, infer=layout_rules.range_)


class UnknownOpError(EffplanError):
    pass


@dataclass(frozen=True, slots=True)
class LayerCost:
    name: str
    op: str
    stage: str | int
    block: int | None  # None in roll-ups by stage or op
    layer: str
    input_shape: tuple
    output_shape: tuple
    params: int
    buffers: int
    macs: int
    flops: int
    weight_bytes: int
    output_bytes: int


def node_cost(graph, name: str, dtype_bytes: int, shapes: dict | None = None,
              costed_only: bool = True) -> LayerCost | None:
    """The cost row of one node. When no cost function knows its op: None, or with `costed_only=False`
    a row that keeps its params and bytes, with no MACs or FLOPs (the caller lists the op as unknown).
    `shapes` replaces the graph's tensor shapes (the search passes shapes whose sides are numpy arrays)."""
    node = graph.nodes[name]
    tensors = shapes or graph.graph["tensors"]
    entry = OPS.get(node["op"])
    fn = entry.cost if entry else None
    if fn is None and costed_only:
        return None
    inputs = [tensors[t] for t in node["inputs"]]
    output = tensors[node["outputs"][0]]
    weights = {w.role: w.shape for w in node["weights"]}
    macs, flops = fn(node["attrs"], inputs, output, weights) if fn else (0, 0)
    params, buffers = weight_counts(node["weights"])
    return LayerCost(name, node["op"], node["stage"], node["block"], node["layer"],
                     inputs[0] if inputs else (), output, params, buffers, macs, flops,
                     (params + buffers) * dtype_bytes, math.prod(output) * dtype_bytes)


def weight_counts(weights) -> tuple[int, int]:
    """(trainable parameters, buffers) among some weights: a node's, or a whole graph's (graph_weights)."""
    params = buffers = 0
    for w in weights:
        if w.trainable:
            params += w.size
        else:
            buffers += w.size
    return params, buffers


def graph_weights(graph) -> tuple[int, int]:
    """(trainable parameters, buffers) of a graph: the sum over its nodes, each op counting its own."""
    return weight_counts(w for n in graph.nodes for w in graph.nodes[n]["weights"])


def weight_bytes(graph, dtype_bytes: int) -> int:
    """The bytes of all a graph's weights, parameters and buffers, stored at `dtype_bytes` each."""
    return sum(graph_weights(graph)) * dtype_bytes
