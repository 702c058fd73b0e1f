"""Peak activation memory of small graphs, derived by hand."""
from conftest import SWISH as NET
from conftest import graph_of as build
from effplan.design.blocks import batch_norm, conv, squeeze_excite
from effplan.plan.memory import inference_peak as peak_activation


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


# ---- branches: fire and inception, plain and memory-aware order (no BN: conv, bias, ReLU) ----

from effplan.design.blocks import FireArgs, InceptionArgs, Net, fire, inception  # noqa: E402
from effplan.plan.memory import (best_order_peak, inference_peak, largest_batch, memory_aware_order,  # noqa: E402
                            training_memory)

PLAIN = Net(act="relu", bn=False, bn_epsilon=1e-5, width=lambda c: c)


def test_fire_module_peaks_at_the_concat():
    # x 16x4x4 (256 elements); squeeze to 4 ch (64), expands of 8 ch (128 each), concat 16 ch (256).
    # squeeze conv: x + 64 = 320, x freed; relu: 64 + 64; expand1x1 conv: s + 128 = 192; relu: s + 128 + 128 = 320;
    # expand3x3 conv: s + e1 + 128 = 320, s freed; relu: e1 + 128 + 128 = 384; concat: e1 + e3 + 256 = 512.
    g = build((1, 16, 4, 4), lambda b, x: fire(b, x, 16, 1, FireArgs(squeeze=4), PLAIN))
    peak = inference_peak(g, 4)
    assert peak.bytes == 512 * 4
    assert peak.node == "stage1.block0.out.concat"
    assert set(peak.live) == {"stage1.block0.expand1x1.relu", "stage1.block0.expand3x3.relu",
                              "stage1.block0.out.concat"}


def inception_graph():
    # x 8x4x4 (128 elements, 16 per channel); branch widths: 1x1 -> 2 | reduce 16 -> 3x3 2 | reduce 2 -> 3x3 2 | pool -> 2
    args = InceptionArgs(branches=(2, 16, 2, 2, 2, 2), second_kernel=3)
    return build((1, 8, 4, 4), lambda b, x: inception(b, x, 0, 1, args, PLAIN))


def test_inception_plain_order_keeps_branch_one_alive_through_the_wide_reduce():
    # Plain order runs branch 1 first: at branch 2's reduce ReLU, x (128) + y1 (32) + reduce conv (256)
    # + its ReLU (256) are live = 672 elements.
    peak = inference_peak(inception_graph(), 4)
    assert peak.bytes == 672 * 4
    assert peak.node == "stage1.block0.branch2_reduce.relu"


def test_memory_aware_order_runs_the_wide_branch_first():
    # Branch 2 rises 512 above the 32 it leaves, the pool branch 160 above 32, branches 1 and 3 64 above 32:
    # branch 2 runs first, so y1 is not yet live at its peak: 128 + 256 + 256 = 640 elements.
    g = inception_graph()
    order = memory_aware_order(g)
    assert order[0] == "stage1.block0.branch2_reduce.conv"
    assert order.index("stage1.block0.branch4.pool") < order.index("stage1.block0.branch1.conv")
    plain, best = best_order_peak(g, 4)
    assert (plain.bytes, best.bytes) == (672 * 4, 640 * 4)
    assert best.node == "stage1.block0.branch2_reduce.relu"


def test_memory_aware_order_is_topological_on_every_builtin_model():
    from effplan import resolve
    from effplan.design.blocks import build as build_design
    from effplan.design.spec import builtin_spec_paths

    for name in builtin_spec_paths():
        g = build_design(resolve(name), 1)
        order = memory_aware_order(g)
        position = {n: i for i, n in enumerate(order)}
        assert len(position) == len(g)
        assert all(position[u] < position[v] for u, v in g.edges), name


# ---- inference options ----

def chain(b, x):
    y = conv(b, x, 16, 3, 1, "a")
    y = b.add("Relu", [y], "a", "relu")
    return conv(b, y, 16, 3, 2, "b")


def test_inplace_relu_reuses_its_input_buffer():
    # As test_chain, but the ReLU writes over the conv output: conv a 192 + 1024; ReLU 1024; conv b 1024 + 256.
    peak = inference_peak(build((1, 3, 8, 8), chain), 4, inplace=True)
    assert peak.bytes == 1280 * 4
    assert peak.node == "stage1.block0.b.conv"


def test_inplace_never_overwrites_the_graph_input():
    # A ReLU straight on the input must write a new tensor: 48 + 48.
    g = build((1, 3, 4, 4), lambda b, x: b.add("Relu", [x], "a", "relu"))
    assert inference_peak(g, 4, inplace=True).bytes == 96 * 4


def test_fused_se_multiply_is_never_stored():
    # x 32x7x7 (1568) -> SE (gate 32) -> scale -> 1x1 project conv to 16 (784).
    # Stored: the scale peaks with x + gate + product = 3168; the conv then holds product + 784.
    # Fused: the conv reads x and the gate: x + gate + 784 = 2384; the pool step holds x + 32.
    def body(b, x):
        return conv(b, squeeze_excite(b, x, 8, NET), 16, 1, 1, "project")
    g = build((1, 32, 7, 7), body)
    assert inference_peak(g, 1).bytes == 1568 + 32 + 1568
    fused = inference_peak(g, 1, fuse_se=True)
    assert fused.bytes == 1568 + 32 + 784
    assert fused.node == "stage1.block0.project.conv"


# ---- training ----

def test_training_memory_of_a_chain():
    # x 3x8x8 (192) -> conv a 16 (1024) -> ReLU (1024) -> conv b 16, stride 2 (256).
    # Saved: conv a its input x (192); ReLU its output (1024); conv b its input, the same ReLU output (once).
    # Params: 16*3*9 + 16*16*9 = 2736. Transient: the ReLU's output and input gradients, 2 * 1024.
    g = build((1, 3, 8, 8), chain)
    t = training_memory(g, "fp32", "adam")
    assert t.activation_bytes == (192 + 1024) * 4
    assert (t.weight_bytes, t.gradient_bytes, t.optimizer_bytes) == (2736 * 4, 2736 * 4, 2 * 2736 * 4)
    assert t.transient_bytes == 2048 * 4
    assert t.total_bytes == (1216 + 2736 * 4 + 2048) * 4
    mixed = training_memory(g, "mixed", "momentum")
    # half activations; fp32 master + half copy (6 bytes), fp32 gradients, one fp32 momentum slot
    assert (mixed.activation_bytes, mixed.weight_bytes, mixed.gradient_bytes, mixed.optimizer_bytes) == \
        (1216 * 2, 2736 * 6, 2736 * 4, 2736 * 4)


def test_batch_norm_saves_its_input_and_statistics_and_maxpool_its_indices():
    # x 4x4x4 (64) -> BN (64) -> MaxPool 2x2 s2 (4x2x2 = 16).
    # BN saves x (64) and 2 * 4 fp32 statistics; MaxPool saves its input (the BN output, 64) and 16 int64 indices.
    def body(b, x):
        from effplan.design.blocks import pool
        return pool(b, batch_norm(b, x, "a", NET), "MaxPool", 2, 2, "p", "pool", padding="valid")
    t = training_memory(build((1, 4, 4, 4), body), "fp32", "sgd")
    assert t.activation_bytes == (64 + 64) * 4 + 2 * 4 * 4 + 16 * 8
    assert t.optimizer_bytes == 0


def test_checkpointing_keeps_block_inputs_and_recomputes_blocks():
    from effplan import resolve
    from effplan.plan.profile import analyze
    from effplan.design.blocks import build as build_design

    design = resolve("mobilenet-v2")
    g = build_design(design, 2)
    plain = training_memory(g, "fp32", "sgd")
    ck = training_memory(g, "fp32", "sgd", "blocks")
    assert ck.activation_bytes < plain.activation_bytes
    assert ck.activation_bytes_without_checkpoint == plain.activation_bytes
    block_flops = sum(r.flops for r in analyze(design, 2).rows if isinstance(r.stage, int))
    assert ck.recompute_flops == block_flops
    assert (ck.weight_bytes, ck.gradient_bytes) == (plain.weight_bytes, plain.gradient_bytes)


# ---- the largest batch ----

def test_largest_batch_solves_an_affine_line():
    fit = largest_batch(lambda b: 1000 + 300 * b, 10_000)
    # 1000 + 300 * 30 = 10000 <= 10000 < 10300
    assert (fit.batch, fit.bytes_at_batch, fit.bytes_at_next_batch) == (30, 10_000, 10_300)
    assert (fit.fixed_bytes, fit.per_sample_bytes) == (1000, 300)
    assert largest_batch(lambda b: 1000 + 300 * b, 1200).batch == 0


# ---- Swish: one op (SiLU), though exported as Sigmoid then Mul ----

def swish_after_conv(b, x):
    from effplan.design.blocks import activation
    return activation(b, conv(b, x, 8, 1, 1, "a"), "swish", "a")


def test_swish_holds_its_input_and_output_not_the_gate():
    # x 4x4x4 (64) -> conv 8x4x4 (128) -> Swish (128). As one op the Swish holds the conv output
    # and its own (256); the Sigmoid's gate, 128 more if it were stored, never is.
    peak = inference_peak(build((1, 4, 4, 4), swish_after_conv), 4)
    assert peak.bytes == (128 + 128) * 4
    assert "stage1.block0.a.sigmoid" not in peak.live


def test_swish_saves_only_its_input_for_backward():
    # conv saves x (64); Swish saves the conv output (128), as torch.nn.SiLU does; nothing else.
    t = training_memory(build((1, 4, 4, 4), swish_after_conv), "fp32", "sgd")
    assert t.activation_bytes == (64 + 128) * 4
    # backward's largest op: Swish, its output gradient and input gradient (128 each)
    assert t.transient_bytes == (128 + 128) * 4


def test_the_se_gate_is_not_a_swish():
    # SE on x 32x7x7 (1568) with ReLU inside: the gate Sigmoid reads the expand conv, not the Mul's
    # other operand, so it stays a Sigmoid. Saved: pool nothing; reduce conv its input (32); ReLU its
    # output (8, which the expand conv also saves: once); Sigmoid its output (32); Mul both operands
    # (x 1568, and the gate already counted).
    g = build((1, 32, 7, 7), lambda b, x: squeeze_excite(b, x, 8, PLAIN))
    t = training_memory(g, "fp32", "sgd")
    assert t.activation_bytes == (32 + 8 + 32 + 1568) * 4
