"""The calibration loop's logic, without timing anything: rounds and spread, load and spread
warnings, the calibration network's figures from injected profiles, the measured totals, and
onnxruntime-cpu's layout reorders counted against onnxruntime's own optimized graphs."""
import collections

import pytest

from effplan.cli.options import designs_from
from effplan.design.blocks import build
from effplan.plan import measure
from effplan.plan.hardware import load_device
from effplan.plan.reorders import nchwc_reorders
from effplan.plan.roofline import kernel_groups, roofline


def test_rounds_take_the_best_round_and_report_the_spread():
    # one warm-up, then 3 rounds of 2 runs: bests 1.0, 2.0, 1.1 -> the best round 1.0, the median
    # round 1.1: spread 1.1 / 1.0 - 1 = 0.1
    values = iter([9.0, 1.0, 1.2, 3.0, 2.0, 1.1, 5.0])
    spreads = {}
    found = measure._windows({"x": lambda: {"x": next(values)}}, windows=3, runs=2, spreads=spreads)
    assert found == {"x": pytest.approx(1.0)} and spreads == {"x": pytest.approx(0.1)}


def test_load_and_spread_warnings_from_injected_figures():
    assert measure.load_warnings(0.3) == []
    (line,) = measure.load_warnings(1.25)
    assert line.startswith("the load average is 1.25")  # the CLI prefixes "effplan: warning: "
    (line,) = measure.unsteady_warnings({"dense": 0.15, "kernel": 0.4})  # 20% is the line
    assert "kernel" in line and "40%" in line


def test_calibration_network_figures_from_an_injected_profile():
    graph = measure.probe_graph()
    # FLOPs by hand at 56x56 = 3136 outputs per channel: dense 1x1 32->64: 2*32*64*3136 = 12,845,056;
    # 3x3 64->64: 2*64*64*9*3136 = 231,211,008; 1x1 64->128: 2*64*128*3136 = 51,380,224 -> 295,436,288.
    # Depthwise 3x3 on 128 channels, three: 3 * 2*9*128*3136 = 21,676,032.
    quiet = {"dense.0.c1.relu": 100e-6, "dense.0.c2.relu": 1000e-6, "dense.0.c3.relu": 300e-6,
             "depthwise.0.dw0.relu": 70e-6, "depthwise.0.dw1.relu": 70e-6, "depthwise.0.dw2.relu": 70e-6,
             "se.0.se.reduce": 10e-6, "se.0.se.swish": 4e-6, "se.0.se.gate": 8e-6}
    busy = {**quiet, "dense.0.c2.relu": 16000e-6, "depthwise.0.dw0.relu": 900e-6}  # a kernel waited a time slice
    kernels = sum(quiet.values())  # 1632 us in kernels, 20 kernels run, 2000 us the run: 18.4 us between each
    runs = [(busy, 0.02, 20), (quiet, kernels + 368e-6, 20)]
    found = measure._probe_figures(runs, graph)
    assert found["kernel"] == pytest.approx(8e-6)  # median of 10, 4, 8
    assert found["between"] == pytest.approx(368e-6 / 20)
    # each kernel's best run, less the fixed cost of each of the three convs
    assert 1 / found["dense"] == pytest.approx(295_436_288 / (1400e-6 - 3 * 8e-6))
    assert 1 / found["depthwise"] == pytest.approx(21_676_032 / (210e-6 - 3 * 8e-6))


def _event(name, ts, dur, cat="Node"):
    return {"cat": cat, "name": name if cat == "Session" else f"{name}_kernel_time", "ts": ts, "dur": dur,
            "args": {"op_name": "ReorderOutput" if name.startswith("Reorder") else "Conv"}}


def test_measured_totals_median_and_best_by_hand():
    nodes = {"a", "b"}
    events = []
    # three runs (µs): a 100/300/110, b 50/40/900, a reorder 10 each; runs 200, 400, 1100 long
    for start, (a, b, duration) in zip((0, 1000, 3000), ((100, 50, 200), (300, 40, 400), (110, 900, 1100))):
        events += [_event("model_run", start, duration, "Session"), _event("a", start + 1, a),
                   _event("b", start + 2 + a, b), _event("ReorderOutput_token_1", start + 3 + a + b, 10)]
    times = measure._per_node_times(events, nodes, skip=0)
    assert times["median"] == {"a": pytest.approx(110e-6), "b": pytest.approx(50e-6), "": pytest.approx(10e-6)}
    assert times["best"] == {"a": pytest.approx(100e-6), "b": pytest.approx(40e-6), "": pytest.approx(10e-6)}
    assert times["durations"] == pytest.approx([200e-6, 400e-6, 1100e-6])
    # best: a 100 + b 40 + reorder 10, and the least executor time outside kernels: 200 - 160 = 40
    assert times["best_total"] == pytest.approx(190e-6)
    # after a warm-up run is skipped: medians of two runs are their means
    assert measure._per_node_times(events, nodes, skip=1)["median"]["a"] == pytest.approx(205e-6)


def _graph(model, resolution, width=None):
    (pair,) = designs_from([model], None, None, None, None, "ceil", str(resolution), width, None, (), None)
    return pair[0], build(pair[0], 1)


@pytest.mark.parametrize("model", ["efficientnet-b0", "resnet-50"])
def test_reorders_match_onnxruntimes_optimized_graph(model, tmp_path):
    import onnx
    import onnxruntime as ort

    from effplan.onnx.export import to_onnx

    block, _ = measure.nchwc_block()
    if not block:
        pytest.skip("no AVX2 here: onnxruntime runs no NCHWc layout")
    # at 32 px the last stages' SE scale is 1x1 by 1x1, no broadcast, no reorder; ResNet-50 at a quarter
    # width (every channel count still a multiple of 16) has a sixteenth of the weights to prepack
    design, graph = _graph(model, 64, None if model == "efficientnet-b0" else 0.25)
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(to_onnx(graph, design, weights="zeros").SerializeToString(), options,
                         providers=["CPUExecutionProvider"])
    ran = collections.Counter(n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node
                              if n.op_type.startswith("Reorder"))
    modelled = collections.Counter(kind for _, _, kind in
                                   nchwc_reorders(graph, kernel_groups(graph, "onnxruntime-cpu"), block))
    assert modelled == ran
    # B0's 16 SE blocks make them (at 16 floats a block 55: 3 per SE block, 6 more where the SE squeeze
    # is narrower than a block, 1 before the head); ResNet-50 has only the one before the head
    assert (sum(ran.values()) >= 16 * 3 + 1) if model == "efficientnet-b0" else (ran == {"ReorderOutput": 1})


def test_reorders_become_kernels_only_where_the_cpu_has_a_block():
    import dataclasses

    _, graph = _graph("efficientnet-b0", 64)
    xeon = load_device("xeon-e5-2690")  # Sandy Bridge: AVX, no AVX2, so no NCHWc layout
    blocked = dataclasses.replace(xeon, nchwc_block=8)
    plain = roofline(graph, xeon, "fp32", runtime="onnxruntime-cpu")
    with_reorders = roofline(graph, blocked, "fp32", runtime="onnxruntime-cpu")
    expected = len(nchwc_reorders(graph, kernel_groups(graph, "onnxruntime-cpu"), 8))
    reorders = [k for k in with_reorders.kernels if k.op.startswith("Reorder")]
    assert not any(k.op.startswith("Reorder") for k in plain.kernels)
    assert len(reorders) == expected == len(with_reorders.kernels) - len(plain.kernels)
    assert all(k.flops == 0 and k.time_s >= k.overhead_s > 0 for k in reorders)


def test_a_device_files_nchwc_block_is_checked():
    import tomllib

    from effplan.plan.hardware import DeviceError, device_from_table
    from effplan.plan.hardware import builtin_device_paths

    table = tomllib.loads(builtin_device_paths()["xeon-e5-2690"].read_text())
    sources = {**table["sources"], "nchwc_block": "MLAS block size"}
    assert device_from_table({**table, "nchwc_block": 8, "sources": sources}, "x").nchwc_block == 8
    with pytest.raises(DeviceError, match="nchwc_block: expected 8"):
        device_from_table({**table, "nchwc_block": 12, "sources": sources}, "x")
    with pytest.raises(DeviceError, match="sources.nchwc_block"):
        device_from_table({**table, "nchwc_block": 8}, "x")
