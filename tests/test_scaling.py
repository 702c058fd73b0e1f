"""Compound scaling and the official rounding rules, with hand-worked values."""
import math

import pytest

import effplan
from effplan.design.scaling import Rounding, compound, resolve, round_channels, round_repeats, scaled_resolution

OFFICIAL = Rounding(divisor=8, min_channels=8, limit=0.9)


@pytest.mark.parametrize("channels, width, expected", [
    (32, 1.0, 32),
    (32, 1.1, 32),    # 35.2: int(39.2) // 8 * 8 = 32, and 32 >= 0.9 * 35.2
    (16, 1.331, 24),  # 21.3: int(25.3) // 8 * 8 = 24
    (40, 1.1, 48),    # 44.0: int(48.0) // 8 * 8 = 48 (B2's 48)
    (80, 1.1, 88),    # 88.0 (B2's 88)
    (112, 1.4, 160),  # 156.8: int(160.8) // 8 * 8 = 160 (B4's 160)
    (1280, 1.331, 1704),
    (4, 0.5, 8),      # never below min_channels
    (20, 1.0, 24),    # 20: int(24) // 8 * 8 = 24
    (12, 1.0, 16),    # 12: int(16)//8*8 = 16
    (60, 0.25, 16),   # 15: int(19)//8*8 = 16
    (36, 1.0, 40),    # 36: int(40) = 40
    (100, 1.0, 104),  # 100: int(104) = 104
    (44, 1.0, 48),    # 44: 48
    (43, 1.0, 40),    # 43: int(47)//8*8 = 40 >= 38.7
])
def test_round_channels(channels, width, expected):
    assert round_channels(channels, width, OFFICIAL) == expected


def test_round_channels_never_more_than_ten_percent_down():
    # divisor 16: 39 -> int(39 + 8) // 16 * 16 = 32, which is below 0.9 * 39 = 35.1, so add 16
    coarse = Rounding(divisor=16, min_channels=16, limit=0.9)
    assert round_channels(39, 1.0, coarse) == 48


def test_repeats_at_phi_one():
    # d = 1.2 on B0's repeats (1, 2, 2, 3, 3, 4, 1)
    base = (1, 2, 2, 3, 3, 4, 1)
    assert [round_repeats(r, 1.2, "ceil") for r in base] == [2, 3, 3, 4, 4, 5, 2]
    assert [round_repeats(r, 1.2, "round") for r in base] == [1, 2, 2, 4, 4, 5, 1]


def test_formula_design_at_phi_one():
    d = compound(resolve("efficientnet-b0"), 1.0)
    assert d.depth_mult == pytest.approx(1.2) and d.width_mult == pytest.approx(1.1)
    assert d.resolution == 258  # 224 * 1.15 = 257.6, half up
    assert scaled_resolution(224, 1.15, 2) == round(224 * 1.15**2)  # 296.24 -> 296


def test_phi_one_costs_more_than_two_x_because_of_ceilings():
    """alpha*beta^2*gamma^2 = 1.92 promises ~2x; ceil on one-repeat stages gives ~2.57x."""
    base = effplan.analyze(resolve("efficientnet-b0")).totals.macs
    ceil = effplan.analyze(compound(resolve("efficientnet-b0"), 1.0)).totals.macs
    rounded = effplan.analyze(effplan.with_overrides(compound(resolve("efficientnet-b0"), 1.0),
                                                     depth_rounding="round")).totals.macs
    assert 2.4 < ceil / base < 2.7
    assert 1.9 < rounded / base < 2.2


def test_published_b1_is_not_the_formula():
    b1 = resolve("efficientnet-b1")
    assert (b1.depth_mult, b1.width_mult, b1.resolution) == (1.1, 1.0, 240)
    assert b1.coefficients == "published"


def test_phi_bounds():
    for bad in (-1, 1e9, math.nan, math.inf):
        with pytest.raises(effplan.EffplanError):
            compound(resolve("efficientnet-b0"), bad)


def test_published_design_refuses_phi():
    with pytest.raises(effplan.EffplanError, match="published"):
        compound(resolve("efficientnet-b4"), 1)


def test_flops_factor_of_the_paper():
    c = effplan.Coefficients(1.2, 1.1, 1.15)
    assert c.flops_factor == pytest.approx(1.2 * 1.21 * 1.3225)


def test_a_design_moved_by_hand_drops_its_phi_label(effplan):
    published = effplan("table", "efficientnet-b3", "--format", "json").json()[0]
    moved = effplan("table", "efficientnet-b3", "--width-mult", "1.0", "--format", "json").json()[0]
    same = effplan("table", "efficientnet-b3", "--width-mult", "1.2", "--format", "json").json()[0]
    assert (published["phi"], published["coefficients"]) == (3, "published")
    assert (moved["phi"], moved["coefficients"], moved["two_pow_phi"]) == (None, "custom", None)
    assert (same["phi"], same["coefficients"]) == (3, "published")  # B3's own width: nothing moved
