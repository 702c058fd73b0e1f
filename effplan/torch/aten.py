"""What each aten op of an exported program is in effplan's one vocabulary of ops (ONNX's).

A rule takes the op's arguments, bound by name from its schema, and returns (ONNX op type, attributes,
slots): the tensor arguments in the positional order of the ONNX op, so that a parameter in slot i has
the role the op table gives slot i (Conv: X, W, B). Costs then come from the op table, with the shapes
torch.export inferred. An aten op with no rule here stays in the graph under its own name (`aten.roll`):
reported as unknown by every command, never a silent zero. In-place variants (relu_, add_) share the
rule of their op. Argument defaults are the schema's.
"""
from __future__ import annotations


def _pair(value, n: int) -> tuple[int, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(value) * (n // len(value)) if len(value) != n else tuple(value)
    return (value,) * n


def _conv(a, transposed: bool = False):
    """conv1d/2d/3d and convolution: ONNX Conv (or ConvTranspose) with its attribute names; 'same' and
    'valid' padding written as pads."""
    kernel = tuple(a["weight"].meta["val"].shape[2:])
    n = len(kernel)
    dilation = _pair(a.get("dilation", 1), n)
    padding = a.get("padding", 0)
    if padding == "same":
        total = [d * (k - 1) for d, k in zip(dilation, kernel)]
        pads = (*(t // 2 for t in total), *(t - t // 2 for t in total))
    else:
        begin = (0,) * n if padding == "valid" else _pair(padding, n)
        pads = (*begin, *begin)
    attrs = {"kernel_shape": kernel, "strides": _pair(a.get("stride", 1), n), "pads": pads, "dilations": dilation,
             "group": a.get("groups", 1)}
    op = "ConvTranspose" if transposed or a.get("transposed") else "Conv"
    if op == "ConvTranspose":
        attrs["output_padding"] = _pair(a.get("output_padding", 0), n)
    return op, attrs, [a["input"], a["weight"], a.get("bias")]


def _pool(op: str):
    def rule(a):
        kernel = tuple(_pair(a["kernel_size"], 2 if "2d" in a["#name"] else 3 if "3d" in a["#name"] else 1))
        n = len(kernel)
        stride = a.get("stride") or kernel
        attrs = {"kernel_shape": kernel, "strides": _pair(stride, n), "pads": _pair(a.get("padding", 0), n) * 2,
                 "ceil_mode": int(bool(a.get("ceil_mode")))}
        if op == "MaxPool":
            attrs["dilations"] = _pair(a.get("dilation", 1), n)
        else:
            attrs["count_include_pad"] = int(a.get("count_include_pad", True))
        return op, attrs, [a["self"]]
    return rule


def _adaptive(op: str):
    """Adaptive pooling to 1 x 1 is global pooling; to another size, windows of ceil(in / out) (the widest
    window PyTorch's adaptive windows take; exact where the output divides the input)."""
    def rule(a):
        x = a["self"].meta["val"].shape
        out = tuple(a["output_size"])
        if all(o == 1 for o in out):
            return ("GlobalAveragePool" if op == "AveragePool" else "GlobalMaxPool"), {}, [a["self"]]
        kernel = tuple(-(-int(i) // int(o)) for i, o in zip(x[-len(out):], out))
        return op, {"kernel_shape": kernel, "strides": kernel, "pads": (0,) * 2 * len(kernel)}, [a["self"]]
    return rule


def _same(op: str, **fixed):
    return lambda a: (op, dict(fixed), [a["self"]])


def _binary(op: str):
    """add/sub/mul/div of two tensors, or of a tensor and a number (a number is no slot)."""
    def rule(a):
        slots = [a["self"]] + ([a["other"]] if hasattr(a.get("other"), "meta") else [])
        return op, {}, slots
    return rule


def _reduce(op: str):
    def rule(a):
        dims = a.get("dim")
        attrs = {"keepdims": int(bool(a.get("keepdim", False)))}
        if dims:
            attrs["axes"] = tuple(dims) if isinstance(dims, (list, tuple)) else (dims,)
        return op, attrs, [a["self"]]
    return rule


def _view(op: str):
    return lambda a: (op, {}, [a["self"]])


def _layer_norm(a):
    axis = -len(a["normalized_shape"])
    return "LayerNormalization", {"axis": axis, "epsilon": a.get("eps", 1e-5)}, [a["input"], a.get("weight"),
                                                                                 a.get("bias")]


def _batch_norm(a):
    attrs = {"epsilon": a.get("eps", 1e-5), "momentum": a.get("momentum", 0.1), "training_mode": int(bool(a["training"]))}
    return "BatchNormalization", attrs, [a["input"], a.get("weight"), a.get("bias"), a.get("running_mean"),
                                         a.get("running_var")]


def _group_norm(a):
    return "GroupNormalization", {"num_groups": a["num_groups"], "epsilon": a.get("eps", 1e-5)}, [
        a["input"], a.get("weight"), a.get("bias")]


def _instance_norm(a):
    return "InstanceNormalization", {"epsilon": a.get("eps", 1e-5)}, [a["input"], a.get("weight"), a.get("bias")]


def _attention(a):
    attrs = {"is_causal": int(bool(a.get("is_causal")))}
    if a.get("scale") is not None:
        attrs["scale"] = a["scale"]
    return "Attention", attrs, [a["query"], a["key"], a["value"], a.get("attn_mask")]


def _dropout(a):
    if not a.get("p", 0.5) or a.get("train") is False:
        return "Identity", {}, [a["input"]]
    return "Dropout", {"ratio": a.get("p", 0.5)}, [a["input"]]


def _clip(low: str, high: str):
    """Clip between two of the op's arguments (hardtanh's min_val and max_val, clamp's min and max)."""
    return lambda a: ("Clip", {"min": a.get(low), "max": a.get(high)}, [a["self"]])


def _cat(op: str = "Concat"):
    return lambda a: (op, {"axis": a.get("dim", 0)}, list(a["tensors"]))


RULES = {
    # convolution and matrix products
    "conv1d": _conv, "conv2d": _conv, "conv3d": _conv, "convolution": _conv, "_convolution": _conv,
    "conv_transpose1d": lambda a: _conv(a, True), "conv_transpose2d": lambda a: _conv(a, True),
    "conv_transpose3d": lambda a: _conv(a, True),
    # linear: one kernel (addmm) of any leading rank, weight (out, in): Gemm with transB
    "linear": lambda a: ("Gemm", {"transB": 1}, [a["input"], a["weight"], a.get("bias")]),
    "addmm": lambda a: ("Gemm", {}, [a["mat1"], a["mat2"], a["self"]]),
    "matmul": lambda a: ("MatMul", {}, [a["self"], a["other"]]),
    "mm": lambda a: ("MatMul", {}, [a["self"], a["mat2"]]),
    "bmm": lambda a: ("MatMul", {}, [a["self"], a["mat2"]]),
    "einsum": lambda a: ("Einsum", {"equation": a["equation"]}, list(a["tensors"])),
    "scaled_dot_product_attention": _attention,
    # normalisation
    "batch_norm": _batch_norm, "layer_norm": _layer_norm, "group_norm": _group_norm, "instance_norm": _instance_norm,
    # activations (silu is the importer's: Sigmoid then Mul, as effplan writes Swish)
    "relu": _same("Relu"), "sigmoid": _same("Sigmoid"), "tanh": _same("Tanh"), "hardswish": _same("HardSwish"),
    "hardsigmoid": _same("HardSigmoid"),
    "gelu": lambda a: ("Gelu", {"approximate": a.get("approximate", "none")}, [a["self"]]),
    "relu6": lambda a: ("Clip", {"min": 0.0, "max": 6.0}, [a["self"]]),
    "hardtanh": _clip("min_val", "max_val"), "clamp": _clip("min", "max"),
    "leaky_relu": lambda a: ("LeakyRelu", {"alpha": a.get("negative_slope", 0.01)}, [a["self"]]),
    "prelu": lambda a: ("PRelu", {}, [a["self"], a["weight"]]),
    "softmax": lambda a: ("Softmax", {"axis": a["dim"]}, [a["self"]]),
    "_softmax": lambda a: ("Softmax", {"axis": a["dim"]}, [a["self"]]),
    "log_softmax": lambda a: ("LogSoftmax", {"axis": a["dim"]}, [a["self"]]),
    # pooling and reductions
    "max_pool1d": _pool("MaxPool"), "max_pool2d": _pool("MaxPool"), "max_pool3d": _pool("MaxPool"),
    "max_pool2d_with_indices": _pool("MaxPool"),
    "avg_pool1d": _pool("AveragePool"), "avg_pool2d": _pool("AveragePool"), "avg_pool3d": _pool("AveragePool"),
    "adaptive_avg_pool1d": _adaptive("AveragePool"), "adaptive_avg_pool2d": _adaptive("AveragePool"),
    "adaptive_avg_pool3d": _adaptive("AveragePool"), "adaptive_max_pool2d": _adaptive("MaxPool"),
    "mean": _reduce("ReduceMean"), "sum": _reduce("ReduceSum"),
    # elementwise
    "add": _binary("Add"), "sub": _binary("Sub"), "mul": _binary("Mul"), "div": _binary("Div"),
    "maximum": _binary("Max"), "minimum": _binary("Min"), "pow": lambda a: ("Pow", {}, [a["self"]]),
    "neg": _same("Neg"), "abs": _same("Abs"), "exp": _same("Exp"), "sqrt": _same("Sqrt"), "erf": _same("Erf"),
    "reciprocal": _same("Reciprocal"), "floor": _same("Floor"), "ceil": _same("Ceil"),
    "where": lambda a: ("Where", {}, [a["condition"], a["self"], a["other"]]),
    # dropout: a mask in training; at p = 0 or in eval mode PyTorch returns its input (nothing kept)
    **{name: _dropout for name in ("dropout", "feature_dropout", "alpha_dropout", "native_dropout")},
    # views and data movement (free, each with the op table's reason)
    **{name: _view("Reshape") for name in ("view", "reshape", "_unsafe_view", "flatten", "unflatten", "view_as",
                                           "reshape_as")},
    "squeeze": _view("Squeeze"), "unsqueeze": _view("Unsqueeze"),
    **{name: _view("Transpose") for name in ("permute", "transpose", "t", "swapaxes", "movedim")},
    **{name: _view("Identity") for name in ("contiguous", "clone", "alias", "detach", "lift_fresh_copy")},
    **{name: _view("Cast") for name in ("to", "_to_copy", "type_as")},
    **{name: _view("Slice") for name in ("slice", "select", "narrow")},
    **{name: _view("Split") for name in ("split", "split_with_sizes", "chunk", "unbind", "tensor_split")},
    "expand": _view("Expand"), "expand_as": _view("Expand"), "repeat": _view("Tile"),
    "cat": _cat(), "concat": _cat(), "concatenate": _cat(), "stack": _cat(),
    "pad": _view("Pad"), "constant_pad_nd": _view("Pad"),
    "upsample_nearest2d": lambda a: ("Resize", {"mode": "nearest"}, [a["input"] if "input" in a else a["self"]]),
    "upsample_bilinear2d": lambda a: ("Resize", {"mode": "linear"}, [a["input"] if "input" in a else a["self"]]),
    "upsample_bicubic2d": lambda a: ("Resize", {"mode": "cubic"}, [a["input"] if "input" in a else a["self"]]),
    **{name: _view("ConstantOfShape") for name in ("zeros_like", "ones_like", "empty_like", "full_like")},
}

def aten_name(target) -> str | None:
    """'conv2d' for aten.conv2d.default and 'add' for aten.add_.Tensor; None for what is no aten op
    (operator.getitem, symbolic-size arithmetic)."""
    schema = getattr(target, "_schema", None)
    if schema is None or not schema.name.startswith("aten::"):
        return None
    name = schema.name[len("aten::"):]
    return name[:-1] if name.endswith("_") and not name.startswith("_") else name  # relu_: relu, in place


def bind(node) -> dict:
    """The op's arguments by name, defaults filled from its schema; '#name' is the aten op's name."""
    schema = node.target._schema
    bound = {"#name": aten_name(node.target)}
    for i, argument in enumerate(schema.arguments):
        if i < len(node.args):
            bound[argument.name] = node.args[i]
        elif argument.name in node.kwargs:
            bound[argument.name] = node.kwargs[argument.name]
        elif argument.has_default_value():
            bound[argument.name] = argument.default_value
    return bound


def describe(target) -> str:
    """How an unknown op is named in the graph and in reports: 'aten.roll'."""
    name = aten_name(target)
    return f"aten.{name}" if name else str(getattr(target, "__name__", target))

