"""effplan's import rules (infer.py) for the shape and layout ops: Flatten, Reshape, Squeeze, Unsqueeze,
Concat, Slice, Transpose, Split, Pad, Tile, Expand, Shape, Gather, GatherND, ConstantOfShape and Range, with the
ONNX spec's semantics. Several read an operand that later opsets take as an input and earlier ones as an
attribute (infer._operand)."""
from __future__ import annotations

import math

import numpy as np

from .dtypes import FLOAT, INT64, elem_type
from .infer import CannotInfer, _axes, _axis, _broadcast, _ints, _operand, _rule, _shape, _type


@_rule(1)
def flatten(attrs, shapes, types, values, opset, outputs):
    x = _shape(shapes, 0)
    axis = attrs.get("axis", 1)
    if not -len(x) <= axis <= len(x):
        raise CannotInfer(f"Flatten of {x} at axis {axis}")
    axis = axis + len(x) if axis < 0 else axis  # axis r leaves (all, 1)
    return [((math.prod(x[:axis]), math.prod(x[axis:])), _type(types, 0))]


@_rule(1)
def reshape(attrs, shapes, types, values, opset, outputs):
    """A 0 copies the input's dim at that index (unless allowzero), one -1 takes what is left."""
    x = _shape(shapes, 0)
    target = _operand(attrs, shapes, values, 1, "shape")
    if target is None:
        raise CannotInfer("Reshape with no target")
    allowzero = attrs.get("allowzero", 0)
    if allowzero and 0 in target and -1 in target:
        raise CannotInfer(f"Reshape to {target} with allowzero")
    out, free = [], None
    for i, d in enumerate(target):
        if d == -1 and free is None:
            free = i
            out.append(1)
        elif d == 0 and not allowzero:
            if i >= len(x):
                raise CannotInfer(f"Reshape of {x} to {target}: no dim {i} to copy")
            out.append(x[i])
        elif d < 0:
            raise CannotInfer(f"Reshape to {target}")
        else:
            out.append(d)
    total, rest = math.prod(x), math.prod(out)
    if free is not None:
        if rest == 0 or total % rest:
            raise CannotInfer(f"Reshape of {x} to {target}")
        out[free] = total // rest
    elif rest != total:
        raise CannotInfer(f"Reshape of {x} to {target}")
    return [(tuple(out), _type(types, 0))]


@_rule(1)
def squeeze(attrs, shapes, types, values, opset, outputs):
    """The given axes, each of size 1; with no axes, every 1. An empty axes tensor is left to ONNX (its
    inference keeps every dim, while the spec's 'not provided' drops the 1s)."""
    x = _shape(shapes, 0)
    axes = _operand(attrs, shapes, values, 1, "axes")
    if axes is None:
        return [(tuple(d for d in x if d != 1), _type(types, 0))]
    if not axes:
        raise CannotInfer("Squeeze with an empty axes tensor")
    axes = _axes(axes, len(x))
    if any(x[a] != 1 for a in axes):
        raise CannotInfer(f"Squeeze of {x} on axes {axes}")
    return [(tuple(d for i, d in enumerate(x) if i not in axes), _type(types, 0))]


@_rule(1)
def unsqueeze(attrs, shapes, types, values, opset, outputs):
    """Axes count in the output's rank; the input's dims fill the other positions in order."""
    x = _shape(shapes, 0)
    axes = _operand(attrs, shapes, values, 1, "axes")
    if axes is None:
        raise CannotInfer("Unsqueeze with no axes")
    axes = _axes(axes, len(x) + len(axes))
    dims = iter(x)
    return [(tuple(1 if i in axes else next(dims) for i in range(len(x) + len(axes))), _type(types, 0))]


@_rule(1)
def concat(attrs, shapes, types, values, opset, outputs):
    inputs = [_shape(shapes, i) for i in range(len(shapes))]
    if not inputs or not inputs[0] or "axis" not in attrs:
        raise CannotInfer("Concat of no inputs, of scalars or with no axis")
    first = inputs[0]
    axis = _axis(attrs["axis"], len(first))
    for other in inputs[1:]:
        if len(other) != len(first) or any(a != b for i, (a, b) in enumerate(zip(first, other)) if i != axis):
            raise CannotInfer(f"Concat of {inputs} on axis {axis}")
    return [((*first[:axis], sum(s[axis] for s in inputs), *first[axis + 1:]), _type(types, 0))]


def _slice_side(size: int, start: int, end: int, step: int) -> int:
    """One axis of Slice, as the spec says: negative starts and ends count from the end, then they are
    clamped to [0, size] (step > 0) or start to [0, size-1] and end to [-1, size-1] (step < 0)."""
    start, end = start + size if start < 0 else start, end + size if end < 0 else end
    if step > 0:
        start, end = min(max(start, 0), size), min(max(end, 0), size)
    else:
        start, end = min(max(start, 0), size - 1), min(max(end, -1), size - 1)
    return max(0, -(-(end - start) // step))


@_rule(1)
def slice_(attrs, shapes, types, values, opset, outputs):
    """starts, ends, axes and steps from the inputs (opset 10) or the attributes; axes default to the
    first len(starts) ones, steps to 1."""
    x = _shape(shapes, 0)
    starts, ends = _operand(attrs, shapes, values, 1, "starts"), _operand(attrs, shapes, values, 2, "ends")
    if starts is None or ends is None:
        raise CannotInfer("Slice with no starts or ends")
    axes = _operand(attrs, shapes, values, 3, "axes")
    steps = _operand(attrs, shapes, values, 4, "steps")
    axes = _axes(range(len(starts)) if axes is None else axes, len(x))
    steps = (1,) * len(starts) if steps is None else steps
    if not len(starts) == len(ends) == len(axes) == len(steps) or 0 in steps:
        raise CannotInfer(f"Slice: starts {starts}, ends {ends}, axes {axes}, steps {steps}")
    out = list(x)
    for start, end, axis, step in zip(starts, ends, axes, steps):
        out[axis] = _slice_side(x[axis], start, end, step)
    return [(tuple(out), _type(types, 0))]


@_rule(1)
def transpose(attrs, shapes, types, values, opset, outputs):
    x = _shape(shapes, 0)
    perm = tuple(attrs.get("perm", range(len(x) - 1, -1, -1)))
    if sorted(perm) != list(range(len(x))):
        raise CannotInfer(f"Transpose of {x} by {perm}")
    return [(tuple(x[p] for p in perm), _type(types, 0))]


@_rule()
def split(attrs, shapes, types, values, opset, outputs):
    """Sizes from `split` (attribute, or input 1 from opset 13); else num_outputs (opset 18) chunks of
    ceil(size / n), the last one smaller; else (before 18) equal parts, one per output."""
    x, kind = _shape(shapes, 0), _type(types, 0)
    axis = _axis(attrs.get("axis", 0), len(x))
    size = x[axis]
    sizes = _operand(attrs, shapes, values, 1, "split")
    if sizes is not None and "num_outputs" in attrs:
        raise CannotInfer("Split with both split and num_outputs")
    if sizes is not None:
        if len(sizes) != outputs or min(sizes, default=0) < 0 or sum(sizes) != size:
            raise CannotInfer(f"Split of {size} into {sizes} for {outputs} outputs")
    elif "num_outputs" in attrs:
        n = attrs["num_outputs"]
        if n != outputs or n < 1:
            raise CannotInfer(f"Split num_outputs {n} with {outputs} outputs")
        chunk = -(-size // n)
        sizes = (chunk,) * (n - 1) + (size - chunk * (n - 1),)
        if sizes[-1] < 0:
            raise CannotInfer(f"Split of {size} into {n} chunks of {chunk}")
    elif opset >= 18 or outputs < 1 or size % outputs:
        raise CannotInfer(f"Split of {size} into {outputs} equal parts at opset {opset}")
    else:
        sizes = (size // outputs,) * outputs
    return [((*x[:axis], part, *x[axis + 1:]), kind) for part in sizes]


@_rule(1)
def pad(attrs, shapes, types, values, opset, outputs):
    """pads (attribute, or input 1 from opset 11) are [begins..., ends...] over `axes` (input 3, opset
    18; default all); negative pads crop."""
    x = _shape(shapes, 0)
    pads = _operand(attrs, shapes, values, 1, "pads")
    if pads is None:
        raise CannotInfer("Pad with no pads")
    axes = _operand(attrs, shapes, values, 3, "axes")
    axes = _axes(range(len(x)) if axes is None else axes, len(x))
    n = len(axes)
    if len(pads) != 2 * n:
        raise CannotInfer(f"pads {pads} for axes {axes}")
    out = list(x)
    for j, axis in enumerate(axes):
        out[axis] = x[axis] + pads[j] + pads[j + n]
        if out[axis] < 0:
            raise CannotInfer(f"Pad of {x} by {pads}")
    return [(tuple(out), _type(types, 0))]


@_rule(1)
def tile(attrs, shapes, types, values, opset, outputs):
    x = _shape(shapes, 0)
    if opset < 6:
        raise CannotInfer("Tile-1 (tiles and axis inputs)")
    repeats = _ints(values, 1, "repeats")
    if len(repeats) != len(x) or min(repeats, default=0) < 0:
        raise CannotInfer(f"Tile of {x} by {repeats}")
    return [(tuple(d * r for d, r in zip(x, repeats)), _type(types, 0))]


@_rule(1)
def expand(attrs, shapes, types, values, opset, outputs):
    """The input and the shape value broadcast both ways."""
    x, target = _shape(shapes, 0), _ints(values, 1, "shape")
    if min(target, default=0) < 0:
        raise CannotInfer(f"Expand to {target}")
    return [(_broadcast(x, target), _type(types, 0))]


@_rule(1)
def shape_of(attrs, shapes, types, values, opset, outputs):
    """Dims start:end (opset 15), each negative one counted from the end, then clamped to [0, rank]."""
    x = _shape(shapes, 0)
    rank = len(x)
    start, end = attrs.get("start", 0), attrs.get("end", rank)
    start, end = (min(max(v + rank if v < 0 else v, 0), rank) for v in (start, end))
    return [((max(0, end - start),), INT64)]


@_rule(1)
def gather(attrs, shapes, types, values, opset, outputs):
    data, indices = _shape(shapes, 0), _shape(shapes, 1)
    if not data:
        raise CannotInfer("Gather from a scalar")
    axis = _axis(attrs.get("axis", 0), len(data))
    return [((*data[:axis], *indices, *data[axis + 1:]), _type(types, 0))]


@_rule(1)
def gather_nd(attrs, shapes, types, values, opset, outputs):
    """indices.shape[:-1] + data.shape[batch_dims + indices.shape[-1]:] (the last index axis addresses data)."""
    data, indices = _shape(shapes, 0), _shape(shapes, 1)
    batch = attrs.get("batch_dims", 0)
    if not indices or batch + indices[-1] > len(data):
        raise CannotInfer(f"GatherND of {data} by indices {indices}")
    return [((*indices[:-1], *data[batch + indices[-1]:]), _type(types, 0))]


@_rule(1)
def gather_elements(attrs, shapes, types, values, opset, outputs):
    """The indices' shape, the data's type."""
    return [(_shape(shapes, 1), _type(types, 0))]


@_rule(1)
def constant_of_shape(attrs, shapes, types, values, opset, outputs):
    target = _ints(values, 0, "shape")
    if min(target, default=0) < 0:
        raise CannotInfer(f"ConstantOfShape {target}")
    value = np.asarray(attrs["value"]) if "value" in attrs else None
    if value is not None and value.size != 1:
        raise CannotInfer(f"ConstantOfShape value of {value.size} elements")
    return [(target, FLOAT if value is None else elem_type(value.dtype))]


@_rule(1)
def range_(attrs, shapes, types, values, opset, outputs):
    """max(ceil((limit - start) / delta), 0) elements: the difference in the inputs' type, the division
    in double, as ONNX's inference does it."""
    args = [values[i] if i < len(values) else None for i in range(3)]
    if any(a is None for a in args):
        raise CannotInfer("Range of values not known")
    start, limit, delta = (np.asarray(a) for a in args)
    if any(a.ndim != 0 for a in (start, limit, delta)):
        raise CannotInfer("Range of non-scalars")
    if start.dtype.kind in "iu":
        diff = float(int(limit) - int(start))
    else:
        diff = float(limit.astype(start.dtype) - start)
    step = float(delta)
    if step == 0 or not math.isfinite(diff / step):
        raise CannotInfer(f"Range with delta {step}")
    return [((max(math.ceil(diff / step), 0),), _type(types, 0))]
