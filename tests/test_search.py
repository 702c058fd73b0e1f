"""Search: the vectorised path equals the graph path, the grid search equals brute force, largest φ."""
import dataclasses
import itertools

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import effplan
from effplan.analysis import analyze
from effplan.blocks import build
from effplan.hardware import load_device
from effplan.memory import training_memory
from effplan.roofline import roofline
from effplan.scaling import base_design
from effplan.search import Constraints, NoFit, coefficient_grid, evaluate, grid_search, largest_phi

MODELS = ["efficientnet-b0", "mobilenet-v2", "resnet-18", "shufflenet-v2", "googlenet", "squeezenet-1.1",
          "efficientnetv2-b0", "mobilenet-v1"]
T4 = load_device("t4")


def base(name):
    return base_design(effplan.resolve(name).spec)


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(MODELS), st.floats(1.0, 2.0), st.floats(0.5, 1.6),
       st.lists(st.integers(64, 256), min_size=1, max_size=4, unique=True), st.integers(1, 3))
def test_vectorised_path_equals_graph_path(name, depth, width, sides, batch):
    design = dataclasses.replace(base(name), depth_mult=depth, width_mult=width)
    try:
        build(dataclasses.replace(design, resolution=min(sides)))
    except effplan.EffplanError:
        assume(False)  # too deep for its smallest input (GoogLeNet's pools at depth 2): not a design
    f = evaluate(design, sides, batch, "fp16", T4, ("mixed", "adamw"))
    for i, side in enumerate(sides):
        graph = build(dataclasses.replace(design, resolution=side), batch)
        p = analyze(dataclasses.replace(design, resolution=side), batch, "fp16").totals
        assert (f.macs[i], f.flops[i], f.params, f.weight_bytes, f.peak_bytes[i]) == \
            (p.macs, p.flops, p.params, p.weight_bytes, p.peak_activation_bytes)
        assert f.training_bytes[i] == training_memory(graph, "mixed", "adamw").total_bytes
        assert f.latency_s[i] == pytest.approx(roofline(graph, T4, "fp16", batch).latency_s, rel=1e-12)


def brute_force(design, depths, widths, sides, limits):
    """Every grid design through the graph path; the feasible one with the most MACs
    (ties: smallest resolution, depth, width)."""
    best = None
    for d, w, r in itertools.product(depths, widths, sides):
        p = analyze(dataclasses.replace(design, depth_mult=d, width_mult=w, resolution=r))
        t = p.totals
        if t.macs <= limits["max_macs"] and t.weight_bytes + t.peak_activation_bytes <= limits["max_inference_memory"]:
            key = (-t.macs, r, d, w)
            best = min(best, key) if best else key
    return best


@pytest.mark.parametrize("name", ["mobilenet-v2", "squeezenet-1.1"])
def test_grid_search_agrees_with_brute_force(name):
    design = base(name)
    depths, widths, sides = [1.0, 1.4, 1.8], [0.75, 1.0, 1.25], np.array([96, 128, 160, 192])
    limits = {"max_macs": 4e8, "max_inference_memory": 30 * 2**20}
    ranked, stats = grid_search(design, depths, widths, sides, Constraints(limits), lambda m: np.asarray(m, float), 3)
    assert stats["evaluated"] == 36
    macs, r, d, w = brute_force(design, depths, widths, sides, limits)
    top = ranked[0]
    assert (top["macs"], top["resolution"], top["depth_mult"], top["width_mult"]) == (-macs, r, d, w)
    for found in ranked:  # rebuilt through the graph path, each really meets its limits
        t = analyze(dataclasses.replace(design, depth_mult=found["depth_mult"], width_mult=found["width_mult"],
                                        resolution=found["resolution"])).totals
        assert t.macs <= 4e8 and t.weight_bytes + t.peak_activation_bytes <= 30 * 2**20


@settings(max_examples=8, deadline=None)
@given(st.sampled_from(["efficientnet-b0", "mobilenet-v2"]), st.floats(3e8, 3e9), st.floats(4e6, 4e7))
def test_largest_phi_fits_and_the_next_step_does_not(name, max_macs, max_params):
    design = base(name)
    limits = {"max_macs": max_macs, "max_params": max_params}
    found = largest_phi(design, Constraints(limits))
    fits = lambda phi: (lambda t: t.macs <= max_macs and t.params <= max_params)(  # noqa: E731
        analyze(effplan.compound(design, phi)).totals)
    if found is None:
        assert not fits(0)
        return
    assert fits(found["phi"]) and (found["phi"] >= 16 or not fits(found["phi"] + 0.01))
    grid = [phi for phi in np.arange(0, 8, 0.25) if fits(float(phi))]
    assert max(grid) <= found["phi"] + 0.01  # no grid point beyond it fits


def test_no_design_fits_names_the_smallest(effplan):
    run = effplan("search", "efficientnet-b0", "--max-params", "1M", "--depth", "1..1.2", "--width", "1..1.1")
    assert run.code == 1
    assert "no design fits" in run.err and "params 5.289M" in run.err  # B0's published 5,288,548


def test_search_json_is_ranked_best_first(effplan):
    run = effplan("search", "mobilenet-v2", "--max-macs", "0.6G", "--max-inference-memory", "64MiB",
                  "--depth", "1..1.5:0.25", "--width", "1..1.4:0.2", "--resolution", "160..256:32", "--format", "json")
    assert run.code == 0, run.err
    designs = run.json()
    assert designs and all({"depth_mult", "width_mult", "resolution", "macs", "params", "inference_bytes"} <= set(d)
                           for d in designs)
    assert [d["score"] for d in designs] == sorted((d["score"] for d in designs), reverse=True)
    assert all(d["macs"] <= 6e8 and d["inference_bytes"] <= 64 * 2**20 for d in designs)
    assert {d["search"] for d in designs} == {"grid", "phi"}


def test_mnas_objective_uses_the_accuracy_estimate(effplan):
    from pathlib import Path
    accuracy = str(Path(__file__).resolve().parent.parent / "examples" / "accuracy-efficientnet.toml")
    run = effplan("search", "efficientnet-b0", "--max-macs", "1G", "--objective", "mnas", "--accuracy", accuracy,
                  "--depth", "1..1.4:0.2", "--width", "1..1.2:0.1", "--resolution", "224..288:32", "--format", "json")
    assert run.code == 0, run.err
    top = run.json()[0]
    # ACC x (MACs / T)^-0.07 with ACC interpolated in log MACs between the paper's (0.70G, 79.1) and (1.0G, 80.1)
    acc = np.interp(np.log(top["macs"]), np.log([0.39e9, 0.70e9, 1.0e9]), [77.1, 79.1, 80.1])
    assert top["score"] == pytest.approx(acc * (top["macs"] / 1e9) ** -0.07)


def test_coefficient_grid_contains_the_papers_choice():
    b0 = base("efficientnet-b0")
    rows = coefficient_grid(b0, 0.1)
    assert all(abs(r["flops_factor"] - 2) <= 0.1 + 1e-9 and min(r["alpha"], r["beta"], r["gamma"]) >= 1 for r in rows)
    paper = next(r for r in rows if (r["alpha"], r["beta"], r["gamma"]) == (1.2, 1.1, 1.15))
    expected = analyze(effplan.compound(b0, 1)).totals.macs / analyze(b0).totals.macs
    assert paper["macs_ratio"] == pytest.approx(expected) and paper["resolution"] == 258


@pytest.mark.parametrize("args, message", [
    (["--max-macs", "lots"], "not a number"),
    (["--max-macs", "1GG"], "unknown unit"),
    ([], "at least one constraint"),
    (["--max-latency", "1ms"], "need --device"),
    (["--max-macs", "1G", "--objective", "mnas"], "needs --accuracy"),
    (["--max-macs", "1G", "--depth", "3..1"], "--depth"),
])
def test_bad_search_input_exit_2(effplan, args, message):
    run = effplan("search", "efficientnet-b0", *args)
    assert run.code == 2
    assert message in run.err and len(run.err.strip().splitlines()) == 1


def test_search_with_latency_on_a_device(effplan):
    run = effplan("search", "mobilenet-v2", "--device", "t4", "--max-latency", "1ms", "--depth", "1..1.5:0.25",
                  "--width", "1..1.4:0.2", "--format", "json")
    assert run.code == 0, run.err
    for d in run.json():
        design = dataclasses.replace(base("mobilenet-v2"), depth_mult=d["depth_mult"], width_mult=d["width_mult"],
                                     resolution=d["resolution"])
        assert roofline(build(design), T4, "fp32").latency_s <= 1e-3
