"""Kernel classes with their own efficiency, and `effplan calibrate --from`: a fit that recovers the figures the
measurements were generated with, its cross-validated error, the file it writes, and its one-line refusals."""
import tomllib

import pytest

import effplan as ep
from effplan.design.blocks import build
from effplan.graph.builder import GraphBuilder, Weight
from effplan.plan.hardware import SOURCED, DeviceError, device_from_table, load_device
from effplan.plan.roofline import roofline
from effplan.plan.training import backward_kernels

TOY = {"name": "toy", "description": "a toy device", "class": "datacenter-gpu", "memory_gb": 16.0,
       "bandwidth_gbs": 1000.0, "onchip_mb": 1 / 2**20, "launch_overhead_us": 3.0,
       "matrix": {"fp16": 100.0, "fp32": 20.0}, "vector": {"fp16": 10.0, "fp32": 10.0},
       "efficiency": {"matrix": 1.0, "vector": 1.0, "bandwidth": 1.0},
       "sources": dict.fromkeys(SOURCED, "made up for the test")}


def depthwise_net():
    """1 x 16 x 8 x 8 -> 3x3 depthwise conv (16 groups of one channel) -> 1x1 conv to 16."""
    b = GraphBuilder("t", (1, 16, 8, 8))
    b.at(1, 0)
    dw = b.add("Conv", ["input"], "dw", "conv", weights=(Weight("W", (16, 1, 3, 3)),),
               attrs={"kernel_shape": (3, 3), "strides": (1, 1), "group": 16, "pads": (1, 1, 1, 1)})
    return b.finish(b.add("Conv", [dw], "pw", "conv", weights=(Weight("W", (16, 16, 1, 1)),),
                          attrs={"kernel_shape": (1, 1), "strides": (1, 1), "group": 1, "pads": (0, 0, 0, 0)}))


def test_a_kernel_class_has_its_own_efficiency_on_top_of_its_units():
    # depthwise_wgrad = 0.25: the depthwise conv's weight gradient takes 4 x the compute and memory time it
    # takes at 1; the dense conv's kernels are untouched (the depthwise conv reads the image: no input gradient)
    plain = device_from_table(TOY, "toy")
    slow = device_from_table({**TOY, "efficiency": {**TOY["efficiency"], "depthwise_wgrad": 0.25}}, "toy")
    before = {k.name: k for k in backward_kernels(depthwise_net(), plain, "fp16", "mixed", "eager")}
    after = {k.name: k for k in backward_kernels(depthwise_net(), slow, "fp16", "mixed", "eager")}
    assert before["stage1.block0.dw.conv#dW"].kind == "depthwise_wgrad"
    assert after["stage1.block0.dw.conv#dW"].memory_s == pytest.approx(4 * before["stage1.block0.dw.conv#dW"].memory_s)
    assert after["stage1.block0.dw.conv#dW"].compute_s == pytest.approx(4 * before["stage1.block0.dw.conv#dW"].compute_s)
    assert "stage1.block0.dw.conv#dX" not in after
    for name in ("stage1.block0.pw.conv#dW", "stage1.block0.pw.conv#dX"):
        assert after[name].memory_s == before[name].memory_s
    assert [k.kind for k in roofline(depthwise_net(), plain, "fp32", runtime="fused").kernels] == ["depthwise", "conv"]
    # factors fitted under eager describe eager's kernels: another runtime counts them 1
    only_eager = device_from_table({**TOY, "efficiency": {**TOY["efficiency"], "depthwise": 0.5,
                                                          "runtimes": ["eager"]}}, "toy")
    eager = roofline(depthwise_net(), only_eager, "fp32", runtime="eager").kernels[0]
    assert eager.memory_s == pytest.approx(2 * roofline(depthwise_net(), plain, "fp32", runtime="eager").kernels[0].memory_s)
    assert roofline(depthwise_net(), only_eager, "fp32", runtime="fused").kernels[0].memory_s == \
        roofline(depthwise_net(), plain, "fp32", runtime="fused").kernels[0].memory_s
    with pytest.raises(DeviceError, match="unknown key 'depthwise_wgard'.*depthwise_wgrad"):
        device_from_table({**TOY, "efficiency": {**TOY["efficiency"], "depthwise_wgard": 0.5}}, "toy")
    with pytest.raises(DeviceError, match="efficiency.bandwidth: expected a share of peak, more than 0 and at most 1"):
        device_from_table({**TOY, "efficiency": {**TOY["efficiency"], "bandwidth": 1.5}}, "toy")


def toy_file(tmp_path, name, efficiency, host=""):
    lines = [f'name = "{name}"', 'description = "a toy device"', 'class = "datacenter-gpu"', "memory_gb = 16.0",
             "bandwidth_gbs = 1000.0", "onchip_mb = 0.000001", "launch_overhead_us = 3.0",
             "[matrix]", "fp16 = 5.0", "fp32 = 5.0", "[vector]", "fp16 = 2.0", "fp32 = 2.0", "[efficiency]",
             *(f"{k} = {v}" for k, v in efficiency.items()), *(["[host]", host] if host else []), "[sources]",
             *(f'{k} = "made up for the test"' for k in (*SOURCED, *(["host"] if host else [])))]
    path = tmp_path / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


ROWS = [("mobilenet-v1", 64, b, mode) for b in (8, 32, 64) for mode in ("inference", "training")] + [
    ("resnet-18", 64, b, mode) for b in (16, 64) for mode in ("inference", "training")]


def write_measurements(path, device, rows=ROWS):
    """Throughput as effplan computes it on `device` (the truth the fit must find), in the plain CSV."""
    from effplan.plan.training import training_step
    lines = ["model,batch,images_per_s,resolution,precision,mode,runtime,optimizer"]
    for model, side, batch, mode in rows:
        graph = build(ep.with_overrides(ep.resolve(model), resolution=side), batch)
        if mode == "inference":
            rate = roofline(graph, device, "fp16", batch, runtime="eager").images_per_s
        else:
            rate = training_step(graph, device, runtime="eager", precision="mixed", optimizer="sgd").images_per_s
        lines.append(f"{model},{batch},{float(rate)!r},{side},amp,{mode},eager,{'sgd' if mode == 'training' else ''}")
    path.write_text("\n".join(lines) + "\n")


def test_calibrate_recovers_the_efficiencies_the_measurements_were_made_with(effplan, tmp_path):
    truth = toy_file(tmp_path, "truth", {"matrix": 0.5, "vector": 0.3, "bandwidth": 0.7, "depthwise_wgrad": 0.2})
    start = toy_file(tmp_path, "start", {"matrix": 0.9, "vector": 0.9, "bandwidth": 0.9})
    measured = tmp_path / "measured.csv"
    write_measurements(measured, load_device(str(truth)))
    out = tmp_path / "fitted.toml"
    run = effplan("calibrate", "--from", str(measured), "--device", str(start),
                  "--fit", "matrix,vector,bandwidth,depthwise_wgrad", "-o", str(out))
    assert run.code == 0, run.err
    table = tomllib.loads(out.read_text())
    fitted = table["efficiency"]
    for key, value in {"matrix": 0.5, "vector": 0.3, "bandwidth": 0.7, "depthwise_wgrad": 0.2}.items():
        assert fitted[key] == pytest.approx(value, rel=2e-3), key
    assert table["name"] == "start-calibrated" and "10 measurements" in fitted["fitted_on"]
    assert fitted["runtimes"] == ["eager"]  # the class factor describes the kernels of the runtime it was fitted under
    assert "cross-validated" in fitted["cv_error"] and load_device(str(out)).fit["fitted_on"] == fitted["fitted_on"]


def test_calibrate_recovers_the_hosts_speed_from_small_batches(effplan, tmp_path):
    # the truth's host runs eager's per-op work at 0.6 of the reference host's speed; the start names no host.
    # Small batches (host-bound) and large ones (device-bound) together pin both figures.
    truth = toy_file(tmp_path, "truth", {"matrix": 0.5, "vector": 0.5, "bandwidth": 0.5}, 'cpu = "old"\nspeed = 0.6')
    start = toy_file(tmp_path, "start", {"matrix": 0.5, "vector": 0.5, "bandwidth": 0.9})
    rows = [(m, 64, b, mode) for m in ("mobilenet-v1", "resnet-18") for b in (1, 4, 64) for mode in ("inference", "training")]
    measured = tmp_path / "measured.csv"
    write_measurements(measured, load_device(str(truth)), rows)
    out = tmp_path / "fitted.toml"
    run = effplan("calibrate", "--from", str(measured), "--device", str(start), "--fit", "host,bandwidth", "-o", str(out))
    assert run.code == 0, run.err
    fitted = load_device(str(out))
    assert fitted.host["speed"] == pytest.approx(0.6, rel=2e-3) and fitted.efficiency["bandwidth"] == pytest.approx(0.5, rel=2e-3)
    assert fitted.host["cpu"] == "the measured host" and "fitted: effplan calibrate --from" in fitted.sources["host"]
    # refitting a file that names its host keeps the name and rescales its speed: 0.6 found from 0.6 is 1 x 0.6
    again = tmp_path / "again.toml"
    assert effplan("calibrate", "--from", str(measured), "--device", str(truth), "--fit", "host", "-o", str(again)).code == 0
    assert load_device(str(again)).host == {"cpu": "old", "speed": pytest.approx(0.6, rel=2e-3)}


def test_calibrate_refuses_a_table_too_small_and_names_a_bad_row(effplan, tmp_path):
    small = tmp_path / "small.csv"
    small.write_text("model,batch,images_per_s\nresnet-18,8,1000\nresnet-18,16,1800\n")
    run = effplan("calibrate", "--from", str(small), "--device", "t4", "--fit", "matrix,bandwidth")
    assert run.code == 2 and run.err.count("\n") == 1 and "cannot fit 2 efficiencies" in run.err
    bad = tmp_path / "bad.csv"
    bad.write_text("model,batch,images_per_s,precision\nresnet-18,8,1000,fp16\nresnet-18,16,fast,fp16\n")
    run = effplan("calibrate", "--from", str(bad), "--device", "t4")
    assert run.code == 2 and run.err.count("\n") == 1 and "row 3: images_per_s 'fast' is not a number" in run.err
    short = tmp_path / "short.csv"
    short.write_text("model,batch,images_per_s\nresnet-18,8\n")
    run = effplan("calibrate", "--from", str(short), "--device", "t4")
    assert run.code == 2 and "row 2: too few fields" in run.err
    run = effplan("calibrate", "--from", str(bad), "--device", "t4", "--fit", "matrx")
    assert run.code == 2 and "unknown efficiency 'matrx'" in run.err
    run = effplan("calibrate", "--from", str(bad), "--device", "t4", "--fit", "hots")
    assert run.code == 2 and "did you mean: host?" in run.err


def test_timms_benchmark_csv_reads_as_measurements(tmp_path):
    from effplan.plan.calibrate import read_measurements
    path = tmp_path / "timm.csv"
    path.write_text("model,infer_samples_per_sec,infer_step_time,infer_batch_size,infer_img_size,param_count\n"
                    "efficientnet_b0,9000.5,28.4,256,224,5.29\n")
    (m,) = read_measurements(str(path))
    assert (m.model, m.batch, m.images_per_s, m.resolution, m.mode, m.row) == (
        "efficientnet-b0", 256, 9000.5, 224, "inference", 2)
