"""Invariants over random designs (hypothesis)."""
import dataclasses
import math

from hypothesis import given, settings
from hypothesis import strategies as st

import effplan
from effplan.plan.profile import GROUPINGS, SUMMED

B0 = effplan.resolve("efficientnet-b0")
FAST = settings(max_examples=25, deadline=None)

depths = st.floats(1.0, 2.5)
widths = st.floats(0.5, 2.0)
sides = st.integers(32, 400)


def design(depth=1.0, width=1.0, resolution=224):
    return dataclasses.replace(B0, depth_mult=depth, width_mult=width, resolution=resolution)


def totals(d):
    return effplan.analyze(d).totals


@FAST
@given(depths, widths, sides, sides)
def test_params_do_not_depend_on_resolution(d, w, r1, r2):
    assert totals(design(d, w, r1)).params == totals(design(d, w, r2)).params


@FAST
@given(depths, depths, widths, sides)
def test_macs_grow_with_depth(d1, d2, w, r):
    lo, hi = sorted((d1, d2))
    assert totals(design(lo, w, r)).macs <= totals(design(hi, w, r)).macs


@FAST
@given(depths, widths, widths, sides)
def test_macs_grow_with_width(d, w1, w2, r):
    lo, hi = sorted((w1, w2))
    assert totals(design(d, lo, r)).macs <= totals(design(d, hi, r)).macs


@FAST
@given(depths, widths, sides, sides)
def test_macs_grow_with_resolution(d, w, r1, r2):
    lo, hi = sorted((r1, r2))
    assert totals(design(d, w, lo)).macs <= totals(design(d, w, hi)).macs


def spatial_conv_macs(d):
    """MACs of convs on feature maps (not the SE convs, which run on pooled 1x1 vectors)."""
    return sum(r.macs for r in effplan.analyze(d).rows if r.op == "Conv" and r.layer != "se")


@FAST
@given(depths, widths, st.integers(1, 12))
def test_doubling_the_side_quadruples_conv_macs_exactly_on_multiples_of_32(d, w, k):
    # every stride-2 stage halves a side divisible by 32 exactly, so each map has 4x the pixels
    assert spatial_conv_macs(design(d, w, 64 * k)) == 4 * spatial_conv_macs(design(d, w, 32 * k))


@FAST
@given(depths, widths, st.integers(192, 480))
def test_doubling_any_side_about_quadruples_conv_macs(d, w, r):
    # 'same' padding rounds odd sides up, so the small input is relatively larger: ratio <= 4
    ratio = spatial_conv_macs(design(d, w, 2 * r)) / spatial_conv_macs(design(d, w, r))
    assert 3.6 <= ratio <= 4.0


@FAST
@given(st.floats(0, 7), st.sampled_from(GROUPINGS), st.integers(1, 4))
def test_rows_sum_to_totals(phi, by, batch):
    p = effplan.analyze(effplan.compound(B0, phi), batch=batch)
    rows = p.group(by)
    for field in SUMMED:
        assert sum(getattr(r, field) for r in rows) == getattr(p.totals, field)


@FAST
@given(st.floats(0, 5), st.integers(1, 8))
def test_batch_scales_macs_and_activations_not_params(phi, batch):
    d = effplan.compound(B0, phi)
    one, many = effplan.analyze(d).totals, effplan.analyze(d, batch=batch).totals
    assert many.params == one.params and many.weight_bytes == one.weight_bytes
    assert many.macs == batch * one.macs
    assert many.peak_activation_bytes == batch * one.peak_activation_bytes


@FAST
@given(st.floats(0, 7))
def test_peak_is_at_least_the_largest_op_and_at_most_all_tensors(phi):
    p = effplan.analyze(effplan.compound(B0, phi))
    tensors, nodes = p.graph.graph["tensors"], p.graph.nodes(data=True)
    # Swish, x * Sigmoid(x), is one op holding x and its output: its gate is not a stored tensor
    muls = {frozenset(m["inputs"]) for _, m in nodes if m["op"] == "Mul"}
    gates = {n for n, d in nodes if d["op"] == "Sigmoid" and frozenset((d["inputs"][0], n)) in muls}
    largest_op = max(sum(math.prod(tensors[t]) for t in {*node["inputs"], *node["outputs"]} - gates)
                     for _, node in nodes) * 4
    all_tensors = sum(r.output_bytes for r in p.rows) + 4 * 3 * p.design.resolution ** 2
    assert largest_op <= p.totals.peak_activation_bytes <= all_tensors


# ---- memory ----

BRANCHY = ["efficientnet-b0", "mobilenet-v2", "resnet-18", "googlenet", "squeezenet-1.1", "shufflenet-v2"]
models = st.sampled_from(BRANCHY)
small_sides = st.integers(32, 160)


def graph_at(name, resolution, batch):
    from effplan.design.blocks import build
    return build(dataclasses.replace(effplan.resolve(name), resolution=resolution), batch)


@FAST
@given(models, small_sides, st.sampled_from(["fp32", "mixed", "bf16"]), st.sampled_from(["sgd", "adamw"]))
def test_training_activations_are_linear_in_batch(name, side, precision, optimizer):
    from effplan.plan.memory import training_memory
    act = [training_memory(graph_at(name, side, b), precision, optimizer).activation_bytes for b in (1, 2, 3)]
    assert act[2] - act[1] == act[1] - act[0] > 0  # a line: saved tensors scale, BN statistics do not


@FAST
@given(models, small_sides)
def test_checkpointing_never_increases_memory_and_recomputes_each_block_once(name, side):
    from effplan.plan.memory import training_memory
    g = graph_at(name, side, 1)
    plain, ck = training_memory(g, "fp32", "sgd"), training_memory(g, "fp32", "sgd", "blocks")
    assert ck.total_bytes <= plain.total_bytes
    p = effplan.plan.profile.profile(g)
    assert ck.recompute_flops == sum(r.flops for r in p.rows if isinstance(r.stage, int))


@FAST
@given(models, small_sides, st.integers(1 << 24, 1 << 31), st.booleans())
def test_fit_returns_the_largest_batch_within_the_budget(name, side, budget, train):
    """memory(b) is recomputed from a graph built at batch b, not from the solver's line."""
    from effplan.plan.memory import inference_peak, largest_batch, training_memory

    def at_batch(b):  # independent: a graph really built at batch b
        g = graph_at(name, side, b)
        if train:
            return training_memory(g, "mixed", "adamw").total_bytes
        weights = sum(w.size for _, n in g.nodes(data=True) for w in n["weights"]) * 4
        return weights + inference_peak(g, 4).bytes

    g1 = graph_at(name, side, 1)
    if train:
        fit = largest_batch(lambda b: training_memory(g1, "mixed", "adamw", scale=b).total_bytes, budget)
    else:
        weights = sum(w.size for _, n in g1.nodes(data=True) for w in n["weights"]) * 4
        fit = largest_batch(lambda b: weights + inference_peak(g1, 4, scale=b).bytes, budget)
    assert at_batch(fit.batch + 1) > budget
    if fit.batch:
        assert at_batch(fit.batch) <= budget


@FAST
@given(models, small_sides, st.booleans(), st.booleans())
def test_memory_options_never_raise_the_peak(name, side, inplace, fuse_se):
    from effplan.plan.memory import best_order_peak, inference_peak
    g = graph_at(name, side, 1)
    plain = inference_peak(g, 4)
    assert inference_peak(g, 4, inplace=inplace, fuse_se=fuse_se).bytes <= plain.bytes
    assert best_order_peak(g, 4)[1].bytes <= plain.bytes
