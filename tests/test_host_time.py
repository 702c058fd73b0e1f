"""Host time as runtime data: one stream in which the host launches kernels ahead of the device, a fixed
host time per step, autocast's weight casts, the input pipeline's cap, the bound of each kernel and of the
whole pass, and the [host] table's one-line errors. Expected values derived by hand on a toy device."""
import dataclasses
import tomllib

import pytest

from effplan.graph.builder import GraphBuilder, Weight
from effplan.plan.hardware import SOURCED, DeviceError, device_from_table
from effplan.plan.roofline import Kernel, roofline, sequence
from effplan.plan.runtime import RuntimeSpecError, builtin_runtime_paths, load_runtime, runtime_from_table

# 1000 GB/s at full efficiency, compute far above anything here, 1 byte on chip (nothing stays there)
TOY = {"name": "toy", "description": "a toy device", "class": "datacenter-gpu", "memory_gb": 16.0,
       "bandwidth_gbs": 1000.0, "onchip_mb": 1 / 2**20, "launch_overhead_us": 3.0,
       "matrix": {"fp16": 1000.0, "fp32": 1000.0}, "vector": {"fp16": 1000.0, "fp32": 1000.0},
       "efficiency": {"matrix": 1.0, "vector": 1.0, "bandwidth": 1.0},
       "sources": dict.fromkeys(SOURCED, "made up for the test")}
DEVICE = device_from_table(TOY, "toy")


def kernel(device_s, host_s, overlap="async", fixed_s=0.0):
    return Kernel("k", "Relu", 1, 0, ("k",), 0, 0, 0, "vector", 0.0, device_s, host_s, overlap, 0.0, fixed_s)


def test_the_host_runs_ahead_of_a_long_kernel_and_hides_the_launches_after_it():
    # host 10 µs a launch; device times 100, 1, 1, 1 µs. The host launches at 10, 20, 30, 40 µs. Kernel 1
    # starts at 10 and ends at 110; kernels 2-4 were launched long before, so they run back to back:
    # 111, 112, 113 µs. Waits: 10 (the first launch), then 0, 0, 0.
    ks = sequence([kernel(100e-6, 10e-6), *[kernel(1e-6, 10e-6)] * 3])
    assert [k.wait_s for k in ks] == pytest.approx([10e-6, 0, 0, 0])
    assert sum(k.time_s for k in ks) == pytest.approx(113e-6)
    assert [k.bound for k in ks] == ["memory", "memory", "memory", "memory"]


def test_short_kernels_wait_for_the_host_one_launch_each():
    # device 1 µs each, host 10 µs each: kernel i is launched at 10 i µs and ends 1 µs later; the stream ends
    # at 4 x 10 + 1 = 41 µs; each kernel after the first waits 10 - 1 = 9 µs for its launch.
    ks = sequence([kernel(1e-6, 10e-6)] * 4)
    assert [k.wait_s for k in ks] == pytest.approx([10e-6, 9e-6, 9e-6, 9e-6])
    assert sum(k.time_s for k in ks) == pytest.approx(41e-6)
    assert {k.bound for k in ks} == {"host"}


def test_serial_launches_add_and_the_fixed_step_time_comes_first():
    # serial: each kernel waits its own 10 µs launch: 2 x (10 + 100) = 220 µs; a fixed 500 µs on the first
    # kernel adds once: 720 µs. Async with the same fixed time: 500 + 10 + 100 + 100 = 710 µs (the second
    # launch, at 520 µs, is long done when the first kernel ends at 610).
    serial = sequence([kernel(100e-6, 10e-6, "serial", 500e-6), kernel(100e-6, 10e-6, "serial")])
    assert sum(k.time_s for k in serial) == pytest.approx(720e-6)
    assert [k.bound for k in serial] == ["host", "memory"]  # 510 µs of host time before 100 µs of work
    asynchronous = sequence([kernel(100e-6, 10e-6, fixed_s=500e-6), kernel(100e-6, 10e-6)])
    assert sum(k.time_s for k in asynchronous) == pytest.approx(710e-6)


def relu_chain(n=3, side=100):
    """n ReLUs on 1 x 1 x side x side fp16: each reads and writes 2 x 10,000 x 2 = 40,000 bytes = 40 ns."""
    b = GraphBuilder("t", (1, 1, side, side))
    b.at(1, 0)
    x = "input"
    for i in range(n):
        x = b.add("Relu", [x], str(i), "relu")
    return b.finish(x)


def toy_runtime(**host):
    """eager with the toy's own host figures: 10 µs a launch, no fixed step time unless given."""
    return dataclasses.replace(load_runtime("eager"), overhead_s=10e-6, **{"host_step_s": 0.0, **host})


def test_a_pass_pays_the_runtimes_fixed_step_time_and_says_what_bounds_it():
    # 3 ReLUs of 40 ns under a 10 µs launch: 3 x 10 µs + the last kernel's 40 ns, plus 1 ms for the step
    result = roofline(relu_chain(), DEVICE, "fp16", runtime=toy_runtime(host_step_s=1e-3))
    assert result.latency_s == pytest.approx(1e-3 + 30e-6 + 40e-9)
    assert result.bound == "host" and result.kernels[0].fixed_s == 1e-3
    assert [k.fixed_s for k in result.kernels[1:]] == [0.0, 0.0]
    # 2,000 x 2,000: 16 MB a ReLU, 16 µs each, longer than the launch: 10 + 3 x 16 = 58 µs, memory-bound
    big = roofline(relu_chain(side=2000), DEVICE, "fp16", runtime=toy_runtime())
    assert big.latency_s == pytest.approx(58e-6) and big.bound == "memory"


def test_the_input_pipeline_caps_throughput_only_when_given():
    result = roofline(relu_chain(), DEVICE, "fp16", batch=1, runtime=toy_runtime())
    assert result.input_rate is None and result.images_per_s == pytest.approx(1 / (30e-6 + 40e-9))
    capped = roofline(relu_chain(), DEVICE, "fp16", batch=1, runtime=toy_runtime(), input_rate=1000.0)
    assert capped.images_per_s == 1000.0 and capped.bound == "input"
    assert capped.latency_s == result.latency_s  # the device's time is what it is


def one_conv(cout=16, cin=8):
    b = GraphBuilder("t", (1, cin, 4, 4))
    b.at(1, 0)
    attrs = {"kernel_shape": (1, 1), "strides": (1, 1), "group": 1, "pads": (0, 0, 0, 0)}
    return b.finish(b.add("Conv", ["input"], "", "conv", attrs=attrs, weights=(Weight("W", (cout, cin, 1, 1)),)))


def test_autocast_casts_each_weight_at_half_precision_only():
    # 16 x 8 weights: the cast reads 128 x 4 bytes and writes 128 x 2 = 768 bytes; none at fp32
    half = roofline(one_conv(), DEVICE, "fp16", runtime="eager").kernels
    assert [(k.op, k.bytes) for k in half] == [("Cast(weight)", 768), ("Conv", 2 * (128 + 128 + 256))]
    assert [k.op for k in roofline(one_conv(), DEVICE, "fp32", runtime="eager").kernels] == ["Conv"]
    assert [k.op for k in roofline(one_conv(), DEVICE, "fp16", runtime="fused").kernels] == ["Conv"]


def test_the_host_table_is_checked_key_by_key():
    table = tomllib.loads(builtin_runtime_paths()["eager"].read_text())
    rt = runtime_from_table(table, "x.toml")
    assert rt.host_step_s == table["host"]["step_s"] and rt.weight_casts is True
    with pytest.raises(RuntimeSpecError, match=r"host: unknown key 'step'.*did you mean.*step_s"):
        runtime_from_table({**table, "host": {**table["host"], "step": 1e-3}}, "x.toml")
    with pytest.raises(RuntimeSpecError, match=r"host.step_s: expected a value between 0 and 1"):
        runtime_from_table({**table, "host": {**table["host"], "step_s": 2}}, "x.toml")
    with pytest.raises(RuntimeSpecError, match=r"host.weight_casts: expected true or false"):
        runtime_from_table({**table, "host": {**table["host"], "weight_casts": "yes"}}, "x.toml")
    with pytest.raises(RuntimeSpecError, match=r"host.source"):
        runtime_from_table({**table, "host": {"step_s": 1e-3}}, "x.toml")
    fused = tomllib.loads(builtin_runtime_paths()["fused"].read_text())
    assert runtime_from_table(fused, "x.toml").host_step_s == 0.0  # no [host]: nothing beyond the launches


def test_the_cli_says_the_input_pipeline_is_excluded_and_caps_it_when_asked(effplan):
    plain = effplan("roofline", "resnet-18", "--device", "t4", "--runtime", "eager", "--batch", "1")
    assert plain.code == 0 and "input pipeline not modelled" in " ".join(plain.out.replace("#", "").split())
    capped = effplan("roofline", "resnet-18", "--device", "t4", "--input-rate", "5", "--format", "json").json()
    assert capped["totals"]["images_per_s"] == 5 and capped["totals"]["bound"] == "input"
    bad = effplan("roofline", "resnet-18", "--device", "t4", "--input-rate", "0")
    assert bad.code == 2 and bad.err.count("\n") == 1
    train = effplan("train", "resnet-18", "--device", "t4", "--batch", "8", "--epochs", "1", "--input-rate", "1", "--format", "json").json()
    assert train["stages"][0]["bound"] == "input" and train["stages"][0]["images_per_s"] == pytest.approx(1.0)


def test_training_throughput_is_capped_by_a_given_input_pipeline():
    from effplan.plan.training import training_step
    free = training_step(one_conv(), DEVICE, precision="fp32", optimizer="sgd", runtime="xla")
    # batch 1 at 10 images/s: the pipeline needs 0.1 s a step, far more than the device
    fed = training_step(one_conv(), DEVICE, precision="fp32", optimizer="sgd", runtime="xla", input_rate=10.0)
    assert fed.time_s == pytest.approx(0.1) and fed.input_bound and not free.input_bound
    assert fed.device_time_s == pytest.approx(free.time_s)


def with_host(host):
    return {**TOY, "host": host, "sources": {**TOY["sources"], "host": "made up for the test"}}


def test_a_slower_host_pays_the_runtimes_host_figures_in_proportion():
    # The runtime's figures hold on the reference host; this device's host runs at half its speed: every host
    # figure doubles. 3 ReLUs of 40 ns under a 20 µs launch, plus 2 x 1 ms for the step: 2 ms + 60 µs + 40 ns.
    rt = toy_runtime(host_step_s=1e-3, backward_op_s=5e-6)
    slow = device_from_table(with_host({"cpu": "slow", "speed": 0.5}), "toy")
    assert slow.host == {"cpu": "slow", "speed": 0.5}
    assert (rt.overhead(slow), rt.backward_overhead(slow), rt.step_overhead(slow)) == pytest.approx((20e-6, 10e-6, 2e-3))
    assert roofline(relu_chain(), slow, "fp16", runtime=rt).latency_s == pytest.approx(2e-3 + 60e-6 + 40e-9)
    assert rt.host_note(slow).startswith("host: slow, 0.5x as fast as 2x AMD EPYC 7742 (DGX A100)")
    # a device that names no host keeps the figures as given
    assert roofline(relu_chain(), DEVICE, "fp16", runtime=rt).latency_s == pytest.approx(1e-3 + 30e-6 + 40e-9)
    # the device's own launch figure (a runtime with launch overhead_s = "device") is not a host measurement
    assert dataclasses.replace(rt, overhead_s=None).overhead(slow) == pytest.approx(3e-6)


def test_a_device_files_input_rate_caps_throughput_unless_the_caller_gives_one():
    from effplan.plan.training import training_step
    fed = device_from_table(with_host({"cpu": "old", "input_rate": 1000.0}), "toy")
    # the 3 ReLUs run 1 / 30.04 µs = 33,289 images/s at batch 1; the host's pipeline gives 1,000
    capped = roofline(relu_chain(), fed, "fp16", batch=1, runtime=toy_runtime())
    assert capped.images_per_s == 1000.0 and capped.bound == "input"
    assert roofline(relu_chain(), fed, "fp16", batch=1, runtime=toy_runtime(), input_rate=2000.0).images_per_s == 2000.0
    # training: batch 1 at 10 images/s from the file's host (as --input-rate 10 below), 0.1 s a step
    slow_feed = device_from_table(with_host({"cpu": "old", "input_rate": 10.0}), "toy")
    assert training_step(one_conv(), slow_feed, precision="fp32", optimizer="sgd", runtime="xla").time_s == \
        pytest.approx(0.1)


def test_the_devices_host_table_names_its_cpu():
    with pytest.raises(DeviceError, match=r"^toy: host: name its cpu"):
        device_from_table(with_host({"speed": 0.5}), "toy")
    # a host whose speed is not known is named and costed as the reference host, and the header says so
    unknown = device_from_table(with_host({"cpu": "old"}), "toy")
    assert load_runtime("eager").host_scale(unknown) == 1.0
    assert "old, its speed not known" in load_runtime("eager").host_note(unknown)
    with pytest.raises(DeviceError, match=r"host.speed"):
        device_from_table(with_host({"cpu": "slow", "speed": -1}), "toy")
    with pytest.raises(DeviceError, match=r"unknown key 'speeds'"):
        device_from_table(with_host({"cpu": "slow", "speeds": 1}), "toy")
    with pytest.raises(DeviceError, match=r"sources.host: every figure needs its source"):
        device_from_table({**TOY, "host": {"cpu": "slow", "speed": 0.5}}, "toy")
