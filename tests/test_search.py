"""Search: the vectorised path equals the graph path, the grid search equals brute force, largest φ."""
import dataclasses
import functools
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import effplan
from effplan.gate import grid, search
from effplan.plan.profile import profile
from effplan.design.blocks import build
from effplan.plan.hardware import load_device
from effplan.plan.memory import training_memory
from effplan.plan.roofline import roofline
from effplan.design.scaling import base_design
from effplan.gate.search import Constraints, coefficient_grid, evaluate_grid, grid_search, largest_phi

# every shortcut (resolution, width, depth) holds for these; the sides of the last two do not follow
# ceil(r / stride) (valid padding, ceil-mode pools), so they are built design by design
VECTORISED = ["efficientnet-b0", "mobilenet-v2", "resnet-18", "shufflenet-v2", "efficientnetv2-b0", "mobilenet-v1",
              "mnasnet-a1", "shufflenet-v1"]
ONE_BY_ONE = ["googlenet", "squeezenet-1.1"]
T4 = load_device("t4")
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def base(name):
    return base_design(effplan.resolve(name).spec)


def test_which_models_take_which_path():
    for name in VECTORISED:
        assert grid._sides_follow_strides(base(name)) and grid._repeats_hold(base(name), "fp32", None), name
    for name in ONE_BY_ONE:
        assert not grid._sides_follow_strides(base(name)), name


def graph_figures(design, batch, training):
    """Every figure of one design through the graph path (None where it does not build)."""
    try:
        graph = build(design, batch)
    except effplan.EffplanError:
        return None
    t = profile(graph, None, batch, "fp16").totals
    return ((t.macs, t.flops, t.params, t.weight_bytes, t.peak_activation_bytes),
            roofline(graph, T4, "fp16", batch).latency_s,
            training_memory(graph, "mixed", "adamw").total_bytes if training else None)


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(VECTORISED + ONE_BY_ONE), st.lists(st.floats(1.0, 2.5), min_size=1, max_size=2, unique=True),
       st.lists(st.floats(0.5, 1.6), min_size=1, max_size=3, unique=True),
       st.lists(st.integers(24, 256), min_size=1, max_size=3, unique=True), st.integers(1, 3), st.booleans())
def test_vectorised_path_equals_graph_path(name, depths, widths, sides, batch, training):
    """Several depths and widths at once (stacked widths, the depth template), with latency, and with
    training memory (a graph per depth); designs the graph path refuses are not built either."""
    design = base(name)
    g = evaluate_grid(design, depths, widths, sides, batch, "fp16", T4, ("mixed", "adamw") if training else None)
    for (i, d), (j, w), (k, r) in itertools.product(enumerate(depths), enumerate(widths), enumerate(sides)):
        want = graph_figures(dataclasses.replace(design, depth_mult=d, width_mult=w, resolution=r), batch, training)
        assert g.built[i, j, k] == (want is not None), (d, w, r, g.skipped)
        if want is None:
            continue
        exact, latency, train = want
        assert tuple(int(f[i, j, k]) for f in (g.macs, g.flops, g.params, g.weight_bytes, g.peak_bytes)) == exact
        assert g.latency_s[i, j, k] == pytest.approx(latency, rel=1e-12)
        if training:
            assert g.training_bytes[i, j, k] == train


def test_smallest_resolution_is_skipped_with_its_reason():
    # MobileNetV2 halves the side five times (stem, stages 2, 3, 4, 6), each a stride-2 3x3 conv that
    # needs an input at least 2 px wide; the fifth sees ceil(r / 16): r >= 17 builds, r = 16 does not
    g = evaluate_grid(base("mobilenet-v2"), [1.0, 1.5], [1.0], [16, 17])
    assert g.built[:, 0].tolist() == [[False, True], [False, True]]
    (reason, count), = g.skipped.items()
    assert count == 2 and "resolution 16 is too small" in reason


WIDE = """name = "wide"
description = "two 3x3 convs of 2^20 channels"
source = "test"
resolution = 32
activation = "relu"
[[stem]]
block = "conv"
channels = 1048576
kernel = 3
stride = 2
[[stages]]
block = "conv"
channels = 1048576
kernel = 3
[classifier]
classes = 10
"""


def test_figures_beyond_exact_floats_are_skipped_not_wrapped(tmp_path):
    path = tmp_path / "wide.toml"
    path.write_text(WIDE)
    design = base_design(effplan.load_spec(path))
    g = evaluate_grid(design, [1.0], [1.0], [8, 2048])
    # at 2048 px the stage conv alone has 1024^2 outputs x 2^20 channels x 2^20 inputs x 9 = 9 * 2^60 MACs,
    # beyond int64 (2^63): an int64 sum would wrap; the design is skipped, with the reason
    big = profile(build(dataclasses.replace(design, resolution=2048))).totals.macs
    assert big > 9 * 2**60 > 2**63
    assert g.built[0, 0].tolist() == [True, False] and "beyond 2^53" in next(iter(g.skipped))
    small = profile(build(dataclasses.replace(design, resolution=8))).totals
    assert (g.macs[0, 0, 0], g.params[0, 0, 0]) == (small.macs, small.params)


def brute_force(design, depths, widths, sides, limits):
    """Every grid design through the graph path: the feasible ones' (macs, inference bytes)."""
    feasible = {}
    for d, w, r in itertools.product(depths, widths, sides):
        try:
            t = effplan.analyze(dataclasses.replace(design, depth_mult=d, width_mult=w, resolution=r)).totals
        except effplan.EffplanError:
            continue
        memory = t.weight_bytes + t.peak_activation_bytes
        if t.macs <= limits["max_macs"] and memory <= limits["max_inference_memory"]:
            feasible[d, w, r] = (t.macs, memory)
    return feasible


@pytest.mark.parametrize("name", ["mobilenet-v2", "squeezenet-1.1"])
def test_grid_search_agrees_with_brute_force(name):
    design = base(name)
    depths, widths, sides = [1.0, 1.4, 1.8], [0.75, 1.0, 1.25], np.array([16, 96, 128, 160, 192])
    limits = {"max_macs": 4e8, "max_inference_memory": 30 * 2**20}
    ranked, stats = grid_search(design, depths, widths, sides, Constraints(limits), lambda m: np.asarray(m, float), 3)
    feasible = brute_force(design, depths, widths, sides, limits)
    # the best: most MACs; ties to the smallest resolution, depth, width
    (d, w, r), _ = min(feasible.items(), key=lambda kv: (-kv[1][0], kv[0][2], kv[0][0], kv[0][1]))
    top = ranked[0]
    assert (top["resolution"], top["depth_mult"], top["width_mult"]) == (r, d, w)
    built = sum(1 for d, w, r in itertools.product(depths, widths, sides) if buildable(design, d, w, r))
    assert stats["evaluated"] == built and stats["skipped"] == 45 - built and stats["screened_in"] == len(feasible)
    # the front, over every feasible design: no feasible design has at least its MACs in less memory
    points = set(feasible.values())
    front = {p for p in points if not any(q[0] >= p[0] and q[1] <= p[1] and q != p for q in points)}
    assert {(f["macs"], f["inference_bytes"]) for f in stats["front"]} == front
    for found in ranked:  # rebuilt through the graph path, each really meets its limits
        assert feasible[found["depth_mult"], found["width_mult"], found["resolution"]][0] == found["macs"]


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 3).flatmap(lambda k: st.lists(st.tuples(*[st.integers(0, 6)] * k), min_size=1, max_size=40)))
def test_front_is_every_unbeaten_point(rows):
    points = np.array(rows, dtype=float)
    beaten = {i for i, p in enumerate(rows) for q in rows if q != p and all(a >= b for a, b in zip(q, p))}
    first_of = {}
    for i, p in enumerate(rows):
        if i not in beaten:
            first_of.setdefault(p, i)  # of equal points, the first
    assert sorted(search._front(points)) == sorted(first_of.values())


def buildable(design, d, w, r):
    try:
        build(dataclasses.replace(design, depth_mult=d, width_mult=w, resolution=r))
        return True
    except effplan.EffplanError:
        return False


@functools.lru_cache(maxsize=None)
def macs_and_params(name, phi):
    """Through the graph path; the same grid points recur across examples, each is built once."""
    t = effplan.analyze(effplan.compound(base(name), phi)).totals
    return t.macs, t.params


@settings(max_examples=8, deadline=None)
@given(st.sampled_from(["efficientnet-b0", "mobilenet-v2"]), st.floats(3e8, 3e9), st.floats(4e6, 4e7))
def test_largest_phi_fits_and_the_next_step_does_not(name, max_macs, max_params):
    design = base(name)
    limits = {"max_macs": max_macs, "max_params": max_params}
    found = largest_phi(design, Constraints(limits))
    fits = lambda phi: (lambda macs, params: macs <= max_macs and params <= max_params)(  # noqa: E731
        *macs_and_params(name, phi))
    if found is None:
        assert not fits(0)
        return
    assert fits(found["phi"]) and (found["phi"] >= 16 or not fits(found["phi"] + 0.01))
    beyond = [float(phi) for phi in np.arange(0, 8, 0.25) if phi > found["phi"] + 0.01]
    assert not any(fits(phi) for phi in beyond)  # no grid point beyond it fits (those below need no look)


def test_no_design_fits_names_the_smallest(effplan):
    run = effplan("search", "efficientnet-b0", "--max-params", "1M", "--depth", "1..1.2", "--width", "1..1.1")
    assert run.code == 1
    assert "no design fits" in run.err and "params 5.289M" in run.err  # B0's published 5,288,548


def test_phi_is_reported_when_no_grid_design_fits(effplan):
    # every grid design is at least depth 2 x width 1.5^2 = 4.5x B0's 0.39G; phi = 0 is B0 itself
    run = effplan("search", "efficientnet-b0", "--max-macs", "0.5G", "--depth", "2..3", "--width", "1.5..2")
    assert run.code == 0, run.err
    assert "no grid design fits" in run.out
    designs = effplan("search", "efficientnet-b0", "--max-macs", "0.5G", "--depth", "2..3", "--width", "1.5..2",
                      "--format", "json").json()
    assert [d["search"] for d in designs] == ["phi"] and designs[0]["macs"] <= 5e8


def test_search_json_is_ranked_best_first_and_marks_the_front(effplan):
    run = effplan("search", "mobilenet-v2", "--max-macs", "0.6G", "--max-inference-memory", "64MiB",
                  "--depth", "1..1.5:0.25", "--width", "1..1.4:0.2", "--resolution", "160..256:32", "--format", "json")
    assert run.code == 0, run.err
    designs = run.json()
    assert designs and all({"depth_mult", "width_mult", "resolution", "macs", "params", "inference_bytes"} <= set(d)
                           for d in designs)
    assert [d["score"] for d in designs] == sorted((d["score"] for d in designs), reverse=True)
    assert all(d["macs"] <= 6e8 and d["inference_bytes"] <= 64 * 2**20 for d in designs)
    assert {d["search"] for d in designs} == {"grid", "phi"}
    assert all(isinstance(d["pareto"], bool) for d in designs)
    # the most MACs within the limits cannot be beaten on MACs: it is on the front
    assert designs[0]["pareto"] is True


def test_text_prints_the_front_as_a_table(effplan):
    out = effplan("search", "mobilenet-v2", "--max-macs", "0.6G", "--depth", "1,1.5", "--width", "1",
                  "--resolution", "160,224").out
    front = out.split("# Pareto front", 1)[1].splitlines()
    front = front[next(i for i, line in enumerate(front) if line.startswith("search")) - 1:]  # the title may wrap
    assert front[1].split()[:5] == ["search", "φ", "d", "w", "res"] and set(front[2]) <= {"-", " "}


def test_mnas_objective_by_hand(tmp_path):
    points = tmp_path / "acc.toml"
    points.write_text('[[point]]\nmacs = "1G"\ntop1 = 70\n[[point]]\nmacs = "4G"\ntop1 = 80\n')
    score = search.objective("mnas", {"max_macs": 4e9}, str(points), -0.5)
    # 2G lies halfway between 1G and 4G in log MACs: ACC 75; (2G / 4G)^-0.5 = sqrt 2.
    # Below the first point ACC holds at 70: 0.5G gives 70 x 8^0.5; above the last, 80: 8G gives 80 x 2^-0.5
    assert score(np.array([2e9, 0.5e9, 8e9])) == pytest.approx([75 * 2**0.5, 70 * 8**0.5, 80 / 2**0.5])


def test_mnas_objective_ranks_the_search(effplan):
    run = effplan("search", "efficientnet-b0", "--max-macs", "1G", "--objective", "mnas", "--accuracy",
                  str(EXAMPLES / "accuracy-efficientnet.toml"), "--depth", "1..1.4:0.2", "--width", "1..1.2:0.1",
                  "--resolution", "224..288:32", "--format", "json")
    assert run.code == 0, run.err
    scores = [d["score"] for d in run.json()]
    assert scores == sorted(scores, reverse=True)


def test_coefficient_grid_contains_the_papers_choice():
    b0 = base("efficientnet-b0")
    rows = coefficient_grid(b0, 0.1)
    assert all(abs(r["flops_factor"] - 2) <= 0.1 + 1e-9 and min(r["alpha"], r["beta"], r["gamma"]) >= 1 for r in rows)
    paper = next(r for r in rows if (r["alpha"], r["beta"], r["gamma"]) == (1.2, 1.1, 1.15))
    expected = effplan.analyze(effplan.compound(b0, 1)).totals.macs / effplan.analyze(b0).totals.macs
    assert paper["macs_ratio"] == pytest.approx(expected) and paper["resolution"] == 258


def test_a_grid_with_unbuildable_points_searches_the_rest(effplan):
    run = effplan("search", "mobilenet-v2", "--max-macs", "1G", "--resolution", "16,224", "--depth", "1",
                  "--width", "1")
    assert run.code == 0, run.err
    assert "1 grid design could not be built" in run.out and "resolution 16 is too small" in run.out


@pytest.mark.parametrize("args, message", [
    (["--max-macs", "lots"], "not a number"),
    (["--max-macs", "1GG"], "unknown unit"),
    ([], "at least one constraint"),
    (["--max-latency", "1ms"], "need --device"),
    (["--max-macs", "1G", "--objective", "mnas"], "needs --accuracy"),
    (["--max-macs", "1G", "--depth", "3..1"], "--depth"),
    (["--max-macs", "1G", "--resolution", "224,20000", "--depth", "1", "--width", "1"], "20000 is outside [1, 16384]"),
    (["--max-macs", "1G", "--depth", "1e9"], "--depth: 1e+09 is outside (0, 64]"),
    (["--max-macs", "1G", "--resolution", "1..100000:1"], "is outside [1, 16384]"),
    (["--max-macs", "1G", "--resolution", "1.5"], "whole pixels"),
    (["--max-macs", "1G", "--resolution", "0.5"], "whole pixels"),
    (["--max-macs", "1G", "--resolution", "8", "--depth", "1", "--width", "1"], "none of the grid's 1 designs"),
    (["--max-macs", "1G", "--depth", "1..3:0.001", "--width", "1..2:0.001"], "at most 1,000,000"),
    (["--max-macs", "1G", "--objective", "mnas", "--accuracy", str(EXAMPLES / "accuracy-efficientnet.toml"),
      "--mnas-w", "nan"], "--mnas-w"),
    (["--max-macs", "1G", "--accuracy", str(EXAMPLES / "accuracy-efficientnet.toml")], "--objective mnas"),
])
def test_bad_search_input_exit_2(effplan, args, message):
    run = effplan("search", "efficientnet-b0", *args)
    assert run.code == 2, run.out
    assert message in run.err and len(run.err.strip().splitlines()) == 1


def test_published_names_are_refused(effplan):
    run = effplan("search", "efficientnet-b4", "--max-macs", "5G")
    assert run.code == 2 and "published design" in run.err and "effplan search efficientnet-b0" in run.err


@pytest.mark.parametrize("text, message", [
    ('[[point]]\nmacs = "1G"\ntop1 = nan\n[[point]]\nmacs = "2G"\ntop1 = 80\n', "point[0].top1"),
    ('[[point]]\nmacs = "1G"\ntop1 = 70\nacc = 1\n[[point]]\nmacs = "2G"\ntop1 = 80\n', "unknown key 'acc'"),
    ('[[points]]\nmacs = "1G"\ntop1 = 70\n', "unknown key 'points'"),
    ('[[point]]\nmacs = "1G"\ntop1 = 70\n[[point]]\nmacs = "1G"\ntop1 = 80\n', "same macs"),
    ('[[point]]\nmacs = "0"\ntop1 = 70\n[[point]]\nmacs = "1G"\ntop1 = 80\n', "point[0].macs"),
])
def test_bad_accuracy_files_exit_2(effplan, tmp_path, text, message):
    path = tmp_path / "acc.toml"
    path.write_text(text)
    run = effplan("search", "efficientnet-b0", "--max-macs", "1G", "--objective", "mnas", "--accuracy", str(path))
    assert run.code == 2 and message in run.err and len(run.err.strip().splitlines()) == 1


def test_search_with_latency_on_a_device(effplan):
    run = effplan("search", "mobilenet-v2", "--device", "t4", "--max-latency", "1ms", "--depth", "1..1.5:0.25",
                  "--width", "1..1.4:0.2", "--format", "json")
    assert run.code == 0, run.err
    designs = run.json()
    for d in designs:
        design = dataclasses.replace(base("mobilenet-v2"), depth_mult=d["depth_mult"], width_mult=d["width_mult"],
                                     resolution=d["resolution"])
        assert d["dtype"] == "fp16"  # no --dtype: the T4's half precision, as every command on a device
        assert roofline(build(design), T4, "fp16").latency_s <= 1e-3
    assert json.dumps(designs)  # plain JSON
