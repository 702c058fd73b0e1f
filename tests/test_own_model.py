"""Your own model, in every command: an .onnx file goes wherever a model name goes, through one import,
with shape arithmetic evaluated, params by what each op owns. Expected values are derived by hand in
each test, or are what onnxruntime computes on the same file; the fixtures under tests/fixtures/ are
written by scripts/make_fixtures.py in the node patterns PyTorch's exporter writes."""
import json
import math
import random
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import effplan
from effplan.onnx.fold import MAX_VALUES, fold_shapes, onnx_inference, own_inference
from effplan.onnx.importer import analyze_file
from effplan.onnx.wire import from_proto
from effplan.design.scaling import model_names

FIXTURES = Path(__file__).parent / "fixtures"
NAMED = ("model", "phi", "source", "weight_inputs", "distinct_weight_elements", "shared_initializers")


def fixture(name: str) -> str:
    return str(FIXTURES / f"{name}.onnx")


def same_figures(report):
    """A report less what names the model (a file is named by its path, a design by its spec)."""
    if isinstance(report, dict):
        return {k: same_figures(v) for k, v in report.items() if k not in NAMED}
    if isinstance(report, list):
        return [same_figures(v) for v in report]
    return report


def commands(model, batch, *design):
    return [("layers", model, *design, "--batch", str(batch)),
            ("memory", model, *design, "--batch", str(batch), "--train", "--by", "layer"),
            ("memory", model, *design, "--batch", str(batch), "--fold-bn", "--order", "aware"),
            ("roofline", model, *design, "--batch", str(batch), "--device", "t4"),
            ("fit", model, *design, "--memory", "1GiB", "--train"),
            ("fit", model, *design, "--memory", "256MiB")]


def assert_file_equals_design(effplan, path, name, batch, *design):
    for built, imported in zip(commands(name, batch, *design), commands(path, batch)):
        a, b = effplan(*built, "--format", "json"), effplan(*imported, "--format", "json")
        assert (a.code, b.code) == (0, 0), (built, a.err, b.err)
        assert same_figures(b.json()) == same_figures(a.json()), built


def test_exported_file_equals_its_design_in_every_command(effplan, tmp_path):
    """`effplan export --dynamic-batch` then layers, memory (--train), roofline and fit of the file:
    the same figures as the built design at the same batch, exactly."""
    path = str(tmp_path / "b0.onnx")
    assert effplan("export", "efficientnet-b0", "--resolution", "32", "--dynamic-batch", "--weights", "zeros",
                   "-o", path).code == 0
    assert_file_equals_design(effplan, path, "efficientnet-b0", 3, "--resolution", "32")


def figures(design, batch):
    """What layers, memory --train, memory --order aware, fit --train and roofline (per kernel, on one
    device) compute for a design at a batch, through the library calls behind those commands."""
    from effplan.plan.hardware import load_device
    from effplan.plan.memory import inference_memory, largest_batch, memory_by_batch, training_memory
    from effplan.plan.roofline import roofline

    graph = effplan.build(design, batch)
    p = effplan.profile(graph, batch=batch)
    peaks = inference_memory(graph, 4, order="aware")
    return {"layers": p.rows, "totals": p.totals, "train": training_memory(graph, "mixed", "adamw"),
            "peaks": (peaks.plain.bytes, peaks.aware.bytes, peaks.peak.bytes, peaks.peak.node, peaks.aware.order),
            "fit": largest_batch(memory_by_batch(design, train=True), 1 << 30),
            "roofline": roofline(graph, load_device("t4"), "fp16", batch).kernels}


@pytest.mark.parametrize("name", model_names())
def test_every_models_export_equals_its_design_over_phi_and_batch(tmp_path, name):
    """Every built-in model, at a φ and batch drawn from a generator seeded by its name (fixed examples,
    as the suite's properties): φ where the spec is a baseline (a published design keeps its own), then
    32 px, 10 classes, width and depth x0.25 of that, so that all 39 cost ~2 s (every block kind stays).
    `effplan export --dynamic-batch`'s library call, then the file at the batch: the same figures."""
    from effplan.onnx.model import Imported

    rng = random.Random(name)
    phi, batch = rng.choice([0.0, 0.5, 1.0, 2.0]), rng.randint(1, 16)
    design = effplan.resolve(name)
    try:
        design = effplan.compound(design, phi)
    except effplan.EffplanError:  # --phi scales a baseline spec only
        phi = None
    design = effplan.with_overrides(design, resolution=32, classes=10, scale={"width": 0.25, "depth": 0.25})
    path = str(tmp_path / f"{name}.onnx")
    effplan.export(design, path, dynamic_batch=True, weights="zeros")
    built, imported = figures(design, batch), figures(Imported.open(path), batch)
    for key in built:
        assert imported[key] == built[key], (key, phi, batch)


def test_table_and_compare_take_files(effplan, tmp_path):
    path = str(tmp_path / "net.onnx")
    assert effplan("export", "resnet-18", "--resolution", "32", "--dynamic-batch", "--weights", "zeros",
                   "-o", path).code == 0
    built, imported = effplan("table", "resnet-18", path, "--resolution", "32", "--batch", "2",
                              "--format", "json"), effplan("table", "resnet-18", path, "--batch", "2", "--format", "json")
    assert built.code == 2 and "--resolution rescales a built design" in built.err  # a file is never rescaled
    rows = effplan("table", path, "--batch", "2", "--format", "json").json()
    design = effplan("table", "resnet-18", "--resolution", "32", "--batch", "2", "--format", "json").json()
    assert rows[0]["model"] == "net.onnx" and rows[0]["macs_ratio"] is None
    for key in ("params", "macs", "flops", "peak_activation_bytes", "training_bytes", "resolution"):
        assert rows[0][key] == design[0][key], key
    assert imported.code == 0 and [r["model"] for r in imported.json()] == ["resnet-18", "net.onnx"]
    text = effplan("compare", path, "resnet-18", "--batch", "2")
    assert text.code == 0 and "net.onnx" in text.out


@pytest.mark.parametrize("option", [("--phi", "1"), ("--width-mult", "2"), ("--depth-mult", "2"),
                                    ("--scale", "depth=2"), ("--resolution", "64"), ("--classes", "10"),
                                    ("--depth-rounding", "round")])
def test_rescaling_a_file_is_refused_in_one_line(effplan, option):
    for command in (("layers",), ("memory",), ("roofline", "--device", "t4"), ("fit", "--memory", "1GiB")):
        run = effplan(command[0], fixture("merged_zero_bias"), *command[1:], *option)
        assert run.code == 2 and run.out == "", command
        assert run.err.count("\n") == 1 and f"{option[0]} rescales a built design" in run.err


def test_search_and_fixed_batch_and_blockless_checkpoint_are_refused(effplan, tmp_path):
    run = effplan("search", fixture("vit_block"), "--max-macs", "1G")
    assert run.code == 2 and "is an ONNX file" in run.err and run.err.count("\n") == 1
    run = effplan("memory", fixture("levit_bias"), "--train", "--checkpoint", "blocks")  # no names, no image
    assert run.code == 2 and "no blocks were recovered" in run.err
    fixed = onnx.load(fixture("merged_zero_bias"))
    for value in list(fixed.graph.input) + list(fixed.graph.output):
        value.type.tensor_type.shape.dim[0].dim_value = 1  # torch.onnx.export without dynamic_axes
    path = str(tmp_path / "fixed.onnx")
    onnx.save(fixed, path)
    run = effplan("fit", path, "--memory", "1GiB")
    assert run.code == 2 and "fixed batch" in run.err
    run = effplan("memory", path, "--batch", "4")
    assert run.code == 2 and "which --batch 4 cannot change" in run.err
    assert effplan("memory", path).code == 0


# ---- shape arithmetic evaluated where ONNX's data propagation stops

def ort_output_shape(path: str, batch: int) -> tuple:
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    x = np.zeros([batch if isinstance(d, str) else d for d in session.get_inputs()[0].shape], np.float32)
    return session.run(None, {session.get_inputs()[0].name: x})[0].shape


def rows_of(path, batch):
    graph, _, _ = analyze_file(path, batch)
    p = effplan.profile(graph, batch=batch)
    return p, {r.op: r for r in reversed(p.rows)}, [r for r in p.rows]


def test_tf_same_padding_computed_at_run_time_resolves():
    """timm's Conv2dSame: pad = max((ceil(16 / 2) - 1) * 2 + 3 - 16, 0) = 1, split 0 before, 1 after:
    16 -> 17 -> conv k3 s2 -> 8; then 8: (4 - 1) * 2 + 3 - 8 = 1 -> 9 -> 4."""
    p, _, rows = rows_of(fixture("tf_same_padding"), 3)
    assert [(r.op, r.output_shape) for r in rows] == [
        ("Pad", (3, 3, 17, 17)), ("Conv", (3, 8, 8, 8)), ("Relu", (3, 8, 8, 8)),
        ("Pad", (3, 8, 9, 9)), ("Conv", (3, 8, 4, 4)), ("Relu", (3, 8, 4, 4))]  # the shape arithmetic folded away
    assert rows[-1].output_shape == ort_output_shape(fixture("tf_same_padding"), 3)
    assert p.totals.macs == 3 * 8 * 8 * 8 * (3 * 9) + 3 * 8 * 4 * 4 * (8 * 9)
    assert p.totals.params == (8 * 3 * 9 + 8) + (8 * 8 * 9 + 8) and p.unknown_ops == {}


def test_vit_class_token_expand_and_attention_reshapes_resolve():
    """cls_token.expand(B, -1, -1): ConstantOfShape / Mul / Equal / Where give [B, 1, 1] -> [B, 1, 16];
    5 tokens of width 16, 2 heads of 8. Params as timm counts them; MACs of every MatMul and conv."""
    p, ops, rows = rows_of(fixture("vit_block"), 2)
    shapes = {r.op: r.output_shape for r in rows}
    assert shapes["Expand"] == (2, 1, 16) and shapes["Concat"] == (2, 5, 16) and shapes["Gemm"] == (2, 10)
    assert ops["Expand"].params == 16  # the class token, as its initializer [1, 1, 16]
    assert [r.output_shape for r in rows if r.op == "Softmax"] == [(2, 2, 5, 5)]
    d = 16
    params = ((d * 3 * 16 + d) + d + 5 * d + 3 * 2 * d  # patch conv, cls token, pos embed, three LayerNorms
              + (d * 3 * d + 3 * d) + (d * d + d) + (d * 2 * d + 2 * d) + (2 * d * d + d) + (d * 10 + 10))
    assert p.totals.params == params == 3306
    assert p.totals.macs == (2 * 16 * 2 * 2 * (3 * 16) + 2 * 5 * d * 3 * d + 2 * (2 * 2 * 5 * 5 * 8)
                             + 2 * 5 * d * d + 2 * (2 * 5 * d * 2 * d) + 2 * d * 10)
    assert shapes["Gemm"] == ort_output_shape(fixture("vit_block"), 2)


def model_with(nodes, inputs, outputs, inits=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("op, inputs", [
    ("ConstantOfShape", [np.array([1 << 40], np.int64)]),
    ("Range", [np.array(0, np.int64), np.array(1 << 40, np.int64), np.array(1, np.int64)]),
    ("Expand", [np.array([1], np.int64), np.array([1 << 20, 1 << 20], np.int64)]),
])
def test_huge_evaluated_values_are_never_allocated(op, inputs):
    """A hostile file asks for 2^40 elements from constants: the shape is inferred, the value is not made."""
    names = [f"c{i}" for i in range(len(inputs))]
    nodes = [helper.make_node("Constant", [], [n], value=numpy_helper.from_array(v, n)) for n, v in zip(names, inputs)]
    nodes.append(helper.make_node(op, names, ["y"]))
    model = model_with(nodes, [], [helper.make_tensor_value_info("y", TensorProto.INT64, None)])
    for infer in (own_inference, onnx_inference):  # effplan's rules, then ONNX's per-node inference
        shapes, types = {}, {}
        folded = fold_shapes(from_proto(model), list(range(len(nodes))), shapes, types, infer)
        assert len(nodes) - 1 not in folded and math.prod(shapes["y"]) > MAX_VALUES


def test_a_value_no_evaluation_resolves_keeps_the_one_line_error(tmp_path, effplan):
    """Reshape to a shape that depends on the data (NonZero): nothing can know it before running."""
    nodes = [helper.make_node("NonZero", ["x"], ["nz"]), helper.make_node("Shape", ["nz"], ["s"]),
             helper.make_node("Reshape", ["x", "s"], ["y"])]
    model = model_with(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    path = tmp_path / "nz.onnx"
    path.write_bytes(model.SerializeToString())
    run = effplan("analyze", str(path))
    assert run.code == 2 and run.err.count("\n") == 1 and "unknown dimension" in run.err


# ---- params by what each op owns

def test_attention_bias_table_is_sized_as_its_initializer():
    """LeViT: attention_biases [2 heads, 3 offsets] gathered by constant indices to [2, 4, 4] counts 6
    params, not 32; q and k projections 8 x 8 each."""
    p, ops, _ = rows_of(fixture("levit_bias"), 2)
    assert ops["Add"].params == 2 * 3 and p.totals.params == 2 * (8 * 8) + 2 * 3
    assert p.graph.graph["distinct_weight_elements"] == p.totals.params


def test_merged_zero_bias_is_each_convs_own_and_stored_once(effplan):
    """Three convs read one all-zero bias the exporter merged: each owns 8 bias params (totals = sum of
    rows), the file stores 8 once, and the report names the initializer and its readers."""
    p, _, rows = rows_of(fixture("merged_zero_bias"), 1)
    convs = [r.params for r in rows if r.op == "Conv"]
    assert convs == [8 * 3 * 9 + 8, 8 * 8 * 9 + 8, 8 * 8 * 9 + 8] and p.totals.params == sum(convs)
    report = effplan("analyze", fixture("merged_zero_bias"), "--format", "json").json()
    assert report["totals"]["distinct_weight_elements"] == sum(convs) - 2 * 8
    assert report["shared_initializers"] == {"onnx::Conv_zero_bias": [f"/features/features.{i}/conv/Conv_{2 * i + 1}"
                                                                      for i in range(3)]}
    assert "onnx::Conv_zero_bias x3" in effplan("analyze", fixture("merged_zero_bias")).out


def test_qdq_weights_are_the_convs_params():
    p, ops, _ = rows_of(fixture("qdq"), 2)
    assert ops["Conv"].params == 8 * 3 * 9 + 8 and p.totals.params == ops["Conv"].params
    assert ops["Conv"].macs == 2 * 8 * 8 * 8 * 27


def test_fixtures_stay_small():
    assert all(f.stat().st_size < 100_000 for f in FIXTURES.glob("*.onnx"))


# ---- the ops of modern networks: costs, backward saves, unit, fusion

def test_modern_ops_cost_their_stated_flops_per_element():
    """Each op on a [2, 4, 8] activation (64 elements), FLOPs per output element as the conventions state."""
    v = lambda name, shape: helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)  # noqa: E731
    nodes = [helper.make_node("Gelu", ["x"], ["gelu"]),  # opset 20
             helper.make_node("Erf", ["gelu"], ["erf"]),
             helper.make_node("Pow", ["erf", "two"], ["pow"]),
             helper.make_node("Reciprocal", ["pow"], ["rec"]),
             helper.make_node("Sqrt", ["rec"], ["sqrt"]),
             helper.make_node("Greater", ["sqrt", "zero"], ["pos"]),
             helper.make_node("Where", ["pos", "sqrt", "x"], ["where"]),
             helper.make_node("LogSoftmax", ["where"], ["logsm"], axis=-1),
             helper.make_node("ReduceSum", ["logsm", "axes"], ["rsum"], keepdims=1),
             helper.make_node("ReduceMean", ["logsm", "axes12"], ["rmean"], keepdims=1),
             helper.make_node("Einsum", ["where", "logsm"], ["ein"], equation="bik,bjk->bij"),
             helper.make_node("Tile", ["ein", "reps"], ["tile"]),
             helper.make_node("QuantizeLinear", ["tile", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])]
    inits = [numpy_helper.from_array(np.array(2.0, np.float32), "two"),
             numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
             numpy_helper.from_array(np.array([2], np.int64), "axes"),
             numpy_helper.from_array(np.array([1, 2], np.int64), "axes12"),
             numpy_helper.from_array(np.array([1, 2, 1], np.int64), "reps"),
             numpy_helper.from_array(np.array(0.1, np.float32), "s"), numpy_helper.from_array(np.int8(0), "z")]
    graph = helper.make_graph(nodes, "ops", [v("x", [2, 4, 8])],
                              [v("y", [2, 8, 4]), v("rsum", [2, 4, 1]), v("rmean", [2, 1, 1])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    onnx.checker.check_model(model, full_check=True)
    from effplan.onnx.importer import from_onnx
    p = effplan.profile(from_onnx(model))
    flops = {r.op: r.flops for r in p.rows}
    n = 2 * 4 * 8
    assert flops["Gelu"] == 5 * n and flops["Erf"] == n and flops["Pow"] == n and flops["Reciprocal"] == n
    assert flops["Where"] == n and flops["LogSoftmax"] == 3 * n
    assert flops["ReduceSum"] == n and flops["ReduceMean"] == n + 2  # an add per input, a divide per output
    assert {r.op: r.macs for r in p.rows}["Einsum"] == 2 * 4 * 4 * 8 and flops["Einsum"] == 2 * (2 * 4 * 4 * 8)
    assert flops["Tile"] == 0 and flops["QuantizeLinear"] == 3 * 64 and flops["DequantizeLinear"] == 2 * 64
    assert flops["Greater"] == n and p.unknown_ops == {}  # a compare feeding Where: one compare per element
    from effplan.plan.roofline import unit_of
    einsum = next(r.name for r in p.rows if r.op == "Einsum")
    assert unit_of(p.graph, einsum) == "matrix"


def test_vit_training_saves_what_autograd_saves():
    """fp32, batch 2, 5 tokens of width 16, 2 heads of 8. This block writes its attention out itself ((q @ k^T) *
    scale, Softmax, @ v: timm's attention before it called sdpa), so PyTorch runs those ops and autograd keeps the
    probabilities (2 x 2 x 5 x 5) and the products' operands: q, k^T and v, all views of the permuted qkv (one
    storage). LayerNorm its input and a mean and inverse std per token, the exported GELU (Div/Erf/Add/Mul/Mul) only
    its input; each storage counted once (a view saved keeps its base's), on its producer's row."""
    from effplan.plan.memory import training_memory

    graph, _, _ = analyze_file(fixture("vit_block"), 2)
    saved = {name.rsplit("/", 1)[1]: size for name, size in training_memory(graph, "fp32", "sgd").saved.items()}
    assert saved["Softmax_49"] == 2 * 2 * 5 * 5 * 4 and saved["MatMul_46"] == saved["Mul_48"] == 0  # not the scores
    # q, k, v are qkv[0], qkv[1], qkv[2] (selects), k^T a transpose: views of the permuted qkv, one storage
    assert saved["Reshape_37"] == 3 * 2 * 2 * 5 * 8 * 4
    assert saved["Transpose_38"] == saved["Gather_40"] == saved["Gather_42"] == saved["Transpose_45"] == 0
    assert saved["Reshape_55"] == 2 * 5 * 16 * 4  # the projection's input: (p @ v) transposed and reshaped, a copy
    assert saved["Add_23"] == 2 * 5 * 16 * 4  # LayerNorm's input
    assert saved["LayerNormalization_24"] == 2 * 5 * 16 * 4 + 2 * (2 * 5) * 4  # its output (qkv's input), stats
    # the head's x[:, 0] (a select) keeps the final norm's whole output alive (640), beside the norm's stats (80)
    assert saved["LayerNormalization_73"] == 2 * 5 * 16 * 4 + 2 * (2 * 5) * 4
    assert saved["Add_61"] == 2 * 5 * 32 * 4  # GELU's input
    assert [saved[n] for n in ("Div_63", "Erf_64", "Add_66", "Mul_67")] == [0] * 4  # nothing inside GELU


def test_vit_kernels_fuse_bias_gelu_and_residual():
    """A MatMul takes its bias Add, then a GELU written as five ops, or a residual Add, as runtimes fuse."""
    from effplan.plan.roofline import kernel_groups

    graph, _, _ = analyze_file(fixture("vit_block"), 2)
    groups = {g[0].rsplit("/", 1)[1]: [n.rsplit("/", 1)[1] for n in g] for g in kernel_groups(graph)}
    assert groups["MatMul_25"] == ["MatMul_25", "Add_26"]
    assert groups["MatMul_56"] == ["MatMul_56", "Add_57", "Add_58"]
    assert groups["MatMul_60"] == ["MatMul_60", "Add_61", "Div_63", "Erf_64", "Add_66", "Mul_67", "Mul_69"]
    assert groups["MatMul_46"] == ["MatMul_46"]  # attention scores: Mul and Softmax run on their own


def test_measure_runs_the_file_itself(effplan):
    """onnxruntime runs the file (its own node names come back in the profile), beside the roofline."""
    report = effplan("measure", fixture("vit_block"), "--device", "t4", "--runs", "1", "--batch", "2",
                     "--format", "json")
    assert report.code == 0, report.err
    data = report.json()
    roofline = effplan("roofline", fixture("vit_block"), "--device", "t4", "--dtype", "fp32", "--batch", "2",
                       "--format", "json").json()
    assert data["model"] == "vit_block.onnx" and [r["name"] for r in data["layers"]] == [
        r["name"] for r in roofline["layers"]]
    assert data["kernels_timed"] > 0  # kernels matched by the file's node names


def test_every_evaluated_op_agrees_with_onnxruntime(tmp_path):
    """A Reshape whose target goes through every op the evaluator knows; the shape effplan resolves is
    the one onnxruntime computes running the file."""
    c = {}

    def const(value):
        name = f"k{len(c)}"
        c[name] = numpy_helper.from_array(np.asarray(value), name)
        return name

    n = helper.make_node
    nodes = [n("Shape", ["x"], ["s"]), n("Gather", ["s", const(np.int64(1))], ["a"]),  # 6
             n("Gather", ["s", const(np.int64(2))], ["b"]),  # 10
             n("Slice", ["s", const(np.array([1])), const(np.array([3]))], ["sl"]),  # [6, 10]
             n("ReduceProd", ["sl"], ["prod"], keepdims=0),  # 60
             n("Mod", ["b", const(np.int64(4))], ["m"]),  # 2
             n("Cast", ["b"], ["bf"], to=TensorProto.FLOAT), n("Div", ["bf", const(np.float32(4))], ["d"]),  # 2.5
             n("Floor", ["d"], ["fl"]), n("Ceil", ["d"], ["ce"]), n("Max", ["fl", "ce"], ["mx"]),  # 3
             n("Min", ["fl", "ce"], ["mn"]), n("Sub", ["mx", "mn"], ["one"]),  # 1.0
             n("Cast", ["mx"], ["mxi"], to=TensorProto.INT64),
             n("Clip", ["mxi", const(np.int64(0)), const(np.int64(2))], ["two"]),  # 2
             n("Greater", ["a", "b"], ["gt"]), n("Not", ["gt"], ["ngt"]), n("Equal", ["m", const(np.int64(2))], ["eq"]),
             n("Less", ["a", "b"], ["lt"]), n("Where", ["eq", "a", "b"], ["w1"]), n("Where", ["ngt", "w1", "b"], ["w"]),
             n("Where", ["lt", "w", "b"], ["six"]),  # 6
             n("Range", [const(np.int64(0)), "six", const(np.int64(1))], ["r"]), n("Size", ["r"], ["sz"]),
             n("Unsqueeze", ["sz", const(np.array([0]))], ["szu"]), n("Squeeze", ["szu", const(np.array([0]))], ["sq"]),
             n("Identity", ["sq"], ["sqi"]), n("Mul", ["sqi", const(np.int64(1))], ["six2"]),
             n("Add", ["six2", const(np.int64(-3))], ["three"]),  # 3
             n("Div", ["prod", "three"], ["twenty"]), n("Div", ["twenty", "two"], ["ten"]),  # 60 / 3 / 2 = 10
             n("Cast", ["one"], ["onei"], to=TensorProto.INT64),
             n("ConstantOfShape", [const(np.array([1]))], ["z"], value=numpy_helper.from_array(np.array([0], np.int64))),
             n("Expand", ["z", const(np.array([1]))], ["zero"]),  # [0]: keep the batch
             *(n("Unsqueeze", [t, const(np.array([0]))], [f"{t}u"]) for t in ("two", "three", "ten")),
             n("Concat", ["zero", "twou", "threeu", "tenu"], ["target0"], axis=0),
             n("Mul", ["target0", "onei"], ["target"]),
             n("Reshape", ["x", "target"], ["y"])]
    model = model_with(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6, 10])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "p", "q", "r"])], c.values())
    onnx.checker.check_model(model, full_check=True)
    path = str(tmp_path / "shapes.onnx")
    onnx.save(model, path)
    graph, _, _ = analyze_file(path, 3)
    assert graph.graph["tensors"]["y"] == ort_output_shape(path, 3) == (3, 2, 3, 10)
    assert [graph.nodes[m]["op"] for m in graph.nodes] == ["Reshape"]  # the shape arithmetic folded away


# ---- files PyTorch's exporters wrote (scripts/export_fixtures.py), against PyTorch's own counts

EXPORTED = json.loads((FIXTURES / "exported.json").read_text())


def expected_params(name: str, record: dict) -> int:
    """What each op owns, from PyTorch's sum(p.numel()) and what the exporter did to BatchNorm:
    - TorchScript exporter in eval mode folds each BN (scale and shift, 2C) into the conv before it,
      which gains a bias of C: params - C per BN;
    - the dynamo exporter folds it too, and drops the conv bias that folding an untrained BN leaves
      all zeros: params - 2C;
    - LeViT's BN after a Linear is not folded (BatchNormalization stays): params as PyTorch counts;
    - quantize_static keeps each weight (int8) and bias (int32): as the float file it quantized."""
    if name.startswith("levit") or record["bn_channels"] == 0:
        return record["params"]
    if record["exporter"] == "dynamo":
        return record["params"] - 2 * record["bn_channels"]
    return record["params"] - record["bn_channels"]


@pytest.mark.parametrize("name", sorted(EXPORTED["files"]))
def test_exported_fixture_params_macs_and_shape_match_pytorch(name):
    record = EXPORTED["files"][name]
    graph, _, _ = analyze_file(str(FIXTURES / name), EXPORTED["batch"], record["dims"])
    p = effplan.profile(graph, batch=EXPORTED["batch"])
    assert p.unknown_ops == {}
    assert p.totals.params == expected_params(name, record)
    assert p.totals.macs == record["macs"]  # from the module's shapes, by forward hooks
    assert p.rows[-1].output_shape == tuple(record["output_shape"])
    # LeViT keeps its BN's running mean and variance (2C buffers; PyTorch also counts the bias
    # indices [9, 9] and a num_batches_tracked, which the export holds as constants or drops)
    assert p.totals.buffers == (2 * record["bn_channels"] if name.startswith("levit") else 0)


def test_exported_merged_zero_bias_and_attention_table():
    """TorchScript's export of an untrained Conv-BN-ReLU x3: one zero bias of 8 read by three convs,
    stored once; LeViT's attention_biases [2 heads, 9 offsets] gathered to [2, 9, 9] is 18 params."""
    p, _, rows = rows_of(fixture("cnn_zero_bias_opset17"), 2)
    convs = [r.params for r in rows if r.op == "Conv"]
    assert convs == [8 * 3 * 9 + 8, 8 * 8 * 9 + 8, 8 * 8 * 9 + 8]
    assert p.graph.graph["distinct_weight_elements"] == sum(convs) - 2 * 8
    (readers,) = p.graph.graph["shared_initializers"].values()
    assert len(readers) == 3
    p, ops, _ = rows_of(fixture("levit_attention_opset17"), 2)
    assert ops["Add"].params == 2 * 9


def test_dim_binds_a_files_other_symbolic_dimensions(effplan):
    """tf_same_hw: batch, height and width symbolic. At 3 x 33 x 17: TF-'same' stride 2 gives ceil(33/2) =
    17 by ceil(17/2) = 9, then 9 by 5; MACs: stem 3*8*17*9*27, depthwise 3*8*9*5*9, pointwise 3*16*9*5*8."""
    path = fixture("tf_same_hw_opset17")
    run = effplan("layers", path, "--dim", "height=33", "--dim", "width=17", "--batch", "3", "--format", "json")
    assert run.code == 0, run.err
    report = run.json()
    assert report["totals"]["macs"] == 3 * 8 * 17 * 9 * 27 + 3 * 8 * 9 * 5 * 9 + 3 * 16 * 9 * 5 * 8
    assert report["layers"][-1]["output_shape"] == [3, 16, 9, 5]
    for command in (("memory",), ("roofline", "--device", "t4"), ("fit", "--memory", "1GiB")):
        assert effplan(*command[:1], path, *command[1:], "--dim", "height=33", "--dim", "width=17").code == 0, command
    run = effplan("memory", path)
    assert run.code == 2 and "--dim height=VALUE" in run.err and run.err.count("\n") == 1
    run = effplan("memory", "efficientnet-b0", "--dim", "height=3")
    assert run.code == 2 and "is a built design" in run.err


def test_fixed_batch_file_runs_at_its_own_batch(effplan, tmp_path):
    fixed = onnx.load(fixture("cnn_zero_bias_opset17"))
    for value in list(fixed.graph.input) + list(fixed.graph.output):
        value.type.tensor_type.shape.dim[0].dim_value = 2  # exported without dynamic_axes, at batch 2
    path = str(tmp_path / "fixed2.onnx")
    onnx.save(fixed, path)
    run = effplan("memory", path, "--format", "json")
    assert run.code == 0 and run.json()["batch"] == 2 and "fixed batch of 2" in run.err


def test_progressive_resizing_of_a_file_is_refused_in_one_line(effplan):
    run = effplan("train", fixture("merged_zero_bias"), "--device", "t4", "--progressive", "128:224:2",
                  "--epochs", "2")
    assert run.code == 2 and run.out == ""
    assert run.err.count("\n") == 1 and "--progressive rescales a built design" in run.err


def test_export_refuses_a_file_in_one_line(effplan, tmp_path):
    out = tmp_path / "x.onnx"
    for name in ("vit_block.onnx", "cnn_zero_bias_opset17.onnx"):
        run = effplan("export", str(FIXTURES / name), "-o", str(out))
        assert run.code == 2 and len(run.err.strip().splitlines()) == 1 and "already an ONNX file" in run.err
    assert not out.exists()
