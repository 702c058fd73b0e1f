"""Shape rules: the output shape of an op from its attributes, input shapes and weight shapes by
role, for the ops the builders emit. The op table (ops.py) names each op's rule; imported graphs
take their shapes from each op's `infer` rule (infer.py), which reads ONNX's attributes and operands.
"""
from __future__ import annotations

import math

from ..base.errors import EffplanError

Shape = tuple[int, ...]


class ShapeError(EffplanError):
    pass


def broadcast(shapes: list[Shape]) -> Shape:
    if all(s == shapes[0] for s in shapes):
        return shapes[0]
    if len(shapes) == 2 and len(shapes[0]) == len(shapes[1]) and all(
            a == b or b == 1 for a, b in zip(*shapes)):
        return shapes[0]  # the common case: a per-channel gate scaling a feature map
    rank = max(len(s) for s in shapes)
    padded = [(1,) * (rank - len(s)) + tuple(s) for s in shapes]
    out = []
    for dims in zip(*padded):
        sizes = {d for d in dims if d != 1}
        if len(sizes) > 1:
            raise ShapeError(f"shapes {shapes} do not broadcast")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def conv_shape(attrs, inputs, weights) -> Shape:
    (n, c, *spatial) = inputs[0]
    w = weights["W"]
    group = attrs.get("group", 1)
    if c != w[1] * group:
        raise ShapeError(f"{c} input channels do not match weight {w} with group {group}")
    k, s = attrs["kernel_shape"], attrs["strides"]
    pads, dil = attrs["pads"], attrs.get("dilations", (1,) * len(k))
    rank = len(spatial)
    out = tuple((spatial[i] + pads[i] + pads[i + rank] - dil[i] * (k[i] - 1) - 1) // s[i] + 1
                for i in range(rank))
    if min(out) < 1:
        raise ShapeError(f"input {inputs[0]} is too small for kernel {k} stride {s}")
    return (n, w[0], *out)


def gemm_shape(attrs, inputs, weights) -> Shape:
    (n, k) = inputs[0]
    w = weights["W"]
    out, k_w = w if attrs.get("transB", 0) else w[::-1]
    if k != k_w:
        raise ShapeError(f"input {inputs[0]} does not match weight {w}")
    return (n, out)


def same(attrs, inputs, weights) -> Shape:
    return inputs[0]


def pool_shape(attrs, inputs, weights) -> Shape:
    """Output side floor (or ceil, with ceil_mode) of (n + pads - k) / s, plus 1; as PyTorch, a
    ceil-mode window may not start in the end padding."""
    (n, c, *spatial) = inputs[0]
    k, s, pads = attrs["kernel_shape"], attrs["strides"], attrs["pads"]
    rank, out = len(spatial), []
    for i in range(rank):
        span = spatial[i] + pads[i] + pads[i + rank] - k[i]
        size = (-(-span // s[i]) if attrs.get("ceil_mode") else span // s[i]) + 1
        if attrs.get("ceil_mode") and (size - 1) * s[i] >= spatial[i] + pads[i]:
            size -= 1
        out.append(size)
    if min(out) < 1:
        raise ShapeError(f"input {inputs[0]} is too small for a {k} window")
    return (n, c, *out)


def concat_shape(attrs, inputs, weights) -> Shape:
    axis = attrs["axis"]
    first = inputs[0]
    for other in inputs[1:]:
        if len(other) != len(first) or any(a != b for i, (a, b) in enumerate(zip(first, other)) if i != axis):
            raise ShapeError(f"cannot concatenate {inputs} on axis {axis}")
    return (*first[:axis], sum(s[axis] for s in inputs), *first[axis + 1:])


def reshape_shape(attrs, inputs, weights) -> Shape:
    shape = tuple(attrs["shape"])
    if math.prod(shape) != math.prod(inputs[0]):
        raise ShapeError(f"cannot reshape {inputs[0]} to {shape}")
    return shape


def slice_shape(attrs, inputs, weights) -> Shape:
    out = list(inputs[0])
    for axis, start, end in zip(attrs["axes"], attrs["starts"], attrs["ends"]):
        out[axis] = min(end, out[axis]) - start
    return tuple(out)


def broadcast_shape(attrs, inputs, weights) -> Shape:
    return broadcast(inputs)


def global_pool_shape(attrs, inputs, weights) -> Shape:
    return (*inputs[0][:2], *(1,) * (len(inputs[0]) - 2))


def flatten_shape(attrs, inputs, weights) -> Shape:
    axis = attrs.get("axis", 1)
    return (math.prod(inputs[0][:axis]), math.prod(inputs[0][axis:]))


def transpose_shape(attrs, inputs, weights) -> Shape:
    return tuple(inputs[0][p] for p in attrs["perm"])
