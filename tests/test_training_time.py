"""Training time: hand-derived backward kernels, optimizer bytes, ring all-reduce and a progressive run
on a toy device; the CLI's contract and its one-line errors."""
import dataclasses
import json
import re

import pytest

import effplan as ep
from effplan.base.errors import EffplanError
from effplan.design.blocks import build
from effplan.design.scaling import with_overrides
from effplan.graph.builder import GraphBuilder, Weight
from effplan.plan.hardware import SOURCED, DeviceError, device_from_table
from effplan.plan.memory import training_memory
from effplan.plan.parallel import DDP_BUCKET_BYTES, Link, device_link, ring_allreduce_s
from effplan.plan.training import backward_kernels, optimizer_bytes_per_param, training_step
from effplan.plan.training_run import progressive_stages, training_run

TOY = {  # 100 TFLOP/s matrix at half efficiency, 10 TFLOP/s vector, 1000 GB/s, 2 µs per kernel
    "name": "toy", "description": "a toy device", "class": "datacenter-gpu", "memory_gb": 16.0,
    "bandwidth_gbs": 1000.0, "onchip_mb": 10.0, "launch_overhead_us": 2.0,
    "matrix": {"fp16": 100.0, "fp32": 20.0}, "vector": {"fp16": 10.0, "fp32": 10.0},
    "efficiency": {"matrix": 0.5, "vector": 1.0, "bandwidth": 1.0},
    "sources": dict.fromkeys(SOURCED, "made up for the test"),
}
DEVICE = device_from_table(TOY, "toy")


def conv(b, x, cout, k, cin, group=1, name="c"):
    return b.add("Conv", [x], name, "conv", weights=(Weight("W", (cout, cin // group, k, k)),),
                 attrs={"kernel_shape": (k, k), "strides": (1, 1), "group": group, "pads": (k // 2,) * 4})


def toy_net(act: str | None = None):
    """input 2x8x8x8 -> conv a (16, 3x3) -> BN [-> act] -> conv b (32, 1x1)."""
    b = GraphBuilder("t", (2, 8, 8, 8))
    b.at(1, 0)
    a = conv(b, "input", 16, 3, 8, name="a")
    n = b.add("BatchNormalization", [a], "a", "bn", attrs={"epsilon": 1e-5},
              weights=(Weight("scale", (16,)), Weight("B", (16,)), Weight("mean", (16,), False),
                       Weight("var", (16,), False)))
    if act:
        n = b.add(act, [n], "a", act.lower())
    return b.finish(conv(b, n, 32, 1, 16, name="b"))


def xla_time(flops, rate, moved):
    """The xla runtime: launch overhead 1.5 µs added to each kernel ("serial"); the toy has no matrix tile."""
    return max(flops / rate, moved / 1e12) + 1.5e-6


def test_a_dense_conv_backward_is_two_convolutions_of_the_forwards_macs():
    # conv a: 2*8*8 output pixels x 16 out x 8 in x 9 taps = 147,456 MACs; conv b: 2*8*8 x 32 x 16 = 65,536.
    # Input gradient (dX = dY * W^T) and weight gradient (dW = X^T * dY) each take the forward's MACs.
    # conv b (mixed: activations 2 bytes, weight gradients 4):
    #   dX reads dY 2*32*64 = 4096 values (8192 B) and W 512 (1024 B), writes dX 2048 (4096 B): 13,312 B
    #   dW reads dY (8192 B) and the saved X (4096 B), writes dW 512 x 4 B (2048 B): 14,336 B
    # BN: reads its saved input 2048 x 2 B and statistics 2 x 16 x 4 B, dY 4096 B, writes dX 4096 B and
    #   the scale and shift gradients 32 x 4 B: 4096 + 128 + 4096 + 4096 + 128 = 12,544 B; 8 FLOPs an element
    # conv a: dW only (the image needs no gradient): dY 4096 B + X 1024 x 2 B + dW 1152 x 4 B = 10,752 B
    ks = backward_kernels(toy_net(), DEVICE, "fp16", "mixed", "xla")
    got = [(k.name.removeprefix("stage1.block0."), k.op, k.unit, k.macs, k.flops, k.bytes) for k in ks]
    assert got == [
        ("b.conv#dX", "Conv(input gradient)", "matrix", 65_536, 131_072, 13_312),
        ("b.conv#dW", "Conv(weight gradient)", "matrix", 65_536, 131_072, 14_336),
        ("a.bn#d", "BatchNormalization(backward)", "vector", 0, 16_384, 12_544),
        ("a.conv#dW", "Conv(weight gradient)", "matrix", 147_456, 294_912, 10_752),
    ]
    assert ks[0].time_s == pytest.approx(xla_time(131_072, 50e12, 13_312))
    assert ks[2].time_s == pytest.approx(xla_time(16_384, 10e12, 12_544))
    eager = backward_kernels(toy_net(), DEVICE, "fp16", "mixed", "eager")  # async launches: a 26.5 µs floor
    assert [k.time_s for k in eager] == [2.65e-5] * 5  # (outside a step's stream: see the eager-cpu test)
    # (5: eager runs BN's backward as a reduction and an elementwise pass: see the next test but one)


def test_a_depthwise_conv_computes_both_gradients_on_the_vector_unit():
    b = GraphBuilder("t", (1, 16, 8, 8))
    b.at(1, 0)
    g = b.finish(conv(b, conv(b, "input", 16, 1, 16, name="p"), 16, 3, 16, group=16, name="d"))
    ks = {k.name.removeprefix("stage1.block0."): k for k in backward_kernels(g, DEVICE, "fp16", "fp32")}
    # depthwise: 64 pixels x 16 channels x 9 taps = 9,216 MACs each way; the pointwise conv below it: 64 x 16 x 16 = 16,384
    assert (ks["d.conv#dX"].unit, ks["d.conv#dX"].macs, ks["d.conv#dW"].unit, ks["d.conv#dW"].macs) == ("vector", 9216, "vector", 9216)
    assert (ks["p.conv#dW"].unit, ks["p.conv#dW"].macs) == ("matrix", 16_384)
    assert "p.conv#dX" not in ks  # the image needs no gradient


def test_a_tensor_read_twice_sums_its_two_gradients():
    # x = conv(input); y = conv1(x) + conv2(x): x's gradient is the sum of two: one add kernel
    # reading two 2x16x8x8 gradients and writing one (3 x 2048 x 2 B), an add per element
    b = GraphBuilder("t", (2, 16, 8, 8))
    b.at(1, 0)
    x = conv(b, "input", 16, 1, 16, name="x")
    g = b.finish(b.add("Add", [conv(b, x, 16, 1, 16, name="l"), conv(b, x, 16, 1, 16, name="r")], "s", "add"))
    (acc,) = [k for k in backward_kernels(g, DEVICE, "fp16", "mixed") if k.op == "gradient accumulation"]
    assert (acc.flops, acc.bytes) == (2048, 3 * 2048 * 2)


@pytest.mark.parametrize("precision, optimizer, half, per_param", [
    ("fp32", "sgd", "fp32", 4 + 4 + 4),  # read and write w, read g
    ("fp32", "momentum", "fp32", 12 + 2 * 4),  # and read and write the momentum
    ("fp32", "adamw", "fp32", 12 + 2 * 2 * 4),  # two slots
    ("bf16", "adam", "bf16", 3 * 2 + 2 * 2 * 2),  # everything in bf16
    ("mixed", "adamw", "bf16", 12 + 16 + 6),  # + the half copy written from the fp32 master (4 + 2)
    ("mixed", "adamw", "fp16", 12 + 16 + 6 + 8),  # + GradScaler's unscale of the fp32 gradients
])
def test_optimizer_bytes_per_parameter(precision, optimizer, half, per_param):
    assert optimizer_bytes_per_param(precision, optimizer, half) == per_param


def test_the_optimizer_step_is_one_memory_bound_pass():
    step = training_step(toy_net(), DEVICE, precision="fp32", optimizer="momentum", runtime="xla")
    params = 16 * 8 * 9 + 32 + 32 * 16  # conv a, BN scale and shift, conv b
    assert step.params == params
    assert step.optimizer_step.bytes == 20 * params
    assert step.optimizer_step.time_s == pytest.approx(xla_time(4 * params, 10e12, 20 * params))


@pytest.mark.parametrize("devices, seconds", [(1, 0.0), (2, 0.01), (8, 0.0175)])
def test_ring_allreduce(devices, seconds):
    # 1 GB of gradients over 100 GB/s: each device sends 2 (N - 1) / N of them: 0, 1 GB, 1.75 GB
    assert ring_allreduce_s(10**9, devices, 100e9) == pytest.approx(seconds)


def test_allreduce_overlap():
    # bucketed (DDP), 8 devices at 100 GB/s bus bandwidth, no latency: 1 GB of gradients written by one last
    # backward kernel (the whole model's weight gradient at once) fill one bucket when the backward ends: all of
    # its 17.5 ms is exposed. Written over 40 kernels of 1 ms, 25 MB each: the first kernel fills the 1 MiB first
    # bucket, then two kernels fill each 25 MiB one (50 MB, 0.875 ms, sent while the next two kernels run), and the
    # last kernel's 25 MB go when the backward ends: 1.75 x 25 MB / 100 GB/s = 0.4375 ms exposed
    from effplan.plan.roofline import Kernel
    from effplan.plan.parallel import bucketed_allreduce_s

    def kernels(n):
        return [Kernel(f"k{i}", "x", 1, 0, (), 0, 0, 0, "vector", 0.0, 1e-3, 0.0, "async", wait_s=0.0) for i in range(n)]
    link = Link(100e9, "nvlink", "made up")
    assert bucketed_allreduce_s(kernels(1), {"k0": 10**9}, 8, link) == pytest.approx((0.0175, 0.0175))
    spread = {f"k{i}": 25 * 10**6 for i in range(40)}
    whole, exposed = bucketed_allreduce_s(kernels(40), spread, 8, link)
    assert whole == pytest.approx(0.0175) and exposed == pytest.approx(0.0175 / 40)
    assert DDP_BUCKET_BYTES == 25 << 20  # torch.nn.parallel.DistributedDataParallel bucket_cap_mb=25


def test_data_parallel_step_uses_the_given_link():
    one = training_step(toy_net(), DEVICE, precision="fp32", optimizer="sgd", runtime="xla")
    eight = training_step(toy_net(), DEVICE, precision="fp32", optimizer="sgd", devices=8,
                          link=Link(1e9, "given", "test"), runtime="xla")
    assert eight.gradient_bytes == 4 * one.params
    assert eight.allreduce_s == pytest.approx(2 * 7 / 8 * 4 * one.params / 1e9)
    assert eight.time_s - one.time_s == pytest.approx(eight.allreduce_s)  # xla: after the backward, not hidden


def test_progressive_stages():
    assert progressive_stages(128, 300, 4, 350) == [(128, 87), (185, 87), (242, 87), (300, 89)]
    assert progressive_stages(128, 256, 2, 5) == [(128, 2), (256, 3)]


def test_a_two_stage_progressive_run_adds_its_stages():
    # 100 images, batch 8 on one device: ceil(100 / 8) = 13 steps an epoch; 2 epochs at 64 px, 3 at 96 px
    design = ep.resolve("efficientnet-b0")
    run = training_run(design, DEVICE, batch=8, epochs=5, dataset_size=100, progressive=(64, 96, 2),
                       precision="fp32", optimizer="sgd", runtime="xla")  # serial launches: device time adds
    assert [(s.resolution, s.epochs, s.steps_per_epoch) for s in run.stages] == [(64, 2, 13), (96, 3, 13)]
    for s in run.stages:
        alone = training_step(build(with_overrides(design, resolution=s.resolution), 8), DEVICE,
                              precision="fp32", optimizer="sgd", runtime="xla")
        assert s.step.time_s == pytest.approx(alone.time_s)
    assert run.seconds == pytest.approx(sum(s.epochs * 13 * s.step.time_s for s in run.stages))
    assert run.stages[0].step.time_s < run.stages[1].step.time_s


def test_checkpointing_recomputes_every_block_forward():
    graph = build(ep.resolve("efficientnet-b0"), 2)
    step = training_step(graph, DEVICE, checkpoint="blocks")
    flops = sum(k.flops for k in step.recompute if not k.name.endswith("#statistics"))
    assert flops == training_memory(graph, checkpoint="blocks").recompute_flops
    assert step.recompute_s > 0 and step.memory_bytes == training_memory(graph, checkpoint="blocks").total_bytes


def test_cli_json(effplan):
    run = effplan("train", "efficientnet-b0", "--device", "a100-80gb", "--devices", "8", "--batch", "32",
                  "--epochs", "2", "--dataset-size", "1000", "--progressive", "128:224:2", "--price-per-hour", "2",
                  "--format", "json")
    assert run.code == 0, run.err
    report = json.loads(run.out)
    assert report["runtime"] == "eager" and report["devices"] == 8 and report["link"]["kind"] == "nvlink"
    assert [(s["resolution"], s["epochs"], s["global_batch"], s["steps_per_epoch"]) for s in report["stages"]] == \
        [(128, 1, 256, 4), (224, 1, 256, 4)]
    assert report["totals"]["hours"] == pytest.approx(sum(s["hours"] for s in report["stages"]))
    assert report["totals"]["cost"] == pytest.approx(report["totals"]["hours"] * 8 * 2)
    assert set(report["conventions"]) >= {"runtime", "forward", "backward", "optimizer", "communication"}


@pytest.mark.parametrize("args, message", [
    (["--progressive", "300:128:4"], "MIN <= MAX"),
    (["--runtime", "fused"], "inference only"),
    (["--devices", "4", "--hosts", "2"], "--network-gbs"),
    (["--devices", "3", "--global-batch", "64"], "split evenly"),
    (["--batch", "8", "--global-batch", "64"], "not both"),
])
def test_cli_bad_input(effplan, args, message):
    run = effplan("train", "efficientnet-b0", "--device", "t4", *args)
    assert run.code == 2 and message in run.err and len(run.err.strip().splitlines()) == 1


def test_gradient_gemms_are_padded_to_the_tile_with_their_own_shapes():
    # conv b of the toy net: forward GEMM M = 2*8*8 = 128 pixels, N = 32 out, K = 16 in: 65,536 MACs.
    # dX: M' = 128 input pixels, N' = 16 in, K' = 32 out x 1 tap; on an 8 x 128 x 128 tile (a TPU's MXU)
    #   128 x 128 x 128 = 2,097,152 MACs: 1 - 65,536 / 2,097,152 = 96.875% lost to padding.
    # dW: M'' = 32 out, N'' = 16 in, K'' = 128 pixels: 32 x 128 x 128 = 524,288 MACs: 87.5% lost.
    tiled = device_from_table({**TOY, "matrix_tile": {"fp16": {"m": 8, "n": 128, "k": 128}},
                               "sources": {**TOY["sources"], "matrix_tile": "made up"}}, "toy")
    ks = {k.name.removeprefix("stage1.block0."): k for k in backward_kernels(toy_net(), tiled, "fp16", "mixed", "xla")}
    assert ks["b.conv#dX"].tile_loss == pytest.approx(1 - 65_536 / 2_097_152)
    assert ks["b.conv#dW"].tile_loss == pytest.approx(1 - 65_536 / 524_288)
    assert ks["b.conv#dX"].compute_s == pytest.approx((131_072 + 2 * (2_097_152 - 65_536)) / 50e12)
    assert all(k.tile_loss == 0 for k in backward_kernels(toy_net(), DEVICE, "fp16", "mixed", "xla"))  # no tile


def test_pooling_backward_reads_its_output_gradient_not_its_input():
    # GlobalAveragePool of 2x16x8x8 (2048 values): dY 2x16x1x1 (32 values) spread back over dX (2048);
    # its saved input gives only the shape. Bytes (fp32): (32 + 2048) x 4; an add per input element
    b = GraphBuilder("t", (2, 16, 8, 8))
    b.at(1, 0)
    g = b.finish(b.add("GlobalAveragePool", [conv(b, conv(b, "input", 16, 1, 16, name="p"), 16, 1, 16)], "g", "pool"))
    (pool,) = [k for k in backward_kernels(g, DEVICE, "fp32", "fp32") if k.op.startswith("GlobalAveragePool")]
    assert (pool.flops, pool.bytes) == (2048, (32 + 2048) * 4)


def test_the_ring_runs_over_the_device_files_interconnect():
    # [interconnect] figures are GB/s: NVLink and PCIe total over both directions (a ring sends each way at
    # half), one TPU ICI link one way. 600 GB/s NVLink -> 300e9 B/s a way; PCIe 64 -> 32e9; ICI 100 -> 100e9.
    def link(figures):
        table = {**TOY, "interconnect": figures, "sources": {**TOY["sources"], "interconnect": "made up"}}
        return device_link(device_from_table(table, "toy"))
    assert (link({"nvlink_gbs": 600.0, "pcie_gbs": 64.0}).bytes_per_s, link({"pcie_gbs": 64.0}).bytes_per_s,
            link({"ici_link_gbs": 100.0}).bytes_per_s) == (300e9, 32e9, 100e9)
    assert device_link(DEVICE) is None
    with pytest.raises(DeviceError, match="unknown key 'nvlink'"):
        device_from_table({**TOY, "interconnect": {"nvlink": 1.0}, "sources": {**TOY["sources"], "interconnect": "x"}},
                          "toy")
    with pytest.raises(DeviceError, match="sources.interconnect"):
        device_from_table({**TOY, "interconnect": {"pcie_gbs": 1.0}}, "toy")


def test_budgets_bound_a_step_and_a_runs_hours(effplan, tmp_path):
    # One run, read three ways: 4 devices x 16 images a step at step time t train 64 / t images/s, and 3 epochs
    # of 1,000 images take 3 x ceil(1000 / 64) = 48 steps: 48 t / 3600 hours.
    (tmp_path / "b.toml").write_text('[[budget]]\nmodel = "efficientnet-b0"\nresolution = 64\ndevice = "a100-80gb"\n'
                                     'train_batch = 16\ndevices = 4\nepochs = 3\ndataset_size = 1000\n'
                                     'max_training_step_time = "1s"\nmin_training_throughput = "1"\n'
                                     'max_training_hours = 1\n')
    run = effplan("check", str(tmp_path / "b.toml"), "--format", "json")
    assert run.code == 0, run.err
    rows = {r["limit_key"]: r for r in json.loads(run.out)["checks"]}
    step_s = rows["max_training_step_time"]["value"]
    assert rows["min_training_throughput"]["value"] == pytest.approx(64 / step_s)
    assert rows["max_training_hours"]["value"] == pytest.approx(48 * step_s / 3600)


@pytest.mark.parametrize("entry, message", [
    ('max_training_hours = 5', "needs epochs"),
    ('max_params = "10M"\nepochs = 3', "epochs: applies with max_training_hours"),
    ('max_params = "10M"\ndevices = 2', "devices: applies with the training-time limits"),
    ('max_training_step_time = "1ms"\nruntime = "fused"', "inference only"),
    ('max_training_step_time = "1ms"\nmin_training_throughput = "2000"', "contradictory"),
])
def test_budget_training_time_errors(effplan, tmp_path, entry, message):
    (tmp_path / "b.toml").write_text(f'[[budget]]\nmodel = "efficientnet-b0"\ndevice = "t4"\n{entry}\n')
    run = effplan("check", str(tmp_path / "b.toml"))
    assert run.code == 2 and message in run.err and len(run.err.strip().splitlines()) == 1


def test_table_train_columns_are_a_step_on_one_device(effplan):
    # The table's training columns at --batch 8 are one step of `effplan train --batch 8` on one device.
    table = effplan("table", "efficientnet-b0", "--resolution", "64", "--device", "t4", "--train", "--batch", "8",
                    "--format", "json").json()[0]
    train = effplan("train", "efficientnet-b0", "--resolution", "64", "--device", "t4", "--batch", "8",
                    "--format", "json").json()["stages"][0]
    assert table["training_step_s"] == pytest.approx(train["step_s"])
    assert table["training_images_per_s"] == pytest.approx(8 / train["step_s"])
    assert effplan("table", "efficientnet-b0", "--train").code == 2


def test_search_takes_the_training_step_limits_with_a_device():
    # The search bounds a step (checked exactly, design by design); a run's hours need epochs: budgets and train.
    from effplan.gate.search import run
    design = ep.resolve("efficientnet-b0")
    with pytest.raises(EffplanError, match="need a device"):
        run(design, {"max_training_step_time": 1e-3})
    with pytest.raises(EffplanError, match="max_training_hours: search bounds one training step"):
        run(design, {"max_training_hours": 1.0}, device="t4")
    with pytest.raises(EffplanError, match="inference only"):
        run(design, {"max_training_step_time": 1e-3}, device="t4", runtime="fused")


def test_compiled_and_xla_fuse_an_elementwise_backward_chain():
    # input 2x8x8x8 -> conv a (16, 3x3) -> BN -> Relu -> conv b. Mixed: activations 2 bytes, 2x16x8x8 = 2048.
    # Relu backward reads its saved output and dY, writes dX: 3 x 4096 = 12,288 B, 2048 FLOPs (a select each).
    # BN backward (as the first test): 12,544 B, 8 x 2048 FLOPs. Under compiled and xla they run as one
    # kernel: Relu's dX (BN's dY, 4096 B) is neither written nor read: 12,288 + 12,544 - 2 x 4096 = 16,640 B.
    # Eager runs BN's backward as PyTorch's CUDA kernels do, in two passes, each reading the saved input
    # (4096 B), its statistics (2 x 16 x 4 B) and dY (4096 B): the reduction (5 FLOPs an element) writes the
    # scale and shift gradients (32 x 4 B): 8,448 B; the elementwise pass (5 FLOPs) writes dX: 8,320 + 4,096 B.
    g = toy_net("Relu")
    eager = {k.op: (k.flops, k.bytes) for k in backward_kernels(g, DEVICE, "fp16", "mixed", "eager")}
    assert eager["Relu(backward)"] == (2048, 12_288)
    assert eager["BatchNormalization(backward reduce)"] == (10_240, 8_448)
    assert eager["BatchNormalization(backward)"] == (10_240, 12_416)
    for runtime in ("compiled", "xla"):
        fused = {k.op: (k.flops, k.bytes) for k in backward_kernels(g, DEVICE, "fp16", "mixed", runtime)}
        assert fused["Relu(backward)+BatchNormalization(backward)"] == (18_432, 16_640)
        assert len(fused) == len(eager) - 2


def test_a_cpu_trains_under_eager_cpu_paying_its_own_overhead_serially():
    # The toy's 1,696 trainable params (conv a 16x8x3x3 = 1,152, BN scale and shift 32, conv b 32x16 = 512); SGD
    # at fp32 moves 2 x 4 (weights read and written) + 4 (gradient) = 12 B a param: 20,352 B at 1000 GB/s =
    # 20.352 ns, above its 3,392 FLOPs at 10 TFLOP/s. eager-cpu adds the device's 5 µs to it ("serial"). A GPU's
    # eager launches asynchronously at 26.5 µs a kernel, and every kernel of this toy step takes nanoseconds: the
    # host never falls behind... the device always waits for it, so the step is eager's fixed 0.55 ms, one
    # launch a kernel, and the device time of the last kernel (the update's 20.352 ns).
    cpu = device_from_table({**TOY, "class": "server-cpu", "launch_overhead_us": 5.0}, "cpu")
    step = training_step(toy_net(), cpu, precision="fp32", optimizer="sgd")
    assert step.runtime.name == "eager-cpu"
    assert step.optimizer_s == pytest.approx(20_352 / 1e12 + 5e-6)
    gpu = training_step(toy_net(), DEVICE, precision="fp32", optimizer="sgd")
    kernels = len(gpu.forward) + len(gpu.backward) + 1
    assert gpu.runtime.name == "eager" and gpu.time_s == pytest.approx(5.5e-4 + kernels * 2.65e-5 + 20_352 / 1e12)
    assert gpu.optimizer_step.bound == "host"


def test_a_data_parallel_step_pays_the_runtimes_per_step_figure_at_its_hosts_speed(tmp_path):
    from effplan.plan.runtime import load_runtime

    # after-backward all-reduce of 6,784 B over a ring of 2 at 1 GB/s: 6.784 µs (as below), plus the runtime's
    # 1 ms a data-parallel step; beside a host at half the reference speed, 2 ms. One device pays neither.
    rt = dataclasses.replace(load_runtime("eager"), allreduce="after-backward", data_parallel_step_s=1e-3)
    link = Link(1e9, "given", "test")
    step = training_step(toy_net(), DEVICE, runtime=rt, devices=2, link=link)
    assert step.communication_s == pytest.approx(6_784 / 1e9 + 1e-3)
    slow = device_from_table({**TOY, "host": {"cpu": "old", "speed": 0.5},
                              "sources": {**TOY["sources"], "host": "made up for the test"}}, "toy")
    assert training_step(toy_net(), slow, runtime=rt, devices=2, link=link).communication_s == \
        pytest.approx(6_784 / 1e9 + 2e-3)
    one = training_step(toy_net(), DEVICE, runtime=rt)
    assert one.communication_s == 0.0
    assert step.speedup == pytest.approx(2 * one.time_s / step.time_s)
    assert load_runtime("eager").data_parallel_step_s > 0  # fitted: specs/runtimes/eager.toml says on what
    import tomllib
    from effplan.plan.runtime import RuntimeSpecError, runtime_from_table
    table = tomllib.loads(open(load_runtime("eager").path).read())
    unsourced = {**table, "training": {k: v for k, v in table["training"].items() if k != "data_parallel_source"}}
    with pytest.raises(RuntimeSpecError, match=r"^x.toml: training.data_parallel_source: the data-parallel step "
                                               r"figure needs its source$"):
        runtime_from_table(unsourced, "x.toml")
    with pytest.raises(RuntimeSpecError, match=r"training.data_parallel_step_s: expected a value between 0 and 10"):
        runtime_from_table({**table, "training": {**table["training"], "data_parallel_step_s": 60}}, "x.toml")


def test_whether_a_runtime_trains_and_how_it_overlaps_are_its_files_data(effplan, tmp_path):
    from effplan.plan.runtime import load_runtime

    eager = load_runtime("eager").path
    text = open(eager).read().replace('name = "eager"', 'name = "mine"')
    text = re.sub(r"(?m)^data_parallel_step_s = .*$", "data_parallel_step_s = 0.0", text)  # the all-reduce alone
    after = tmp_path / "after.toml"
    after.write_text(text.replace('allreduce = "bucketed"', 'allreduce = "after-backward"'))
    # 1,696 params x 4 B (mixed: fp32 gradients) = 6,784 B; a ring of 2 sends 2 (2 - 1) / 2 of them at 1 GB/s:
    # 6.784 µs, all of it after backward
    step = training_step(toy_net(), DEVICE, runtime=str(after), devices=2, link=Link(1e9, "given", "test"))
    assert step.runtime.allreduce == "after-backward"
    assert step.allreduce_s == step.communication_s == pytest.approx(6_784 / 1e9)
    inference_only = tmp_path / "inference.toml"
    inference_only.write_text(text[:text.index("[training]")])
    with pytest.raises(EffplanError, match="runs inference only"):
        training_step(toy_net(), DEVICE, runtime=str(inference_only))
    run = effplan("train", "efficientnet-b0", "--device", "t4", "--runtime", str(after), "--batch", "8",
                  "--dataset-size", "100", "--format", "json")
    assert run.code == 0 and json.loads(run.out)["runtime"] == "mine"


def test_the_half_precision_is_one_device_property():
    from effplan.plan.roofline import roofline

    tpu = device_from_table({**TOY, "matrix": {"bf16": 100.0, "fp32": 20.0}, "vector": {"bf16": 10.0, "fp32": 10.0}},
                            "tpu-like")
    fp32 = device_from_table({**TOY, "matrix": {"fp32": 20.0}}, "fp32-only")
    assert (DEVICE.half_dtype, tpu.half_dtype, fp32.half_dtype) == ("fp16", "bf16", None)
    assert (DEVICE.preferred_dtype, tpu.preferred_dtype, fp32.preferred_dtype) == ("fp16", "bf16", "fp32")
    assert training_step(toy_net(), tpu, runtime="eager").dtype == "bf16"  # mixed: the half precision
    with pytest.raises(EffplanError, match="no half-precision matrix unit"):
        training_step(toy_net(), fp32)
    assert roofline(toy_net(), tpu).dtype == "bf16"  # no dtype given: the device's preferred


def test_one_reserve_for_fit_train_and_the_api():
    from effplan.plan.memory import fit

    design = with_overrides(ep.resolve("efficientnet-b0"), resolution=64)
    got = fit(design, "1GiB", train=True)
    assert got.budget_bytes == 2**30 - 107_374_182  # the default reserve: 10% of 2^30 = 107,374,182.4, rounded down
    run = training_run(design, DEVICE, batch=1, dataset_size=10)  # "fits (largest)": the same fit on the device
    assert run.stages[0].largest_batch == fit(design, DEVICE.memory_bytes, train=True).batch


def test_a_batch_that_does_not_fit_is_warned_in_effplans_words(effplan):
    run = effplan("train", "efficientnet-b0", "--device", "t4", "--resolution", "64", "--batch", "100000",
                  "--dataset-size", "100000", "--format", "json")
    assert run.code == 0 and run.err.startswith("effplan: warning: batch 100000 per device does not fit t4 at 64 px")


def toy_file(tmp_path, table):
    """A toy device table as a device file, for the CLI."""
    tables = {k: v for k, v in table.items() if isinstance(v, dict)}
    text = "".join(f"{k} = {json.dumps(v)}\n" for k, v in table.items() if k not in tables)
    text += "".join(f"[{name}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in t.items())
                    for name, t in tables.items())
    path = tmp_path / "toy.toml"
    path.write_text(text)
    return str(path)


def test_search_ranks_by_training_throughput_as_effplan_train_times_it(effplan, tmp_path):
    # At a fixed depth and width every kernel of a step (forward, backward, optimizer) does at least as much
    # work at a larger resolution, and the convolutions strictly more: training time rises with resolution,
    # as MACs do. So on one depth and width the ranking by training images/s is the order of least MACs,
    # and each score is the images/s per device `effplan train` reports for that design and batch. The toy is
    # slow (1 GB/s, 0.01-0.1 TFLOP/s) so that the work, not the launch overhead, sets nearly every kernel's time.
    toy = toy_file(tmp_path, {**TOY, "bandwidth_gbs": 1.0, "matrix": {"fp16": 0.1, "fp32": 0.02},
                              "vector": {"fp16": 0.01, "fp32": 0.01}})
    grid = ("search", "efficientnet-b0", "--device", toy, "--batch", "2", "--max-macs", "0.45G", "--depth", "1",
            "--width", "1", "--resolution", "64..160:32", "--objective", "train-throughput", "--format", "json")
    designs = json.loads(effplan(*grid).out)  # 0.45G at batch 2: phi 0 (224 px) does not fit, only the grid
    assert [d["resolution"] for d in designs] == [64, 96, 128, 160]
    assert [d["macs"] for d in designs] == sorted(d["macs"] for d in designs)
    assert {(d["objective"], d["timed"], d["timed_of"]) for d in designs} == {("train-throughput", 4, 4)}
    for d in designs:
        train = effplan("train", "efficientnet-b0", "--device", toy, "--batch", "2", "--resolution",
                        str(d["resolution"]), "--format", "json").json()["stages"][0]
        assert d["score"] == d["training_images_per_s"] == train["images_per_s_per_device"]
    # --timed 2: only the two with the most MACs are timed, and the text says so
    text = " ".join(effplan(*grid[:-2], "--timed", "2").out.replace("\n#", "").split())  # unwrapped
    assert "timed the 2 with the most MACs of the 4 within the screened limits (--timed 2; 2 not timed)" in text
    assert [d["resolution"] for d in json.loads(effplan(*grid, "--timed", "2").out)] == [128, 160]


@pytest.mark.parametrize("args, message", [
    ([], "--objective train-throughput ranks by training images/s on a device: give --device"),
    (["--device", "t4", "--objective", "macs", "--timed", "3"],
     "--timed (at least 1) applies with --objective train-throughput"),
])
def test_the_training_objective_needs_a_device(effplan, args, message):
    run = effplan("search", "efficientnet-b0", "--max-macs", "1G", "--objective", "train-throughput", *args)
    assert (run.code, run.err) == (2, f"effplan: error: {message}\n")


def test_tf32_trains_on_the_tf32_matrix_unit_with_fp32_tensors():
    # conv b's weight gradient: 65,536 MACs = 131,072 FLOPs on a 40 TFLOP/s TF32 unit at half efficiency
    # (20 TFLOP/s): 6.5536 ns; its bytes at fp32: dY 4096 x 4 + X 2048 x 4 + dW 512 x 4 = 26,624 B (26.6 ns)
    tf32 = device_from_table({**TOY, "matrix": {**TOY["matrix"], "tf32": 40.0}}, "toy")
    step = training_step(toy_net(), tf32, precision="tf32", optimizer="sgd", runtime="xla")
    assert step.dtype == "tf32"
    dw = next(k for k in step.backward if k.name.endswith("b.conv#dW"))
    assert dw.compute_s == pytest.approx(131_072 / 20e12) and dw.bytes == 26_624
    with pytest.raises(EffplanError, match="no TF32 matrix unit"):
        training_step(toy_net(), DEVICE, precision="tf32")


def test_the_update_is_launched_as_the_runtime_says():
    from effplan.plan.training import optimizer_launches
    # 213 parameter tensors (EfficientNet-B0's) are 2 chunks of at most 110; AdamW is 8 operations
    assert [optimizer_launches(213, "adamw", way) for way in ("single", "fused", "foreach", "for-loop")] == [
        1, 2, 16, 1704]
    assert optimizer_launches(4, "momentum", "foreach") == 3 and optimizer_launches(4, "sgd", "for-loop") == 4
    # eager (foreach), mixed fp16, SGD on the toy's 4 tensors (1,696 params): GradScaler's unscale (one chunk,
    # reading and writing each fp32 gradient: 8 B a param) and its scale update, then one foreach add. The update
    # moves 2 x 4 (fp32 master read and written) + 4 (gradient) = 12 B a param; the half copies are the
    # forward's cast kernels under eager, and the scaler's 8 B are its own kernel.
    step = training_step(toy_net(), DEVICE, precision="mixed", optimizer="sgd")
    assert [k.op for k in step.update] == ["GradScaler unscale+inf check", "GradScaler update", "sgd update"]
    assert [k.bytes for k in step.update] == [8 * 1696, 8, 12 * 1696]
    assert sum(k.op == "Cast(weight)" for k in step.forward) == 2  # conv a and conv b


def test_ddp_buckets_are_all_reduced_as_the_backward_fills_them():
    from effplan.plan.roofline import Kernel
    from effplan.plan.parallel import bucketed_allreduce_s
    # Three backward kernels of 1 ms completing 2, 10 and 20 MiB of gradients; 2 devices (a ring moves
    # 2 (2 - 1) / 2 = 1 x the bytes) at 1 GB/s bus bandwidth, 0.1 ms a call. The first bucket (1 MiB cap) is
    # full after kernel 1 with 2 MiB: sent from 1 ms to 1 + 2.097152 + 0.1 = 3.197 ms. The next (25 MiB cap)
    # fills at kernel 3 (30 MiB) at 3 ms and waits for the first: 3.197 + 31.457280 + 0.1 = 34.754 ms; the
    # backward ended at 3 ms, so 31.754 ms are exposed, of 33.754 ms of all-reduce.
    ks = [Kernel(f"k{i}", "x", 1, 0, (), 0, 0, 0, "vector", 0.0, 1e-3, 0.0, "async", wait_s=0.0) for i in range(3)]
    grads = {"k0": 2 << 20, "k1": 10 << 20, "k2": 20 << 20}
    whole, exposed = bucketed_allreduce_s(ks, grads, 2, Link(1e9, "nvlink", "made up", 1e-4))
    assert whole == pytest.approx(2.097152e-3 + 31.45728e-3 + 2e-4)
    assert exposed == pytest.approx(3.197152e-3 + 31.45728e-3 + 1e-4 - 3e-3)


def test_a_step_reports_its_speedup_over_one_device():
    # two devices over a 1 GB/s link, after-backward (xla): the whole all-reduce adds to the step, so the
    # speed-up is 2 x (step without it) / (step with it)
    one = training_step(toy_net(), DEVICE, precision="fp32", optimizer="sgd", runtime="xla")
    two = training_step(toy_net(), DEVICE, precision="fp32", optimizer="sgd", runtime="xla", devices=2,
                        link=Link(1e9, "nvlink", "made up"))
    assert two.communication_s == pytest.approx(1696 * 4 / 1e9)  # 2 (2 - 1) / 2 x 6,784 gradient bytes
    assert two.speedup == pytest.approx(2 * one.time_s / (one.time_s + 1696 * 4 / 1e9))


def test_a_broadcast_multiply_backward_runs_as_eager_autograd_runs_it():
    # y = x * g, x 2x16x8x8 (2048 values), g 2x16x1x1 (32), fp16 (2 bytes): dx = dy * g reads dy and g, writes dx:
    # (2 x 2048 + 32) x 2 B; dg = sum over pixels of dy * x: a full-size product (reads dy and x, writes it:
    # 3 x 2048 x 2 B) and its reduction (reads it, writes dg: (2048 + 32) x 2 B); one FLOP an element each.
    b = GraphBuilder("t", (2, 8, 8, 8))
    b.at(1, 0)
    x = conv(b, "input", 16, 3, 8, name="a")
    pooled = b.add("GlobalAveragePool", [x], "a", "pool")
    gate = b.add("Conv", [pooled], "a", "se", weights=(Weight("W", (16, 16, 1, 1)),),
                 attrs={"kernel_shape": (1, 1), "strides": (1, 1), "group": 1, "pads": (0, 0, 0, 0)})
    g = b.finish(b.add("Mul", [x, gate], "a", "scale"))
    got = {k.op: (k.flops, k.bytes) for k in backward_kernels(g, DEVICE, "fp16", "fp16", "eager")}
    assert got["Mul(backward)"] == (2048, (2 * 2048 + 32) * 2)
    assert got["Mul(backward product)"] == (2048, 3 * 2048 * 2)
    assert got["Mul(backward sum)"] == (2048, (2048 + 32) * 2)
