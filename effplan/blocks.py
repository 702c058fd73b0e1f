"""Block kinds, each a small function emitting ONNX ops, and the network assembly.

`build(design, batch)` turns a design into a graph: stem, the stages' blocks (with channels
and repeats scaled and rounded), head and classifier. Every block kind takes
(builder, x, in_channels, out_channels, stride, stage, activation) and returns its output.
"""
from __future__ import annotations

from .graph import GraphBuilder, Weight, same_pads
from .scaling import Design, check_design, round_channels, round_repeats
from .spec import Stage


def activation(b: GraphBuilder, x: str, kind: str, layer: str) -> str:
    """Swish is Sigmoid then Mul (ONNX has no Swish op); ReLU6 is Clip(0, 6)."""
    if kind == "swish":
        return b.add("Mul", [x, b.add("Sigmoid", [x], layer, "sigmoid")], layer, "swish")
    if kind == "relu":
        return b.add("Relu", [x], layer, "relu")
    if kind == "relu6":
        return b.add("Clip", [x], layer, "relu6", attrs={"min": 0.0, "max": 6.0})
    if kind == "hswish":
        return b.add("HardSwish", [x], layer, "hswish")
    return x


def conv(b: GraphBuilder, x: str, channels: int, kernel: int, stride: int, layer: str,
         role: str = "conv", group: int = 1, bias: bool = False) -> str:
    """k x k convolution with 'same' padding (output side = ceil(input side / stride))."""
    n, c, h, w = b.shape(x)
    weights = (Weight("W", (channels, c // group, kernel, kernel)),)
    if bias:
        weights += (Weight("B", (channels,)),)
    attrs = {"kernel_shape": (kernel, kernel), "strides": (stride, stride), "group": group,
             "pads": same_pads((h, w), (kernel, kernel), (stride, stride)), "dilations": (1, 1)}
    return b.add("Conv", [x], layer, role, attrs=attrs, weights=weights)


def batch_norm(b: GraphBuilder, x: str, layer: str) -> str:
    c = b.shape(x)[1]
    weights = (Weight("scale", (c,)), Weight("B", (c,)),
               Weight("mean", (c,), trainable=False), Weight("var", (c,), trainable=False))
    return b.add("BatchNormalization", [x], layer, "bn", attrs={"epsilon": 1e-3, "momentum": 0.99},
                 weights=weights)


def conv_bn(b: GraphBuilder, x: str, channels: int, kernel: int, stride: int, act: str,
            layer: str, group: int = 1) -> str:
    """Conv (no bias), BatchNormalization, activation: the unit every block is made of."""
    y = batch_norm(b, conv(b, x, channels, kernel, stride, layer, group=group), layer)
    return activation(b, y, act, layer)


def squeeze_excite(b: GraphBuilder, x: str, squeezed: int, act: str) -> str:
    """Global pool, 1x1 conv down (bias), act, 1x1 conv up (bias), Sigmoid, scale the input."""
    s = b.add("GlobalAveragePool", [x], "se", "pool")
    s = activation(b, conv(b, s, squeezed, 1, 1, "se", "reduce", bias=True), act, "se")
    s = conv(b, s, b.shape(x)[1], 1, 1, "se", "expand", bias=True)
    return b.add("Mul", [x, b.add("Sigmoid", [s], "se", "gate")], "se", "scale")


def mbconv(b: GraphBuilder, x: str, cin: int, cout: int, stride: int, stage: Stage, act: str) -> str:
    """Inverted residual of MobileNetV2 with squeeze-excitation (EfficientNet, MnasNet-A1)."""
    y = x
    expanded = int(round(cin * stage.expand))
    if expanded != cin:
        y = conv_bn(b, y, expanded, 1, 1, act, "expand")
    y = conv_bn(b, y, expanded, stage.kernel, stride, act, "dw", group=expanded)
    if stage.se > 0:
        y = squeeze_excite(b, y, max(1, int(cin * stage.se)), act)
    y = batch_norm(b, conv(b, y, cout, 1, 1, "project"), "project")
    if stride == 1 and cin == cout:
        y = b.add("Add", [y, x], "residual", "add")
    return y


BLOCKS = {"mbconv": mbconv}


def build(design: Design, batch: int = 1):
    """The graph of a design at a batch size."""
    check_design(design)
    spec = design.spec
    act = spec.activation
    width = lambda c: round_channels(c, design.width_mult, spec.rounding)  # noqa: E731
    b = GraphBuilder(design.name, (batch, spec.in_channels, design.resolution, design.resolution))

    b.at("stem", 0)
    x = conv_bn(b, "input", width(spec.stem.channels), spec.stem.kernel, spec.stem.stride, act, "stem")
    channels = width(spec.stem.channels)

    for index, stage in enumerate(spec.stages, start=1):
        out = width(stage.channels)
        for block in range(round_repeats(stage.repeats, design.depth_mult, design.depth_rounding)):
            b.at(index, block)
            x = BLOCKS[stage.block](b, x, channels, out, stage.stride if block == 0 else 1, stage, act)
            channels = out

    b.at("head", 0)
    x = conv_bn(b, x, width(spec.head.channels), spec.head.kernel, 1, act, "head")
    x = b.add("GlobalAveragePool", [x], "classifier", "pool")
    x = b.add("Dropout", [x], "classifier", "dropout", attrs={"ratio": design.dropout})
    x = b.add("Flatten", [x], "classifier", "flatten", attrs={"axis": 1})
    features = b.shape(x)[1]
    x = b.add("Gemm", [x], "classifier", "fc", attrs={"transB": 1},
              weights=(Weight("W", (design.classes, features)), Weight("B", (design.classes,))))
    return b.finish(x)
