"""Composite ops recognised once per graph (graph/composite.py): what the exporter writes as several nodes,
memory and training time treat as the one op PyTorch runs; the layer rows keep every node. Each graph:
x [2, 4, 8] (64 elements, fp32) -> a scale by a learned [8] weight (h, needing a gradient) -> the chain."""
import math

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import effplan
from effplan.graph.composite import composites
from effplan.onnx.importer import from_onnx
from effplan.plan.memory import inference_peak, training_memory
from effplan.plan.training import backward_kernels

from test_training_time import DEVICE

N, F = 64, 4


def chain(nodes, consts=(), opset=13):
    v = lambda name, shape: helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)  # noqa: E731
    nodes = [helper.make_node("Mul", ["x", "w"], ["h"], name="scale"), *nodes,
             helper.make_node("Relu", ["y"], ["z"], name="after")]
    inits = [numpy_helper.from_array(np.ones(8, np.float32), "w"),
             *[numpy_helper.from_array(np.asarray(a, np.float32 if isinstance(a, float) else None), n)
               for n, a in consts]]
    g = helper.make_graph(nodes, "t", [v("x", [2, 4, 8])], [v("z", [2, 4, 8])], inits)
    return from_onnx(helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]))


def node(op, inputs, out, **attrs):
    return helper.make_node(op, inputs, [out], name=out, **attrs)


GELU_ERF = ([node("Div", ["h", "sqrt2"], "d"), node("Erf", ["d"], "e"), node("Add", ["e", "one"], "a"),
             node("Mul", ["h", "a"], "m"), node("Mul", ["m", "half"], "y")],
            [("sqrt2", 1.4142135), ("one", 1.0), ("half", 0.5)])
GELU_TANH = ([node("Pow", ["h", "three"], "p"), node("Mul", ["p", "c"], "pc"), node("Add", ["h", "pc"], "s"),
              node("Mul", ["s", "k"], "sk"), node("Tanh", ["sk"], "t"), node("Add", ["t", "one"], "a"),
              node("Mul", ["h", "a"], "m"), node("Mul", ["m", "half"], "y")],
             [("three", 3.0), ("c", 0.044715), ("k", 0.7978846), ("one", 1.0), ("half", 0.5)])
HARD_SWISH = ([node("Add", ["h", "three"], "a"), node("Clip", ["a", "zero", "six"], "c"),
               node("Div", ["c", "six"], "g"), node("Mul", ["h", "g"], "y")],
              [("three", 3.0), ("zero", 0.0), ("six", 6.0)])
HARD_SIGMOID = (HARD_SWISH[0][:2] + [node("Div", ["c", "six"], "y")], HARD_SWISH[1])
SWISH = ([node("Sigmoid", ["h"], "s"), node("Mul", ["h", "s"], "y")], [])
LAYER_NORM = ([node("ReduceMean", ["h"], "mu", axes=[-1]), node("Sub", ["h", "mu"], "d"),
               node("Pow", ["d", "two"], "sq"), node("ReduceMean", ["sq"], "var", axes=[-1]),
               node("Add", ["var", "eps"], "ve"), node("Sqrt", ["ve"], "std"), node("Div", ["d", "std"], "n"),
               node("Mul", ["n", "g"], "ng"), node("Add", ["ng", "b"], "y")],
              [("two", 2.0), ("eps", 1e-5), ("g", np.ones(8, np.float32)), ("b", np.zeros(8, np.float32))])


@pytest.mark.parametrize("pattern, kind, size", [(GELU_ERF, "Gelu", 5), (GELU_TANH, "Gelu", 8),
                                                 (HARD_SWISH, "HardSwish", 4), (HARD_SIGMOID, "HardSigmoid", 3),
                                                 (SWISH, "Swish", 2), (LAYER_NORM, "LayerNormalization", 9)])
def test_each_chain_is_one_op_once(pattern, kind, size):
    graph = chain(*pattern)
    found = set(composites(graph).values())
    assert [(c.kind, len(c.nodes), c.input) for c in found] == [(kind, size, "h")]
    assert len(effplan.profile(graph).rows) == size + 2  # the layer rows keep every node


@pytest.mark.parametrize("pattern", [GELU_ERF, GELU_TANH, HARD_SWISH, HARD_SIGMOID, SWISH])
def test_an_activation_chain_saves_its_input_alone_and_stores_nothing_inside(pattern):
    """PyTorch's gelu/hardswish/hardsigmoid/silu save x: h (256 bytes), besides the scale's own input x and the
    Relu after it, which saves its output (256 each). At inference the tensors inside are never live: the peak
    is while one op runs with its input and output (x and h, or h and y: 512)."""
    graph = chain(*pattern)
    t = training_memory(graph, "fp32", "sgd")
    assert t.activation_bytes == 3 * N * F
    assert inference_peak(graph, 4).bytes == 2 * N * F


def test_a_decomposed_layer_norm_saves_x_and_a_mean_and_rstd_per_row_and_runs_one_backward():
    """native_layer_norm saves its input and a mean and rstd per row (8 rows, fp32); its backward is LayerNorm's
    one kernel: 13 FLOPs per element, reading h, the statistics and dY, writing dh and the 16 weights' gradient."""
    graph = chain(*LAYER_NORM)
    t = training_memory(graph, "fp32", "sgd")
    assert t.activation_bytes == N * F + 2 * 8 * 4 + N * F + N * F  # x (the scale's), h + stats, the Relu's output
    kernels = [k for k in backward_kernels(graph, DEVICE, "fp32", "fp32", "eager") if k.name.startswith("y#")]
    assert [(k.op, k.flops, k.bytes) for k in kernels] == [
        ("LayerNormalization(backward)", 13 * N, N * F + 2 * 8 * 4 + N * F + N * F + 16 * F)]


def test_a_gelu_chain_is_one_backward_kernel_and_its_input_one_reader():
    """gelu_backward: 8 per element (op table), reading h and dY, writing dh; h is read twice inside the chain
    (Div, Mul) but once by GELU: no gradient accumulation."""
    graph = chain(*GELU_ERF)
    kernels = backward_kernels(graph, DEVICE, "fp32", "fp32", "eager")
    assert [(k.name, k.flops, k.bytes) for k in kernels if not k.name.startswith(("after", "scale"))] == [
        ("y#d", 8 * N, 3 * N * F)]


def test_a_chain_whose_inside_is_read_elsewhere_is_no_composite():
    """Erf's output also read by the graph's end: the chain is not one op, each node keeps its own rule."""
    nodes, consts = GELU_ERF
    graph = chain(nodes + [node("Add", ["e", "y"], "y2")], consts)
    assert composites(graph) == {}


def test_the_residual_after_an_activation_is_not_swallowed():
    nodes, consts = SWISH
    graph = chain([*nodes[:1], node("Mul", ["h", "s"], "sw"), node("Add", ["sw", "h"], "y")], consts)
    assert [(c.kind, c.nodes) for c in set(composites(graph).values())] == [("Swish", ("s", "sw"))]
    assert math.prod(graph.graph["tensors"]["y"]) == N


def _written_attention(sdpa: bool, dropout: bool = False):
    """Attention on h [2, 4, 8], v = -h: as the exporters write sdpa(h, h, v) (h and h^T each times sqrt(0.35)), or
    as a model writes it out itself ((h @ h^T) * 0.35, timm Swin's and LeViT's way)."""
    v = lambda name, shape: helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)  # noqa: E731
    scaled = [node("Mul", ["h", "c"], "qs"), node("Transpose", ["h"], "kt", perm=[0, 2, 1]),
              node("Mul", ["kt", "c"], "ks"), node("MatMul", ["qs", "ks"], "s"), node("Softmax", ["s"], "p", axis=-1)] \
        if sdpa else [node("Transpose", ["h"], "kt", perm=[0, 2, 1]), node("MatMul", ["h", "kt"], "s"),
                      node("Mul", ["s", "c"], "sc"), node("Softmax", ["sc"], "p", axis=-1)]
    drop = [helper.make_node("Dropout", ["p", "ratio", "training"], ["pd"], name="drop")] if dropout else []
    nodes = [helper.make_node("Mul", ["x", "w"], ["h"], name="scale"), node("Neg", ["h"], "v"), *scaled, *drop,
             node("MatMul", ["pd" if dropout else "p", "v"], "y")]
    g = helper.make_graph(nodes, "t", [v("x", [2, 4, 8])], [v("y", [2, 4, 8])],
                          [numpy_helper.from_array(np.ones(8, np.float32), "w"),
                           numpy_helper.from_array(np.array(0.35 ** 0.5 if sdpa else 0.35, np.float32), "c"),
                           numpy_helper.from_array(np.array(0.1, np.float32), "ratio"),
                           numpy_helper.from_array(np.array(True), "training")])
    return from_onnx(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]))


def test_attention_is_scaled_dot_product_attention():
    """sdpa(h, h, v) as exported: the kernel scales and transposes itself (the scales and the Transpose run inside
    it). It keeps q and k (both h: one storage, 256 bytes), v and its output (256 each) and a logsumexp per row
    (2 x 4 rows, fp32), never the scores or probabilities; besides x, which the scale keeps (256)."""
    graph = _written_attention(sdpa=True)
    found = set(composites(graph).values())
    assert [(c.kind, c.nodes, c.operands) for c in found] == [
        ("Attention", ("qs", "kt", "ks", "s", "p", "y"), ("h", "h", "v"))]
    t = training_memory(graph, "fp32", "sgd")
    assert t.activation_bytes == 4 * N * F + 2 * 4 * 4
    assert t.saved["p"] == t.saved["s"] == 0


def test_sdpa_dropout_on_the_probabilities_runs_inside_the_kernel():
    """sdpa(h, h, v, dropout_p=0.1) in a train-mode export: a Dropout between the Softmax and the product with v. The
    flash kernels drop inside and draw the same mask again in backward from a saved seed: the Dropout is part of the
    attention, and nothing more is kept than without it (no mask, no probabilities)."""
    graph = _written_attention(sdpa=True, dropout=True)
    (found,) = set(composites(graph).values())
    assert found.kind == "Attention" and "drop" in found.nodes
    t = training_memory(graph, "fp32", "sgd")
    assert t.activation_bytes == 4 * N * F + 2 * 4 * 4 and t.saved["drop"] == 0


def test_a_dropout_that_drops_nothing_is_its_input():
    """h = x * w; d = Dropout(h, ratio 0) (F.dropout with p = 0 returns h itself); d * g and h * g2 (learned g, g2)
    each save their activation operand: one storage, h's (256 bytes), beside x (the first scale's, 256)."""
    v = lambda name, shape: helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)  # noqa: E731
    nodes = [helper.make_node("Mul", ["x", "w"], ["h"], name="scale"),
             helper.make_node("Dropout", ["h", "zero"], ["d"], name="drop"), node("Mul", ["d", "g"], "a"),
             node("Mul", ["h", "g2"], "b"), node("Add", ["a", "b"], "y")]
    g = helper.make_graph(nodes, "t", [v("x", [2, 4, 8])], [v("y", [2, 4, 8])],
                          [numpy_helper.from_array(np.ones(8, np.float32), n) for n in ("w", "g", "g2")]
                          + [numpy_helper.from_array(np.array(0.0, np.float32), "zero")])
    graph = from_onnx(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]))
    assert training_memory(graph, "fp32", "sgd").activation_bytes == 2 * N * F


def test_attention_a_model_writes_out_itself_keeps_its_scores():
    """(h @ h^T) * 0.35 -> Softmax -> @ v: no sqrt(scale) on both operands, so the model ran these ops itself
    (aten's matmul and softmax), and autograd keeps the probabilities [2, 4, 4] (128 bytes, for softmax's backward
    and the product with v), h and h^T for the first product (h^T a view of h: one storage) and v for the second:
    no composite. With x (the scale's), 896 bytes: what saved_tensors_hooks counts for the same ops in PyTorch
    (each storage once)."""
    graph = _written_attention(sdpa=False)
    assert composites(graph) == {}
    t = training_memory(graph, "fp32", "sgd")
    assert t.saved["p"] == 2 * 4 * 4 * F and t.saved["v"] == N * F and t.saved["scale"] == 2 * N * F  # x, h
    assert t.saved["kt"] == t.saved["s"] == t.saved["sc"] == 0 and t.activation_bytes == 896


def _attention_file():
    """q, k, v [1, 2, 16, 8] (two heads, 16 tokens, d = 8) as inputs; the exporter's scaled_dot_product_attention:
    q and k transposed each times sqrt(0.35), MatMul, Softmax, MatMul."""
    v = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 2, 16, 8])  # noqa: E731
    nodes = [node("Mul", ["q", "c"], "qs"), node("Transpose", ["k"], "kt", perm=[0, 1, 3, 2]),
             node("Mul", ["kt", "c"], "ks"), node("MatMul", ["qs", "ks"], "s"), node("Softmax", ["s"], "p", axis=-1),
             node("MatMul", ["p", "v"], "y")]
    g = helper.make_graph(nodes, "t", [v("q"), v("k"), v("v")], [v("y")],
                          [numpy_helper.from_array(np.array(0.35, np.float32), "c")])
    return from_onnx(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]))


def test_attention_runs_as_the_one_fused_kernel_in_the_forward():
    """Under eager (single_kernel "attention") the whole chain is scaled_dot_product_attention's one kernel
    (FlashAttention-2's forward): 2 S^2 d MACs per head = 2 x 16^2 x 8 x 2 heads = 8192; FLOPs 2 x 8192 plus 4 a
    score (scale 1, softmax 3) x 2 x 16 x 16 = 18,432; it reads q, k, v (3 x 256 fp32 = 3072 bytes) and writes the
    output (1024) and a logsumexp per query row (32 rows x 4 bytes): 4224 bytes. Under onnxruntime's CPU runtime
    (no such kernel) each op is a kernel of its own, the scores written and read again."""
    from effplan.plan.roofline import roofline

    graph = _attention_file()
    (kernel,) = roofline(graph, DEVICE, "fp32", runtime="eager").kernels
    assert (kernel.op, kernel.macs, kernel.flops, kernel.bytes) == ("Attention", 8192, 18432, 4224)
    assert kernel.nodes == ("qs", "kt", "ks", "s", "p", "y")
    ort = roofline(graph, DEVICE, "fp32", runtime="onnxruntime-cpu").kernels
    assert len(ort) > 1 and sum(k.macs for k in ort) == 8192
