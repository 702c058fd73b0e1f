"""The values ops compute, for folding shape arithmetic on import: numpy on small tensors."""
import numpy as np

from .. import dtypes


def int_list(a) -> list[int]:
    return [int(v) for v in np.asarray(a).reshape(-1)]


def input_or_attr(inputs, index: int, attrs: dict, key: str):
    """An operand that later opsets take as an input and earlier ones as an attribute."""
    if len(inputs) > index and inputs[index] is not None:
        return int_list(inputs[index])
    return list(attrs[key]) if key in attrs else None


def unsqueeze(attrs, x, axes=None):
    axes = input_or_attr([x, axes], 1, attrs, "axes")
    rank = x.ndim + len(axes)
    for axis in sorted(a % rank for a in axes):
        x = np.expand_dims(x, axis)
    return x


def squeeze(attrs, x, axes=None):
    axes = input_or_attr([x, axes], 1, attrs, "axes")
    return np.squeeze(x, axis=tuple(a % x.ndim for a in axes)) if axes else np.squeeze(x)


def slice_(attrs, x, starts=None, ends=None, axes=None, steps=None):
    starts = input_or_attr([x, starts], 1, attrs, "starts")
    ends = input_or_attr([x, starts, ends], 2, attrs, "ends")
    axes = input_or_attr([x, starts, ends, axes], 3, attrs, "axes") or list(range(len(starts)))
    steps = int_list(steps) if steps is not None else [1] * len(starts)
    index = [slice(None)] * x.ndim
    for start, end, axis, step in zip(starts, ends, axes, steps):
        index[axis % x.ndim] = slice(start, end, step)
    return x[tuple(index)]


def reshape(attrs, x, shape):
    target = int_list(shape)
    if not attrs.get("allowzero", 0):
        target = [x.shape[i] if d == 0 else d for i, d in enumerate(target)]
    return x.reshape(target)


def div(attrs, a, b):
    if np.issubdtype(a.dtype, np.integer):  # ONNX integer division truncates toward zero
        return (np.sign(a) * np.sign(b) * (np.abs(a) // np.abs(b))).astype(a.dtype)
    return a / b


def clip(attrs, x, lo=None, hi=None):
    lo = lo if lo is not None else attrs.get("min")
    hi = hi if hi is not None else attrs.get("max")
    return np.clip(x, lo if lo is not None else x.min(), hi if hi is not None else x.max()).astype(x.dtype)


def reduce_prod(attrs, x, axes=None):
    axes = input_or_attr([x, axes], 1, attrs, "axes")
    return np.prod(x, axis=tuple(axes) if axes else None, keepdims=bool(attrs.get("keepdims", 1))).astype(x.dtype)


def constant_of_shape(attrs, shape):
    value = np.asarray(attrs["value"]) if "value" in attrs else np.zeros(1, np.float32)  # decoded on import
    return np.full(int_list(shape), value.reshape(-1)[0], value.dtype)


def expand(attrs, x, shape):
    return np.broadcast_to(x, np.broadcast_shapes(x.shape, tuple(int_list(shape)))).copy()


def range_(attrs, start, limit, delta):
    return np.arange(start.item(), limit.item(), delta.item()).astype(start.dtype)


def cast(attrs, x):
    return x.astype(dtypes.np_dtype(attrs["to"]))


def binary(fn):
    return lambda attrs, x, y: fn(x, y)


def unary(fn):
    return lambda attrs, x: fn(x)

