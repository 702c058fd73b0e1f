"""Roofline: hand-derived single ops on a toy device, fusion, the catalog, and the EfficientNetV2 observation."""
import math
import tomllib

import pytest

import effplan
from effplan.design.blocks import build
from effplan.graph.builder import GraphBuilder, Weight
from effplan.plan.hardware import CLASSES, SOURCED, builtin_device_paths, device_from_table, load_device
from effplan.plan.roofline import kernel_groups, roofline

# The toy is a datacenter GPU, so its default runtime is "fused": 2 µs launch overhead, async (a floor
# under each kernel: time = max(compute, memory, 2 µs)).
TOY = {  # 100 TFLOP/s matrix at half efficiency, 10 TFLOP/s vector, 1000 GB/s, 2 µs per kernel
    "name": "toy", "description": "a toy device", "class": "datacenter-gpu", "memory_gb": 16.0,
    "bandwidth_gbs": 1000.0, "onchip_mb": 10.0, "launch_overhead_us": 2.0,
    "matrix": {"fp16": 100.0}, "vector": {"fp16": 10.0},
    "efficiency": {"matrix": 0.5, "vector": 1.0, "bandwidth": 1.0},
    "sources": dict.fromkeys(SOURCED, "made up for the test"),
}
DEVICE = device_from_table(TOY, "toy")


def single(input_shape, op, **kw):
    b = GraphBuilder("t", input_shape)
    b.at(1, 0)
    return b.finish(b.add(op, ["input"], "", "op", **kw))


def test_gemm_is_compute_bound():
    # [1024, 4096] x [4096, 4096] + bias, fp16: MACs 1024*4096*4096 = 17,179,869,184;
    # FLOPs 2*MACs + 1024*4096 bias adds; at 50 TFLOP/s achievable: 687.3 µs.
    # Bytes: input 8 MiB + weights (4096*4096 + 4096)*2 + output 8 MiB = 50,339,840 -> 50.3 µs at 1 TB/s.
    g = single((1024, 4096), "Gemm", attrs={"transB": 1},
               weights=(Weight("W", (4096, 4096)), Weight("B", (4096,))))
    (k,) = roofline(g, DEVICE, "fp16").kernels
    flops = 2 * 1024 * 4096 * 4096 + 1024 * 4096
    assert k.unit == "matrix" and k.bound == "compute"
    assert k.bytes == 2 * (1024 * 4096 * 2 + 4096 * 4096 + 4096)
    assert k.time_s == pytest.approx(flops / 50e12 + 2e-6)  # the device waits 2 µs for its launch
    assert k.intensity == pytest.approx(flops / k.bytes)


def test_depthwise_conv_is_memory_bound_on_the_vector_unit():
    # 3x3 depthwise on 1x256x56x56, fp16: MACs 256*56*56*9 = 7,225,344, FLOPs 14,450,688 -> 1.445 µs at 10 TFLOP/s;
    # bytes: input 802,816*2 + output 802,816*2 + weights 2,304*2 = 3,215,872 -> 3.216 µs at 1 TB/s.
    g = single((1, 256, 56, 56), "Conv", weights=(Weight("W", (256, 1, 3, 3)),),
               attrs={"kernel_shape": (3, 3), "strides": (1, 1), "group": 256, "pads": (1, 1, 1, 1)})
    (k,) = roofline(g, DEVICE, "fp16").kernels
    assert (k.unit, k.bound, k.macs, k.bytes) == ("vector", "memory", 7_225_344, 3_215_872)
    assert k.time_s == pytest.approx(3_215_872 / 1e12 + 2e-6)  # after its 2 µs launch


def test_tiny_op_is_host_bound():
    # ReLU on 8 values: 8 FLOPs, 32 bytes: nanoseconds of work under a 2 µs launch.
    (k,) = roofline(single((1, 8, 1, 1), "Relu"), DEVICE, "fp16").kernels
    assert k.bound == "host"
    assert k.time_s == pytest.approx(2e-6 + 32 / 1e12)  # its launch (the device waits for the host), then 32 bytes


def test_conv_bn_activation_and_residual_fuse_into_one_kernel():
    # x 1x16x8x8 -> conv 3x3 16 -> BN -> Add(x) -> ReLU: one kernel reading x once (1024 values),
    # the weights (16*16*9 + 4*16 BN values) and writing the output (1024); nothing in between.
    from conftest import RELU
    from effplan.design.blocks import batch_norm, conv

    b = GraphBuilder("t", (1, 16, 8, 8))
    b.at(1, 0)
    y = batch_norm(b, conv(b, "input", 16, 3, 1, "a"), "a", RELU)
    g = b.finish(b.add("Relu", [b.add("Add", [y, "input"], "res", "add")], "res", "relu"))
    (k,) = roofline(g, DEVICE, "fp16").kernels
    assert k.op == "Conv+BatchNormalization+Add+Relu"
    assert k.bytes == 2 * (1024 + 1024 + 16 * 16 * 9 + 4 * 16)
    unfused = roofline(g, DEVICE, "fp16", runtime="eager").kernels  # eager: one kernel per op
    assert [u.op for u in unfused] == ["Cast(weight)", "Conv", "BatchNormalization", "Add", "Relu"]
    # unfused, each op reads its inputs and writes its output: conv 1024+1024, BN 1024+1024, Add 3*1024,
    # ReLU 2*1024 -- with no on-chip memory to speak of (1 byte); autocast's cast of the conv's fp32 weights
    # reads 4 bytes and writes 2 a weight (16*16*9): 3 more 2-byte values each
    tiny = device_from_table({**TOY, "onchip_mb": 1 / 2**20}, "toy")
    assert sum(u.bytes for u in roofline(g, tiny, "fp16", runtime="eager").kernels) == 2 * (
        9 * 1024 + 16 * 16 * 9 + 4 * 16 + 3 * 16 * 16 * 9)
    # with 10 MB on chip, the conv's, BN's and Add's outputs (each read only by the next kernel) never
    # reach memory: the conv reads x, the Add reads x again, the ReLU writes: 3*1024 + the weights
    assert sum(u.bytes for u in unfused) == 2 * (3 * 1024 + 16 * 16 * 9 + 4 * 16 + 3 * 16 * 16 * 9)


def test_swish_fuses_and_the_se_multiply_stays_a_kernel():
    groups = kernel_groups(build(effplan.resolve("efficientnet-b0")))
    ops = {tuple(g) for g in groups}
    assert ("stem.0.conv", "stem.0.bn", "stem.0.sigmoid", "stem.0.swish") in ops
    assert ("stage1.block0.se.scale",) in ops
    assert not any("flatten" in n or "dropout" in n for g in groups for n in g)  # views run no kernel


@pytest.mark.parametrize("model", ["resnet-50", "resnet-18", "efficientnet-b0", "googlenet", "shufflenet-v2"])
def test_every_op_runs_in_one_kernel_after_its_inputs(model):
    """Fusion only regroups ops: each non-view op in exactly one kernel, and no kernel reads a
    tensor a later kernel makes (ResNet's projection blocks: both branches end in conv + BN)."""
    g = build(effplan.resolve(model))
    groups = kernel_groups(g)
    ran = [n for group in groups for n in group]
    views = {n for n in g.nodes if g.nodes[n]["op"] in ("Flatten", "Reshape", "Dropout", "Identity")}
    assert sorted(ran) == sorted(set(g.nodes) - views)
    view_of = {g.nodes[v]["outputs"][0]: g.nodes[v]["inputs"][0] for v in views}

    def source(t):  # a view's output is its input's memory
        while t in view_of:
            t = view_of[t]
        return t
    made = set(g.graph["inputs"])
    for group in groups:
        produced = {t for n in group for t in g.nodes[n]["outputs"]}
        reads = {t for n in group for t in g.nodes[n]["inputs"]} - produced
        assert all(source(t) in made for t in reads), group
        made |= produced


def test_efficientnetv2_observation_depthwise_slow_per_mac():
    """EfficientNetV2: depthwise convs in early stages are slow on accelerators; Fused-MBConv fixes it,
    under every runtime the device runs."""
    b4_graph, v2s_graph = build(effplan.resolve("efficientnet-b4"), 8), build(effplan.resolve("efficientnetv2-s"), 8)
    for device in ("a100-80gb", "h100-sxm", "v100", "l4", "tpu-v4", "tpu-v5e"):
        found = load_device(device)
        dtype = "fp16" if "fp16" in found.vector else "bf16"  # TPUs: bf16
        for runtime in ("xla",) if found.kind == "tpu" else ("eager", "compiled", "fused"):
            b4 = roofline(b4_graph, found, dtype, 8, runtime=runtime).kernels
            v2s = roofline(v2s_graph, found, dtype, 8, runtime=runtime).kernels
            depthwise = [k for k in b4 if k.stage in (1, 2, 3) and k.unit == "vector" and k.op.startswith("Conv")]
            fused = [k for k in v2s if k.stage in (1, 2, 3) and k.op.startswith("Conv")]
            assert len(depthwise) == 10 and all(k.unit == "matrix" for k in fused)
            if found.kind != "tpu":  # GPUs: starved by memory; TPUs: the small VPU is the limit instead
                assert sum(k.memory_s for k in depthwise) > sum(k.compute_s for k in depthwise), (device, runtime)
            per_mac = lambda ks: sum(k.time_s for k in ks) / sum(k.macs for k in ks)  # noqa: E731
            assert per_mac(depthwise) > 5 * per_mac(fused), (device, runtime)


def test_every_catalog_file_validates_and_sources_every_figure():
    paths = builtin_device_paths()
    assert len(paths) >= 16
    required = {"v100", "t4", "a100-40gb", "a100-80gb", "h100-sxm", "h200", "l4", "rtx-4090", "jetson-agx-orin",
                "tpu-v3", "tpu-v4", "tpu-v5e", "tpu-v5p", "xeon-e5-2690"}
    assert required <= set(paths)
    classes = set()
    for name, path in paths.items():
        table = tomllib.loads(path.read_text())
        device = device_from_table(table, str(path))
        assert device.name == name
        assert all(table["sources"][key].strip() for key in SOURCED)
        assert device.matrix and device.vector and device.bandwidth > 0
        classes.add(device.kind)
    assert {"datacenter-gpu", "tpu", "mobile-npu", "server-cpu"} <= classes <= set(CLASSES)


def test_published_datasheet_figures():
    a100 = load_device("a100-80gb")  # NVIDIA A100 datasheet: 312 TFLOPS fp16 tensor, 2,039 GB/s, 80 GB
    assert a100.matrix["fp16"] == 312e12 and a100.bandwidth == 2039e9 and a100.memory_bytes == 80 << 30
    v4 = load_device("tpu-v4")  # Cloud TPU docs: 275 TFLOPS bf16 per chip, 32 GiB HBM, 1,200 GB/s
    assert v4.matrix["bf16"] == 275e12 and v4.memory_bytes == 32 << 30


@pytest.mark.parametrize("change, message", [
    ({"bandwidth_gbs": -1}, "positive number"),
    ({"matrix": {"fp17": 1.0}}, "unknown precision"),
    ({"efficiency": {"matrix": 1.5, "vector": 1, "bandwidth": 1}}, "at most 1"),
    ({"sources": {}}, "needs its source"),
    ({"class": "toaster"}, "class: expected one of"),
    ({"bandwith_gbs": 1}, "did you mean: bandwidth_gbs"),
])
def test_bad_device_tables(change, message):
    with pytest.raises(effplan.EffplanError, match=message):
        device_from_table({**TOY, **change}, "toy.toml")


def test_missing_precision_is_a_clear_error():
    with pytest.raises(effplan.EffplanError, match="no matrix-unit peak for int8"):
        roofline(single((1, 8, 1, 1), "Relu"), load_device("v100"), "int8")


def test_utilisation_and_throughput():
    design = effplan.resolve("resnet-50")
    r = roofline(build(design, 4), load_device("a100-80gb"), "fp16", 4)
    assert r.images_per_s == pytest.approx(4 / r.latency_s)
    flops = sum(k.flops for k in r.kernels)
    assert r.utilisation == pytest.approx(flops / r.latency_s / 312e12)
    assert math.isclose(sum(k.time_s for k in r.kernels), r.latency_s)
