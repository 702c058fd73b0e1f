"""ONNX fixtures written by PyTorch's own exporters, with PyTorch's own counts beside them.

Each module is tiny (a few KB of weights), randomly initialized with a fixed seed, and exported by
torch.onnx.export: the TorchScript exporter (dynamo=False) at opset 13 and 17, and the dynamo exporter
where what it writes differs. tests/fixtures/exported.json records, per file, what PyTorch itself says
about the module — sum(p.numel()) over its parameters and over its buffers, the channels of each
BatchNorm an eval-mode export folds away, the output shape at BATCH — and MACs derived from the
module's shapes with forward hooks (Conv2d: output elements x in/groups x kernel area; Linear: output
elements x in_features; attention: the two batched matmuls from the module's heads and head widths).
None of it comes from effplan. Run by scripts/make_fixtures.py when torch is importable:

    /tmp/torchenv/bin/python scripts/make_fixtures.py
"""
from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import onnx
import timm
import torch
from torch import nn

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
BATCH = 2
SEED = 0


def macs_of(module: nn.Module, x: torch.Tensor) -> int:
    """MACs of one forward pass at x's batch, from the shapes each layer sees."""
    total = 0

    def conv(m, args, out):
        nonlocal total
        total += out.numel() * (m.in_channels // m.groups) * math.prod(m.kernel_size)

    def linear(m, args, out):
        nonlocal total
        total += out.numel() * m.in_features

    def vit_attention(m, args, out):  # timm.models.vision_transformer.Attention: q @ k^T and attn @ v
        nonlocal total
        b, n, _ = args[0].shape
        total += 2 * b * m.num_heads * n * n * m.head_dim

    def levit_attention(m, args, out):  # timm.models.levit.Attention: q @ k and attn @ v
        nonlocal total
        b, n, _ = args[0].shape
        total += b * m.num_heads * n * n * (m.key_dim + m.val_dim)

    kinds = {nn.Conv2d: conv, nn.Linear: linear, timm.models.vision_transformer.Attention: vit_attention,
             timm.models.levit.Attention: levit_attention}
    hooks = [m.register_forward_hook(hook) for m in module.modules()
             for kind, hook in kinds.items() if isinstance(m, kind)]
    with torch.no_grad():
        module(x)
    for h in hooks:
        h.remove()
    return total


def randomize(module: nn.Module) -> nn.Module:
    """Random non-zero values in every parameter timm initializes to zero or one (biases, tables, BN
    scale) so no two tensors are equal by accident; BN stays untrained where the point is the merge."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if not name.endswith(("bn.weight", "bn.bias", "bn1.weight", "bn1.bias")):
                p.copy_(torch.randn_like(p) * 0.1)
    return module


def TinyViT() -> nn.Module:  # noqa: N802 (named as the modules beside it)
    """timm's VisionTransformer at width 16: a 16x16 image in 8x8 patches (4 tokens and a class token),
    one block of 2 heads, MLP ratio 2, 10 classes."""
    return timm.models.vision_transformer.VisionTransformer(
        img_size=16, patch_size=8, embed_dim=16, depth=1, num_heads=2, mlp_ratio=2, num_classes=10)


class TfSame(nn.Module):
    """The stem and one depthwise block of a timm tf_ model: Conv2dSame (pad computed at run time
    from the input's Shape), BatchNorm, ReLU6, on a 17x17 input so the padding is asymmetric."""

    def __init__(self):
        super().__init__()
        conv = timm.layers.create_conv2d
        self.conv_stem = conv(3, 8, 3, stride=2, padding="same")
        self.bn1 = nn.BatchNorm2d(8)
        self.conv_dw = conv(8, 8, 3, stride=2, padding="same", depthwise=True)
        self.bn2 = nn.BatchNorm2d(8)
        self.conv_pw = conv(8, 16, 1, padding="same")
        self.bn3 = nn.BatchNorm2d(16)
        self.act = nn.ReLU6()

    def forward(self, x):
        x = self.act(self.bn1(self.conv_stem(x)))
        x = self.act(self.bn2(self.conv_dw(x)))
        return self.bn3(self.conv_pw(x))


class LevitAttention(nn.Module):
    """timm's LeViT attention on a 3x3 grid (9 tokens of width 16), 2 heads, key width 4, value width
    8: its attention_biases [2, 9] is gathered by constant indices [9, 9] into [2, 9, 9]."""

    def __init__(self):
        super().__init__()
        self.attn = timm.models.levit.Attention(16, key_dim=4, num_heads=2, attn_ratio=2, resolution=3)

    def forward(self, x):
        return self.attn(x)


class TinyCNN(nn.Module):
    """Three Conv-BN-ReLU of 8 channels on 8x8, untrained: BN folded by an eval-mode export leaves
    each conv an all-zero bias, which the exporter stores once."""

    def __init__(self):
        super().__init__()
        layers = []
        for cin in (3, 8, 8):
            layers += [nn.Conv2d(cin, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU()]
        self.features = nn.Sequential(*layers)

    def forward(self, x):
        return self.features(x)


def export(module, x, path: Path, opset: int | None, dynamo: bool, axes: dict[int, str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            batch = torch.export.Dim("batch", min=1, max=1024)
            program = torch.onnx.export(module, (x,), dynamo=True, opset_version=opset,
                                        input_names=["input"], output_names=["output"],
                                        dynamic_shapes={"x": {0: batch}}, verbose=False)
            for node in program.model.graph:  # the exporter's stack traces: local paths, most of the bytes
                node.metadata_props.pop("pkg.torch.onnx.stack_trace", None)
            program.save(str(path))
        else:
            torch.onnx.export(module, (x,), str(path), dynamo=False, opset_version=opset,
                              input_names=["input"], output_names=["output"],
                              dynamic_axes={"input": axes, "output": {0: axes[0]}})


def quantize(src: Path, path: Path, shape: tuple) -> None:
    """onnxruntime.quantization.quantize_static, QDQ format, per-channel int8 weights, calibrated on
    eight random inputs."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(SEED)
            self.items = iter([{"input": rng.standard_normal((1, *shape[1:]), dtype=np.float32)} for _ in range(8)])

        def get_next(self):
            return next(self.items, None)

    quantize_static(str(src), str(path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)


# file name: (module, input shape, opset (None: the exporter's default), dynamo exporter[, symbolic input axes])
EXPORTS = {
    "tf_same_hw_opset17": (TfSame, (BATCH, 3, 17, 17), 17, False, {0: "batch", 2: "height", 3: "width"}),
    "timm_vit_opset17": (TinyViT, (BATCH, 3, 16, 16), 17, False),
    "timm_vit_opset13": (TinyViT, (BATCH, 3, 16, 16), 13, False),
    "timm_vit_dynamo": (TinyViT, (BATCH, 3, 16, 16), None, True),
    "tf_same_opset13": (TfSame, (BATCH, 3, 17, 17), 13, False),
    "tf_same_opset17": (TfSame, (BATCH, 3, 17, 17), 17, False),
    "levit_attention_opset17": (LevitAttention, (BATCH, 9, 16), 17, False),
    "cnn_zero_bias_opset17": (TinyCNN, (BATCH, 3, 8, 8), 17, False),
    "cnn_zero_bias_dynamo": (TinyCNN, (BATCH, 3, 8, 8), None, True),
}


def main() -> dict:
    OUT.mkdir(parents=True, exist_ok=True)
    record = {"torch": torch.__version__, "timm": timm.__version__, "onnx": onnx.__version__, "batch": BATCH,
              "files": {}}
    for name, (make, shape, opset, dynamo, *axes) in EXPORTS.items():
        torch.manual_seed(SEED)
        module = make()
        if make is not TinyCNN:
            randomize(module)
        module.eval()
        if opset is not None and opset < 14:  # no scaled_dot_product_attention before opset 14: timm's
            for m in module.modules():        # explicit q @ k^T * scale path (TIMM_FUSED_ATTN=0)
                if hasattr(m, "fused_attn"):
                    m.fused_attn = False
        x = torch.randn(shape)
        path = OUT / f"{name}.onnx"
        export(module, x, path, opset, dynamo, axes[0] if axes else {0: "batch"})
        with torch.no_grad():
            y = module(x)
        model = onnx.load(str(path))
        record["files"][path.name] = {
            "module": make.__name__, "exporter": "dynamo" if dynamo else "torchscript",
            "opset": next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
            "params": sum(p.numel() for p in module.parameters()),
            "buffers": sum(b.numel() for b in module.buffers()),
            "bn_channels": sum(m.num_features for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)),
            "macs": macs_of(module, x), "output_shape": list(y.shape),
            "dims": {label: shape[axis] for axis, label in (axes[0] if axes else {}).items() if axis}}
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")
        if make is TinyCNN and not dynamo:
            qdq = OUT / "cnn_qdq.onnx"
            quantize(path, qdq, shape)
            record["files"][qdq.name] = dict(record["files"][path.name], exporter="torchscript + quantize_static")
            print(f"wrote {qdq} ({qdq.stat().st_size:,} bytes)")
    (OUT / "exported.json").write_text(json.dumps(record, indent=1) + "\n")
    return record


if __name__ == "__main__":
    main()
