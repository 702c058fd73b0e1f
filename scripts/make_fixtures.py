"""Write the small ONNX files under tests/fixtures/ that the import tests read.

PyTorch could not be installed where these were made (no CPU wheel reachable), so each file is
written with onnx.helper, node for node in the patterns torch.onnx.export (TorchScript exporter,
opset 17) writes for the module named beside it: the same op types, attribute and input order,
node names (module paths) and initializer naming. Widths are tiny, so each file is a few KB.

    python scripts/make_fixtures.py          # rewrites tests/fixtures/*.onnx

Beside them, scripts/export_fixtures.py writes the same patterns as PyTorch's exporters really write
them (torch.onnx.export of tiny timm modules) with PyTorch's own counts in tests/fixtures/exported.json;
this script runs it when torch and timm are importable (/tmp/torchenv/bin/python scripts/make_fixtures.py).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
OPSET = 17
RNG = np.random.default_rng(0)


class Graph:
    """Nodes and initializers in the order an exporter writes them; names as TorchScript's exporter."""

    def __init__(self):
        self.nodes, self.inits, self.count = [], [], 0

    def init(self, name: str, value) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def weight(self, name: str, *shape) -> str:
        return self.init(name, RNG.standard_normal(shape).astype(np.float32) * 0.1)

    def const(self, value, scope: str = "") -> str:
        """A Constant node, as the exporter writes Python numbers and lists."""
        self.count += 1
        name = f"{scope}/Constant_{self.count}_output_0"
        self.nodes.append(helper.make_node("Constant", [], [name], name=f"{scope}/Constant_{self.count}",
                                           value=numpy_helper.from_array(np.asarray(value), name)))
        return name

    def op(self, op: str, inputs: list[str], scope: str, outputs: int = 1, **attrs) -> str | list[str]:
        self.count += 1
        base = f"{scope}/{op}_{self.count}"
        names = [f"{base}_output_{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op, inputs, names, name=base, **attrs))
        return names[0] if outputs == 1 else names

    def model(self, name: str, inputs, outputs) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.inits)
        model = helper.make_model(graph, producer_name="pytorch", producer_version="2.5.1",
                                  opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = 8
        onnx.checker.check_model(model, full_check=True)
        return model


def unsqueeze0(g: Graph, x: str, scope: str) -> str:
    return g.op("Unsqueeze", [x, g.const(np.array([0], np.int64), scope)], scope)


def dim(g: Graph, x: str, axis: int, scope: str) -> str:
    """x.size(axis) while tracing with a dynamic shape: Shape -> Gather of a scalar index."""
    return g.op("Gather", [g.op("Shape", [x], scope), g.const(np.array(axis, np.int64), scope)], scope, axis=0)


def pad_same(g: Graph, x: str, k: int, s: int, scope: str) -> str:
    """timm's pad_same (Conv2dSame, tf_ models) traced with a dynamic input size:
    pad = max((ceil(x / s) - 1) * s + (k - 1) + 1 - x, 0) per side, then F.pad(x, [pw // 2, pw - pw // 2,
    ph // 2, ph - ph // 2]), which the exporter turns into ConstantOfShape / Concat / Reshape / Slice /
    Transpose / Reshape / Cast before Pad."""
    pads = []
    for axis in (2, 3):
        size = dim(g, x, axis, scope)
        q = g.op("Div", [g.op("Cast", [size], scope, to=TensorProto.FLOAT), g.const(np.array(s, np.float32), scope)],
                 scope)
        up = g.op("Cast", [g.op("Ceil", [q], scope)], scope, to=TensorProto.INT64)
        total = g.op("Sub", [g.op("Add", [g.op("Mul", [g.op("Sub", [up, g.const(np.array(1, np.int64), scope)],
                                                                  scope),
                                                           g.const(np.array(s, np.int64), scope)], scope),
                                          g.const(np.array(k, np.int64), scope)], scope), size], scope)
        total = g.op("Max", [total, g.const(np.array(0, np.int64), scope)], scope)
        half = g.op("Div", [total, g.const(np.array(2, np.int64), scope)], scope)
        pads.append((half, g.op("Sub", [total, half], scope)))
    (h0, h1), (w0, w1) = pads
    listed = g.op("Concat", [unsqueeze0(g, v, scope) for v in (w0, w1, h0, h1)], scope, axis=0)
    rest = g.op("ConstantOfShape", [g.op("Sub", [g.const(np.array([8], np.int64), scope),
                                                  g.op("Shape", [listed], scope)], scope)], scope,
                value=numpy_helper.from_array(np.array([0], np.int64)))
    full = g.op("Concat", [listed, rest], scope, axis=0)
    pairs = g.op("Reshape", [full, g.const(np.array([-1, 2], np.int64), scope)], scope)
    flipped = g.op("Slice", [pairs, g.const(np.array([-1], np.int64), scope),
                             g.const(np.array([-(2**63 - 1)], np.int64), scope), g.const(np.array([0], np.int64), scope),
                             g.const(np.array([-1], np.int64), scope)], scope)
    onnx_order = g.op("Reshape", [g.op("Transpose", [flipped], scope, perm=[1, 0]),
                                  g.const(np.array([-1], np.int64), scope)], scope)
    return g.op("Pad", [x, g.op("Cast", [onnx_order], scope, to=TensorProto.INT64),
                        g.const(np.array(0.0, np.float32), scope)], scope, mode="constant")


def tf_same_padding() -> onnx.ModelProto:
    """Two Conv2dSame (3 -> 8 -> 8, kernel 3, stride 2) with BN folded, ReLU; input N x 3 x 16 x 16."""
    g = Graph()
    x = "input"
    for i, (cin, cout) in enumerate(((3, 8), (8, 8))):
        scope = f"/conv{i}"
        padded = pad_same(g, x, 3, 2, scope)
        x = g.op("Conv", [padded, g.weight(f"conv{i}.weight", cout, cin, 3, 3), g.weight(f"conv{i}.bias", cout)],
                 scope, kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 0, 0], dilations=[1, 1], group=1)
        x = g.op("Relu", [x], f"/act{i}")
    g.nodes[-1].output[0] = "output"
    return g.model("tf_same", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch_size", 3, 16, 16])],
                   [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch_size", 8, 4, 4])])


def vit_block() -> onnx.ModelProto:
    """timm VisionTransformer, patch 4 on 8 x 8 (4 patches + cls token), width 16, 2 heads, MLP 32,
    one block, 10 classes: cls_token.expand(B, -1, -1) as ConstantOfShape / Mul / Equal / Where /
    Expand, attention's reshape from x.shape, GELU at opset 17 as Div / Erf / Add / Mul / Mul."""
    g, d, heads, n = Graph(), 16, 2, 5
    x = g.op("Conv", ["input", g.weight("patch_embed.proj.weight", d, 3, 4, 4), g.weight("patch_embed.proj.bias", d)],
             "/patch_embed/proj", kernel_shape=[4, 4], strides=[4, 4], pads=[0, 0, 0, 0], dilations=[1, 1], group=1)
    x = g.op("Reshape", [x, g.const(np.array([0, 0, -1], np.int64), "/patch_embed")], "/patch_embed")
    x = g.op("Transpose", [x], "/patch_embed", perm=[0, 2, 1])
    batch = unsqueeze0(g, dim(g, x, 0, ""), "")
    size = g.op("Concat", [batch, g.const(np.array([-1], np.int64)), g.const(np.array([-1], np.int64))], "", axis=0)
    size = g.op("Reshape", [size, g.const(np.array([-1], np.int64))], "")
    ones = g.op("ConstantOfShape", [g.op("Shape", [size], "")], "", value=numpy_helper.from_array(np.array([1], np.int64)))
    minus = g.op("Mul", [ones, g.const(np.array(-1, np.int64))], "")
    size = g.op("Where", [g.op("Equal", [size, minus], ""), ones, size], "")
    cls = g.op("Expand", [g.weight("cls_token", 1, 1, d), size], "")
    x = g.op("Concat", [cls, x], "", axis=1)
    x = g.op("Add", [x, g.weight("pos_embed", 1, n, d)], "")

    def norm(x, scope, name):
        return g.op("LayerNormalization", [x, g.init(f"{name}.weight", np.ones(d, np.float32)),
                                           g.init(f"{name}.bias", np.zeros(d, np.float32))], scope, axis=-1,
                    epsilon=1e-6)

    def linear(x, scope, name, cin, cout):
        y = g.op("MatMul", [x, g.weight(f"onnx::MatMul_{name}", cin, cout)], scope)
        return g.op("Add", [g.weight(f"{name}.bias", cout), y], scope)

    scope = "/blocks/blocks.0/attn"
    h = norm(x, "/blocks/blocks.0/norm1", "blocks.0.norm1")
    qkv = linear(h, f"{scope}/qkv", "blocks.0.attn.qkv", d, 3 * d)
    batch = unsqueeze0(g, dim(g, h, 0, scope), scope)
    shape = g.op("Concat", [batch] + [g.const(np.array([v], np.int64), scope) for v in (n, 3, heads, d // heads)],
                 scope, axis=0)
    qkv = g.op("Transpose", [g.op("Reshape", [qkv, shape], scope)], scope, perm=[2, 0, 3, 1, 4])
    q, k, v = (g.op("Gather", [qkv, g.const(np.array(i, np.int64), scope)], scope, axis=0) for i in range(3))
    scores = g.op("MatMul", [q, g.op("Transpose", [k], scope, perm=[0, 1, 3, 2])], scope)
    scores = g.op("Mul", [scores, g.const(np.array((d // heads) ** -0.5, np.float32), scope)], scope)
    attn = g.op("Softmax", [scores], scope, axis=-1)
    y = g.op("Transpose", [g.op("MatMul", [attn, v], scope)], scope, perm=[0, 2, 1, 3])
    back = g.op("Concat", [batch, g.const(np.array([n], np.int64), scope), g.const(np.array([d], np.int64), scope)],
                scope, axis=0)
    y = linear(g.op("Reshape", [y, back], scope), f"{scope}/proj", "blocks.0.attn.proj", d, d)
    x = g.op("Add", [x, y], "/blocks/blocks.0")
    scope = "/blocks/blocks.0/mlp"
    h = linear(norm(x, "/blocks/blocks.0/norm2", "blocks.0.norm2"), f"{scope}/fc1", "blocks.0.mlp.fc1", d, 2 * d)
    erf = g.op("Erf", [g.op("Div", [h, g.const(np.array(1.4142135, np.float32), f"{scope}/act")], f"{scope}/act")],
               f"{scope}/act")
    h = g.op("Mul", [g.op("Mul", [h, g.op("Add", [erf, g.const(np.array(1.0, np.float32), f"{scope}/act")],
                                          f"{scope}/act")], f"{scope}/act"),
                     g.const(np.array(0.5, np.float32), f"{scope}/act")], f"{scope}/act")
    x = g.op("Add", [x, linear(h, f"{scope}/fc2", "blocks.0.mlp.fc2", 2 * d, d)], "/blocks/blocks.0")
    x = norm(x, "/norm", "norm")
    x = g.op("Gather", [x, g.const(np.array(0, np.int64))], "", axis=1)
    g.nodes.append(helper.make_node("Gemm", [x, g.weight("head.weight", 10, d), g.weight("head.bias", 10)],
                                    ["output"], name="/head/Gemm", alpha=1.0, beta=1.0, transB=1))
    return g.model("vit", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch_size", 3, 8, 8])],
                   [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch_size", 10])])


def levit_bias() -> onnx.ModelProto:
    """LeViT's attention bias: a table attention_biases [heads, offsets] gathered with constant indices
    attention_bias_idxs [N, N] to [heads, N, N] and added to the scores. 4 tokens of width 8, 2 heads
    of key width 4, 3 distinct offsets."""
    g, heads, n, key = Graph(), 2, 4, 4
    scope = "/attn"
    table = g.weight("attn.attention_biases", heads, 3)
    idxs = g.init("attn.attention_bias_idxs", np.array([[abs(i - j) % 3 for j in range(n)] for i in range(n)], np.int64))
    bias = g.op("Gather", [table, idxs], scope, axis=1)

    def heads_of(name):
        y = g.op("MatMul", ["input", g.weight(f"onnx::MatMul_{name}", 8, heads * key)], scope)
        y = g.op("Reshape", [y, g.const(np.array([0, n, heads, key], np.int64), scope)], scope)
        return g.op("Transpose", [y], scope, perm=[0, 2, 1, 3])

    q, k = heads_of("q"), heads_of("k")
    scores = g.op("MatMul", [q, g.op("Transpose", [k], scope, perm=[0, 1, 3, 2])], scope)
    scores = g.op("Add", [g.op("Mul", [scores, g.const(np.array(0.5, np.float32), scope)], scope), bias], scope)
    g.nodes.append(helper.make_node("Softmax", [scores], ["output"], name=f"{scope}/Softmax", axis=-1))
    return g.model("levit", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch_size", n, 8])],
                   [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch_size", heads, n, n])])


def merged_zero_bias() -> onnx.ModelProto:
    """An untrained CNN exported with BN folded (torch.onnx.export in eval mode, do_constant_folding):
    every folded bias is all zeros, and the exporter stores equal tensors once, so three convs read
    one initializer 'onnx::Conv_zero_bias' of 8 elements."""
    g = Graph()
    zero = g.init("onnx::Conv_zero_bias", np.zeros(8, np.float32))
    x = "input"
    for i, cin in enumerate((3, 8, 8)):
        x = g.op("Conv", [x, g.weight(f"onnx::Conv_w{i}", 8, cin, 3, 3), zero], f"/features/features.{i}/conv",
                 kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1], dilations=[1, 1], group=1)
        x = g.op("Relu", [x], f"/features/features.{i}/act")
    g.nodes[-1].output[0] = "output"
    return g.model("cnn", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch_size", 3, 8, 8])],
                   [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch_size", 8, 8, 8])])


def qdq() -> onnx.ModelProto:
    """A statically quantized conv (onnxruntime.quantization.quantize_static, QDQ format, per-channel
    int8 weights, int32 bias): activations go through QuantizeLinear / DequantizeLinear."""
    g = Graph()
    xs, xz = g.init("input_scale", np.float32(0.02)), g.init("input_zero_point", np.uint8(128))
    ys, yz = g.init("conv_out_scale", np.float32(0.05)), g.init("conv_out_zero_point", np.uint8(0))
    x = g.op("DequantizeLinear", [g.op("QuantizeLinear", ["input", xs, xz], "/q"), xs, xz], "/q")
    wq = g.init("conv.weight_quantized", RNG.integers(-127, 128, (8, 3, 3, 3), dtype=np.int8))
    w = g.op("DequantizeLinear", [wq, g.init("conv.weight_scale", np.full(8, 0.01, np.float32)),
                                  g.init("conv.weight_zero_point", np.zeros(8, np.int8))], "/q", axis=0)
    b = g.op("DequantizeLinear", [g.init("conv.bias_quantized", np.arange(8, dtype=np.int32)),
                                  g.init("conv.bias_scale", np.full(8, 0.0002, np.float32))], "/q", axis=0)
    y = g.op("Conv", [x, w, b], "/conv", kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1], dilations=[1, 1],
             group=1)
    y = g.op("DequantizeLinear", [g.op("QuantizeLinear", [y, ys, yz], "/q"), ys, yz], "/q")
    g.nodes.append(helper.make_node("Relu", [y], ["output"], name="/act/Relu"))
    return g.model("qdq", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch_size", 3, 8, 8])],
                   [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch_size", 8, 8, 8])])


FIXTURES = {"tf_same_padding": tf_same_padding, "vit_block": vit_block, "levit_bias": levit_bias,
            "merged_zero_bias": merged_zero_bias, "qdq": qdq}

if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for name, make in FIXTURES.items():
        path = OUT / f"{name}.onnx"
        onnx.save_model(make(), path)
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    try:  # the files PyTorch's exporters write, where torch is installed
        import export_fixtures
    except ImportError as error:
        print(f"skipped the exported fixtures: {error}")
    else:
        export_fixtures.main()
