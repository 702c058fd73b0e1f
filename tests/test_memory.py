"""Peak activation memory of small graphs, derived by hand."""
from conftest import SWISH as NET
from conftest import graph_of as build
from effplan.blocks import batch_norm, conv, squeeze_excite
from effplan.memory import peak_activation


def test_chain():
    # input 3x8x8 (192) -> conv 16x8x8 (1024) -> Relu (1024) -> conv stride 2 16x4x4 (256)
    def body(b, x):
        y = conv(b, x, 16, 3, 1, "a")
        y = b.add("Relu", [y], "a", "relu")
        return conv(b, y, 16, 3, 2, "b")
    peak = peak_activation(build((1, 3, 8, 8), body), 4)
    # conv a: 192 + 1024; Relu: 1024 + 1024 (input freed); conv b: 1024 + 256
    assert peak.bytes == 2048 * 4
    assert peak.node == "stage1.block0.a.relu"


def test_residual_keeps_the_block_input_alive():
    # x 8x4x4 (128) stays live until the Add: conv (x, a), BN (x, a, b), Add (x, b, sum)
    def body(b, x):
        y = batch_norm(b, conv(b, x, 8, 3, 1, "a"), "a", NET)
        return b.add("Add", [y, x], "res", "add")
    peak = peak_activation(build((1, 8, 4, 4), body), 4)
    assert peak.bytes == 3 * 128 * 4
    assert peak.node == "stage1.block0.a.bn"  # the first op to reach it


def test_squeeze_excitation_peak_is_at_the_scale():
    # x 32x7x7 (1568) stays live to the final Mul: x + gate (32) + output (1568)
    g = build((1, 32, 7, 7), lambda b, x: squeeze_excite(b, x, 8, NET))
    peak = peak_activation(g, 2)
    assert peak.bytes == (1568 + 32 + 1568) * 2
    assert peak.node == "stage1.block0.se.scale"
    assert set(peak.live) == {"input", "stage1.block0.se.gate", "stage1.block0.se.scale"}


def test_batch_scales_activations():
    def body(b, x):
        return conv(b, x, 4, 1, 1, "a")
    one = peak_activation(build((1, 2, 3, 3), body), 4).bytes
    eight = peak_activation(build((8, 2, 3, 3), body), 4).bytes
    assert eight == 8 * one == 8 * (18 + 36) * 4
