"""Each op's one shape rule: each output's shape and element type from the node's attributes and its
inputs' shapes, types and (where known) values, with the ONNX spec's semantics and without importing
onnx. Each op table entry (graph/ops/) names its rule as `infer`; the builders call it for every node
they add (builder.py), import for every node of a file (onnx/importer.py).

A rule is rule(attrs, shapes, types, values, opset, outputs) -> [(shape, elem_type)], one per output:
  attrs    the node's attributes as Python values (INTS a tuple, TENSOR a numpy array); the rules
           apply ONNX's defaults for absent ones
  shapes, types, values   one entry per input slot: None where the slot is empty or not known
  opset    the model's default-domain opset version
  outputs  how many outputs the node lists, empty trailing ones included
An operand that moved from an attribute to an input (Squeeze's axes, Slice's starts...) is read from the
input when the node lists that slot, else from the attribute. A rule raises CannotInfer, never another
error or a guess, where its answer would not be ONNX's: import then asks ONNX's own inference, a
builder refuses the layer.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from .dtypes import BFLOAT16, BOOL, ELEM_TYPES, FLOAT, INT64, UINT8
from .shapes import ShapeError, broadcast

Shape = tuple[int, ...]


class CannotInfer(Exception):
    """A node's outputs are beyond effplan's own rules (an attribute combination, a value not known, inputs
    ONNX would refuse): the caller falls back to ONNX's own inference."""


def _rule(*counts: int):
    """A rule for nodes that list one of `counts` outputs (none given: any number). A hostile node
    (an attribute of the wrong type, a value that is no number) is CannotInfer, not a crash, and every
    answer is checked to be whole: one non-negative int shape and a type per output."""
    def wrap(fn):
        @functools.wraps(fn)
        def rule(attrs, shapes, types, values, opset, outputs):
            if counts and outputs not in counts:
                raise CannotInfer(f"{fn.__name__}: {outputs} outputs")
            try:
                found = fn(attrs, shapes, types, values, opset, outputs)
            except CannotInfer:
                raise
            except (TypeError, ValueError, KeyError, IndexError, AttributeError, ArithmeticError) as exc:
                raise CannotInfer(f"{fn.__name__}: {exc!r}") from exc
            if len(found) != outputs:
                raise CannotInfer(f"{fn.__name__}: {len(found)} results for {outputs} outputs")
            checked = []
            for shape, kind in found:
                if not _whole(shape):
                    if not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0 for d in shape):
                        raise CannotInfer(f"{fn.__name__}: output shape {shape}")
                    shape = tuple(int(d) for d in shape)
                if not isinstance(kind, int) or kind <= 0:
                    raise CannotInfer(f"{fn.__name__}: output type {kind!r}")
                checked.append((shape, kind))
            return checked
        return rule
    return wrap


# ---- reading the inputs

def _whole(shape) -> bool:
    """A tuple of non-negative Python ints: the shape every rule gets from the builders, checked at the
    cost of one pass (the builders call the rules once per node of every design)."""
    return type(shape) is tuple and {*map(type, shape)} == {int} and min(shape) >= 0 or shape == ()


def _shape(shapes, i: int) -> Shape:
    shape = shapes[i] if i < len(shapes) else None
    if _whole(shape):
        return shape
    if shape is None or not all(isinstance(d, (int, np.integer)) and d >= 0 for d in shape):
        raise CannotInfer(f"the shape of input {i} is not known: {shape}")
    return tuple(int(d) for d in shape)


def _type(types, i: int) -> int:
    if i >= len(types) or not types[i]:
        raise CannotInfer(f"the element type of input {i} is not known")
    return types[i]


def _listed(shapes, values, i: int) -> bool:
    return i < len(shapes) or i < len(values)


def _ints(values, i: int, what: str) -> tuple[int, ...]:
    """A known integer value of at most one dimension, as ints."""
    value = values[i] if i < len(values) else None
    if value is None:
        raise CannotInfer(f"{what} (input {i}) is not a known value")
    value = np.asarray(value)
    if value.ndim > 1 or value.dtype.kind not in "iu":
        raise CannotInfer(f"{what} is not a list of integers: {value.dtype} of shape {value.shape}")
    return tuple(int(v) for v in value.reshape(-1))


def _operand(attrs, shapes, values, i: int, key: str) -> tuple[int, ...] | None:
    """An operand that later opsets take as input i and earlier ones as attribute `key`: the input's value
    when the node lists slot i, else the attribute; None when neither. A listed slot that is neither
    shaped nor valued may be an empty name or a tensor not known: which, the rule cannot tell."""
    if _listed(shapes, values, i):
        return _ints(values, i, key)
    return tuple(int(v) for v in attrs[key]) if key in attrs else None


def _axis(axis: int, rank: int) -> int:
    """A possibly negative axis of a rank-`rank` tensor, as ONNX accepts it: -rank <= axis < rank."""
    if not -rank <= axis < rank:
        raise CannotInfer(f"axis {axis} of a rank-{rank} tensor")
    return axis % rank


def _axes(axes, rank: int) -> tuple[int, ...]:
    found = tuple(_axis(a, rank) for a in axes)
    if len(set(found)) != len(found):
        raise CannotInfer(f"axes {tuple(axes)} repeat an axis")
    return found


def _broadcast(*shapes: Shape) -> Shape:
    """ONNX's multidirectional broadcasting (numpy's)."""
    if not shapes:
        raise CannotInfer("no operands")
    try:
        return tuple(broadcast(list(shapes)))
    except ShapeError as exc:
        raise CannotInfer(str(exc)) from exc


def _per_axis(attrs, key: str, n: int, default: int) -> tuple[int, ...]:
    value = tuple(attrs.get(key, (default,) * n))
    if len(value) != n:
        raise CannotInfer(f"{key} {value} for {n} spatial axes")
    return value


# ---- elementwise ops, activations, normalizations

@_rule(1)
def same(attrs, shapes, types, values, opset, outputs):
    """Relu, Exp, Softmax, Clip, the normalizations at inference...: the first input's shape and type."""
    return [(_shape(shapes, 0), _type(types, 0))]


@_rule(1)
def logical_not(attrs, shapes, types, values, opset, outputs):
    return [(_shape(shapes, 0), BOOL)]


def _one_type(types, slots) -> None:
    """Operands the spec types alike (one T) must be alike: a file that mixes them is ONNX's to refuse."""
    found = {types[i] for i in slots if i < len(types) and types[i]}
    if len(found) > 1:
        raise CannotInfer(f"operands of types {sorted(found)} where the spec takes one type")


@_rule(1)
def broadcasting(attrs, shapes, types, values, opset, outputs):
    """Add, Sub, Mul, Div, Mod, and Max and Min of any number of operands: one type T."""
    _one_type(types, range(len(shapes)))
    return [(_broadcast(*(_shape(shapes, i) for i in range(len(shapes)))), _type(types, 0))]


@_rule(1)
def power(attrs, shapes, types, values, opset, outputs):
    """Pow: its exponent may be of another type (T1)."""
    return [(_broadcast(_shape(shapes, 0), _shape(shapes, 1)), _type(types, 0))]


@_rule(1)
def compare(attrs, shapes, types, values, opset, outputs):
    """Equal, Less, Greater, LessOrEqual, GreaterOrEqual, And, Or: a boolean of the broadcast shape."""
    _one_type(types, (0, 1))
    return [(_broadcast(_shape(shapes, 0), _shape(shapes, 1)), BOOL)]


@_rule(1)
def where(attrs, shapes, types, values, opset, outputs):
    _one_type(types, (1, 2))
    return [(_broadcast(_shape(shapes, 0), _shape(shapes, 1), _shape(shapes, 2)), _type(types, 1))]


@_rule(1)
def prelu(attrs, shapes, types, values, opset, outputs):
    """The slope broadcasts to X one way (unidirectional): the output is X's shape."""
    x, slope = _shape(shapes, 0), _shape(shapes, 1)
    if len(slope) > len(x) or _broadcast(x, slope) != x:
        raise CannotInfer(f"slope {slope} does not broadcast to {x}")
    return [(x, _type(types, 0))]


@_rule(1)
def cast(attrs, shapes, types, values, opset, outputs):
    to = attrs["to"]
    if to not in ELEM_TYPES:
        raise CannotInfer(f"Cast to element type {to}")
    return [(_shape(shapes, 0), to)]


@_rule(1)
def quantize(attrs, shapes, types, values, opset, outputs):
    """The zero point's type, or output_dtype (opset 21), else uint8."""
    wanted = attrs.get("output_dtype", 0)
    if _listed(shapes, types, 2):
        kind = _type(types, 2)
        if wanted and wanted != kind:
            raise CannotInfer(f"output_dtype {wanted} with a zero point of type {kind}")
    else:
        kind = wanted or UINT8
    return [(_shape(shapes, 0), kind)]


@_rule(1)
def dequantize(attrs, shapes, types, values, opset, outputs):
    """The scale's type, or output_dtype where a later opset gives it."""
    return [(_shape(shapes, 0), attrs.get("output_dtype", 0) or _type(types, 1))]


@_rule(1, 2)
def dropout(attrs, shapes, types, values, opset, outputs):
    x, kind = _shape(shapes, 0), _type(types, 0)
    return [(x, kind), (x, BOOL if opset >= 10 else kind)][:outputs]  # the mask is boolean from opset 10


@_rule(1, 2, 3)
def batch_norm(attrs, shapes, types, values, opset, outputs):
    """Training mode (opset 14) adds the running mean and variance, one per channel, of the mean's type."""
    x, kind = _shape(shapes, 0), _type(types, 0)
    if outputs == 1:
        return [(x, kind)]
    if opset < 14 or not attrs.get("training_mode", 0) or len(x) < 2:
        raise CannotInfer("BatchNormalization's extra outputs before opset 14 or outside training mode")
    return [(x, kind)] + [((x[1],), _type(types, 3))] * (outputs - 1)


@_rule(1, 2, 3)
def layer_norm(attrs, shapes, types, values, opset, outputs):
    """Mean and InvStdDev: the normalized axes reduced to 1, of stash_type (float or bfloat16)."""
    x, kind = _shape(shapes, 0), _type(types, 0)
    axis = _axis(attrs.get("axis", -1), len(x))
    stash = attrs.get("stash_type", FLOAT)
    if stash not in (FLOAT, BFLOAT16):
        raise CannotInfer(f"stash_type {stash}")
    stats = (*x[:axis], *(1,) * (len(x) - axis))
    return [(x, kind)] + [(stats, stash)] * (outputs - 1)


# ---- windows: Conv, ConvTranspose, pools

def _windows(attrs, x: Shape, kernel: Shape, ceil_mode: bool = False) -> Shape:
    """Output sides of a conv or pool: floor((in + pads - span) / stride) + 1 with span = (k-1)*dilation+1
    (ceil with ceil_mode, where a window may not start in the end padding: the spec's "sliding windows
    that would start in the right padded region are ignored"), ceil(in / stride) for SAME_*, and
    floor((in - span) / stride) + 1 (= the spec's ceil((in - span + 1) / stride)) for VALID. auto_pad with
    ceil_mode is CannotInfer: there onnx's inference departs from the spec (VALID: ceil((in - span) / stride)
    + 1; SAME: the explicit formula with ceil over the pads SAME needs, 2 for in 2, kernel 1, stride 2)."""
    spatial = x[2:]
    n = len(spatial)
    if len(kernel) != n:
        raise CannotInfer(f"kernel {kernel} for {n} spatial axes")
    strides, dilations = _per_axis(attrs, "strides", n, 1), _per_axis(attrs, "dilations", n, 1)
    pads = _per_axis(attrs, "pads", 2 * n, 0)
    auto_pad = attrs.get("auto_pad", "NOTSET")
    out = []
    for i, (size, k, s, d) in enumerate(zip(spatial, kernel, strides, dilations)):
        if min(k, s, d) < 1 or min(pads[i], pads[i + n]) < 0:
            raise CannotInfer(f"kernel {kernel}, strides {strides}, dilations {dilations}, pads {pads}")
        span = (k - 1) * d + 1
        if auto_pad in ("SAME_UPPER", "SAME_LOWER") and not ceil_mode:
            side = -(-size // s)
        elif auto_pad == "VALID" and not ceil_mode:
            side = (size - span) // s + 1
        elif auto_pad == "NOTSET":
            room = size + pads[i] + pads[i + n] - span
            side = (-(-room // s) if ceil_mode else room // s) + 1
            if ceil_mode and (side - 1) * s >= size + pads[i]:
                side -= 1
        else:
            raise CannotInfer(f"auto_pad {auto_pad!r}")
        if side < 1:
            raise CannotInfer(f"input {x} is too small for kernel {kernel}, strides {strides}, pads {pads}")
        out.append(side)
    return tuple(out)


@_rule(1)
def conv(attrs, shapes, types, values, opset, outputs):
    x, w = _shape(shapes, 0), _shape(shapes, 1)
    group = attrs.get("group", 1)
    if len(x) < 3 or len(w) != len(x) or group < 1 or x[1] != w[1] * group or w[0] % group:
        raise CannotInfer(f"Conv of {x} with weight {w} in {group} groups")
    kernel = tuple(attrs.get("kernel_shape", w[2:]))
    if kernel != w[2:]:
        raise CannotInfer(f"kernel_shape {kernel} with weight {w}")
    return [((x[0], w[0], *_windows(attrs, x, kernel)), _type(types, 0))]


@_rule(1)
def conv_transpose(attrs, shapes, types, values, opset, outputs):
    """Sides stride*(in-1) + output_padding + (k-1)*dilation + 1 - pads; W is [Cin, Cout/group, k...]."""
    x, w = _shape(shapes, 0), _shape(shapes, 1)
    group = attrs.get("group", 1)
    if len(x) < 3 or len(w) != len(x) or group < 1 or x[1] != w[0] or w[0] % group:
        raise CannotInfer(f"ConvTranspose of {x} with weight {w} in {group} groups")
    if "output_shape" in attrs or attrs.get("auto_pad", "NOTSET") != "NOTSET":
        raise CannotInfer("ConvTranspose with output_shape or auto_pad")
    kernel = tuple(attrs.get("kernel_shape", w[2:]))
    n = len(x) - 2
    if kernel != w[2:]:
        raise CannotInfer(f"kernel_shape {kernel} with weight {w}")
    strides, dilations = _per_axis(attrs, "strides", n, 1), _per_axis(attrs, "dilations", n, 1)
    pads, extra = _per_axis(attrs, "pads", 2 * n, 0), _per_axis(attrs, "output_padding", n, 0)
    out = []
    for i in range(n):
        if min(strides[i], dilations[i]) < 1 or min(pads[i], pads[i + n], extra[i]) < 0:
            raise CannotInfer(f"strides {strides}, dilations {dilations}, pads {pads}, output_padding {extra}")
        out.append(strides[i] * (x[2 + i] - 1) + extra[i] + (kernel[i] - 1) * dilations[i] + 1 - pads[i] - pads[i + n])
    if min(out) < 1:
        raise CannotInfer(f"ConvTranspose sides {out}")
    return [((x[0], w[1] * group, *out), _type(types, 0))]


def _pool(attrs, shapes, types) -> tuple[Shape, int]:
    x = _shape(shapes, 0)
    if len(x) < 3 or "kernel_shape" not in attrs:
        raise CannotInfer(f"a pool of {x} with no kernel_shape" if len(x) >= 3 else f"a pool of {x}")
    kernel = tuple(attrs["kernel_shape"])
    return (*x[:2], *_windows(attrs, x, kernel, bool(attrs.get("ceil_mode", 0)))), _type(types, 0)


@_rule(1)
def average_pool(attrs, shapes, types, values, opset, outputs):
    return [_pool(attrs, shapes, types)]


@_rule(1, 2)
def max_pool(attrs, shapes, types, values, opset, outputs):
    shape, kind = _pool(attrs, shapes, types)
    return [(shape, kind), (shape, INT64)][:outputs]  # Indices: int64 of the output's shape


@_rule(1)
def global_pool(attrs, shapes, types, values, opset, outputs):
    x = _shape(shapes, 0)
    if len(x) < 2:
        raise CannotInfer(f"a global pool of {x}")
    return [((*x[:2], *(1,) * (len(x) - 2)), _type(types, 0))]


# ---- matrix products

@_rule(1)
def gemm(attrs, shapes, types, values, opset, outputs):
    a, b = _shape(shapes, 0), _shape(shapes, 1)
    if len(a) != 2 or len(b) != 2:
        raise CannotInfer(f"Gemm of {a} and {b}")
    (m, k), (k_b, n) = a[::-1] if attrs.get("transA", 0) else a, b[::-1] if attrs.get("transB", 0) else b
    if k != k_b:
        raise CannotInfer(f"Gemm of {a} and {b}, transA {attrs.get('transA', 0)}, transB {attrs.get('transB', 0)}")
    return [((m, n), _type(types, 0))]


@_rule(1)
def matmul(attrs, shapes, types, values, opset, outputs):
    """numpy's matmul: a 1-D left operand is a row (its 1 dropped after), a 1-D right one a column; the
    leading (batch) dims broadcast."""
    a, b = _shape(shapes, 0), _shape(shapes, 1)
    if not a or not b:
        raise CannotInfer(f"MatMul of {a} and {b}")
    a2, b2 = (1, *a) if len(a) == 1 else a, (*b, 1) if len(b) == 1 else b
    if a2[-1] != b2[-2]:
        raise CannotInfer(f"MatMul of {a} and {b}")
    rows, cols = a2[-2:-1] if len(a) > 1 else (), b2[-1:] if len(b) > 1 else ()
    return [((*_broadcast(a2[:-2], b2[:-2]), *rows, *cols), _type(types, 0))]


@_rule(1)
def attention(attrs, shapes, types, values, opset, outputs):
    """Attention-23 on 4-D Q (B, Hq, L, Dk), K (B, Hkv, S, Dk), V (B, Hkv, S, Dv): Y is (B, Hq, L, Dv)."""
    q, k, v = _shape(shapes, 0), _shape(shapes, 1), _shape(shapes, 2)
    if not len(q) == len(k) == len(v) == 4 or q[-1] != k[-1] or k[-2] != v[-2] or q[1] % k[1] or k[1] != v[1]:
        raise CannotInfer(f"Attention of {q}, {k} and {v}")
    return [((*q[:3], v[-1]), _type(types, 0))]


@_rule(1)
def einsum(attrs, shapes, types, values, opset, outputs):
    """Explicit equations of letters ("bij,bjk->bik"): each output letter's size, read off the operands."""
    equation = attrs["equation"].replace(" ", "")
    if "->" not in equation or "." in equation:
        raise CannotInfer(f"Einsum {equation!r}: implicit output or ellipsis")
    left, right = equation.split("->")
    terms = left.split(",")
    if len(terms) != len(shapes):
        raise CannotInfer(f"Einsum {equation!r} of {len(shapes)} operands")
    sizes: dict[str, int] = {}
    for i, term in enumerate(terms):
        shape = _shape(shapes, i)
        if len(term) != len(shape) or (term and not (term.isascii() and term.isalpha())):  # letters a-z, A-Z
            raise CannotInfer(f"Einsum term {term!r} of an operand {shape}")
        for letter, size in zip(term, shape):
            if sizes.setdefault(letter, size) != size:
                raise CannotInfer(f"Einsum {equation!r}: {letter!r} is {sizes[letter]} and {size}")
    if len(set(right)) != len(right) or not set(right) <= set(sizes):
        raise CannotInfer(f"Einsum output {right!r}")
    return [(tuple(sizes[letter] for letter in right), _type(types, 0))]


# ---- reductions

@_rule(1)
def reduce(attrs, shapes, types, values, opset, outputs):
    """ReduceMean/Sum/Prod: axes from the attribute or (opset 13 Sum, 18 Mean and Prod) input 1; no axes
    reduce all of them, or none with noop_with_empty_axes; keepdims leaves a 1 in each."""
    x = _shape(shapes, 0)
    axes = _operand(attrs, shapes, values, 1, "axes")
    if not axes:
        if attrs.get("noop_with_empty_axes", 0):
            return [(x, _type(types, 0))]
        axes = range(len(x))
    axes = _axes(axes, len(x))
    keep = attrs.get("keepdims", 1)
    return [(tuple(1 if i in axes else d for i, d in enumerate(x) if keep or i not in axes), _type(types, 0))]


# ---- resizing

def _resized(x: Shape, scales, sizes) -> Shape:
    """sizes as given, else each side floor(side * scale), the product in float32 as ONNX computes it."""
    if sizes is not None:
        sizes = tuple(int(s) for s in np.asarray(sizes).reshape(-1))
        if len(sizes) != len(x) or min(sizes, default=0) < 0:
            raise CannotInfer(f"sizes {sizes} for an input {x}")
        return sizes
    scales = np.asarray(scales, np.float32).reshape(-1)
    if len(scales) != len(x) or not np.all(np.isfinite(scales)) or np.any(scales <= 0):
        raise CannotInfer(f"scales {scales.tolist()} for an input {x}")
    return tuple(int(np.floor(np.float32(d) * s)) for d, s in zip(x, scales))


def _present(shapes, values, i: int):
    """(whether slot i holds a non-empty tensor, its value where known); exporters write an empty tensor for
    the one of scales and sizes unused. (None, None): an empty name or a tensor not known."""
    value = values[i] if i < len(values) else None
    if value is not None:
        return np.asarray(value).size > 0, value
    shape = shapes[i] if i < len(shapes) else None
    return (None, None) if shape is None else (math.prod(shape) > 0, None)


@_rule(1)
def resize(attrs, shapes, types, values, opset, outputs):
    """Inputs X, scales (opset 10), or X, roi, scales, sizes (opset 11): one of scales and sizes."""
    x = _shape(shapes, 0)
    if attrs.get("coordinate_transformation_mode") == "tf_crop_and_resize" or "axes" in attrs \
            or attrs.get("keep_aspect_ratio_policy", "stretch") != "stretch":
        raise CannotInfer("Resize with tf_crop_and_resize, axes or a kept aspect ratio")
    (has_scales, scales), (has_sizes, sizes) = \
        (_present(shapes, values, 1), (False, None)) if opset < 11 else \
        (_present(shapes, values, 2), _present(shapes, values, 3))
    # one of them given and known; the other not given, or a slot that can only be empty in a valid model
    if has_sizes and sizes is not None and not has_scales:
        return [(_resized(x, None, sizes), _type(types, 0))]
    if has_scales and scales is not None and not has_sizes:
        return [(_resized(x, scales, None), _type(types, 0))]
    raise CannotInfer("Resize needs one of scales and sizes known, and not both")


@_rule(1)
def upsample(attrs, shapes, types, values, opset, outputs):
    """Scales as input 1 (opset 9) or the attribute (opset 7)."""
    x = _shape(shapes, 0)
    if _listed(shapes, values, 1):
        has_scales, scales = _present(shapes, values, 1)
        if not has_scales or scales is None:
            raise CannotInfer("Upsample scales not known")
    elif "scales" in attrs:
        scales = attrs["scales"]
    else:
        raise CannotInfer("Upsample with no scales")
    return [(_resized(x, scales, None), _type(types, 0))]


# ---- Constant, which has no op table entry (it is a value, never a node of the graph)

def constant_value(attrs) -> np.ndarray:
    """The value of an ONNX Constant node: value (an array), value_int(s) as int64, value_float(s) as
    float32. Sparse and string constants: CannotInfer."""
    if "value" in attrs:
        return np.asarray(attrs["value"])
    for key, dtype in (("value_int", np.int64), ("value_ints", np.int64),
                       ("value_float", np.float32), ("value_floats", np.float32)):
        if key in attrs:
            return np.array(attrs[key], dtype)
    raise CannotInfer(f"a Constant with attributes {sorted(attrs)}")
