"""The PyTorch front-end (effplan/torch/): modules defined here, exported once per module and mode
(module-scoped fixtures), their graphs checked against hand-derived costs, PyTorch's own parameter
and buffer counts, and what autograd saves in a real training step on the CPU."""
import math
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

import effplan  # noqa: E402
from effplan.graph.ops import node_cost  # noqa: E402
from effplan.plan.memory import training_memory  # noqa: E402
from effplan.torch.importer import places  # noqa: E402

N, SIDE = 2, 32  # batch and input side of the network below


# ---- the modules: a few blocks of each kind, under the module paths timm uses (stages.S.blocks.B)

class ConvBNReLU(nn.Sequential):
    def __init__(self, cin, cout, stride=1):
        super().__init__(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class DepthwiseSE(nn.Module):
    """Depthwise 3x3 + BN + SiLU, squeeze-excitation (pool, 1x1 down, SiLU, 1x1 up, sigmoid, scale),
    1x1 project + BN, residual."""

    def __init__(self, c, squeezed=4):
        super().__init__()
        self.dw = nn.Conv2d(c, c, 3, 1, 1, groups=c, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.act = nn.SiLU()
        self.reduce = nn.Conv2d(c, squeezed, 1)
        self.expand = nn.Conv2d(squeezed, c, 1)
        self.project = nn.Conv2d(c, c, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        y = self.act(self.bn1(self.dw(x)))
        s = torch.sigmoid(self.expand(F.silu(self.reduce(F.adaptive_avg_pool2d(y, 1)))))
        return x + self.bn2(self.project(y * s))


class ConvNeXtBlock(nn.Module):
    """Depthwise 7x7 (bias), channels-last LayerNorm, Linear 4x, GELU, Linear back, layer scale, residual."""

    def __init__(self, c):
        super().__init__()
        self.conv_dw = nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm = nn.LayerNorm(c)
        self.fc1, self.act, self.fc2 = nn.Linear(c, 4 * c), nn.GELU(), nn.Linear(4 * c, c)
        self.gamma = nn.Parameter(torch.full((c,), 1e-6))

    def forward(self, x):
        y = self.conv_dw(x).permute(0, 2, 3, 1)
        y = self.gamma * self.fc2(self.act(self.fc1(self.norm(y))))
        return x + y.permute(0, 3, 1, 2)


class AttentionBlock(nn.Module):
    """Pre-norm self-attention over the pixels as tokens: LayerNorm, qkv, SDPA, projection, residual."""

    def __init__(self, c, heads=2):
        super().__init__()
        self.heads = heads
        self.norm, self.qkv, self.proj = nn.LayerNorm(c), nn.Linear(c, 3 * c), nn.Linear(c, c)

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        y = F.scaled_dot_product_attention(q, k, v)
        return x + self.proj(y.transpose(1, 2).reshape(b, n, c))


class Stage(nn.Module):
    def __init__(self, blocks, downsample=None):
        super().__init__()
        self.downsample = downsample or nn.Identity()
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x):
        return self.blocks(self.downsample(x))


class Net(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.stem = ConvBNReLU(3, 16, 2)  # 32 -> 16
        self.stages = nn.Sequential(Stage([DepthwiseSE(16), DepthwiseSE(16)]),
                                    Stage([ConvNeXtBlock(32)], ConvBNReLU(16, 32, 2)),  # 16 -> 8
                                    Stage([AttentionBlock(32)]))
        self.head = nn.Linear(32, classes)

    def forward(self, x):
        x = self.stages[1](self.stages[0](self.stem(x)))
        tokens = self.stages[2](x.flatten(2).transpose(1, 2))
        return self.head(tokens.mean(1))


class Zoo(nn.Module):
    """The other mappings: 'same' conv, max and average pooling, GroupNorm, hardswish, matmul, a scalar
    divide, softmax, bmm, a Linear without bias, torch.roll (no rule: unknown), cat, mean."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding="same")
        self.gn = nn.GroupNorm(4, 8)
        self.fc = nn.Linear(16, 16, bias=False)

    def forward(self, x):  # x: (N, 3, 16, 16)
        y = F.avg_pool2d(F.max_pool2d(self.conv(x), 3, 2, 1), 2)  # (N, 8, 8, 8), then (N, 8, 4, 4)
        t = F.hardswish(self.gn(y)).flatten(2)  # (N, 8, 16)
        a = torch.softmax(t @ t.transpose(1, 2) / 4, dim=-1)  # (N, 8, 8)
        t = self.fc(torch.bmm(a, t))  # (N, 8, 16)
        return torch.cat([t, torch.roll(t, 1, dims=1)], 1).mean(-1)


class WithDropout(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.drop = nn.Conv2d(3, 4, 1), nn.Dropout(0.2)

    def forward(self, x):
        return self.drop(self.conv(x))


class Tied(nn.Module):
    """One weight read twice, the second time through a transpose (folded): counted once."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 6)

    def forward(self, x):
        return F.linear(self.fc(x), self.fc.weight.t())


class DataDependent(nn.Module):
    def forward(self, x):
        return x if x.sum() > 0 else -x


def tiny():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())


def broken():
    raise ValueError("width 7 is not a multiple of 4\nsecond line")


def not_a_module():
    return 42


# ---- fixtures: one export per module and mode

@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return Net()  # real weights, on the CPU: the autograd test runs it; effplan never reads them


@pytest.fixture(scope="module")
def trained(net):
    return effplan.from_torch(net, (3, SIDE, SIDE), train=True)


@pytest.fixture(scope="module")
def graph(trained):
    return trained.graph(N)


@pytest.fixture(scope="module")
def zoo_model():
    with torch.device("meta"):
        module = Zoo()
    return effplan.from_torch(module, (3, 16, 16), train=False)


@pytest.fixture(scope="module")
def zoo(zoo_model):
    return zoo_model.graph(N)


def cost(graph, name):
    return node_cost(graph, name, 4, costed_only=False)


def by_module(graph, path):
    return [n for n in graph.nodes if n == path or n.startswith(path + ".")]


# ---- each aten mapping, with its cost derived by hand

def test_convolutions(graph):
    stem = cost(graph, "stem.0")  # 3x3 stride 2, 3 -> 16, 32 -> 16 px, no bias
    assert (stem.op, stem.macs, stem.flops) == ("Conv", N * 16 * 16 * 16 * 3 * 9, 2 * N * 16 * 16 * 16 * 3 * 9)
    dw = cost(graph, "stages.0.blocks.0.dw")  # depthwise: one input channel per output
    assert (dw.macs, graph.nodes["stages.0.blocks.0.dw"]["attrs"]["group"]) == (N * 16 * 16 * 16 * 9, 16)
    reduce = cost(graph, "stages.0.blocks.0.reduce")  # 1x1 on the pooled 1x1 map, 16 -> 4, bias
    assert (reduce.macs, reduce.flops, reduce.params) == (N * 4 * 16, 2 * N * 4 * 16 + N * 4, 4 * 16 + 4)
    conv_dw = cost(graph, "stages.1.blocks.0.conv_dw")  # 7x7 depthwise with bias at 8 px
    assert conv_dw.macs == N * 32 * 8 * 8 * 49 and conv_dw.flops == 2 * conv_dw.macs + N * 32 * 8 * 8


def test_linear_layers_and_matrix_products(graph, zoo):
    fc1 = cost(graph, "stages.1.blocks.0.fc1")  # Linear on (N, 8, 8, 32) channels-last: one kernel, with bias
    assert (fc1.op, fc1.macs, fc1.flops) == ("Gemm", N * 64 * 128 * 32, 2 * N * 64 * 128 * 32 + N * 64 * 128)
    head = cost(graph, "head")
    assert (head.macs, head.params) == (N * 10 * 32, 10 * 32 + 10)
    fc = cost(zoo, "fc")  # no bias: no add
    assert (fc.macs, fc.flops, fc.params) == (N * 8 * 16 * 16, 2 * N * 8 * 16 * 16, 16 * 16)
    matmul = next(cost(zoo, n) for n in zoo.nodes if zoo.nodes[n]["aten"] == "matmul")
    assert (matmul.op, matmul.macs) == ("MatMul", N * 8 * 8 * 16)  # (8 x 16) @ (16 x 8)
    bmm = next(cost(zoo, n) for n in zoo.nodes if zoo.nodes[n]["aten"] == "bmm")
    assert (bmm.op, bmm.macs) == ("MatMul", N * 8 * 16 * 8)  # (8 x 8) @ (8 x 16)


def test_attention_is_one_op(graph):
    (name,) = [n for n in graph.nodes if graph.nodes[n]["op"] == "Attention"]
    b, h, length, d = N, 2, 64, 16  # 8 x 8 pixels as tokens, 32 channels in 2 heads
    att = cost(graph, name)
    assert att.macs == 2 * b * h * length * length * d  # Q K^T and P V
    assert att.flops == 2 * att.macs + 4 * b * h * length * length  # scale and softmax per score
    # written in the fused backends' layout, (B, L, H x D): the transpose and reshape after it move nothing
    assert graph.graph["tensors"][name] == (b, length, h * d) and graph.nodes[name]["attrs"]["q_num_heads"] == h
    assert [graph.nodes[n]["inputs"] for n in graph.nodes if n.endswith("attn.proj") or n == "stages.2.blocks.0.proj"] \
        == [(name,)]


def test_normalisation_and_activations(graph, zoo):
    bn = graph.nodes["stem.1"]
    assert bn["op"] == "BatchNormalization" and bn["attrs"]["training_mode"] == 1  # planned in train mode
    assert cost(graph, "stem.1").flops == 2 * N * 16 * 16 * 16
    ln = cost(graph, "stages.1.blocks.0.norm")
    assert (ln.op, ln.flops, ln.params) == ("LayerNormalization", 5 * N * 8 * 8 * 32, 2 * 32)
    assert graph.nodes["stages.1.blocks.0.act"]["op"] == "Gelu"  # one op, not erf's five
    assert cost(graph, "stages.1.blocks.0.act").flops == 5 * N * 8 * 8 * 128
    # SiLU: Sigmoid then Mul, effplan's Swish (3 + 1 FLOPs an element)
    assert [graph.nodes[n]["op"] for n in by_module(graph, "stages.0.blocks.0.act")] == ["Sigmoid", "Mul"]
    gn = cost(zoo, "gn")
    assert (gn.op, gn.flops, gn.params) == ("GroupNormalization", 5 * N * 8 * 4 * 4, 2 * 8)  # after both pools
    assert zoo.nodes["gn"]["attrs"]["num_groups"] == 4
    (hswish,) = [n for n in zoo.nodes if zoo.nodes[n]["op"] == "HardSwish"]
    assert cost(zoo, hswish).flops == 5 * N * 8 * 4 * 4


def test_pooling_elementwise_and_views(graph, zoo):
    ops = {zoo.nodes[n]["aten"]: (zoo.nodes[n]["op"], cost(zoo, n)) for n in zoo.nodes}
    assert ops["max_pool2d"][0] == "MaxPool" and ops["max_pool2d"][1].flops == N * 8 * 8 * 8 * 9
    assert ops["avg_pool2d"][0] == "AveragePool" and ops["avg_pool2d"][1].flops == N * 8 * 4 * 4 * 4
    assert ops["div"][0] == "Div" and ops["div"][1].flops == N * 8 * 8  # by a number
    assert ops["softmax"][0] == "Softmax" and ops["softmax"][1].flops == 3 * N * 8 * 8
    assert ops["mean"][0] == "ReduceMean" and ops["mean"][1].flops == N * 16 * 16 + N * 16
    assert ops["cat"][0] == "Concat" and ops["cat"][1].flops == 0
    assert ops["flatten"][0] == "Reshape" and ops["transpose"][0] == "Transpose"
    se_pool = cost(graph, "stages.0.blocks.0.adaptive_avg_pool2d")
    assert (se_pool.op, se_pool.flops) == ("GlobalAveragePool", N * 16 * 16 * 16 + N * 16)
    gamma = cost(graph, "stages.1.blocks.0.mul")  # layer scale: a parameter read by a Mul
    assert (gamma.op, gamma.params) == ("Mul", 32)
    residual = cost(graph, "stages.0.blocks.0.add")
    assert (residual.op, residual.flops) == ("Add", N * 16 * 16 * 16)


def test_an_op_with_no_rule_is_reported_by_name(zoo_model, zoo):
    assert [zoo.nodes[n]["op"] for n in zoo.nodes if zoo.nodes[n]["aten"] == "roll"] == ["aten.roll"]
    assert effplan.analyze(zoo_model, batch=N).unknown_ops == {"aten.roll": 1}
    with pytest.raises(effplan.EffplanError, match="aten.roll"):
        effplan.analyze(zoo_model, batch=N, strict=True)
    with pytest.raises(effplan.EffplanError, match="no rule for what aten.roll saves"):
        training_memory(zoo, precision="fp32")


# ---- parameters, buffers, stages and mode

def test_params_and_buffers_match_pytorch(net, graph, zoo):
    params, buffers = effplan.graph.ops.graph_weights(graph)
    assert params == sum(p.numel() for p in net.parameters())
    # BatchNorm's running mean and variance; its integer num_batches_tracked is no floating state
    assert buffers == sum(b.numel() for b in net.buffers() if b.is_floating_point()) == 2 * (16 + 2 * (16 + 16) + 32)
    assert graph.graph["unused_weights"] == []
    with torch.device("meta"):
        zoo_module = Zoo()
    assert effplan.graph.ops.graph_weights(zoo)[0] == sum(p.numel() for p in zoo_module.parameters())


def test_a_tied_weight_counts_once():
    with torch.device("meta"):
        module = Tied()
    graph = effplan.from_torch(module, (8,), train=False).graph(3)
    gemms = [n for n in graph.nodes if graph.nodes[n]["op"] == "Gemm"]
    assert [cost(graph, n).macs for n in gemms] == [3 * 6 * 8, 3 * 8 * 6]
    assert effplan.graph.ops.graph_weights(graph) == (6 * 8 + 6, 0) == (sum(p.numel() for p in module.parameters()), 0)


def test_stages_and_blocks_come_from_module_paths(graph):
    place = {n: (graph.nodes[n]["stage"], graph.nodes[n]["block"]) for n in graph.nodes}
    assert place["stem.0"] == place["stem.2"] == ("stem", 0)
    assert place["stages.0.blocks.1.dw"] == (1, 1)
    assert place["stages.1.downsample.0"] == (2, 0)  # a stage's downsample joins its first block
    assert place["stages.1.blocks.0.fc2"] == (2, 0)
    assert place["head"] == ("head", 0)
    assert {s for s, _ in place.values() if isinstance(s, int)} == {1, 2, 3}
    assert graph.nodes["stages.1.blocks.0.fc2"]["layer"] == "fc2"


def test_places_of_other_layouts():
    resnet = ["conv1", "bn1", "layer1.0.conv1", "layer1.1.conv2", "layer2.0.downsample.0", "fc"]
    assert [p[:2] for p in places(resnet)] == [("stem", 0)] * 2 + [(1, 0), (1, 1), (2, 0), ("head", 0)]
    vit = ["patch_embed.proj", "blocks.0.attn.qkv", "blocks.0.mlp.fc1", "blocks.1.attn.qkv", "norm", "head"]
    assert [p[:2] for p in places(vit)] == [("stem", 0), (1, 0), (1, 0), (1, 1), ("head", 0), ("head", 0)]
    regnet = ["stem.conv", "s1.b1.conv1", "s1.b2.conv1", "s2.b1.se.fc1", "head.fc"]
    assert [p[:2] for p in places(regnet)] == [("stem", 0), (1, 0), (1, 1), (2, 0), ("head", 0)]
    torchvision = ["features.0.0", "features.0.1", "features.1.0.block.0", "features.2.1.block.0", "classifier.1"]
    assert [p[:2] for p in places(torchvision)] == [("stem", 0), ("stem", 0), (1, 0), (2, 1), ("head", 0)]


def test_eval_mode_and_the_batch_binding(net):
    model = effplan.from_torch(net, (3, SIDE, SIDE), train=False)
    one, four = model.graph(1), model.graph(4)
    assert four.nodes["stem.1"]["attrs"]["training_mode"] == 0
    assert one.graph["tensors"]["input"] == (1, 3, SIDE, SIDE) and four.graph["tensors"]["stem.0"] == (4, 16, 16, 16)
    assert model._static == {}  # one export, its batch left symbolic
    assert net.training  # the module's own mode is left as it was


# ---- training memory against autograd

def autograd_saved_bytes(module, x) -> int:
    """Bytes of the distinct storages autograd saves for backward in one training forward, weights excluded."""
    weights = {t.untyped_storage().data_ptr() for t in (*module.parameters(), *module.buffers())}
    saved = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in weights:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    module.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        module(x)
    return sum(saved.values())


def test_saved_tensors_match_autograd(net, graph):
    measured = autograd_saved_bytes(net, torch.randn(N, 3, SIDE, SIDE))
    planned = training_memory(graph, precision="fp32").activation_bytes
    assert abs(planned - measured) <= 0.05 * measured, (planned, measured)


def test_attention_saves_what_the_fused_backends_keep(graph):
    """Q, K and V (views of one qkv output), the output, and one fp32 logsumexp per query row; never the
    64 x 64 probabilities."""
    (name,) = [n for n in graph.nodes if graph.nodes[n]["op"] == "Attention"]
    training = training_memory(graph, precision="fp32")
    q = N * 2 * 64 * 16 * 4
    assert training.saved[name] == q + N * 2 * 64 * 4  # its output and its logsumexp (q, k, v: their producer's)


def test_dropout_keeps_a_byte_mask_in_training():
    with torch.device("meta"):
        module = WithDropout()
    graph = effplan.from_torch(module, (3, 8, 8), train=True).graph(N)
    saved = training_memory(graph, precision="fp32").saved
    # the conv keeps its input (fp32); dropout a mask of one byte per element (CUDA's native_dropout)
    assert saved == {"conv": N * 3 * 8 * 8 * 4, "drop": N * 4 * 8 * 8}


# ---- the command line

def test_a_callable_through_every_model_command(effplan):
    model = "test_torch_frontend:tiny"
    run = effplan("layers", model, "--input-shape", "3,10,10", "--batch", "3", "--format", "json")
    assert run.code == 0, run.err
    layers = run.json()["layers"]
    assert layers[0]["op"] == "Conv" and layers[0]["macs"] == 3 * 4 * 8 * 8 * 3 * 9
    assert effplan("memory", model, "--input-shape", "3,10,10", "--train").code == 0
    assert effplan("fit", model, "--input-shape", "3,10,10", "--memory", "1GiB").code == 0
    assert effplan("roofline", model, "--input-shape", "3,10,10", "--device", "a100-80gb").code == 0


def test_the_command_plans_the_mode_it_runs(effplan):
    from effplan.torch.source import _OPENED

    model = "test_torch_frontend:WithDropout"
    assert effplan("memory", model, "--input-shape", "3,8,8", "--train").code == 0
    assert effplan("layers", model, "--input-shape", "3,8,8").code == 0
    assert {key[2] for key in _OPENED if key[0] == model} == {True, False}


@pytest.mark.parametrize("args, message", [
    (["tim:resnet50"], "unknown model source 'tim'.*did you mean timm:resnet50"),
    (["test_torch_frontend:broken", "--input-shape", "3,8,8"], "raised ValueError: width 7 is not a multiple of 4$"),
    (["test_torch_frontend:not_a_module", "--input-shape", "3,8,8"], "returned a int, not a torch.nn.Module"),
    (["test_torch_frontend:DataDependent", "--input-shape", "3,8,8"], "torch.export cannot trace .*DataDependent"),
    (["test_torch_frontend:tiny"], "does not state its input size: give .*--input-shape"),
    (["test_torch_frontend:tiny", "--input-shape", "3,x"], "--input-shape '3,x'"),
    (["test_torch_frontend:tiny", "--input-shape", "3,8,8", "--resolution", "64"], "is a PyTorch model"),
    (["efficientnet-b0", "--input-shape", "3,8,8"], "sets a PyTorch model's input"),
])
def test_one_line_errors(effplan, args, message):
    import re

    run = effplan("layers", *args)
    assert run.code == 2 and run.out == "" and run.err.count("\n") == 1, run.err
    assert re.search(message, run.err.strip()), run.err


@pytest.mark.parametrize("command", [["export", "-o", "never.onnx"], ["measure"]])
def test_commands_that_write_onnx_refuse_a_pytorch_model(effplan, command, tmp_path):
    run = effplan(command[0], "test_torch_frontend:tiny", "--input-shape", "3,8,8", *command[1:])
    assert run.code == 2 and run.err.count("\n") == 1 and "torch.onnx.export" in run.err


def test_without_torch_the_prefix_names_the_extra(effplan, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    run = effplan("layers", "timm:convnext_atto")
    assert run.code == 2 and run.err.count("\n") == 1
    assert "pip install 'effplan[torch]'" in run.err


def test_a_missing_model_package_is_named(effplan, monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)
    run = effplan("layers", "timm:resnet50")
    assert run.code == 2 and run.err.count("\n") == 1 and "needs timm, which is not installed" in run.err


def test_effplan_and_its_other_commands_never_import_torch():
    code = ("import sys; import effplan; from effplan.cli import main; main(['layers', 'efficientnet-b0']); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_from_torch_refuses_what_is_no_module():
    with pytest.raises(effplan.EffplanError, match="takes a torch.nn.Module"):
        effplan.from_torch(object())


def test_the_python_api_takes_the_model_everywhere(trained):
    assert effplan.memory(trained, batch=2, train=True).total_bytes > 0
    assert effplan.fit(trained, "1GiB", train=True).batch > 1
    assert effplan.roofline(trained, "a100-80gb", batch=2).latency_s > 0
    assert math.isclose(effplan.analyze(trained, batch=2).totals.macs, sum(
        cost(trained.graph(2), n).macs for n in trained.graph(2).nodes))


def test_a_budget_file_names_a_pytorch_model(effplan, tmp_path):
    """Conv 3 -> 4, 3x3 on 10x10: 4 * 8 * 8 * 3 * 9 = 6,912 MACs and 4 * 3 * 9 + 4 = 112 params per image;
    the limit one below each fails, and the training-memory limit plans the train-mode export."""
    def check(macs, params):
        path = tmp_path / "b.toml"
        path.write_text(f'[[budget]]\nmodel = "test_torch_frontend:tiny"\ninput_shape = "3,10,10"\nbatch = 2\n'
                        f'max_macs = "{macs}"\nmax_params = "{params}"\nmax_training_memory = "1GiB"\n')
        return effplan("check", str(path), "--format", "json")

    passing = check(2 * 6912, 112)
    assert passing.code == 0, passing.err
    assert [r["value"] for r in passing.json()["checks"]][:2] == [2 * 6912, 112]
    assert check(2 * 6912 - 1, 112).code == 1 and check(2 * 6912, 111).code == 1
    path = tmp_path / "bad.toml"
    path.write_text('[[budget]]\nmodel = "test_torch_frontend:tiny"\ninput_shape = "3,10,10"\nphi = 1\n'
                    'max_macs = "1G"\n')
    run = effplan("check", str(path))
    assert run.code == 2 and "budget[0].phi: an ONNX file or PyTorch model fixes its own design" in run.err


def test_the_api_takes_a_pytorch_model_argument():
    """A SOURCE:NAME string reaches the PyTorch front-end from the API as from the command line (not the spec
    resolver's 'unknown model'); a module that states no input size is asked for one."""
    import effplan

    with pytest.raises(effplan.EffplanError, match="does not state its input size"):
        effplan.analyze("test_torch_frontend:tiny")
