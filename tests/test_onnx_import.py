"""Imports of graphs in the shapes real exporters write (PyTorch without parameters or with tied
weights, fp16 and QDQ int8 files, ORT-optimised files with contrib ops, TF NHWC graphs): costs and
params derived by hand in each test, as PyTorch counts params."""
import gc
import time

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from test_onnx import costs_of, init, model_of, session, tensor

from effplan.onnx.importer import OnnxError, from_onnx

CONV = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}
W = np.linspace(-1, 1, 16 * 8 * 9, dtype=np.float32).reshape(16, 8, 3, 3)
CONV_MACS = 16 * 6 * 6 * 8 * 9  # Cout*H*W * Cin*Kh*Kw on a 6x6 map, 'same' padding


def checked(model):
    onnx.checker.check_model(model, full_check=True)  # a graph exporters could have written
    return model


def write(tmp_path, model, name="m.onnx"):
    path = tmp_path / name
    path.write_bytes(model.SerializeToString())
    return str(path)


# ---- item 2: a conv's weight that is not an initializer of its own

def test_weights_from_constant_nodes_and_identities():
    """Conv W from a Constant node; a classifier whose weight is a Constant and whose bias an Identity."""
    fc = np.ones((10, 16 * 6 * 6), np.float32)
    nodes = [helper.make_node("Constant", [], ["w"], value=onnx.numpy_helper.from_array(W, "w")),
             helper.make_node("Conv", ["x", "w"], ["c"], **CONV), helper.make_node("Flatten", ["c"], ["f"]),
             helper.make_node("Constant", [], ["fw"], value=onnx.numpy_helper.from_array(fc, "fw")),
             helper.make_node("Identity", ["fc.bias"], ["fb"]),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], transB=1)]
    p, ops = costs_of(checked(model_of(nodes, [tensor("x", [1, 8, 6, 6])], [tensor("y", [1, 10])],
                                       [init("fc.bias", np.zeros(10, np.float32))])))
    assert ops["Conv"].params == 16 * 8 * 9 and ops["Conv"].macs == CONV_MACS
    assert ops["Gemm"].params == 576 * 10 + 10 and ops["Gemm"].macs == 576 * 10
    assert ops["Gemm"].flops == 2 * 5760 + 10 and p.unknown_ops == {}


def test_weights_as_graph_inputs_count_and_are_noted(tmp_path, effplan):
    """PyTorch's export_params=False: weights are graph inputs with fixed shapes, fed at run time."""
    nodes = [helper.make_node("Conv", ["x", "conv.weight", "conv.bias"], ["c"], **CONV),
             helper.make_node("Relu", ["c"], ["y"])]
    model = checked(model_of(nodes, [tensor("x", ["N", 8, 6, 6]), tensor("conv.weight", [16, 8, 3, 3]),
                                     tensor("conv.bias", [16])], [tensor("y", ["N", 16, 6, 6])]))
    path = write(tmp_path, model)
    report = effplan("analyze", path, "--batch", "2", "--format", "json").json()
    assert report["totals"]["params"] == 16 * 8 * 9 + 16  # nn.Conv2d(8, 16, 3) has 1168
    assert report["totals"]["macs"] == 2 * CONV_MACS and report["batch"] == 2  # --batch left the weights alone
    assert report["weight_inputs"] == ["conv.bias", "conv.weight"]
    assert "2 weights are graph inputs, fed at run time" in effplan("analyze", path).out


def test_tied_weight_through_identity_is_owned_by_each_op_and_stored_once():
    """PyTorch writes a shared weight once and the second use as an Identity of it: each conv owns the
    weight in its slot (the totals are the sum of the rows), the file stores 8*8*9 elements, and the
    report names the initializer with the ops that read it."""
    w8 = W[:8]  # [8, 8, 3, 3]
    nodes = [helper.make_node("Conv", ["x", "w"], ["a"], **CONV), helper.make_node("Identity", ["w"], ["w2"]),
             helper.make_node("Conv", ["a", "w2"], ["y"], **CONV)]
    p, _ = costs_of(checked(model_of(nodes, [tensor("x", [1, 8, 6, 6])], [tensor("y", [1, 8, 6, 6])],
                                     [init("w", w8)])))
    assert [r.params for r in p.rows] == [8 * 8 * 9] * 2 and p.totals.params == 2 * 8 * 8 * 9
    assert p.totals.weight_bytes == 2 * 8 * 8 * 9 * 4
    assert p.graph.graph["distinct_weight_elements"] == 8 * 8 * 9
    assert list(p.graph.graph["shared_initializers"]) == ["w"]
    assert [r.macs for r in p.rows] == [8 * 36 * 72] * 2 and p.unknown_ops == {}


def test_fp16_weight_through_cast():
    nodes = [helper.make_node("Cast", ["w16"], ["w"], to=TensorProto.FLOAT),
             helper.make_node("Conv", ["x", "w"], ["y"], **CONV)]
    p, ops = costs_of(checked(model_of(nodes, [tensor("x", [1, 8, 6, 6])], [tensor("y", [1, 16, 6, 6])],
                                       [init("w16", W.astype(np.float16))])))
    assert p.totals.params == 16 * 8 * 9 and ops["Conv"].macs == CONV_MACS and list(ops) == ["Conv"]


def test_qdq_int8_weights_are_the_convs_params():
    """A QDQ int8 model: int8 weight and int32 bias initializers, dequantized per channel, feed the conv;
    the activation is quantized and dequantized on the way in. onnxruntime runs it."""
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
             helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["w"], axis=0),
             helper.make_node("DequantizeLinear", ["bq", "bs"], ["b"], axis=0),
             helper.make_node("Conv", ["xd", "w", "b"], ["y"], **CONV)]
    inits = [init("xs", np.float32(0.05)), init("xz", np.int8(0)),
             init("wq", rng.integers(-127, 128, (16, 8, 3, 3), dtype=np.int8)),
             init("ws", np.full(16, 0.01, np.float32)), init("wz", np.zeros(16, np.int8)),
             init("bq", np.arange(16, dtype=np.int32)), init("bs", np.full(16, 0.0005, np.float32))]
    model = checked(model_of(nodes, [tensor("x", [1, 8, 6, 6])], [tensor("y", [1, 16, 6, 6])], inits))
    (y,) = session(model).run(None, {"x": np.ones((1, 8, 6, 6), np.float32)})
    assert y.shape == (1, 16, 6, 6)
    p, ops = costs_of(model)
    assert p.totals.params == 16 * 8 * 9 + 16 and ops["Conv"].params == 16 * 8 * 9 + 16
    assert ops["Conv"].macs == CONV_MACS
    # the weights' dequantization is folded (constant); the activation's Q/DQ pair runs: x / scale + zero
    # point, clamped (3 FLOPs an element), then (q - zero point) * scale (2)
    assert p.unknown_ops == {} and ops["QuantizeLinear"].flops == 3 * 8 * 36
    assert ops["DequantizeLinear"].flops == 2 * 8 * 36


def test_computed_conv_weight_takes_its_inferred_shape():
    """A weight computed from data (a dynamic conv) is no parameter; its shape still gives the MACs."""
    nodes = [helper.make_node("Relu", ["k"], ["w"]), helper.make_node("Conv", ["x", "w"], ["y"], **CONV)]
    p, ops = costs_of(checked(model_of(nodes, [tensor("x", [1, 8, 6, 6]), tensor("k", [16, 8, 3, 3])],
                                       [tensor("y", [1, 16, 6, 6])])))
    assert ops["Conv"].macs == CONV_MACS and p.totals.params == 0


# ---- items 3 and 6: ops with no cost function keep their weights; contrib ops take the file's shapes

def test_contrib_op_keeps_its_weights_and_the_files_shapes(tmp_path, effplan):
    """onnxruntime-optimised files: com.microsoft FusedConv, which ONNX shape inference cannot type;
    the file's own value_info (symbolic batch, bound by --batch) gives its output's shape."""
    nodes = [helper.make_node("FusedConv", ["x", "w", "b"], ["c"], domain="com.microsoft", activation="Relu", **CONV),
             helper.make_node("Relu", ["c"], ["y"])]
    graph = helper.make_graph(nodes, "g", [tensor("x", ["N", 8, 6, 6])], [tensor("y", ["N", 16, 6, 6])],
                              [init("w", W), init("b", np.zeros(16, np.float32))],
                              value_info=[tensor("c", ["N", 16, 6, 6])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.microsoft", 1)])
    p, ops = costs_of(model, batch=2)
    assert p.unknown_ops == {"FusedConv": 1}
    assert p.totals.params == 16 * 8 * 9 + 16 and ops["FusedConv"].macs == 0
    assert ops["Relu"].flops == 2 * 16 * 6 * 6
    run = effplan("analyze", write(tmp_path, model), "--batch", "2")
    assert run.code == 0 and "FusedConv x1" in run.out


def test_cost_functions_of_transposed_conv_norms_and_prelu():
    nodes = [helper.make_node("ConvTranspose", ["x", "wt", "bt"], ["up"], kernel_shape=[3, 3], strides=[2, 2], group=2),
             helper.make_node("InstanceNormalization", ["up", "s4", "b4"], ["n"]),
             helper.make_node("PRelu", ["n", "slope"], ["r"]),
             helper.make_node("LayerNormalization", ["r", "s11", "b11"], ["y"], axis=-1)]
    inits = [init("wt", np.zeros((8, 2, 3, 3), np.float32)), init("bt", np.zeros(4, np.float32)),
             init("s4", np.ones(4, np.float32)), init("b4", np.zeros(4, np.float32)),
             init("slope", np.full((4, 1, 1), 0.25, np.float32)),
             init("s11", np.ones(11, np.float32)), init("b11", np.zeros(11, np.float32))]
    model = checked(model_of(nodes, [tensor("x", [1, 8, 5, 5])], [tensor("y", [1, 4, 11, 11])], inits))
    p, ops = costs_of(model)
    assert p.unknown_ops == {}
    out = 4 * 11 * 11  # (5 - 1) * 2 + 3 = 11
    # every input element meets Cout/group * Kh * Kw = 2 * 9 weights: N*Cin*Hin*Win*(Cout/group)*Kh*Kw
    assert ops["ConvTranspose"].macs == 8 * 5 * 5 * 2 * 9
    assert ops["ConvTranspose"].flops == 2 * 3600 + out and ops["ConvTranspose"].params == 8 * 2 * 9 + 4
    assert ops["InstanceNormalization"].params == 8 and ops["InstanceNormalization"].flops == 5 * out
    assert ops["PRelu"].params == 4 and ops["PRelu"].flops == 2 * out  # nn.PReLU(4): 4 params
    assert ops["LayerNormalization"].params == 22 and ops["LayerNormalization"].flops == 5 * out
    assert p.totals.params == 148 + 8 + 4 + 22


# ---- item 4: constants are not parameters

def test_scalars_and_clip_bounds_are_constants_not_params():
    """HardSwish as exporters decompose it, x * Clip(x + 3, 0, 6) / 6, then x^2 - 0.5: scalars only.
    A per-channel layer scale ([1, C, 1, 1] Mul) is a parameter, as in ConvNeXt's gamma."""
    nodes = [helper.make_node("Add", ["x", "three"], ["a"]), helper.make_node("Clip", ["a", "zero", "six"], ["c"]),
             helper.make_node("Mul", ["x", "c"], ["m"]), helper.make_node("Div", ["m", "six"], ["h"]),
             helper.make_node("Pow", ["h", "two"], ["p"]),
             helper.make_node("Constant", [], ["half"], value_float=0.5), helper.make_node("Sub", ["p", "half"], ["s"]),
             helper.make_node("Mul", ["s", "gamma"], ["y"])]
    inits = [init("three", np.float32(3)), init("zero", np.float32(0)), init("six", np.array([6], np.float32)),
             init("two", np.float32(2)), init("gamma", np.ones((1, 4, 1, 1), np.float32))]
    p, _ = costs_of(checked(model_of(nodes, [tensor("x", [1, 4, 3, 3])], [tensor("y", [1, 4, 3, 3])], inits)))
    assert p.totals.params == 4 and p.totals.buffers == 0 and p.totals.weight_bytes == 16


# ---- item 5: Resize with float scales

@pytest.mark.parametrize("mode, per_element", [("linear", 2 * 4 - 1), ("nearest", 0)])
def test_resize_with_float_scales(mode, per_element):
    """Bilinear: each output element weighs 2 x 2 neighbours, 4 multiplies and 3 adds; nearest copies."""
    nodes = [helper.make_node("Resize", ["x", "", "scales"], ["y"], mode=mode)]
    model = checked(model_of(nodes, [tensor("x", [1, 3, 4, 4])], [tensor("y", [1, 3, 8, 8])],
                             [init("scales", np.array([1, 1, 2, 2], np.float32))]))
    p, ops = costs_of(model)
    assert p.rows[0].output_shape == (1, 3, 8, 8) and p.totals.params == 0 and p.unknown_ops == {}
    assert ops["Resize"].flops == per_element * 3 * 8 * 8


# ---- item 7: linear-time import

def test_a_long_chain_imports_in_linear_time():
    """8 times the nodes costs about 8 times the CPU time (9-10 measured); a quadratic import costs 64 times.
    A ratio of this process's CPU time, best of 3, hardly moves with other processes' load, unlike a wall-clock
    limit. Python's cyclic collector is off while timing: its full collections grow with all live objects."""
    def cpu_seconds(n):
        nodes = [helper.make_node("Relu", [f"t{i}"], [f"t{i + 1}"]) for i in range(n)]
        model = model_of(nodes, [tensor("t0", [1, 4])], [tensor(f"t{n}", [1, 4])])
        best = float("inf")
        for _ in range(3):
            start = time.process_time()
            graph = from_onnx(model)
            best = min(best, time.process_time() - start)
        assert graph.number_of_nodes() == n and graph.number_of_edges() == n - 1
        return best

    gc.disable()
    try:
        ratio = cpu_seconds(8000) / cpu_seconds(1000)
    finally:
        gc.enable()
    assert ratio < 24, ratio


# ---- items 8, 11, 13: binding dimensions

def test_batch_binds_only_symbolic_dimensions(tmp_path, effplan):
    fixed = write(tmp_path, model_of([helper.make_node("Relu", ["x"], ["y"])], [tensor("x", [1, 4, 2, 2])],
                                     [tensor("y", [1, 4, 2, 2])]))
    assert effplan("analyze", fixed, "--batch", "1", "--format", "json").json()["totals"]["flops"] == 16
    run = effplan("analyze", fixed, "--batch", "4")
    assert run.code == 2 and "fixed batch of 1" in run.err and run.err.count("\n") == 1
    # a 1-D input has no batch dimension: its symbolic size needs --dim, and --batch leaves a fixed one alone
    nodes = [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Relu", ["lens"], ["z"])]
    one_d = write(tmp_path, model_of(nodes, [tensor("x", ["N", 3]), tensor("lens", ["L"])],
                                     [tensor("y", ["N", 3]), tensor("z", ["L"])]), "d.onnx")
    run = effplan("analyze", one_d, "--batch", "2")
    assert run.code == 2 and "--dim L=VALUE" in run.err
    report = effplan("analyze", one_d, "--batch", "2", "--dim", "L=5", "--format", "json").json()
    assert report["batch"] == 2 and report["totals"]["flops"] == 2 * 3 + 5
    run = effplan("analyze", one_d, "--dim", "seq=3")
    assert run.code == 2 and "no dimension 'seq'" in run.err and "L, N" in run.err


def test_export_batch_and_dynamic_batch_exclude_each_other(effplan, tmp_path):
    run = effplan("export", "mobilenet-v1", "--batch", "4", "--dynamic-batch", "-o", str(tmp_path / "m.onnx"))
    assert run.code == 2 and "exclude each other" in run.err and not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("args", [["analyze", "{rd}", "--dim", "N=99999999999999999999"],
                                  ["analyze", "{rd}", "--batch", "100000000000000000000"],
                                  ["analyze", "{rd}", "--batch", str(2**40 + 1)],
                                  ["export", "mobilenet-v1", "--batch", "100000000000000000000", "-o", "{out}"],
                                  ["analyze", "{nul}"]])
def test_huge_sizes_and_bad_locations_are_bad_input(effplan, tmp_path, args):
    rd = write(tmp_path, model_of([helper.make_node("Relu", ["x"], ["y"])], [tensor("x", ["N", 4])],
                                  [tensor("y", ["N", 4])]), "rd.onnx")
    nul = model_of([helper.make_node("Add", ["x", "w"], ["y"])], [tensor("x", [1, 4])], [tensor("y", [1, 4])],
                   [init("w", np.zeros(4, np.float32))])
    w = nul.graph.initializer[0]
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    w.external_data.add(key="location", value="w\0.bin")
    paths = {"rd": rd, "nul": write(tmp_path, nul, "nul.onnx"), "out": str(tmp_path / "o.onnx")}
    run = effplan(*[a.format(**paths) for a in args])
    assert run.code == 2 and run.err.startswith("effplan: error:") and run.err.count("\n") == 1, run.err


def test_the_library_refuses_a_batch_past_2_to_the_40():
    model = model_of([helper.make_node("Relu", ["x"], ["y"])], [tensor("x", ["N", 4])], [tensor("y", ["N", 4])])
    assert from_onnx(model, batch=2**40).graph["tensors"]["y"] == (2**40, 4)  # the bound itself is accepted
    with pytest.raises(OnnxError, match="from 1 to 2"):
        from_onnx(model, batch=2**40 + 1)


# ---- item 9: MatMul MACs from both operands

@pytest.mark.parametrize("a, b, out, macs", [
    ("W", [8, 3], [4, 3], 4 * 8 * 3),  # a constant on the left: W[4, 8] @ x[8, 3]
    ([2, 5, 8], "W", [2, 5, 3], 2 * 5 * 8 * 3),  # batched data on the left, W[8, 3]
    ([2, 3, 4], [2, 4, 5], [2, 3, 5], 2 * 3 * 4 * 5),  # two activations: no params
])
def test_matmul_macs_are_batch_times_m_k_n(a, b, out, macs):
    shapes = {"W": [4, 8] if a == "W" else [8, 3]}
    inputs = [tensor(n, s) for n, s in (("a", a), ("b", b)) if s != "W"]
    names = ["w" if a == "W" else "a", "w" if b == "W" else "b"]
    inits = [init("w", np.ones(shapes["W"], np.float32))] if "W" in (a, b) else []
    model = checked(model_of([helper.make_node("MatMul", names, ["y"])], inputs, [tensor("y", out)], inits))
    p, ops = costs_of(model)
    assert ops["MatMul"].macs == macs and ops["MatMul"].flops == 2 * macs
    assert p.totals.params == (32 if a == "W" else 24 if b == "W" else 0)


# ---- item 10: the resolution of an NHWC graph

@pytest.mark.parametrize("layout, shape", [("NHWC", [1, 6, 10, 12]), ("NCHW", [1, 12, 6, 10])])
def test_resolution_of_nhwc_and_nchw_inputs(effplan, tmp_path, layout, shape):
    nodes = ([helper.make_node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2])] if layout == "NHWC"
             else [helper.make_node("Identity", ["x"], ["t"])])
    nodes.append(helper.make_node("Conv", ["t", "w"], ["y"], kernel_shape=[1, 1]))
    model = checked(model_of(nodes, [tensor("x", shape)], [tensor("y", [1, 4, 6, 10])],
                             [init("w", np.ones((4, 12, 1, 1), np.float32))]))
    report = effplan("analyze", write(tmp_path, model), "--format", "json").json()
    assert report["resolution"] == 10  # the width, not the 12 channels


# ---- item 12: one tensor, two writers

@pytest.mark.parametrize("second", ["y", "x"])
def test_a_tensor_written_twice_is_refused(effplan, tmp_path, second):
    nodes = [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Sigmoid", ["x"], [second])]
    model = model_of(nodes, [tensor("x", [1, 4])], [tensor("y", [1, 4])])
    with pytest.raises(OnnxError, match=f"tensor '{second}' is written by"):
        from_onnx(model)
    run = effplan("analyze", write(tmp_path, model))
    assert run.code == 2 and run.err.count("\n") == 1


# ---- item 15: stages and blocks from module names

def places(names):
    nodes = [helper.make_node("Relu", [f"t{i}"], [f"t{i + 1}"], name=n) for i, n in enumerate(names)]
    graph = from_onnx(model_of(nodes, [tensor("t0", [1, 4])], [tensor(f"t{len(names)}", [1, 4])]))
    return [(graph.nodes[n]["stage"], graph.nodes[n]["block"]) for n in graph.nodes]


def test_places_from_torchvision_names():
    assert places(["/Sub", "/features/features.0/features.0.0/Conv", "/features/features.0/features.0.2/Relu",
                   "/features/features.1/features.1.0/block/block.0/block.0.0/Conv",
                   "/features/features.2/features.2.1/Add", "/Shortcut", "/features/features.3/conv/conv.0/Conv",
                   "/avgpool/GlobalAveragePool", "/classifier/classifier.1/Gemm"]) == \
        [("stem", 0), ("stem", 0), ("stem", 0), (1, 0), (2, 1), (2, 1), (3, 0), ("head", 0), ("head", 0)]


def test_places_from_timm_keras_and_resnet_names():
    # timm counts stages from 0 (Python indices): blocks.0 is effplan's stage 1
    assert places(["/conv_stem/Conv", "/blocks/blocks.0/blocks.0.0/conv_dw/Conv", "/blocks/blocks.1/blocks.1.2/Add",
                   "/conv_head/Conv"]) == [("stem", 0), (1, 0), (2, 2), ("head", 0)]
    assert places(["/stem/conv/Conv", "/stages/stages.1/stages.1.blocks/stages.1.blocks.2/conv_dw/Conv",
                   "/head/fc/Gemm"]) == [("stem", 0), (2, 2), ("head", 0)]
    assert places(["model/stem_conv/Conv2D", "model/block1a_dwconv/depthwise", "model/block2c_add/Add",
                   "model/top_conv/Conv2D"]) == [("stem", 0), (1, 0), (2, 2), ("head", 0)]
    assert places(["/conv1/Conv", "/layer3/layer3.1/conv2/Conv", "/fc/Gemm"]) == [("stem", 0), (3, 1), ("head", 0)]
    assert places(["a", "b"]) == [("stem", 0), ("stem", 0)]  # no names to go by: one group, within the contract
