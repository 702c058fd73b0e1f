"""ONNX both ways: exports that checkers and runtimes accept, imports that cost the same."""

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

import effplan
from effplan.plan.profile import profile
from effplan.graph.builder import fold_batch_norm
from effplan.onnx.export import to_onnx
from effplan.onnx.importer import OnnxError, analyze_file, from_onnx, load
from effplan.design.scaling import model_names

import onnxruntime as ort


def session(model, optimize=True):
    """One-thread onnxruntime session: thread pools only spin on a 2-core CI machine."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    if not optimize:  # keep ORT from fusing BN itself, so a comparison is independent
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    source = model if isinstance(model, str) else model.SerializeToString()
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def small(name, resolution=64):
    return effplan.with_overrides(effplan.resolve(name), resolution=resolution)


def rows(p):
    return {r.name: (r.params, r.macs) for r in p.rows}


@pytest.mark.parametrize("name", model_names())
def test_export_checks_infers_and_runs(name):
    """Every model's blocks, at width 0.25, 32x32 and 10 classes: weights, not resolution, made full-size
    runs cost seconds and gigabytes each. Full-size exports are shape-inferred in test_round_trip_equals_layers
    and run by `python benchmarks/export.py`."""
    design = effplan.with_overrides(effplan.resolve(name), resolution=32, classes=10, width_mult=0.25)
    graph = effplan.build(design, batch=2)
    model = to_onnx(graph, design)
    onnx.checker.check_model(model, full_check=True)
    # ONNX's own strict shape inference, from the input alone, reproduces effplan's shape of every tensor
    bare = onnx.ModelProto.FromString(model.SerializeToString())
    del bare.graph.value_info[:]
    inferred = onnx.shape_inference.infer_shapes(bare, strict_mode=True)
    shapes = {v.name: tuple(d.dim_value for d in v.type.tensor_type.shape.dim)
              for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    for tensor, shape in graph.graph["tensors"].items():
        if tensor != "input":
            assert shapes[tensor] == shape, tensor
    # onnxruntime runs it: [N, classes], finite
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32), dtype=np.float32)
    (y,) = session(model).run(None, {"input": x})
    assert y.shape == (2, design.classes) and np.isfinite(y).all()
    # initializer elements = params + BN statistics, which are the initializers named .mean / .var
    t = profile(graph).totals  # params and buffers do not depend on the batch: the graph just exported
    sizes = {i.name: int(np.prod(i.dims)) for i in model.graph.initializer}
    assert sum(sizes.values()) == t.params + t.buffers
    assert sum(v for k, v in sizes.items() if k.endswith((".mean", ".var"))) == t.buffers


@pytest.mark.parametrize("name", model_names())
def test_round_trip_equals_layers(name):
    """analyze(export(m)) == layers(m), per layer, for params and MACs (shapes only for speed)."""
    design = effplan.resolve(name)
    graph = effplan.build(design)
    imported = from_onnx(to_onnx(graph, design, with_data=False), name)
    assert rows(profile(imported)) == rows(profile(graph))
    assert [imported.nodes[n]["stage"] for n in imported.nodes] == [graph.nodes[n]["stage"] for n in graph.nodes]


@settings(max_examples=10, deadline=None)
@given(st.sampled_from(["efficientnet-b0", "mobilenet-v2", "resnet-50", "shufflenet-v2", "googlenet"]),
       st.floats(0, 3), st.integers(1, 3))
def test_round_trip_random_phi(name, phi, batch):
    design = effplan.compound(effplan.resolve(name), phi)
    graph = effplan.build(design, batch)
    imported = from_onnx(to_onnx(graph, design, with_data=False, dynamic_batch=True), name, batch=batch)
    assert rows(profile(imported)) == rows(profile(graph))
    assert profile(imported).totals == profile(graph).totals


def test_same_command_twice_gives_identical_bytes(effplan, tmp_path):
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    assert effplan("export", "mobilenet-v2", "--resolution", "96", "-o", str(a)).code == 0
    assert effplan("export", "mobilenet-v2", "--resolution", "96", "-o", str(b)).code == 0
    assert a.read_bytes() == b.read_bytes()
    meta = {p.key: p.value for p in onnx.load(str(a)).metadata_props}
    assert meta["model"] == "mobilenet-v2" and meta["resolution"] == "96" and meta["effplan_version"]


def test_fold_bn_computes_the_same_function():
    """Folded weights are the real fold of the unfolded ones: runtime outputs agree (ORT's own fusion off)."""
    design = small("efficientnet-b0")
    graph = effplan.build(design)
    folded = fold_batch_norm(graph)
    x = np.random.default_rng(1).standard_normal((1, 3, 64, 64), dtype=np.float32)
    outs = [session(to_onnx(g, design), optimize=False).run(None, {"input": x})[0] for g in (graph, folded)]
    assert np.allclose(outs[0], outs[1], rtol=1e-4, atol=1e-4 * np.abs(outs[0]).max())
    # params: each folded BN's 2C scale/shift become the conv's C biases; statistics disappear
    p, f = profile(graph).totals, profile(folded).totals
    bn_channels = sum(r.params // 2 for r in profile(graph).rows if r.op == "BatchNormalization")
    assert f.params == p.params - bn_channels and f.buffers == 0 and f.macs == p.macs


def test_dynamic_batch_binds(effplan, tmp_path):
    path = tmp_path / "d.onnx"
    effplan("export", "resnet-18", "--dynamic-batch", "-o", str(path))
    model = onnx.load(str(path))
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    report = effplan("analyze", str(path), "--batch", "8", "--format", "json").json()
    assert report["batch"] == 8 and report["totals"]["macs"] == 8 * 1814073344  # torchvision: 1.814 G


def test_export_check_runs_onnxruntime(effplan, tmp_path):
    run = effplan("export", "squeezenet-1.1", "--resolution", "64", "--check", "-o", str(tmp_path / "s.onnx"))
    assert run.code == 0 and "output [1, 1000], finite" in run.out


def test_external_data_beyond_the_protobuf_limit(monkeypatch, tmp_path):
    """Models over 2 GB keep weights in `<file>.data`; shown here by lowering the limit."""
    import effplan.onnx.export as io
    monkeypatch.setattr(io, "PROTO_LIMIT", 0)
    design = small("mobilenet-v1")
    files = io.save(to_onnx(effplan.build(design), design), str(tmp_path / "m.onnx"))
    assert [f.split("/")[-1] for f in files] == ["m.onnx", "m.onnx.data"]
    graph, meta, dtype = analyze_file(files[0])  # costs without reading the data
    assert profile(graph).totals.params == effplan.analyze(design).totals.params
    (y,) = session(files[0]).run(None, {"input": np.zeros((1, 3, 64, 64), np.float32)})
    assert y.shape == (1, 1000)


def test_export_past_the_limit_never_sizes_the_whole_message(effplan, monkeypatch, tmp_path):
    """Over 2 GB, protobuf's upb backend raises in ModelProto.ByteSize(): the export decides from the
    weights' own bytes, writes `<file>.data`, and the file loads (with its data) and runs as the inline one."""
    import effplan.onnx.export as io
    from effplan import build
    design = small("squeezenet-1.1")
    inline = to_onnx(build(design), design)
    monkeypatch.setattr(io, "PROTO_LIMIT", 1 << 16)

    def refuse(self):
        raise AssertionError("ByteSize() called on the external-data path")
    monkeypatch.setattr(onnx.ModelProto, "ByteSize", refuse)
    path = tmp_path / "s.onnx"
    run = effplan("export", "squeezenet-1.1", "--resolution", "64", "--check", "-o", str(path))
    assert run.code == 0 and "s.onnx.data" in run.out and "output [1, 1000], finite" in run.out, run.err
    assert (tmp_path / "s.onnx.data").stat().st_mode == path.stat().st_mode  # onnx makes it 0600 otherwise
    monkeypatch.undo()
    bare = onnx.load(str(path), load_external_data=False)
    assert any(i.data_location == TensorProto.EXTERNAL for i in bare.graph.initializer)
    loaded = onnx.load(str(path))  # reads the external data back
    assert {i.name: numpy_helper.to_array(i).tobytes() for i in loaded.graph.initializer} == \
        {i.name: numpy_helper.to_array(i).tobytes() for i in inline.graph.initializer}
    x = np.random.default_rng(2).standard_normal((1, 3, 64, 64), dtype=np.float32)
    assert np.array_equal(session(str(path)).run(None, {"input": x})[0], session(inline).run(None, {"input": x})[0])


# ---- graphs in the shapes other exporters write, costs derived by hand

def model_of(nodes, inputs, outputs, initializers=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def tensor(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def costs_of(model, **kw):
    p = profile(from_onnx(model, "t", **kw))
    return p, {r.op: r for r in p.group("op")}


def test_pytorch_flatten_subgraph_then_gemm():
    # x [N,64,1,1] -> Shape -> Gather(0) -> Unsqueeze -> Concat(-1) -> Reshape -> Gemm(64 -> 10)
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["flat"]),
        helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["y"], transB=1),
    ]
    inits = [init("zero", np.array(0, np.int64)), init("axes0", np.array([0], np.int64)),
             init("minus1", np.array([-1], np.int64)), init("fc.weight", np.zeros((10, 64), np.float32)),
             init("fc.bias", np.zeros(10, np.float32))]
    model = model_of(nodes, [tensor("x", ["batch", 64, 1, 1])], [tensor("y", ["batch", 10])], inits)
    p, ops = costs_of(model, batch=3)
    assert p.totals.params == 64 * 10 + 10  # integer initializers are shapes, not params
    assert p.totals.macs == 3 * 64 * 10
    assert ops["Gemm"].flops == 2 * 3 * 640 + 3 * 10
    assert p.unknown_ops == {}


def test_matmul_plus_add_is_a_linear_layer():
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Add", ["h", "b"], ["y"])]
    inits = [init("w", np.zeros((128, 16), np.float32)), init("b", np.zeros(16, np.float32))]
    p, ops = costs_of(model_of(nodes, [tensor("x", [4, 128])], [tensor("y", [4, 16])], inits))
    assert p.totals.params == 128 * 16 + 16 and p.totals.macs == 4 * 128 * 16
    assert ops["Add"].flops == 4 * 16


def test_tf_style_same_padding_hardswish_relu6_and_pool():
    # Pad (0,0,1,1 end-only, TF 'same' for stride 2), Conv 3x3/2 8->16 on 8x8 -> 4x4, HardSwish,
    # Clip(0, 6) with min/max inputs, ReduceMean over H, W (global pooling), Identity, Dropout
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["xp"]),
        helper.make_node("Conv", ["xp", "w"], ["c"], kernel_shape=[3, 3], strides=[2, 2]),
        helper.make_node("HardSwish", ["c"], ["h"]),
        helper.make_node("Clip", ["h", "lo", "hi"], ["r6"]),
        helper.make_node("ReduceMean", ["r6"], ["m"], axes=[2, 3], keepdims=1),
        helper.make_node("Identity", ["m"], ["i"]),
        helper.make_node("Dropout", ["i"], ["y"]),
    ]
    inits = [init("pads", np.array([0, 0, 0, 0, 0, 0, 1, 1], np.int64)), init("w", np.zeros((16, 8, 3, 3), np.float32)),
             init("lo", np.array(0, np.float32)), init("hi", np.array(6, np.float32))]
    model = model_of(nodes, [tensor("x", [1, 8, 8, 8])], [tensor("y", [1, 16, 1, 1])], inits)
    p, ops = costs_of(model)
    out = 16 * 4 * 4  # (8 + 1 - 3) // 2 + 1 = 4
    assert ops["Conv"].macs == out * 8 * 9
    assert ops["HardSwish"].flops == 5 * out and ops["Clip"].flops == 2 * out
    assert ops["ReduceMean"].flops == out + 16
    assert ops["Pad"].flops == 0 and ops["Identity"].flops == 0 and ops["Dropout"].flops == 0
    # Clip's min and max are float initializers, but constants of the op, not parameters: PyTorch counts
    # only the conv's weight (nn.Conv2d(8, 16, 3, bias=False) has 16*8*9)
    assert p.totals.params == 16 * 8 * 9 and p.totals.weight_bytes == 16 * 8 * 9 * 4
    assert p.unknown_ops == {}


def test_nhwc_graph_with_transposes_and_swish():
    # TF exports: NHWC input, Transpose to NCHW, depthwise conv, Sigmoid * x (Swish), Transpose back
    nodes = [
        helper.make_node("Transpose", ["x"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=12),
        helper.make_node("Sigmoid", ["c"], ["s"]),
        helper.make_node("Mul", ["c", "s"], ["sw"]),
        helper.make_node("Transpose", ["sw"], ["y"], perm=[0, 2, 3, 1]),
    ]
    inits = [init("w", np.zeros((12, 1, 3, 3), np.float32)), init("b", np.zeros(12, np.float32))]
    p, ops = costs_of(model_of(nodes, [tensor("x", [2, 10, 10, 12])], [tensor("y", [2, 10, 10, 12])], inits))
    out = 2 * 12 * 10 * 10
    assert ops["Conv"].macs == out * 9 and ops["Conv"].flops == 2 * out * 9 + out
    assert ops["Sigmoid"].flops == 3 * out and ops["Mul"].flops == out
    assert ops["Transpose"].flops == 0


def test_unknown_ops_are_listed_with_counts():
    nodes = [helper.make_node("Sin", ["x"], ["a"]), helper.make_node("Sin", ["a"], ["y"])]
    p, _ = costs_of(model_of(nodes, [tensor("x", [1, 4])], [tensor("y", [1, 4])]))
    assert p.unknown_ops == {"Sin": 2}


def test_symbolic_dimensions_need_values(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    model = model_of(nodes, [tensor("x", ["batch", "seq"])], [tensor("y", ["batch", "seq"])])
    with pytest.raises(OnnxError, match=r"--dim seq=VALUE"):
        from_onnx(model)
    assert profile(from_onnx(model, dims={"seq": 7}, batch=2)).totals.flops == 14


def test_blocks_recovered_from_module_names():
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="/features/features.3/features.3.1/Relu"),
             helper.make_node("Relu", ["a"], ["y"], name="blocks.2.0.act")]
    graph = from_onnx(model_of(nodes, [tensor("x", [1, 4])], [tensor("y", [1, 4])]))
    # timm's blocks.2 is the third stage (a Python index), as torchvision's features.3 (features.0: the stem)
    assert [(graph.nodes[n]["stage"], graph.nodes[n]["block"]) for n in graph.nodes] == [(3, 1), (3, 0)]


# ---- bad and hostile files: one line, exit 2, nothing read outside the model's folder

def write_with_external(tmp_path, location):
    model = model_of([helper.make_node("Add", ["x", "w"], ["y"])], [tensor("x", [1, 4])], [tensor("y", [1, 4])],
                     [init("w", np.zeros(4, np.float32))])
    w = model.graph.initializer[0]
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    w.external_data.add(key="location", value=location)
    path = tmp_path / "evil.onnx"
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.parametrize("location", ["../../etc/passwd", "/etc/passwd", "sub/../../outside.bin"])
def test_external_data_outside_the_folder_is_refused(tmp_path, location, effplan):
    path = write_with_external(tmp_path, location)
    with pytest.raises(OnnxError, match="outside the model's folder"):
        load(str(path))
    run = effplan("analyze", str(path))
    assert run.code == 2 and run.err.count("\n") == 1


def test_external_data_inside_the_folder_is_not_read(tmp_path):
    path = write_with_external(tmp_path, "weights.bin")  # the file does not even exist
    graph, _, _ = analyze_file(str(path))
    assert profile(graph).totals.params == 4


def hostile_files(tmp_path):
    b0 = tmp_path / "b0.onnx"
    design = small("squeezenet-1.1")
    b0.write_bytes(to_onnx(effplan.build(design), design).SerializeToString())
    data = b0.read_bytes()
    cases = {"truncated.onnx": data[: len(data) // 3], "empty.onnx": b"", "text.onnx": b"not a model at all\n" * 40,
             "random.onnx": np.random.default_rng(0).bytes(4096)}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    # a cycle: y = Relu(z), z = Relu(y)
    cyclic = model_of([helper.make_node("Relu", ["z"], ["y"]), helper.make_node("Relu", ["y"], ["z"])],
                      [tensor("x", [1, 4])], [tensor("y", [1, 4])])
    (tmp_path / "cyclic.onnx").write_bytes(cyclic.SerializeToString())
    dangling = model_of([helper.make_node("Add", ["x", "nowhere"], ["y"])], [tensor("x", [1, 4])], [tensor("y", [1, 4])])
    (tmp_path / "dangling.onnx").write_bytes(dangling.SerializeToString())
    (tmp_path / "folder.onnx").mkdir()
    return sorted(list(cases) + ["cyclic.onnx", "dangling.onnx", "folder.onnx", "missing.onnx"])


def test_hostile_files_fail_in_one_line(tmp_path, effplan):
    for name in hostile_files(tmp_path):
        run = effplan("analyze", str(tmp_path / name))
        assert run.code == 2, name
        assert run.err.startswith("effplan: error:") and run.err.count("\n") == 1 and "Traceback" not in run.err, name


@pytest.mark.parametrize("args, message", [
    (["export", "efficientnet-b0", "--opset", "9", "-o", "x.onnx"], "--opset must be"),
    (["export", "efficientnet-b0"], "Missing option '-o'"),
    (["export", "efficientnet-b0", "-o", "/no/such/dir/x.onnx"], "cannot write"),
    (["analyze", "x.onnx", "--dim", "seq"], "--dim 'seq'"),
])
def test_bad_export_and_analyze_options(effplan, args, message):
    run = effplan(*args)
    assert run.code == 2 and message in run.err and run.err.count("\n") == 1
