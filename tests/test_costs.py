"""Costs of small graphs, derived by hand in each test."""
import pytest

from effplan.graph import ops as costs
from effplan.plan.profile import profile
from conftest import RELU, SWISH, graph_of
from effplan.design.blocks import MBConvArgs, activation, conv, mbconv, squeeze_excite
from effplan.graph.builder import GraphBuilder, Weight


def test_single_conv():
    # 3 -> 16 channels, 3x3, stride 1, 'same' on 8x8: out 16x8x8
    g = graph_of((1, 3, 8, 8), lambda b, x: conv(b, x, 16, 3, 1, "c"))
    t = profile(g).totals
    assert g.graph["tensors"]["stage1.block0.c.conv"] == (1, 16, 8, 8)
    assert t.params == 16 * 3 * 3 * 3 == 432
    assert t.macs == 8 * 8 * 16 * (3 * 3 * 3) == 27648
    assert t.flops == 2 * 27648


def test_strided_conv_same_padding_rounds_up():
    # 9x9 input, stride 2: 'same' output side ceil(9/2) = 5
    g = graph_of((2, 3, 9, 9), lambda b, x: conv(b, x, 16, 3, 2, "c", bias=True))
    t = profile(g).totals
    assert g.graph["tensors"]["stage1.block0.c.conv"] == (2, 16, 5, 5)
    assert t.params == 16 * 27 + 16
    assert t.macs == 2 * 5 * 5 * 16 * 27 == 21600
    assert t.flops == 2 * 21600 + 2 * 16 * 25  # bias add per output element


def test_depthwise_conv():
    # 32 channels, 5x5 depthwise (group 32), stride 2 on 10x10 -> 5x5; each output reads 1 channel
    g = graph_of((1, 32, 10, 10), lambda b, x: conv(b, x, 32, 5, 2, "dw", group=32))
    t = profile(g).totals
    assert t.params == 32 * 1 * 5 * 5 == 800
    assert t.macs == 5 * 5 * 32 * 25 == 20000


def test_grouped_conv():
    # 8 -> 16 channels in 4 groups: each output sees 2 input channels, 3x3
    g = graph_of((1, 8, 6, 6), lambda b, x: conv(b, x, 16, 3, 1, "g", group=4))
    assert profile(g).totals.macs == 6 * 6 * 16 * 2 * 9


def test_squeeze_excitation_block():
    # SE on 32x7x7 squeezing to 8 with Swish:
    # pool 32*49 adds + 32 divides; reduce 32->8 (bias); Sigmoid(3)+Mul(1) on 8;
    # expand 8->32 (bias); Sigmoid gate on 32; scale 32*49 multiplies
    g = graph_of((1, 32, 7, 7), lambda b, x: squeeze_excite(b, x, 8, SWISH))
    t = profile(g).totals
    assert t.params == (32 * 8 + 8) + (8 * 32 + 32) == 552
    assert t.macs == 256 + 256
    assert t.flops == (32 * 49 + 32) + (2 * 256 + 8) + (3 * 8 + 8) + (2 * 256 + 32) + 3 * 32 + 32 * 49 == 4360


def test_mbconv_block():
    # 16 -> 24, expand 6 (96), 3x3 depthwise stride 2 on 14x14, SE 0.25 of the input (4 channels)
    args = MBConvArgs(kernel=3, expand=6.0, se=0.25)
    g = graph_of((1, 16, 14, 14), lambda b, x: mbconv(b, x, 24, 2, args, SWISH))
    t = profile(g).totals
    expand = 16 * 96 + 2 * 96  # 1x1 conv + BN scale/shift
    dw = 96 * 9 + 2 * 96
    se = (96 * 4 + 4) + (4 * 96 + 96)
    project = 96 * 24 + 2 * 24
    assert t.params == expand + dw + se + project == 6004
    assert t.buffers == 2 * (96 + 96 + 24)
    assert t.macs == 14 * 14 * 96 * 16 + 7 * 7 * 96 * 9 + 96 * 4 + 4 * 96 + 7 * 7 * 24 * 96 == 457056
    assert "Add" not in {g.nodes[n]["op"] for n in g.nodes}  # stride 2: no residual


def test_mbconv_residual_when_shapes_match():
    args = MBConvArgs(kernel=3, expand=1.0, se=0.0)
    g = graph_of((1, 16, 5, 5), lambda b, x: mbconv(b, x, 16, 1, args, RELU))
    ops = [g.nodes[n]["op"] for n in g.nodes]
    assert ops == ["Conv", "BatchNormalization", "Relu", "Conv", "BatchNormalization", "Add"]
    # expand 1: no expand conv; depthwise 16*9, project 16*16, two BNs
    assert profile(g).totals.params == 16 * 9 + 32 + 16 * 16 + 32


def test_swish_is_sigmoid_then_mul():
    g = graph_of((1, 4, 2, 2), lambda b, x: activation(b, x, "swish", "a"))
    assert [g.nodes[n]["op"] for n in g.nodes] == ["Sigmoid", "Mul"]
    assert profile(g).totals.flops == 16 * 3 + 16


def test_unknown_op_is_reported_not_silently_zero():
    b = GraphBuilder("t", (1, 4, 2, 2))
    b.at(1, 0)
    b.nodes["weird"] = dict(op="FancyOp", attrs={}, inputs=("input",), outputs=("weird",), weights=(),
                            stage=1, block=0, layer="x")  # the builder has no shape rule for it
    b.tensors["weird"] = (1, 4, 2, 2)
    g = b.finish("weird")
    p = profile(g)
    assert p.unknown_ops == {"FancyOp": 1}
    with pytest.raises(costs.UnknownOpError, match="FancyOp"):
        profile(g, strict=True)


def test_registering_an_op_twice_is_an_error():
    with pytest.raises(ValueError, match="Conv"):
        costs.register("Conv")(lambda *a: (0, 0))
    with pytest.raises(ValueError, match="Relu"):
        costs.elementwise(1, "Relu")


def test_every_op_the_builders_emit_is_costed():
    import effplan
    for name in ("efficientnet-b0", "efficientnet-b7"):
        p = effplan.analyze(effplan.resolve(name))
        assert p.unknown_ops == {}
        assert {r.op for r in p.rows} <= set(costs.COSTS)


def test_weight_and_output_bytes_follow_dtype():
    g = graph_of((2, 3, 8, 8), lambda b, x: conv(b, x, 16, 3, 1, "c"))
    fp32, fp16 = profile(g, dtype="fp32"), profile(g, dtype="fp16")
    assert fp32.rows[0].weight_bytes == 432 * 4 and fp16.rows[0].weight_bytes == 432 * 2
    assert fp32.rows[0].output_bytes == 2 * 16 * 8 * 8 * 4


def test_cost_functions_accept_numpy_arrays():
    """The search evaluates many designs at once with the same formulas."""
    import numpy as np
    side = np.array([7, 14, 28])
    macs, _ = costs.COSTS["Conv"]({}, [(1, 16, side, side)], (1, 32, side, side), {"W": (32, 16, 3, 3)})
    assert list(macs) == [s * s * 32 * 16 * 9 for s in (7, 14, 28)]


def test_gemm():
    b = GraphBuilder("t", (4, 1280))
    b.at("head", 0)
    out = b.add("Gemm", ["input"], "classifier", "fc", attrs={"transB": 1},
                weights=(Weight("W", (1000, 1280)), Weight("B", (1000,))))
    t = profile(b.finish(out)).totals
    assert t.params == 1280 * 1000 + 1000
    assert t.macs == 4 * 1280 * 1000
    assert t.flops == 2 * t.macs + 4 * 1000
