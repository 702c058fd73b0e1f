"""`effplan roofline`, `devices`, `table --device`, `calibrate` and `measure` through the CLI."""

import pytest

from effplan.plan.measure import spearman

ROOFLINE_KEYS = {"model", "device", "dtype", "batch", "totals", "layers"}
TOTAL_KEYS = {"latency_s", "images_per_s", "macs", "bytes"}
LAYER_KEYS = {"name", "op", "stage", "block", "macs", "flops", "bytes", "intensity", "unit", "bound", "time_s"}


@pytest.mark.parametrize("by", ["layer", "block", "stage"])
def test_roofline_json_contract(effplan, by):
    run = effplan("roofline", "efficientnet-b0", "--device", "a100-80gb", "--batch", "2", "--by", by, "--format", "json")
    assert run.code == 0, run.err
    report = run.json()
    assert ROOFLINE_KEYS <= set(report) and TOTAL_KEYS <= set(report["totals"])
    assert (report["device"], report["dtype"], report["batch"]) == ("a100-80gb", "fp16", 2)
    assert all(LAYER_KEYS <= set(row) for row in report["layers"])
    assert {row["unit"] for row in report["layers"]} <= {"matrix", "vector"}
    assert {row["bound"] for row in report["layers"]} <= {"compute", "memory", "host"}
    assert sum(r["time_s"] for r in report["layers"]) == pytest.approx(report["totals"]["latency_s"])
    assert sum(r["macs"] for r in report["layers"]) == report["totals"]["macs"]
    assert report["totals"]["macs"] == pytest.approx(2 * 0.386e9, rel=0.005)  # batch 2 of the published 0.386 G


@pytest.mark.parametrize("device, dtype", [("t4", "fp16"), ("tpu-v4", "bf16"), ("xeon-e5-2690", "fp32")])
def test_roofline_runs_at_the_devices_half_precision_by_default(effplan, device, dtype):
    # GPUs have fp16 tensor cores, TPUs bf16 MXUs, the 2012 Xeon only fp32 (AVX)
    run = effplan("roofline", "mobilenet-v2", "--device", device, "--format", "json")
    assert run.code == 0, run.err
    assert run.json()["dtype"] == dtype


def test_an_empty_plot_path_is_an_error(effplan):
    run = effplan("roofline", "mobilenet-v2", "--device", "t4", "--plot", "")
    assert run.code == 2 and "--plot ''" in run.err


def test_no_fuse_moves_more_bytes(effplan):
    fused = effplan("roofline", "resnet-50", "--device", "t4", "--format", "json").json()["totals"]
    unfused = effplan("roofline", "resnet-50", "--device", "t4", "--no-fuse", "--format", "json").json()["totals"]
    assert unfused["bytes"] > fused["bytes"] and unfused["latency_s"] > fused["latency_s"]
    assert unfused["macs"] == fused["macs"]


def test_devices_json_lists_sources(effplan):
    devices = effplan("devices", "--format", "json").json()
    assert len(devices) >= 16
    assert all(d["sources"] and d["bandwidth_bytes_per_s"] > 0 for d in devices)
    assert "xeon-e5-2690" in {d["name"] for d in devices}


def test_table_device_columns_and_ranking(effplan):
    rows = effplan("table", "efficientnet-b0", "efficientnet-b7", "resnet-50", "--device", "a100-80gb",
                   "--sort", "latency_s", "--format", "json").json()
    assert [r["latency_s"] for r in rows] == sorted(r["latency_s"] for r in rows)
    assert rows[-1]["model"] == "efficientnet-b7"
    assert all(r["images_per_s"] == pytest.approx(1 / r["latency_s"]) for r in rows)


def test_fit_on_a_catalog_device(effplan):
    (fit,) = effplan("fit", "efficientnet-b0", "--device", "t4", "--format", "json").json()
    assert fit["capacity_bytes"] == 16 << 30  # T4: 16 GB GDDR6


def test_user_device_file(effplan, tmp_path):
    from effplan.plan.hardware import builtin_device_paths
    text = builtin_device_paths()["a100-80gb"].read_text().replace('name = "a100-80gb"', 'name = "my-a100"')
    path = tmp_path / "my-a100.toml"
    path.write_text(text)
    report = effplan("roofline", "mobilenet-v2", "--device", str(path), "--format", "json").json()
    assert report["device"] == "my-a100"


@pytest.mark.parametrize("args, message", [
    (["roofline", "resnet-50", "--device", "a100"], "did you mean: a100-40gb, a100-80gb"),
    (["roofline", "resnet-50", "--device", "v100", "--dtype", "int8"], "no matrix-unit peak for int8"),
    (["roofline", "resnet-50", "--device", "t4", "--plot", "chart.pdf"], "must end in .svg or .png"),
    (["roofline", "resnet-50", "--device", "t4", "--plot", "/no/such/folder/chart.svg"], "does not exist"),
    (["table", "resnet-50", "--sort", "latency_s"], "needs --device"),
])
def test_bad_hardware_input_one_line_exit_2(effplan, args, message):
    run = effplan(*args)
    assert run.code == 2
    assert message in run.err and len(run.err.strip().splitlines()) == 1


def test_spearman_by_hand():
    # identical order: 1; reversed: -1; [1,2,3,4] vs [1,3,2,4]: d^2 = 0+1+1+0 = 2 -> 1 - 6*2/(4*15) = 0.8
    assert spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1)
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)


def test_calibrate_writes_a_loadable_device_and_measure_uses_it(effplan, tmp_path, monkeypatch):
    import functools

    import effplan.plan.measure as measure
    # the same steps with a 256x256 GEMM, a 16 MiB copy and 2 rounds: the defaults take 3 s and 512 MiB
    monkeypatch.setattr(measure, "calibrate", functools.partial(measure.calibrate, size=256, copy_bytes=16 << 20,
                                                                windows=2))
    path = tmp_path / "here.toml"
    run = effplan("calibrate", "--name", "here", "-o", str(path))
    assert run.code == 0, run.err
    report = effplan("measure", "mobilenet-v2", "--resolution", "64", "--runs", "2", "--device", str(path),
                     "--format", "json").json()
    assert report["device"] == "here" and report["measured_s"] > 0 and report["estimated_s"] > 0
    assert isinstance(report["spearman"], float)
    # MobileNetV2 by hand: 52 convs (the stem, 16 expansions, 17 depthwise, 17 projections, the head), the
    # pool and the classifier are 54 kernels, each timed through its node names in onnxruntime's profile;
    # the layout reorders effplan models for a CPU map to no node of the file (their time is unassigned)
    timed = [r["name"] for r in report["layers"] if r["measured_s"] > 0]
    assert timed == [r["name"] for r in report["layers"] if r["op"] not in ("ReorderInput", "ReorderOutput")]
    assert len(timed) == report["kernels_timed"] == 54


def test_table_and_roofline_agree_on_a_device(effplan):
    # both run at the device's half precision unless --dtype says otherwise
    row = effplan("table", "resnet-50", "--device", "h100-sxm", "--format", "json").json()[0]
    report = effplan("roofline", "resnet-50", "--device", "h100-sxm", "--format", "json").json()
    assert row["dtype"] == report["dtype"] == "fp16"
    assert row["latency_s"] == pytest.approx(report["totals"]["latency_s"])
