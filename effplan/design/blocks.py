"""Block kinds, each a small function emitting ONNX ops, and the network assembly.

A block kind is registered with `@block(name, Args)` (spec.py's registry, which validates rows): `Args` is the frozen dataclass of the
arguments a spec row may give it (checked on load), and the function has the signature
(builder, x, out_channels, stride, args, net) -> output tensor. `build(design, batch)` turns a
design into a graph: stem rows, the stages' blocks (channels and repeats scaled and rounded),
head rows and the classifier.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from ..base.errors import EffplanError
from ..graph.builder import GraphBuilder, ShapeError, Weight, same_pads
from .scaling import Design, check_design, round_channels, round_repeats
from ..base.schema import bounded, choice
from .spec import BLOCKS, MAX_CHANNELS, MAX_KERNEL, block


@dataclass(frozen=True)
class Net:
    """What every block needs from the spec and the design."""

    act: str
    bn: bool
    bn_epsilon: float
    width: Callable[[int], int]  # a channel count scaled and rounded at this design's width


# ---- units every block is made of ----

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
         role: str = "conv", group: int = 1, bias: bool = False, padding: str = "same") -> str:
    """k x k convolution; 'same' padding gives output side ceil(input / stride), 'valid' none."""
    n, c, h, w = b.shape(x)
    strided(b, x, stride, b.name(layer, role))
    if channels < 1:
        raise ShapeError(f"layer {b.name(layer, role)}: {channels} output channels; a layer needs at least "
                         f"one (a smaller width multiplier or channel count than this network allows)")
    if group < 1 or c % group or channels % group:
        raise ShapeError(f"layer {b.name(layer, role)}: {group} groups do not divide {c} input "
                         f"and {channels} output channels")
    weights = _conv_weights(channels, c // group, kernel, bias)
    pads = same_pads((h, w), (kernel, kernel), (stride, stride)) if padding == "same" else (0, 0, 0, 0)
    attrs = {"kernel_shape": (kernel, kernel), "strides": (stride, stride), "group": group,
             "pads": pads, "dilations": (1, 1)}
    return b.add("Conv", [x], layer, role, attrs=attrs, weights=weights)


def batch_norm(b: GraphBuilder, x: str, layer: str, net: Net) -> str:
    return b.add("BatchNormalization", [x], layer, "bn", attrs={"epsilon": net.bn_epsilon},
                 weights=_bn_weights(b.shape(x)[1]))


@lru_cache(maxsize=4096)  # weights are frozen: one tuple serves every conv of a shape
def _conv_weights(channels: int, per_group: int, kernel: int, bias: bool) -> tuple[Weight, ...]:
    weights = (Weight("W", (channels, per_group, kernel, kernel)),)
    return weights + (Weight("B", (channels,)),) if bias else weights


@lru_cache(maxsize=1024)  # weights are frozen: one tuple serves every BN of a width
def _bn_weights(c: int) -> tuple[Weight, ...]:
    return (Weight("scale", (c,)), Weight("B", (c,)),
            Weight("mean", (c,), trainable=False), Weight("var", (c,), trainable=False))


def conv_unit(b: GraphBuilder, x: str, channels: int, kernel: int, stride: int, layer: str, net: Net,
              group: int = 1, act: bool = True, padding: str = "same") -> str:
    """Conv, then BatchNormalization (or a conv bias when the spec has no norm), then activation."""
    y = conv(b, x, channels, kernel, stride, layer, group=group, bias=not net.bn, padding=padding)
    if net.bn:
        y = batch_norm(b, y, layer, net)
    return activation(b, y, net.act, layer) if act else y


def strided(b: GraphBuilder, x: str, stride: int, name: str) -> None:
    """A layer that strides over a side smaller than its stride has nothing left to downsample."""
    side = min(b.shape(x)[2:])
    if stride > 1 and side < stride:
        resolution = b.shape(b.inputs[0])[2]
        raise ShapeError(f"layer {name}: its input is {side} px wide, less than its stride {stride}: "
                         f"resolution {resolution} is too small for this network's strides")


def pool(b: GraphBuilder, x: str, op: str, kernel: int, stride: int, layer: str, role: str,
         padding: str = "same", ceil: bool = False) -> str:
    strided(b, x, stride, b.name(layer, role))
    h, w = b.shape(x)[2:]
    pads = same_pads((h, w), (kernel, kernel), (stride, stride)) if padding == "same" else (0, 0, 0, 0)
    attrs = {"kernel_shape": (kernel, kernel), "strides": (stride, stride), "pads": pads,
             "ceil_mode": int(ceil)}
    if op == "AveragePool":
        attrs["count_include_pad"] = 0
    return b.add(op, [x], layer, role, attrs=attrs)


def squeeze_excite(b: GraphBuilder, x: str, squeezed: int, net: Net) -> str:
    """Global pool, 1x1 conv down (bias), act, 1x1 conv up (bias), Sigmoid, scale the input."""
    s = b.add("GlobalAveragePool", [x], "se", "pool")
    s = activation(b, conv(b, s, squeezed, 1, 1, "se", "reduce", bias=True), net.act, "se")
    s = conv(b, s, b.shape(x)[1], 1, 1, "se", "expand", bias=True)
    return b.add("Mul", [x, b.add("Sigmoid", [s], "se", "gate")], "se", "scale")


def residual(b: GraphBuilder, y: str, x: str) -> str:
    return b.add("Add", [y, x], "residual", "add")


def channel_shuffle(b: GraphBuilder, x: str, groups: int, layer: str) -> str:
    """ShuffleNet's shuffle as exporters write it: Reshape to (N, g, C/g, H, W), swap, Reshape back."""
    n, c, h, w = b.shape(x)
    y = b.add("Reshape", [x], layer, "split", attrs={"shape": (n, groups, c // groups, h, w)})
    y = b.add("Transpose", [y], layer, "swap", attrs={"perm": (0, 2, 1, 3, 4)})
    return b.add("Reshape", [y], layer, "merge", attrs={"shape": (n, c, h, w)})


# ---- block kinds ----

@dataclass(frozen=True)
class ConvArgs:
    kernel: int = bounded(1, MAX_KERNEL, default=3)
    groups: int = bounded(1, MAX_CHANNELS, default=1)
    padding: str = choice("same", "valid")
    act: bool = True


@block("conv", ConvArgs)
def conv_block(b, x, cout, stride, a: ConvArgs, net):
    """Conv, BN, activation: a stem or head layer."""
    return conv_unit(b, x, cout, a.kernel, stride, "", net, group=a.groups, act=a.act, padding=a.padding)


@dataclass(frozen=True)
class PoolArgs:
    kernel: int = bounded(1, MAX_KERNEL, default=3)
    padding: str = choice("same", "valid")
    ceil: bool = False


@block("maxpool", PoolArgs, deepens=False)
def maxpool_block(b, x, cout, stride, a: PoolArgs, net):
    return pool(b, x, "MaxPool", a.kernel, stride, "", "maxpool", a.padding, a.ceil)


@block("avgpool", PoolArgs, deepens=False)
def avgpool_block(b, x, cout, stride, a: PoolArgs, net):
    return pool(b, x, "AveragePool", a.kernel, stride, "", "avgpool", a.padding, a.ceil)


@dataclass(frozen=True)
class MBConvArgs:
    kernel: int = bounded(1, MAX_KERNEL, default=3)
    expand: float = bounded(1.0, 64.0, default=1.0)
    se: float = bounded(0.0, 1.0, default=0.0)  # squeeze ratio of the block's input channels


@block("mbconv", MBConvArgs)
def mbconv(b, x, cout, stride, a: MBConvArgs, net):
    """Inverted residual with linear bottleneck (MobileNetV2, MnasNet), with optional
    squeeze-excitation (EfficientNet, MnasNet-A1): [1x1 expand], kxk depthwise, [SE], 1x1 project."""
    cin = b.shape(x)[1]
    expanded = int(round(cin * a.expand))
    y = x
    if expanded != cin:
        y = conv_unit(b, y, expanded, 1, 1, "expand", net)
    y = conv_unit(b, y, expanded, a.kernel, stride, "dw", net, group=expanded)
    if a.se > 0:
        y = squeeze_excite(b, y, max(1, int(cin * a.se)), net)
    y = conv_unit(b, y, cout, 1, 1, "project", net, act=False)
    return residual(b, y, x) if stride == 1 and cin == cout else y


@block("fused_mbconv", MBConvArgs)
def fused_mbconv(b, x, cout, stride, a: MBConvArgs, net):
    """EfficientNetV2's Fused-MBConv: one kxk conv replaces 1x1 expand + depthwise; with
    expand 1, that conv gives the output directly (and keeps its activation)."""
    cin = b.shape(x)[1]
    expanded = int(round(cin * a.expand))
    if expanded == cin:
        y = conv_unit(b, x, cout, a.kernel, stride, "fused", net)
    else:
        y = conv_unit(b, x, expanded, a.kernel, stride, "fused", net)
        if a.se > 0:
            y = squeeze_excite(b, y, max(1, int(cin * a.se)), net)
        y = conv_unit(b, y, cout, 1, 1, "project", net, act=False)
    return residual(b, y, x) if stride == 1 and cin == cout else y


@dataclass(frozen=True)
class SeparableArgs:
    kernel: int = bounded(1, MAX_KERNEL, default=3)
    inner_norm: bool = True  # BN + act between depthwise and pointwise (MobileNetV1); Keras SeparableConv2D has none


@block("separable", SeparableArgs)
def separable(b, x, cout, stride, a: SeparableArgs, net):
    """Depthwise kxk then pointwise 1x1, each followed by BN and activation (MobileNetV1)."""
    cin = b.shape(x)[1]
    if a.inner_norm:
        y = conv_unit(b, x, cin, a.kernel, stride, "dw", net, group=cin)
    else:
        y = conv(b, x, cin, a.kernel, stride, "dw", group=cin, bias=not net.bn)
    return conv_unit(b, y, cout, 1, 1, "pw", net)


@dataclass(frozen=True)
class BottleneckArgs:
    expand: float = bounded(1.0, 64.0, default=4.0)  # output channels / inner width
    groups: int = bounded(1, MAX_CHANNELS, default=1)


def shortcut(b, x, cout, stride, net):
    """Identity, or a strided 1x1 conv + BN when the shape changes (ResNet option B)."""
    if stride == 1 and b.shape(x)[1] == cout:
        return x
    return conv_unit(b, x, cout, 1, stride, "downsample", net, act=False)


@block("bottleneck", BottleneckArgs)
def bottleneck(b, x, cout, stride, a: BottleneckArgs, net):
    """ResNet v1.5 bottleneck: 1x1, 3x3 with the stride, 1x1 (x expand); add; activation."""
    mid = int(cout / a.expand)
    y = conv_unit(b, x, mid, 1, 1, "reduce", net)
    y = conv_unit(b, y, mid, 3, stride, "conv", net, group=a.groups)
    y = conv_unit(b, y, cout, 1, 1, "expand", net, act=False)
    return activation(b, residual(b, y, shortcut(b, x, cout, stride, net)), net.act, "out")


@dataclass(frozen=True)
class NoArgs:
    pass


@block("basic", NoArgs)
def basic(b, x, cout, stride, a, net):
    """ResNet-18/34 block: two 3x3 convs; add; activation."""
    y = conv_unit(b, x, cout, 3, stride, "conv1", net)
    y = conv_unit(b, y, cout, 3, 1, "conv2", net, act=False)
    return activation(b, residual(b, y, shortcut(b, x, cout, stride, net)), net.act, "out")


@dataclass(frozen=True)
class ShuffleV1Args:
    groups: int = bounded(1, 64, default=3)
    group_first: bool = True  # False for stage 2's first unit, whose 24 input channels are too few to group


@block("shuffle_v1", ShuffleV1Args)
def shuffle_v1(b, x, cout, stride, a: ShuffleV1Args, net):
    """ShuffleNet unit: 1x1 group conv, shuffle, 3x3 depthwise, 1x1 group conv; add (stride 1)
    or concatenate with a 3x3 average pool (stride 2); ReLU. Inner width is 1/4 of the output."""
    cin = b.shape(x)[1]
    first = b.block == 0
    branch_out = cout - cin if stride > 1 else cout
    mid = cout // 4
    g1 = 1 if first and not a.group_first else a.groups
    y = conv_unit(b, x, mid, 1, 1, "gconv1", net, group=g1)
    y = channel_shuffle(b, y, a.groups, "shuffle")
    y = conv_unit(b, y, mid, 3, stride, "dw", net, group=mid, act=False)
    y = conv_unit(b, y, branch_out, 1, 1, "gconv2", net, group=a.groups, act=False)
    if stride > 1:
        shortcut_pool = pool(b, x, "AveragePool", 3, stride, "shortcut", "avgpool")
        y = b.add("Concat", [shortcut_pool, y], "out", "concat", attrs={"axis": 1})
    else:
        y = residual(b, y, x)
    return activation(b, y, net.act, "out")


@block("shuffle_v2", NoArgs)
def shuffle_v2(b, x, cout, stride, a, net):
    """ShuffleNetV2 unit: stride 1 splits the channels and transforms one half; stride 2 runs
    both branches on the whole input. Concatenate, then shuffle with 2 groups."""
    cin = b.shape(x)[1]
    half = cout // 2
    if cout % 2:
        raise ShapeError(f"layer {b.name('', '')}: a ShuffleNetV2 unit splits its channels in two, "
                         f"and {cout} is odd (try another width multiplier)")
    if stride == 1:
        if cin != cout:
            raise ShapeError(f"layer {b.name('split', '')}: a stride-1 ShuffleNetV2 unit needs "
                             f"input = output channels, got {cin} and {cout}")
        kept = b.add("Slice", [x], "split", "kept", attrs={"axes": (1,), "starts": (0,), "ends": (cin // 2,)})
        todo = b.add("Slice", [x], "split", "branch", attrs={"axes": (1,), "starts": (cin // 2,), "ends": (cin,)})
    else:
        kept = conv_unit(b, x, cin, 3, stride, "branch1_dw", net, group=cin, act=False)
        kept = conv_unit(b, kept, half, 1, 1, "branch1_pw", net)
        todo = x
    y = conv_unit(b, todo, half, 1, 1, "branch2_pw1", net)
    y = conv_unit(b, y, half, 3, stride, "branch2_dw", net, group=half, act=False)
    y = conv_unit(b, y, half, 1, 1, "branch2_pw2", net)
    y = b.add("Concat", [kept, y], "out", "concat", attrs={"axis": 1})
    return channel_shuffle(b, y, 2, "shuffle")


@dataclass(frozen=True)
class FireArgs:
    squeeze: int = bounded(1, MAX_CHANNELS)


@block("fire", FireArgs)
def fire(b, x, cout, stride, a: FireArgs, net):
    """SqueezeNet fire module: 1x1 squeeze, then 1x1 and 3x3 expands (half the output each), concatenated."""
    s = conv_unit(b, x, net.width(a.squeeze), 1, 1, "squeeze", net)
    e1 = conv_unit(b, s, cout // 2, 1, 1, "expand1x1", net)
    e3 = conv_unit(b, s, cout - cout // 2, 3, 1, "expand3x3", net)
    return b.add("Concat", [e1, e3], "out", "concat", attrs={"axis": 1})


@dataclass(frozen=True)
class InceptionArgs:
    # 1x1 | 3x3 reduce, 3x3 | second reduce, second conv | pool projection (Szegedy et al., Table 1)
    branches: tuple[int, ...] = ()
    second_kernel: int = bounded(1, MAX_KERNEL, default=3)  # the paper's 5x5; torchvision uses 3x3


@block("inception", InceptionArgs)
def inception(b, x, cout, stride, a: InceptionArgs, net):
    """GoogLeNet Inception module: four branches concatenated (the row's output is their sum,
    so it gives no channels of its own)."""
    if len(a.branches) != 6:
        raise EffplanError(f"layer {b.name('', '')}: an inception row needs 6 branch widths, got {len(a.branches)}")
    c1, c3r, c3, c5r, c5, proj = (net.width(c) for c in a.branches)
    y1 = conv_unit(b, x, c1, 1, 1, "branch1", net)
    y2 = conv_unit(b, conv_unit(b, x, c3r, 1, 1, "branch2_reduce", net), c3, 3, 1, "branch2", net)
    y3 = conv_unit(b, conv_unit(b, x, c5r, 1, 1, "branch3_reduce", net), c5, a.second_kernel, 1, "branch3", net)
    y4 = conv_unit(b, pool(b, x, "MaxPool", 3, 1, "branch4", "pool", ceil=True), proj, 1, 1, "branch4", net)
    return b.add("Concat", [y1, y2, y3, y4], "out", "concat", attrs={"axis": 1})


@dataclass(frozen=True)
class XceptionArgs:
    convs: int = bounded(1, 16, default=2)
    mid: int = bounded(0, MAX_CHANNELS, default=0)  # width of the separable convs before the last; 0: the output width
    leading_act: bool = True  # block 2 follows the stem's activation directly


@block("xception", XceptionArgs)
def xception(b, x, cout, stride, a: XceptionArgs, net):
    """Xception block: [act, separable conv, BN] x convs; a stride-2 block ends in a 3x3 max pool and
    has a strided 1x1 conv + BN shortcut, a stride-1 block an identity shortcut."""
    mid = net.width(a.mid) if a.mid else cout
    y = x
    for i in range(a.convs):
        layer = f"sep{i + 1}"
        if i or a.leading_act:
            y = activation(b, y, net.act, layer)
        y = conv(b, y, b.shape(y)[1], 3, 1, layer, "dw", group=b.shape(y)[1], bias=not net.bn)
        y = conv_unit(b, y, cout if i == a.convs - 1 else mid, 1, 1, layer, net, act=False)
    if stride > 1:
        y = pool(b, y, "MaxPool", 3, stride, "pool", "maxpool")
    return residual(b, y, shortcut(b, x, cout, stride, net))


# ---- the network ----

def build(design: Design, batch: int = 1):
    """The graph of a design at a batch size. A model from another front-end (an ONNX file, a PyTorch
    module) is no Design: it builds its own graph with `.graph(batch)`, the one interface all share.
    Graphs are not changed once built, so one is shared by every caller asking for the same design
    and batch (a command costs, plans memory and runs the roofline of one graph; a test suite or a
    README check asks for the same designs again and again)."""
    if not isinstance(design, Design):
        return design.graph(batch)
    return _build(design, batch)


@lru_cache(maxsize=64)  # a built graph is about 1-2 MB; 64 holds every built-in model at one batch
def _build(design: Design, batch: int):
    check_design(design)
    spec = design.spec

    def width(channels: int, floor: float = 0.0, cap: float = 64.0) -> int:
        return round_channels(channels, min(max(design.width_mult, floor), cap), spec.rounding)

    def row_width(row) -> int:
        listed = dict(row.channels_by_width)
        if design.width_mult in listed:
            return listed[design.width_mult]
        return width(row.channels, row.width_min, row.width_max)

    net = Net(spec.activation, spec.norm == "bn", spec.bn_epsilon, width)
    b = GraphBuilder(design.name, (batch, spec.in_channels, design.resolution, design.resolution))
    x = "input"

    def run(stage, row, repeats):
        nonlocal x
        for i in range(repeats):
            b.at(stage, b.block + 1 if stage == b.stage else 0)
            cout = row_width(row) if row.channels else b.shape(x)[1]
            x = BLOCKS[row.block].build(b, x, cout, row.stride if i == 0 else 1, row.args, net)

    for row in spec.stem:
        run("stem", row, row.repeats)
    for index, row in enumerate(spec.stages, start=1):
        deepens = BLOCKS[row.block].deepens
        run(index, row, round_repeats(row.repeats, design.depth_mult, design.depth_rounding) if deepens else row.repeats)
    for row in spec.head:
        run("head", row, row.repeats)

    b.at("head", b.block + 1 if b.stage == "head" else 0, prefix="classifier")
    c = spec.classifier
    if c.kind == "conv":  # SqueezeNet: dropout, 1x1 conv to the classes, ReLU, then pool
        x = b.add("Dropout", [x], "", "dropout", attrs={"ratio": c.dropout})
        x = activation(b, conv(b, x, design.classes, 1, 1, "", "conv", bias=True), "relu", "")
        x = b.add("GlobalAveragePool", [x], "", "pool")
        x = b.add("Flatten", [x], "", "flatten", attrs={"axis": 1})
    else:
        x = b.add("GlobalAveragePool", [x], "", "pool")
        x = b.add("Flatten", [x], "", "flatten", attrs={"axis": 1})
        x = b.add("Dropout", [x], "", "dropout", attrs={"ratio": design.dropout})
        features = b.shape(x)[1]
        weights = (Weight("W", (design.classes, features)),) + ((Weight("B", (design.classes,)),) if c.bias else ())
        x = b.add("Gemm", [x], "", "fc", attrs={"transB": 1}, weights=weights)
    return b.finish(x).freeze()  # shared by the cache: adding or removing a node or edge raises
