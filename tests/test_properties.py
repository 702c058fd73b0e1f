"""Invariants over random designs (hypothesis)."""
import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

import effplan
from effplan.analysis import GROUPINGS, SUMMED

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
    largest_output = max(r.output_bytes for r in p.rows)
    all_tensors = sum(r.output_bytes for r in p.rows) + 4 * 3 * p.design.resolution ** 2
    assert largest_output <= p.totals.peak_activation_bytes <= all_tensors
