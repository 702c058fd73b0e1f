"""Networks of your own, exported both ways (scripts/make_own_models.py: a ResNet-, RegNet-, ConvNeXt-, ViT- and
Swin-like module, each by the TorchScript exporter in eval and train mode and by the dynamo exporter), against
what PyTorch itself said about them when they were exported (tests/fixtures/own_models.json: its parameter
count, and the bytes autograd saved for backward, measured with saved_tensors_hooks)."""
import json
from collections import Counter
from pathlib import Path

import pytest
from onnx import StringStringEntryProto, TensorProto, helper

from effplan.onnx.importer import _indices, analyze_file, from_onnx
from effplan.plan.memory import training_memory

FIXTURES = Path(__file__).parent / "fixtures"
MEASURED = json.loads((FIXTURES / "own_models.json").read_text())
MODULES = list(MEASURED["modules"])
EXPORTS = ("ts_train", "ts_eval", "dynamo")


def own(module: str, export: str):
    return analyze_file(str(FIXTURES / f"{module}_{export}.onnx"), MEASURED["batch"])[0]


def groups(graph) -> Counter:
    return Counter((graph.nodes[n]["stage"], graph.nodes[n]["block"]) for n in graph.nodes)


# ---- stages and blocks from any exporter

@pytest.mark.parametrize("path, numbers", [
    ("stages.0.blocks.1.conv_dw", [0, 1]),  # timm ConvNeXt: stage 1, block 1
    ("blocks.3.attn.qkv", [3]),  # ViT: one list of blocks
    ("s1.b2.conv1.conv", [0, 1]),  # timm RegNet: numbered from 1
    ("layer2.0.conv1", [1, 0]),  # torchvision ResNet
    ("blocks.0.0.conv_dw", [0, 0]),  # timm EfficientNet: a list of lists
    ("layers.0.blocks.1.attn", [0, 1]),  # Swin
    ("blocks.0.mlp.0", [0]),  # a block's own parts are no blocks
    ("classifier.1", []), ("conv1.0", []), ("conv1", []),  # a head's parts, a layer's
])
def test_module_paths_give_stage_and_block_numbers(path, numbers):
    assert _indices(path) == numbers


def places(names, scopes=None):
    nodes = [helper.make_node("Relu", [f"t{i}"], [f"t{i + 1}"], name=n) for i, n in enumerate(names)]
    for node, scope in zip(nodes, scopes or ()):
        if scope:
            node.metadata_props.append(StringStringEntryProto(key="pkg.torch.onnx.name_scopes", value=scope))
    v = [helper.make_tensor_value_info(t, TensorProto.FLOAT, [1, 4]) for t in ("t0", f"t{len(names)}")]
    model = helper.make_model(helper.make_graph(nodes, "g", v[:1], v[1:]))
    graph = from_onnx(model)
    return [(graph.nodes[n]["stage"], graph.nodes[n]["block"]) for n in graph.nodes]


def test_torchscript_slash_paths_in_any_nesting():
    assert places(["/stem/stem.0/Conv", "/stages/stages.0/blocks/blocks.1/conv_dw/Conv",
                   "/stages/stages.1/blocks/blocks.0/mlp/fc1/MatMul", "/head/fc/Gemm"]) == \
        [("stem", 0), (1, 1), (2, 0), ("head", 0)]
    assert places(["/patch_embed/proj/Conv", "/blocks/blocks.0/attn/MatMul", "/blocks/blocks.3/mlp/fc2/MatMul",
                   "/norm/LayerNormalization"]) == [("stem", 0), (1, 0), (1, 3), ("head", 0)]
    assert places(["/stem/conv/Conv", "/s1/b1/conv1/conv/Conv", "/s2/b3/se/fc1/Conv", "/head/fc/Gemm"]) == \
        [("stem", 0), (1, 0), (2, 2), ("head", 0)]


def test_the_dynamo_exporters_module_path_in_node_metadata():
    """dynamo names nodes node_Conv_3; the module path is in metadata_props (name_scopes: the deepest module
    before the op's own name)."""
    assert places(["node_Conv_0", "node_Conv_1", "node_Add_2", "node_Gemm_3"],
                  ["['', 'stem', 'conv2d']", "['', 'stages', 'stages.0', 'stages.0.1', 'stages.0.1.conv', 'conv2d_1']",
                   "['', 'stages', 'stages.1', 'stages.1.0', 'add']", "['', 'head', 'linear']"]) == \
        [("stem", 0), (1, 1), (2, 0), ("head", 0)]


def test_where_names_say_nothing_a_stage_starts_where_the_resolution_drops():
    """Convs named a..f: the stem ends at the first stride-2 conv (32 -> 16); 16 -> 8 starts stage 1; two
    residual Adds end blocks 0 and 1; 8 -> 4 starts stage 2; the global pool and the classifier are the head."""
    v = lambda t, s: helper.make_tensor_value_info(t, TensorProto.FLOAT, s)  # noqa: E731
    from onnx import numpy_helper
    import numpy as np

    w = lambda n, co, ci: numpy_helper.from_array(np.zeros((co, ci, 3, 3), np.float32), n)  # noqa: E731
    conv = lambda x, y, wt, s, name: helper.make_node("Conv", [x, wt], [y], name=name, strides=[s, s],  # noqa: E731
                                                      pads=[1, 1, 1, 1])
    nodes = [conv("x", "a", "w3", 2, "a"), conv("a", "b", "w8", 2, "b"), conv("b", "c", "w8", 1, "c"),
             helper.make_node("Add", ["b", "c"], ["d"], name="add0"), conv("d", "e", "w8", 1, "e"),
             helper.make_node("Add", ["d", "e"], ["f"], name="add1"), conv("f", "g", "w8", 2, "g"),
             helper.make_node("GlobalAveragePool", ["g"], ["p"], name="pool"),
             helper.make_node("Flatten", ["p"], ["y"], name="flat")]
    model = helper.make_model(helper.make_graph(nodes, "g", [v("x", [1, 3, 32, 32])], [v("y", [1, 8])],
                                                [w("w3", 8, 3), w("w8", 8, 8)]))
    graph = from_onnx(model)
    assert [(n, graph.nodes[n]["stage"], graph.nodes[n]["block"]) for n in graph.nodes] == [
        ("a", "stem", 0), ("b", 1, 0), ("c", 1, 0), ("add0", 1, 0), ("e", 1, 1), ("add1", 1, 1), ("g", 2, 0),
        ("pool", "head", 0), ("flat", "head", 0)]


# what each module's file holds: its stages (stem, then numbered, then head) and its blocks
STAGES = {"resnetish": {"stem", 1, 2, "head"}, "regnetish": {"stem", 1, 2, "head"},
          "convnextish": {"stem", 1, 2, "head"}, "vitish": {"stem", 1, "head"}, "swinish": {"stem", 1, "head"}}
BLOCKS = {"resnetish": {(1, 0), (1, 1), (2, 0)}, "regnetish": {(1, 0), (1, 1), (2, 0)},
          "convnextish": {(1, 0), (1, 1), (2, 0)}, "vitish": {(1, 0), (1, 1)}, "swinish": {(1, 0), (1, 1)}}


@pytest.mark.parametrize("export", EXPORTS)
@pytest.mark.parametrize("module", MODULES)
def test_every_exporter_gives_the_modules_stages_and_blocks(module, export):
    found = groups(own(module, export))
    assert {s for s, _ in found} == STAGES[module]
    assert {p for p in found if isinstance(p[0], int)} == BLOCKS[module]


# ---- training memory as autograd saves it

@pytest.mark.parametrize("module", MODULES)
def test_a_train_mode_export_saves_what_autograd_saved(module):
    """Within 5% of the bytes PyTorch's autograd saved for the same module at the same batch (fp32)."""
    saved = training_memory(own(module, "ts_train"), "fp32", "sgd").activation_bytes
    assert saved == pytest.approx(MEASURED["modules"][module]["saved_bytes"], rel=0.05)


@pytest.mark.parametrize("module", MODULES)
def test_every_own_model_trains(effplan, module):
    for export in EXPORTS:
        r = effplan("train", str(FIXTURES / f"{module}_{export}.onnx"), "--device", "a100-80gb", "--batch", "4", "--epochs", "1")
        assert r.code == 0, (export, r.err)


# ---- folded BatchNormalization is never silent

FOLDED = "has no BatchNormalization but"


@pytest.mark.parametrize("command", [("memory", "--train"), ("fit", "--train", "--memory", "1GiB"),
                                     ("train", "--device", "a100-80gb", "--batch", "2", "--epochs", "1")])
def test_every_training_output_of_an_eval_export_says_bn_looks_folded(effplan, command):
    for module, export in (("resnetish", "ts_eval"), ("regnetish", "dynamo")):
        r = effplan(command[0], str(FIXTURES / f"{module}_{export}.onnx"), *command[1:])
        notes = [line for line in r.err.splitlines() if FOLDED in line]
        assert r.code == 0 and len(notes) == 1, r.err
        assert "training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False" in notes[0]
        assert "--unfold-bn" in notes[0]
    for module, export in (("resnetish", "ts_train"), ("convnextish", "ts_eval"), ("vitish", "dynamo")):
        r = effplan(command[0], str(FIXTURES / f"{module}_{export}.onnx"), *command[1:])  # BN kept, or none to fold
        assert r.code == 0 and FOLDED not in r.err, (module, r.err)


def test_inference_outputs_say_nothing_of_training(effplan):
    r = effplan("memory", str(FIXTURES / "resnetish_ts_eval.onnx"))
    assert r.code == 0 and FOLDED not in r.err


@pytest.mark.parametrize("export", ["ts_eval", "dynamo"])
@pytest.mark.parametrize("module", ["resnetish", "regnetish"])
def test_unfold_bn_restores_what_pytorch_counts_and_saves(module, export):
    """--unfold-bn's rule (a BN after each conv with a bias on a map wider than 1x1: the SE convs on pooled maps
    keep theirs) gives back PyTorch's params and buffers exactly, and autograd's saved bytes."""
    from effplan.graph.ops import graph_weights
    from effplan.onnx.model import Imported

    graph = Imported(str(FIXTURES / f"{module}_{export}.onnx"), unfold_bn=True).graph(MEASURED["batch"])
    measured = MEASURED["modules"][module]
    assert graph_weights(graph) == (measured["params"], measured["buffers"])
    saved = training_memory(graph, "fp32", "sgd").activation_bytes
    assert saved == pytest.approx(measured["saved_bytes"], rel=0.01)
    folded = training_memory(own(module, export), "fp32", "sgd").activation_bytes
    assert folded < 0.75 * measured["saved_bytes"]  # what the note warns of


def test_unfold_bn_takes_files_only(effplan):
    r = effplan("memory", "efficientnet-b0", "--unfold-bn")
    assert r.code == 2 and r.err.count("\n") == 1 and "is a built design" in r.err
    r = effplan("memory", str(FIXTURES / "resnetish_ts_eval.onnx"), "--train", "--unfold-bn")
    assert r.code == 0 and "BatchNormalization restored after 8 convs (--unfold-bn)" in r.err


# ---- params as PyTorch counts them

def test_a_swin_blocks_params_and_buffers_are_pytorchs():
    """A train-mode export keeps the relative-position table and its Gather: the table counts as itself (49 x 2
    per block), not as the 16 x 16 x 2 biases gathered from it; the attention mask, an initializer named as the
    module's buffer (attn_mask), is a buffer."""
    from effplan.graph.ops import graph_weights

    measured = MEASURED["modules"]["swinish"]
    assert graph_weights(own("swinish", "ts_train")) == (measured["params"], measured["buffers"])


@pytest.mark.parametrize("export, buffers", [("ts_eval", 512), ("dynamo", 0)])
def test_a_folded_table_is_counted_as_stored_and_said_so(effplan, export, buffers):
    """Constant folding leaves the gathered biases (2 x 16 x 16 per block) and no table: counted as stored, and
    analyze says which constants it counted and why. TorchScript keeps the masks apart (buffers, by their name);
    the dynamo exporter adds each into its block's biases (one constant, add_47)."""
    from effplan.graph.ops import graph_weights

    measured = MEASURED["modules"]["swinish"]
    graph = own("swinish", export)
    assert graph_weights(graph) == (measured["params"] - 2 * 49 * 2 + 2 * 2 * 16 * 16, buffers)
    assert sorted(graph.graph["computed_params"].values()) == [512, 512]
    r = effplan("analyze", str(FIXTURES / f"swinish_{export}.onnx"))
    assert r.code == 0 and "1,024 params are constants the exporter computed" in r.out


def test_a_table_gathered_by_gather_nd_is_the_table():
    """The dynamo exporter writes LeViT's attention_biases[:, attention_bias_idxs] (too large to fold) as GatherND of
    the transposed table [6 offsets, 2 heads] by the index buffer [3, 3] (unsqueezed), then a Transpose to [2, 3, 3]
    added to the scores: PyTorch counts the table, 6 x 2 = 12 params, not the 18 gathered values."""
    import numpy as np
    from onnx import numpy_helper

    from effplan.graph.ops import graph_weights

    v = lambda name, shape: helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)  # noqa: E731
    inits = [numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(6, 2), "table"),
             numpy_helper.from_array(np.array([[0, 1, 2], [1, 0, 3], [2, 3, 0]], np.int64), "attention_bias_idxs"),
             numpy_helper.from_array(np.array([-1], np.int64), "last")]
    nodes = [helper.make_node("Unsqueeze", ["attention_bias_idxs", "last"], ["idx"], name="unsqueeze"),
             helper.make_node("GatherND", ["table", "idx"], ["gathered"], name="gather"),
             helper.make_node("Transpose", ["gathered"], ["bias"], name="t", perm=[2, 0, 1]),
             helper.make_node("Add", ["x", "bias"], ["y"], name="add")]
    model = helper.make_model(helper.make_graph(nodes, "g", [v("x", [1, 2, 3, 3])], [v("y", [1, 2, 3, 3])], inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    assert graph_weights(from_onnx(model)) == (12, 0)


@pytest.mark.parametrize("module", ["convnextish", "vitish"])
def test_params_equal_pytorchs_from_both_exporters(module):
    from effplan.graph.ops import graph_weights

    for export in EXPORTS:
        assert graph_weights(own(module, export))[0] == MEASURED["modules"][module]["params"], export


# ---- one network, one answer

def _parameter_kernels(graph, step) -> float:
    """Seconds of the step's kernels that compute from parameters alone (no op of theirs reads the input's
    chain): the Swin-like TorchScript files' permute of the gathered bias table and its mask add."""
    live = set(graph.graph["inputs"])
    for n in graph.nodes:
        if any(t in live for t in graph.nodes[n]["inputs"]):
            live.update(graph.nodes[n]["outputs"])
    fixed = {n for n in graph.nodes if not set(graph.nodes[n]["outputs"]) & live}
    return sum(k.time_s for k in (*step.forward, *step.backward)
               if k.nodes and all(n.split("#")[0] in fixed for n in k.nodes))


@pytest.mark.parametrize("module", MODULES)
def test_one_network_from_either_exporter_gets_one_answer(module):
    """Params and MACs equal; a training step (eager, a100-80gb, batch 8; eval files with --unfold-bn) within 2%.
    ViT-like: the attention each exporter writes out runs as scaled_dot_product_attention's one kernel, and the
    dynamo exporter's Slices of a split as the one kernel TorchScript's Split is. Swin-like: the dynamo exporter
    folded the bias table's permute and mask add (parameters only, two kernels a block that PyTorch runs) into a
    constant, the TorchScript files keep them: within 2% without those kernels."""
    from effplan.design.blocks import build
    from effplan.onnx.model import Imported
    from effplan.plan.hardware import load_device
    from effplan.plan.profile import profile
    from effplan.plan.training import training_step

    device, steps, counts = load_device("a100-80gb"), [], []
    for export in EXPORTS:
        graph = build(Imported(str(FIXTURES / f"{module}_{export}.onnx"), unfold_bn=export != "ts_train"), 8)
        totals = profile(graph).totals
        counts.append((totals.params, totals.macs))
        step = training_step(graph, device, runtime="eager")
        steps.append(step.time_s - (_parameter_kernels(graph, step) if module == "swinish" else 0))
    if module != "swinish":  # its eval files count the gathered biases as stored (test above)
        assert len(set(counts)) == 1
    assert len({macs for _, macs in counts}) == 1
    assert max(steps) <= 1.02 * min(steps)


def test_check_says_so_for_a_training_limit_on_an_eval_export(effplan, tmp_path):
    import shutil

    shutil.copy(FIXTURES / "resnetish_ts_eval.onnx", tmp_path / "net.onnx")
    budgets = tmp_path / "budgets.toml"
    budgets.write_text('[[budget]]\nmodel = "net.onnx"\nbatch = 2\nmax_training_memory = "1GiB"\n')
    r = effplan("check", str(budgets))
    assert r.code == 0 and sum(FOLDED in line for line in r.err.splitlines()) == 1
    budgets.write_text('[[budget]]\nmodel = "net.onnx"\nmax_macs = "1G"\n')
    assert FOLDED not in effplan("check", str(budgets)).err


def test_by_stage_and_block_checkpointing_work_on_a_dynamo_export(effplan):
    """The dynamo exporter's file (node_Conv_3 names, module paths in metadata): its rows roll up by stage, and
    --checkpoint blocks keeps less than the whole step (before: one stem row, checkpointing refused)."""
    path = str(FIXTURES / "convnextish_dynamo.onnx")
    rows = effplan("layers", path, "--by", "stage", "--format", "json").json()["layers"]
    assert [r["stage"] for r in rows] == ["stem", 1, 2, "head"]
    r = effplan("memory", path, "--train", "--checkpoint", "blocks", "--batch", "4", "--format", "json")
    training = r.json()["training"]
    assert r.code == 0 and training["activation_bytes"] < training["activation_bytes_without_checkpoint"]


@pytest.mark.parametrize("act, noted", [("Relu", True), ("Identity", False)])
def test_beside_a_layer_norm_bn_counts_as_folded_where_a_biased_conv_feeds_an_activation(tmp_path, act, noted):
    """A MobileViT-like file: a biased 3x3 conv, then `act`, then a LayerNorm over channels. Conv -> Relu is
    conv-BN-act with BN folded (restored by --unfold-bn: 2 x 8 params, 2 x 8 buffers, the bias of 8 gone); a conv
    whose bias nothing shows to be folded is left alone."""
    import numpy as np
    from onnx import numpy_helper

    from effplan.graph.ops import graph_weights
    from effplan.onnx.model import Imported

    v = lambda name, shape: helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)  # noqa: E731
    inits = [numpy_helper.from_array(np.ones((8, 3, 3, 3), np.float32), "w"),
             numpy_helper.from_array(np.zeros(8, np.float32), "b"),
             numpy_helper.from_array(np.ones(8, np.float32), "g"), numpy_helper.from_array(np.zeros(8, np.float32), "e")]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node(act, ["c"], ["a"], name="act"),
             helper.make_node("Transpose", ["a"], ["t"], name="t", perm=[0, 2, 3, 1]),
             helper.make_node("LayerNormalization", ["t", "g", "e"], ["y"], name="ln", axis=-1)]
    model = helper.make_model(helper.make_graph(nodes, "g", [v("x", [1, 3, 8, 8])], [v("y", [1, 8, 8, 8])], inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "mixed.onnx"
    path.write_bytes(model.SerializeToString())
    assert (Imported(str(path)).training_note() is not None) == noted
    restored = graph_weights(Imported(str(path), unfold_bn=True).graph(1))
    assert restored == ((8 * 27 + 16 + 16, 16) if noted else (8 * 27 + 8 + 16, 0))


def _levit_like(tmp_path, act: str, linear_act: str):
    """A LeViT-like eval export: a biased 3x3 conv stem (its BN folded) -> `act` -> flattened to tokens (1, 64, 8)
    -> a LinearNorm (MatMul [8, 8], BN over the rows (64, 8), as bn(x.flatten(0, 1)).reshape_as(x)) -> a linear layer
    with a bias (MatMul [8, 16] + Add [16], its BN1d folded) -> `linear_act`."""
    import numpy as np
    from onnx import numpy_helper

    v = lambda name, shape: helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)  # noqa: E731
    ones = lambda name, *shape: numpy_helper.from_array(np.ones(shape, np.float32), name)  # noqa: E731
    inits = [ones("w", 8, 3, 3, 3), ones("b", 8), ones("m1", 8, 8), ones("g", 8), ones("e", 8), ones("mu", 8),
             ones("var", 8), ones("m2", 8, 16), ones("b2", 16),
             numpy_helper.from_array(np.array([1, 8, 64], np.int64), "s1"),
             numpy_helper.from_array(np.array([1, 64, 8], np.int64), "s2")]
    n = helper.make_node
    nodes = [n("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]), n(act, ["c"], ["a"], name="act"),
             n("Reshape", ["a", "s1"], ["r"], name="r"), n("Transpose", ["r"], ["t"], name="t", perm=[0, 2, 1]),
             n("MatMul", ["t", "m1"], ["p"], name="ln1"), n("Flatten", ["p"], ["f"], name="flat", axis=2),
             n("BatchNormalization", ["f", "g", "e", "mu", "var"], ["bn"], name="bn"),
             n("Reshape", ["bn", "s2"], ["q"], name="back"), n("MatMul", ["q", "m2"], ["l"], name="ln2"),
             n("Add", ["l", "b2"], ["lb"], name="bias"), n(linear_act, ["lb"], ["y"], name="act2")]
    graph = helper.make_graph(nodes, "g", [v("x", [1, 3, 8, 8])], [v("y", [1, 64, 16])], inits)
    path = tmp_path / "levit.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    return str(path)


@pytest.mark.parametrize("act, linear_act, convs, linears", [("HardSwish", "HardSwish", 1, 1),
                                                              ("Identity", "HardSwish", 0, 1),
                                                              ("HardSwish", "Identity", 1, 0),
                                                              ("Identity", "Identity", 0, 0)])
def test_beside_batch_norms_a_biased_conv_or_linear_feeding_an_activation_is_folded(tmp_path, act, linear_act,
                                                                                    convs, linears):
    """In a file that keeps BatchNormalization after its linear layers (LeViT's LinearNorm), a biased conv or a
    biased linear layer that feeds an activation straight away had its BN folded: said, and restored by --unfold-bn.
    The conv's: 2 x 8 params and buffers, its bias of 8 gone. The linear layer's: a BatchNorm1d over its 16 features
    on the rows flattened to (64, 16), 2 x 16 params and buffers for the bias of 16, saving that (64, 16) input
    (4,096 bytes, fp32) and a mean and inverse std per feature (128); the bias saved nothing."""
    from effplan.graph.ops import graph_weights
    from effplan.onnx.model import Imported

    path = _levit_like(tmp_path, act, linear_act)
    note = Imported(path).training_note()
    assert (note is not None) == bool(convs or linears)
    if note:
        assert "where its other layers have BatchNormalization" in note
    params = 8 * 27 + 8 + 64 + 16 + 128 + 16
    unfolded = Imported(path, unfold_bn=True)
    assert graph_weights(unfolded.graph(1)) == (params + 8 * convs + 16 * linears, 16 + 16 * convs + 32 * linears)
    saved = training_memory(unfolded.graph(1), "fp32", "sgd").saved
    # each tensor on its producer's row: the flattened rows on the flatten's, the statistics on the BN's
    assert (saved.get("bias#flatten", 0), saved.get("bias#bn", 0)) == ((64 * 16 * 4, 2 * 16 * 4) if linears else (0, 0))


@pytest.mark.parametrize("module", ["convnextish", "vitish", "swinish"])
def test_transformer_linear_layers_with_biases_are_no_folded_bn(module):
    """ViT-, Swin- and ConvNeXt-like files: every linear layer has a bias and many feed a GELU, but none of their
    linear layers feeds a BatchNormalization: no note, in any export."""
    from effplan.onnx.model import Imported, foldable_linears

    for export in EXPORTS:
        opened = Imported(str(FIXTURES / f"{module}_{export}.onnx"))
        assert opened.training_note() is None and foldable_linears(opened.graph(2)) == []


@pytest.mark.parametrize("prenorm, noted", [(True, False), (False, True)])
def test_a_pre_norm_blocks_biased_conv_is_its_own_bias(tmp_path, prenorm, noted):
    """ConvNeXt's MLP as 1x1 convs (conv_mlp): LayerNorm over channels (permuted there and back), then a biased
    conv, then GELU (the Gelu op, as the dynamo exporter writes it): the conv reads the norm, so its bias is its
    own, no folded BN. The same conv reading the stem directly feeds GELU as a folded conv-BN-act would: said."""
    import numpy as np
    from onnx import numpy_helper

    from effplan.onnx.model import Imported

    v = lambda name, shape: helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)  # noqa: E731
    ones = lambda name, *shape: numpy_helper.from_array(np.ones(shape, np.float32), name)  # noqa: E731
    n = helper.make_node
    head = [n("Transpose", ["s"], ["t"], name="t", perm=[0, 2, 3, 1]),
            n("LayerNormalization", ["t", "g", "e"], ["ln"], name="ln", axis=-1),
            n("Transpose", ["ln"], ["back"], name="back", perm=[0, 3, 1, 2])] if prenorm else []
    nodes = [n("Conv", ["x", "w", "b"], ["s"], name="stem", strides=[4, 4]), *head,
             n("Conv", ["back" if prenorm else "s", "w1", "b1"], ["f"], name="fc1"), n("Gelu", ["f"], ["y"], name="gelu")]
    inits = [ones("w", 8, 3, 4, 4), ones("b", 8), ones("g", 8), ones("e", 8), ones("w1", 16, 8, 1, 1), ones("b1", 16)]
    if not prenorm:  # a LayerNorm elsewhere in the file
        nodes.append(n("LayerNormalization", ["y", "g16", "e16"], ["z"], name="ln", axis=1))
        inits += [ones("g16", 16, 4, 4), ones("e16", 16, 4, 4)]
    out = [v("y", [1, 16, 4, 4])] if prenorm else [v("z", [1, 16, 4, 4])]
    graph = helper.make_graph(nodes, "g", [v("x", [1, 3, 16, 16])], out, inits)
    path = tmp_path / "convnext.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]).SerializeToString())
    assert (Imported(str(path)).training_note() is not None) == noted


def test_a_traced_constant_added_in_is_a_buffer_and_an_initializer_a_param():
    """Add of a Constant node's [4, 4] value (a mask computed when the model was traced): a buffer; Add of a [4]
    initializer through Unsqueeze (a bias): a param, owned by the Add."""
    import numpy as np
    from onnx import numpy_helper

    from effplan.graph.ops import graph_weights

    v = lambda name, shape: helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)  # noqa: E731
    nodes = [helper.make_node("Constant", [], ["mask"], value=numpy_helper.from_array(np.zeros((4, 4), np.float32))),
             helper.make_node("Add", ["x", "mask"], ["a"], name="masked"),
             helper.make_node("Unsqueeze", ["bias", "zero"], ["u"], name="u"),
             helper.make_node("Add", ["a", "u"], ["y"], name="biased")]
    inits = [numpy_helper.from_array(np.ones(4, np.float32), "bias"), numpy_helper.from_array(np.array([0]), "zero")]
    model = helper.make_model(helper.make_graph(nodes, "g", [v("x", [4, 4])], [v("y", [4, 4])], inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    graph = from_onnx(model)
    assert graph_weights(graph) == (4, 16)
