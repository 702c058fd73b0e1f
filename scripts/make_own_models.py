"""Small networks of your own, exported both ways, with what PyTorch itself says about them beside them.

Five tiny modules defined here (a few thousand parameters each), seeded, each exported by torch.onnx.export:
  ts_eval   the TorchScript exporter (dynamo=False, opset 17) of the model in eval mode: BatchNorm folded
  ts_train  the same exporter with training=TrainingMode.TRAINING, do_constant_folding=False: BatchNorm kept
  dynamo    the dynamo exporter (dynamo=True) of the model in eval mode; its per-node stack traces and FX
            text are dropped to keep it small (the module path and class, name_scopes/namespace, stay)
tests/fixtures/own_models.json records, per module: PyTorch's parameter and buffer counts (sum of numel),
and the bytes autograd saves for backward in one training step at BATCH, fp32, measured with
torch.autograd.graph.saved_tensors_hooks: every tensor packed, each storage counted once, parameters and
buffers left out (they are weights, not activations). Nothing in it comes from effplan.

    PYTHONPATH=<onnxscript> .venv/bin/python scripts/make_own_models.py
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from torch import nn

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
BATCH, SEED = 2, 0
DROP_KEYS = ("pkg.torch.onnx.stack_trace", "pkg.torch.onnx.fx_node")


def conv_bn(cin, cout, k=3, stride=1, groups=1, act=nn.ReLU):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout),
                         act() if act else nn.Identity())


class Basic(nn.Module):  # ResNet's basic block
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1, self.conv2 = conv_bn(cin, cout, stride=stride), conv_bn(cout, cout, act=None)
        self.downsample = conv_bn(cin, cout, 1, stride, act=None) if stride > 1 or cin != cout else nn.Identity()
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.conv2(self.conv1(x)) + self.downsample(x))


class ResNetish(nn.Module):  # torchvision names: conv1, layer1.0, layer2.0, fc
    def __init__(self):
        super().__init__()
        self.conv1, self.maxpool = conv_bn(3, 8, stride=2), nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(Basic(8, 8, 1), Basic(8, 8, 1))
        self.layer2 = nn.Sequential(Basic(8, 16, 2))
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        return self.fc(self.layer2(self.layer1(self.maxpool(self.conv1(x)))).mean((2, 3)))


class SE(nn.Module):
    def __init__(self, c, r):
        super().__init__()
        self.fc1, self.fc2, self.act, self.gate = nn.Conv2d(c, r, 1), nn.Conv2d(r, c, 1), nn.ReLU(), nn.Hardsigmoid()

    def forward(self, x):
        return x * self.gate(self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True)))))


class DWBlock(nn.Module):  # depthwise separable with squeeze-excitation (RegNetY / MobileNetV3 style)
    def __init__(self, cin, cout, stride, act):
        super().__init__()
        self.conv1 = conv_bn(cin, cin * 2, 1, act=act)
        self.conv2 = conv_bn(cin * 2, cin * 2, 3, stride, groups=cin * 2, act=act)
        self.se, self.conv3 = SE(cin * 2, 4), conv_bn(cin * 2, cout, 1, act=None)
        self.skip = stride == 1 and cin == cout

    def forward(self, x):
        y = self.conv3(self.se(self.conv2(self.conv1(x))))
        return x + y if self.skip else y


class RegNetish(nn.Module):  # timm RegNet names: stem, s1.b1, s2.b1, head
    def __init__(self):
        super().__init__()
        self.stem = conv_bn(3, 8, stride=2, act=nn.Hardswish)
        self.s1 = nn.Sequential()
        self.s1.add_module("b1", DWBlock(8, 8, 1, nn.SiLU))
        self.s1.add_module("b2", DWBlock(8, 8, 1, nn.SiLU))
        self.s2 = nn.Sequential()
        self.s2.add_module("b1", DWBlock(8, 16, 2, nn.Hardswish))
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        return self.head(self.s2(self.s1(self.stem(x))).mean((2, 3)))


class LayerNorm2d(nn.LayerNorm):
    def forward(self, x):
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class NeXtBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv_dw, self.norm = nn.Conv2d(c, c, 7, padding=3, groups=c), nn.LayerNorm(c)
        self.fc1, self.act, self.fc2 = nn.Linear(c, 4 * c), nn.GELU(), nn.Linear(4 * c, c)

    def forward(self, x):
        y = self.norm(self.conv_dw(x).permute(0, 2, 3, 1))
        return x + self.fc2(self.act(self.fc1(y))).permute(0, 3, 1, 2)


class Stage(nn.Module):
    def __init__(self, cin, cout, depth):
        super().__init__()
        self.downsample = nn.Sequential(LayerNorm2d(cin), nn.Conv2d(cin, cout, 2, 2)) if cin != cout else nn.Identity()
        self.blocks = nn.Sequential(*[NeXtBlock(cout) for _ in range(depth)])

    def forward(self, x):
        return self.blocks(self.downsample(x))


class ConvNeXtish(nn.Module):  # timm names: stem, stages.0.blocks.0, head
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 4, 4), LayerNorm2d(8))
        self.stages = nn.Sequential(Stage(8, 8, 2), Stage(8, 16, 1))
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        return self.head(self.stages(self.stem(x)).mean((2, 3)))


class Attention(nn.Module):
    def __init__(self, c, heads, bias_table: int = 0, tokens: int = 0):
        super().__init__()
        self.heads, self.qkv, self.proj = heads, nn.Linear(c, 3 * c), nn.Linear(c, c)
        if bias_table:  # Swin: a learned table of relative-position biases, gathered by a fixed index buffer
            self.relative_position_bias_table = nn.Parameter(torch.randn(bias_table, heads) * 0.02)
            self.register_buffer("relative_position_index", torch.randint(0, bias_table, (tokens * tokens,)))
            self.register_buffer("attn_mask", torch.zeros(tokens, tokens).masked_fill(
                torch.rand(tokens, tokens) > 0.7, -100.0))

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        mask = None  # as timm's fused attention: scaled_dot_product_attention, with the bias and mask added
        if hasattr(self, "relative_position_bias_table"):
            bias = self.relative_position_bias_table[self.relative_position_index].view(n, n, -1).permute(2, 0, 1)
            mask = bias.unsqueeze(0) + self.attn_mask
        y = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(torch.cat(y.unbind(1), -1))  # the heads side by side (no view: dynamo cannot view it)


class TBlock(nn.Module):
    def __init__(self, c, heads, **bias):
        super().__init__()
        self.norm1, self.attn, self.norm2 = nn.LayerNorm(c), Attention(c, heads, **bias), nn.LayerNorm(c)
        self.mlp = nn.Sequential(nn.Linear(c, 2 * c), nn.GELU(), nn.Linear(2 * c, c))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViTish(nn.Module):  # timm names: patch_embed, cls_token, blocks.0, norm, head
    def __init__(self, c=16):
        super().__init__()
        self.patch_embed = nn.Conv2d(3, c, 8, 8)
        self.cls_token, self.pos_embed = nn.Parameter(torch.zeros(1, 1, c)), nn.Parameter(torch.zeros(1, 17, c))
        self.blocks = nn.Sequential(TBlock(c, 2), TBlock(c, 2))
        self.norm, self.head = nn.LayerNorm(c), nn.Linear(c, 10)

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1) + self.pos_embed
        return self.head(self.norm(self.blocks(x))[:, 0])


class Swinish(nn.Module):  # timm names: patch_embed, layers.0.blocks.0; one 4x4 window of 16 tokens
    def __init__(self, c=16):
        super().__init__()
        self.patch_embed = nn.Conv2d(3, c, 8, 8)
        self.layers = nn.Sequential(nn.Module())
        self.layers[0].blocks = nn.Sequential(*[TBlock(c, 2, bias_table=49, tokens=16) for _ in range(2)])
        self.norm, self.head = nn.LayerNorm(c), nn.Linear(c, 10)

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        return self.head(self.norm(self.layers[0].blocks(x)).mean(1))


def saved_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """Bytes autograd keeps for backward in one training step: each storage once, weights left out."""
    weights = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}
    storages: dict[int, int] = {}

    def pack(t):
        ptr = t.untyped_storage().data_ptr()
        if ptr not in weights:
            storages[ptr] = t.untyped_storage().nbytes()
        return t

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x).sum().backward()
    return sum(storages.values())


def strip(path: Path) -> None:
    import onnx

    proto = onnx.load(str(path))
    for node in proto.graph.node:
        keep = [p for p in node.metadata_props if p.key not in DROP_KEYS]
        del node.metadata_props[:]
        node.metadata_props.extend(keep)
    onnx.save(proto, str(path))


def main() -> None:
    warnings.filterwarnings("ignore")
    record = {"torch": torch.__version__, "batch": BATCH, "modules": {}}
    for cls, side in ((ResNetish, 32), (RegNetish, 32), (ConvNeXtish, 32), (ViTish, 32), (Swinish, 32)):
        torch.manual_seed(SEED)
        model = cls()
        x = torch.randn(BATCH, 3, side, side)
        name = cls.__name__.lower()
        record["modules"][name] = {
            "params": sum(p.numel() for p in model.parameters()),
            "buffers": sum(b.numel() for b in model.buffers() if b.is_floating_point()),
            "saved_bytes": saved_bytes(model, x),
            "input": list(x.shape),
        }
        model.eval()
        axes = {"x": {0: "batch"}}
        torch.onnx.export(model, (x,), str(OUT / f"{name}_ts_eval.onnx"), dynamo=False, opset_version=17,
                          input_names=["x"], dynamic_axes=axes)
        model.train()
        torch.onnx.export(model, (x,), str(OUT / f"{name}_ts_train.onnx"), dynamo=False, opset_version=17,
                          input_names=["x"], dynamic_axes=axes, training=torch.onnx.TrainingMode.TRAINING,
                          do_constant_folding=False)
        model.eval()
        torch.onnx.export(model, (x,), str(OUT / f"{name}_dynamo.onnx"), dynamo=True, input_names=["x"],
                          dynamic_shapes={"x": {0: torch.export.Dim("batch")}}, verbose=False)
        strip(OUT / f"{name}_dynamo.onnx")
    (OUT / "own_models.json").write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
