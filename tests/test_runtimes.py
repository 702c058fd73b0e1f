"""Runtimes (specs/runtimes/*.toml): the same EfficientNet-B0 block costed kernel by kernel under each,
tile padding, the on-chip rule and the launch-overlap rule, all hand-derived on toy devices; the
loader's errors; the CLI and budget plumbing."""

import pytest
from conftest import SWISH, graph_of

from effplan.design.blocks import MBConvArgs, mbconv
from effplan.graph.builder import GraphBuilder, Weight
from effplan.plan.hardware import SOURCED, device_from_table
from effplan.plan.roofline import roofline
from effplan.plan.runtime import (DEFAULT_RUNTIME, RuntimeSpecError, builtin_runtime_paths, load_runtime,
                                  runtime_from_table)

# Bandwidth 1000 GB/s at full efficiency, compute far above anything here, and 1 byte on chip (nothing
# stays there): every kernel's time is max(bytes / 1e12, overhead) (async) or bytes / 1e12 + overhead.
TOY = {"name": "toy", "description": "a toy device", "class": "datacenter-gpu", "memory_gb": 16.0,
       "bandwidth_gbs": 1000.0, "onchip_mb": 1 / 2**20, "launch_overhead_us": 3.0,
       "matrix": {"fp16": 1000.0}, "vector": {"fp16": 1000.0},
       "efficiency": {"matrix": 1.0, "vector": 1.0, "bandwidth": 1.0},
       "sources": dict.fromkeys(SOURCED, "made up for the test")}
DEVICE = device_from_table(TOY, "toy")

# A B0 MBConv block (expand 6, 3x3 depthwise, SE 0.25, residual) at 8 channels on a 4x4 map, batch 1:
# x 8*16 = 128 values; the expanded tensor E 48*16 = 768; the pool 48; the squeezed 2; the gate 48.
# Weights: expand conv 48*8 = 384, dw conv 48*9 = 432, a BN of 48 channels 4*48 = 192 (scale, shift,
# mean, var), SE reduce 2*48 + bias 2 = 98, SE expand 48*2 + bias 48 = 144, project conv 8*48 = 384 and
# its BN 4*8 = 32. fp16: 2 bytes a value. Values read + written per kernel (x 2 for bytes):
EXPECTED = {
    # one kernel per framework op; SiLU one kernel; an SE conv's bias its own kernel (cuDNN adds it after)
    # at fp16 autocast first casts each conv's fp32 weights (and bias) to fp16: reads 4 bytes and writes 2 a
    # value, 3 of the test's 2-byte values
    "eager": [("Cast(weight)", 3 * 384), ("Conv", 128 + 384 + 768), ("BatchNormalization", 768 + 192 + 768), ("Sigmoid+Mul", 768 + 768),
              ("Cast(weight)", 3 * 432), ("Conv", 768 + 432 + 768), ("BatchNormalization", 768 + 192 + 768),
              ("Sigmoid+Mul", 768 + 768), ("GlobalAveragePool", 768 + 48),
              ("Cast(weight)", 3 * 98), ("Conv", 48 + 96 + 2), ("Add(bias)", 2 + 2 + 2), ("Sigmoid+Mul", 2 + 2),
              ("Cast(weight)", 3 * 144), ("Conv", 2 + 96 + 48), ("Add(bias)", 48 + 48 + 48), ("Sigmoid", 48 + 48),
              ("Mul", 768 + 48 + 768), ("Cast(weight)", 3 * 384), ("Conv", 768 + 384 + 128), ("BatchNormalization", 128 + 32 + 128), ("Add", 128 + 128 + 128)],
    # library conv, then one generated kernel for what follows it; the pool rides in the dw epilogue
    # (it writes E and the 48 means), the SE scale in the gate's epilogue kernel
    "compiled": [("Conv", 128 + 384 + 768), ("BatchNormalization+Sigmoid+Mul", 768 + 192 + 768),
                 ("Conv", 768 + 432 + 768), ("BatchNormalization+Sigmoid+Mul+GlobalAveragePool", 768 + 192 + 768 + 48),
                 ("Conv", 48 + 98 + 2), ("Sigmoid+Mul", 2 + 2),
                 ("Conv", 2 + 144 + 48), ("Sigmoid+Mul", 48 + 768 + 768),
                 ("Conv", 768 + 384 + 128), ("BatchNormalization+Add", 128 + 32 + 128 + 128)],
    # conv + BN + activation (+ residual Add) in one kernel; the pool and the SE scale on their own
    "fused": [("Conv+BatchNormalization+Sigmoid+Mul", 128 + 384 + 192 + 768),
              ("Conv+BatchNormalization+Sigmoid+Mul", 768 + 432 + 192 + 768), ("GlobalAveragePool", 768 + 48),
              ("Conv+Sigmoid+Mul", 48 + 98 + 2), ("Conv+Sigmoid", 2 + 144 + 48), ("Mul", 768 + 48 + 768),
              ("Conv+BatchNormalization+Add", 768 + 384 + 32 + 128 + 128)],
    # XLA: output fusion as fused, the pool in the dw kernel (input fusion), the SE scale inside the
    # project conv as it reads E (consumer fusion): E is written once and read twice
    "xla": [("Conv+BatchNormalization+Sigmoid+Mul", 128 + 384 + 192 + 768),
            ("Conv+BatchNormalization+Sigmoid+Mul+GlobalAveragePool", 768 + 432 + 192 + 768 + 48),
            ("Conv+Sigmoid+Mul", 48 + 98 + 2), ("Conv+Sigmoid", 2 + 144 + 48),
            ("Mul+Conv+BatchNormalization+Add", 768 + 48 + 384 + 32 + 128 + 128)],
    # BN folded into convs, Sigmoid into the SE expand conv, the residual Add into the project conv;
    # Swish a kernel of its own (QuickGelu), the pool and the scale on their own
    "onnxruntime-cpu": [("Conv+BatchNormalization", 128 + 384 + 192 + 768), ("Sigmoid+Mul", 768 + 768),
                        ("Conv+BatchNormalization", 768 + 432 + 192 + 768), ("Sigmoid+Mul", 768 + 768),
                        ("GlobalAveragePool", 768 + 48), ("Conv", 48 + 98 + 2), ("Sigmoid+Mul", 2 + 2),
                        ("Conv+Sigmoid", 2 + 144 + 48), ("Mul", 768 + 48 + 768),
                        ("Conv+BatchNormalization+Add", 768 + 384 + 32 + 128 + 128)],
}
# launch overhead per kernel (s) and how it meets the kernel's own time, from each runtime file
LAUNCH = {"eager": (2.65e-5, "async"), "compiled": (6e-6, "async"), "fused": (2e-6, "async"),
          "xla": (1.5e-6, "serial"), "onnxruntime-cpu": (3e-6, "serial")}  # onnxruntime-cpu: the device's 3 µs


def b0_block():
    return graph_of((1, 8, 4, 4), lambda b, x: mbconv(b, x, 8, 1, MBConvArgs(expand=6, kernel=3, se=0.25), SWISH))


@pytest.mark.parametrize("name", list(EXPECTED))
def test_the_b0_block_kernel_by_kernel_under_each_runtime(name):
    result = roofline(b0_block(), DEVICE, "fp16", runtime=name)
    assert [(k.op, k.bytes) for k in result.kernels] == [(op, 2 * values) for op, values in EXPECTED[name]]
    overhead, overlap = LAUNCH[name]
    times = [values * 2 / 1e12 for _, values in EXPECTED[name]]
    # One stream: the host spends `overhead` on each launch. async: it launches the next op at once, so
    # kernel i is launched at (i + 1) * overhead and starts when that and kernel i - 1 are both done;
    # serial: it launches kernel i once kernel i - 1 is done. Eager adds its fixed host time per step.
    host_launched, device_done = 0.0, 0.0
    for t in times:
        host_launched = (host_launched if overlap == "async" else device_done) + overhead
        device_done = max(host_launched, device_done) + t
    step = {"eager": 5.5e-4}.get(name, 0.0)
    assert result.latency_s == pytest.approx(device_done + step)
    assert result.runtime.name == name


def test_fewer_kernels_and_bytes_as_runtimes_fuse_more():
    moved = {n: sum(v for _, v in kernels) for n, kernels in EXPECTED.items()}
    assert moved["eager"] > moved["compiled"] > moved["fused"] > moved["xla"]


def toy(**changes):
    return device_from_table({**TOY, **changes}, "toy")


def one_by_one_conv(channels, tile=None):
    """A 1x1 conv, `channels` in and out, on an 8x8 map, batch 1 (M = 64, N = K = channels)."""
    b = GraphBuilder("t", (1, channels, 8, 8))
    b.at(1, 0)
    attrs = {"kernel_shape": (1, 1), "strides": (1, 1), "group": 1, "pads": (0, 0, 0, 0)}
    return b.finish(b.add("Conv", ["input"], "", "conv", attrs=attrs, weights=(Weight("W", (channels, channels, 1, 1)),)))


def test_a_24_channel_conv_costs_as_a_128_channel_one_on_a_128x128_array():
    # MXU-like tile m 8, n 128, k 128: M = 64 stays, N = K = 24 pad to 128. Matrix unit 100 TFLOP/s.
    # Both convs: 2 * 64 * 128 * 128 = 2,097,152 FLOPs -> 20.97 ns; the 24-channel one does
    # 64 * 24 * 24 = 36,864 useful MACs of 64 * 128 * 128 = 1,048,576: 96.5% lost to padding.
    tpu = toy(**{"class": "tpu", "matrix": {"bf16": 100.0}, "vector": {"bf16": 1.0},
                 "matrix_tile": {"bf16": {"m": 8, "n": 128, "k": 128}},
                 "sources": {**TOY["sources"], "matrix_tile": "made up"}})
    narrow, = roofline(one_by_one_conv(24), tpu, "bf16", runtime="xla").kernels
    wide, = roofline(one_by_one_conv(128), tpu, "bf16", runtime="xla").kernels
    assert narrow.compute_s == wide.compute_s == pytest.approx(2 * 64 * 128 * 128 / 100e12)
    assert narrow.tile_loss == pytest.approx(1 - 24 * 24 / (128 * 128)) and wide.tile_loss == 0
    # a runtime that does not pad (onnxruntime-cpu) costs the real MACs: 2 * 64 * 24 * 24
    unpadded, = roofline(one_by_one_conv(24), tpu, "bf16", runtime="onnxruntime-cpu").kernels
    assert unpadded.compute_s == pytest.approx(2 * 64 * 24 * 24 / 100e12) and unpadded.tile_loss == 0


def test_a_tensor_read_only_by_the_next_kernel_stays_on_chip_when_it_fits():
    # x (1024 fp16 values, 2048 bytes) -> Relu -> y -> Relu -> z under eager: y is read only by the
    # next kernel; with z it needs 4096 bytes on chip. 4096 bytes: y never reaches memory (the first
    # kernel reads x, the second writes z: 4096 bytes moved); 4095: 8192 bytes moved.
    b = GraphBuilder("t", (1, 1024))
    b.at(1, 0)
    g = b.finish(b.add("Relu", [b.add("Relu", ["input"], "", "a")], "", "b"))
    for onchip, moved in ((4096, 4096), (4095, 8192)):
        kernels = roofline(g, toy(onchip_mb=onchip / 2**20), "fp16", runtime="eager").kernels
        assert sum(k.bytes for k in kernels) == moved


def test_every_catalog_runtime_loads_and_each_device_class_has_a_default():
    paths = builtin_runtime_paths()
    assert {"eager", "compiled", "fused", "xla", "onnxruntime-cpu"} <= set(paths)
    for name in paths:
        runtime = load_runtime(name)
        assert runtime.name == name and runtime.sources
    assert set(DEFAULT_RUNTIME.values()) <= set(paths)


def test_runtime_files_are_checked_key_by_key(tmp_path):
    text = (builtin_runtime_paths()["fused"]).read_text()
    mine = tmp_path / "mine.toml"
    mine.write_text(text.replace('name = "fused"', 'name = "my-engine"'))
    assert load_runtime(str(mine)).name == "my-engine"  # a user's file, by path, any name
    import tomllib
    table = tomllib.loads(text)
    with pytest.raises(RuntimeSpecError, match=r"x.toml: fusion: unknown key 'epilog'"):
        runtime_from_table({**table, "fusion": {**table["fusion"], "epilog": []}}, "x.toml")
    with pytest.raises(RuntimeSpecError, match="launch.overhead_s"):
        runtime_from_table({**table, "launch": {**table["launch"], "overhead_s": -1}}, "x.toml")
    with pytest.raises(RuntimeSpecError, match="must equal the file name"):
        runtime_from_table(table, "x.toml", "other")
    with pytest.raises(RuntimeSpecError, match="fusion.epilogue: unknown 'Convv'"):
        runtime_from_table({**table, "fusion": {**table["fusion"], "epilogue": ["Convv"]}}, "x.toml")


def test_documentation_keys_outside_about_are_refused_by_name():
    import tomllib
    table = tomllib.loads(builtin_runtime_paths()["eager"].read_text())
    assert table["about"]["precision"]["autocast"] == "fp16"  # read by nothing: under [about]
    with pytest.raises(RuntimeSpecError, match=r"x.toml: precision: documentation only .*\[about.precision\]"):
        runtime_from_table({**table, "precision": {"autocast": "bf16"}}, "x.toml")
    with pytest.raises(RuntimeSpecError, match=r"fusion.not_fused: documentation only"):
        runtime_from_table({**table, "fusion": {**table["fusion"], "not_fused": []}}, "x.toml")
    with pytest.raises(RuntimeSpecError, match=r"runtime.engine: documentation only"):
        runtime_from_table({**table, "runtime": {**table["runtime"], "engine": "x"}}, "x.toml")


def test_the_cli_names_the_runtime_and_refuses_bad_ones(effplan, tmp_path):
    report = effplan("roofline", "resnet-18", "--device", "t4", "--format", "json").json()
    assert report["runtime"] == "fused"  # a datacenter GPU's default
    eager = effplan("roofline", "resnet-18", "--device", "t4", "--runtime", "eager", "--format", "json").json()
    assert eager["runtime"] == "eager" and eager["totals"]["kernels"] > report["totals"]["kernels"]
    alias = effplan("roofline", "resnet-18", "--device", "t4", "--no-fuse", "--format", "json").json()
    assert alias["totals"] == eager["totals"]
    header = effplan("roofline", "resnet-18", "--device", "t4", "--runtime", "eager").out.split("\n# device")[0]
    assert "runtime eager" in " ".join(header.replace("#", "").split())
    for args in (("--runtime", "nope"), ("--runtime", "eager", "--no-fuse"), ("--runtime", str(tmp_path / "x.toml"))):
        run = effplan("roofline", "resnet-18", "--device", "t4", *args)
        assert run.code == 2 and run.err.count("\n") == 1, run.err
    listed = effplan("runtimes", "--format", "json").json()
    assert {r["name"] for r in listed} >= set(EXPECTED)
    table = effplan("table", "resnet-18", "--device", "rtx-4090", "--runtime", "compiled", "--format", "json").json()
    assert table[0]["runtime"] == "compiled"


def test_tf32_runs_where_the_device_has_the_peak(effplan):
    report = effplan("roofline", "resnet-18", "--device", "a100-80gb", "--dtype", "tf32", "--format", "json").json()
    assert report["dtype"] == "tf32" and report["vector_dtype"] == "fp32"
    assert report["device_figures"]["matrix_flops_per_s"] == 156e12
    refused = effplan("roofline", "resnet-18", "--device", "v100", "--dtype", "tf32")
    assert refused.code == 2 and "no matrix-unit peak for tf32" in refused.err


def test_a_budget_names_its_runtime(effplan, tmp_path):
    budget = tmp_path / "budgets.toml"
    budget.write_text('[[budget]]\nmodel = "resnet-18"\ndevice = "t4"\nruntime = "eager"\ndtype = "fp16"\n'
                      'max_latency = "1s"\n')
    assert effplan("check", str(budget), "--format", "json").json()["checks"][0]["runtime"] == "eager"
    budget.write_text('[[budget]]\nmodel = "resnet-18"\nruntime = "eager"\nmax_macs = "10G"\n')
    run = effplan("check", str(budget))
    assert run.code == 2 and "runtime: needs a device" in run.err
