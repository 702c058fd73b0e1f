"""Every op in the op table has a backward rule (derivatives.yaml's formula for it, or a refusal), and each
is timed as derived by hand here: one tiny graph per op, fp32 (4 bytes an element), on the toy device of
test_training_time.py, whose kernels are memory-bound unless a product. For an elementwise-style backward
the kernel moves what the op saved, its output gradient dY, and writes each input gradient dX once."""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from effplan.base.errors import EffplanError
from effplan.graph.ops import OPS
from effplan.onnx.importer import from_onnx
from effplan.plan.memory import training_memory
from effplan.plan.training import backward_kernels

from test_training_time import DEVICE

F = 4  # fp32 bytes
N = 2 * 4 * 8  # elements of h, the activation every op below reads


def graph_of(nodes, outputs, inits=(), x=(2, 4, 8), opset=18):
    """x -> Mul by a learned [8] scale (so h needs a gradient) -> the nodes under test."""
    v = lambda name, shape, t=TensorProto.FLOAT: helper.make_tensor_value_info(name, t, shape)  # noqa: E731
    scale = numpy_helper.from_array(np.ones(x[-1], np.float32), "w")
    nodes = [helper.make_node("Mul", ["x", "w"], ["h"], name="scale"), *nodes]
    g = helper.make_graph(nodes, "t", [v("x", list(x))], [v(o, None) for o in outputs],
                          [scale, *[numpy_helper.from_array(np.asarray(a), n) for n, a in inits]])
    return from_onnx(helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]))


def kernels(graph, node):
    return [(k.flops, k.bytes) for k in backward_kernels(graph, DEVICE, "fp32", "fp32", "eager")
            if k.name.split("#")[0] == node]


def op(op_type, inputs, name="op", **attrs):
    return helper.make_node(op_type, inputs, ["y"], name=name, **attrs)


F32 = np.float32
CASES = {  # op: (nodes, inits, [(FLOPs, bytes)] of its backward kernels, derived by hand)
    # erf: 2/sqrt(pi) exp(-h^2) dy: 5 an element; reads the saved h and dy, writes dh
    "Erf": ([op("Erf", ["h"])], (), [(5 * N, 3 * N * F)]),
    # pow: dy * 2 * h^(2-1): 3 an element; the constant exponent is no activation
    "Pow": ([op("Pow", ["h", "two"])], [("two", F32(2))], [(3 * N, 3 * N * F)]),
    # reciprocal: -dy * y * y: 3; saved y, dy, dh
    "Reciprocal": ([op("Reciprocal", ["h"])], (), [(3 * N, 3 * N * F)]),
    "Abs": ([op("Abs", ["h"])], (), [(2 * N, 3 * N * F)]),  # dy * sgn(h)
    "Mod": ([op("Mod", ["h", "three"], fmod=1)], [("three", F32(3))], [(3 * N, 3 * N * F)]),
    # where(c, dy, 0) for h: a select per operand (2); the condition comes from a compare, which carries no
    # gradient: the saved mask (1 byte an element), dy, dh
    "Where": ([helper.make_node("Greater", ["h", "zero"], ["c"], name="cmp"), op("Where", ["c", "h", "zero"])],
              [("zero", F32(0))], [(2 * N, N + 2 * N * F)]),
    # sum_to: each of dY's 3 * 64 elements added into dh
    "Expand": ([op("Expand", ["h", "shape"])], [("shape", np.array([3, 2, 4, 8]))], [(3 * N, 3 * N * F + N * F)]),
    "Tile": ([op("Tile", ["h", "reps"])], [("reps", np.array([1, 2, 1]))], [(2 * N, 2 * N * F + N * F)]),
    # a column added at the end of the last axis: dY [2, 4, 9] (72 elements) back into dh
    "Pad": ([op("Pad", ["h", "pads"])], [("pads", np.array([0, 0, 0, 0, 0, 1]))], [(72, 72 * F + N * F)]),
    # slice_backward: zeros of h's shape with dY [2, 4, 4] copied in: reads dY, writes dh
    "Slice": ([op("Slice", ["h", "starts", "ends", "axes"])],
              [("starts", np.array([0])), ("ends", np.array([4])), ("axes", np.array([2]))], [(0, N // 2 * F + N * F)]),
    "Transpose": ([op("Transpose", ["h"], perm=[0, 2, 1])], (), [(0, 2 * N * F)]),  # dY permuted back: a copy
    "Cast": ([op("Cast", ["h"], to=TensorProto.FLOAT)], (), [(0, 2 * N * F)]),
    # index_select's backward: zeros of h's shape, dY [2, 2, 8] index-added into it
    "Gather": ([op("Gather", ["h", "idx"], axis=1)], [("idx", np.array([0, 2]))], [(N // 2, N // 2 * F + N * F)]),
    # gather's backward: dY [2, 4, 2] scatter-added into zeros of h's shape
    "GatherElements": ([op("GatherElements", ["h", "gi"], axis=2)], [("gi", np.zeros((2, 4, 2), np.int64))],
                       [(16, 16 * F + N * F)]),
    # index's backward (index_put_ with accumulate): dY [3, 8] (rows (0, 1), (1, 3), (0, 0) of h) added into zeros
    "GatherND": ([op("GatherND", ["h", "nd"])], [("nd", np.array([[0, 1], [1, 3], [0, 0]]))], [(24, 24 * F + N * F)]),
    # sum_backward: dY [2, 4, 1] expanded back: 0 FLOPs, one write per input element
    "ReduceSum": ([op("ReduceSum", ["h", "axes"])], [("axes", np.array([2]))], [(0, 8 * F + N * F)]),
    "ReduceMean": ([op("ReduceMean", ["h", "axes"])], [("axes", np.array([2]))], [(N, 8 * F + N * F)]),
    # prod_backward: dy * result / h, 2 per input element; saved h and the [2, 4, 1] result
    "ReduceProd": ([op("ReduceProd", ["h", "axes"])], [("axes", np.array([2]))],
                   [(2 * N, N * F + 8 * F + 8 * F + N * F)]),
    # softmax_backward: y (dy - sum(dy y)): 4 an element; saved y, dy, dh
    "Softmax": ([op("Softmax", ["h"], axis=-1)], (), [(4 * N, 3 * N * F)]),
    # native_layer_norm_backward: 13 per input element (norm.py); saved h and a mean and rstd per row (8 rows),
    # dy, dh, and the gradients of the 8 + 8 scale and shift
    "LayerNormalization": ([op("LayerNormalization", ["h", "g", "b"], axis=-1)],
                           [("g", np.ones(8, F32)), ("b", np.zeros(8, F32))],
                           [(13 * N, N * F + 2 * 8 * F + 2 * N * F + 16 * F)]),
    # attention's scores h @ h^T ([2, 4, 8] x [2, 8, 4] -> [2, 4, 4]): 2 * 4 * 4 * 8 = 256 MACs; each operand's
    # gradient one product of the forward's MACs, reading dY (32 elements) and the other operand, writing its own
    "MatMul": ([helper.make_node("Transpose", ["h"], ["t"], name="tr", perm=[0, 2, 1]), op("MatMul", ["h", "t"])], (),
               [(2 * 256, 32 * F + N * F + N * F)] * 2),
    "Einsum": ([helper.make_node("Neg", ["h"], ["n"], name="neg"), op("Einsum", ["h", "n"], equation="bik,bjk->bij")],
               (), [(2 * 256, 32 * F + N * F + N * F)] * 2),
}


@pytest.mark.parametrize("name", CASES)
def test_each_ops_backward_is_timed_as_derived_by_hand(name):
    nodes, inits, expected = CASES[name]
    graph = graph_of(nodes, ["y"], inits)
    assert kernels(graph, "op") == expected


def test_split_reads_every_pieces_gradient_and_concat_passes_views():
    """split_with_sizes_backward concatenates both pieces' gradients ([2, 4, 4] each) into dh: a copy;
    cat_tensors_backward narrows dY: no kernel; a Reshape's gradient is dY itself."""
    graph = graph_of([helper.make_node("Split", ["h"], ["a", "b"], name="op", axis=2, num_outputs=2),
                      helper.make_node("Concat", ["b", "a"], ["c"], name="cat", axis=2),
                      helper.make_node("Reshape", ["c", "s"], ["y"], name="view")], ["y"], [("s", np.array([2, 32]))])
    assert kernels(graph, "op") == [(0, 2 * (N // 2) * F + N * F)]
    assert kernels(graph, "cat") == kernels(graph, "view") == []


def image_graph(node, inits=(), opset=18):
    """x [1, 2, 4, 4] -> a 1x1 conv (a learned weight) -> `node`."""
    v = lambda name, shape: helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)  # noqa: E731
    w = numpy_helper.from_array(np.ones((2, 2, 1, 1), np.float32), "cw")
    g = helper.make_graph([helper.make_node("Conv", ["x", "cw"], ["h"], name="conv"), node], "t",
                          [v("x", [1, 2, 4, 4])], [v("y", None)],
                          [w, *[numpy_helper.from_array(np.asarray(a), n) for n, a in inits]])
    return from_onnx(helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]))


@pytest.mark.parametrize("mode, per_element", [("nearest", 1), ("linear", 2 * 4)])
def test_resize_backward_scatters_each_output_gradient_into_its_taps(mode, per_element):
    """[1, 2, 4, 4] -> [1, 2, 8, 8] (128 elements): nearest adds each dY element once; bilinear multiplies and adds
    it into 2 x 2 taps. Reads dY, writes dh (32 elements)."""
    graph = image_graph(helper.make_node("Resize", ["h", "", "scales"], ["y"], name="op", mode=mode),
                        [("scales", np.array([1, 1, 2, 2], F32))])
    assert kernels(graph, "op") == [(per_element * 128, 128 * F + 32 * F)]


@pytest.mark.parametrize("norm, attrs", [("InstanceNormalization", {}), ("GroupNormalization", {"num_groups": 2})])
def test_group_norms_backward_is_batch_norms_per_input_element(norm, attrs):
    """8 per input element (32); saved h and a mean and inverse std per sample and channel (group): 2 x 2 x 4
    bytes; dy, dh; the gradients of 2 + 2 scale and shift."""
    graph = image_graph(helper.make_node(norm, ["h", "g", "b"], ["y"], name="op", **attrs),
                        [("g", np.ones(2, F32)), ("b", np.zeros(2, F32))])
    assert kernels(graph, "op") == [(8 * 32, 32 * F + 2 * 2 * 4 + 2 * 32 * F + 4 * F)]
    assert training_memory(graph, "fp32", "sgd").saved["op"] == 2 * 2 * 4  # its stats; h is the conv's row


def test_conv_transpose_backward_is_two_products_of_its_forwards_macs():
    """ConvTranspose [1, 2, 4, 4] * W [2, 3, 2, 2], stride 2 -> [1, 3, 8, 8]: every input element meets 3 x 2 x 2
    weights, 32 x 12 = 384 MACs. The network input needs no gradient: only dW, 2 x 384 FLOPs, reading dY (192),
    the saved x (32) and writing dW (24)."""
    v = lambda name, shape: helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)  # noqa: E731
    g = helper.make_graph([helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="op", strides=[2, 2])], "t",
                          [v("x", [1, 2, 4, 4])], [v("y", None)],
                          [numpy_helper.from_array(np.ones((2, 3, 2, 2), F32), "w")])
    graph = from_onnx(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)]))
    assert kernels(graph, "op") == [(2 * 384, 192 * F + 32 * F + 24 * F)]


def test_no_gradient_flows_through_comparisons_or_shape_arithmetic():
    """Floor and Greater carry no gradient (zeros_like, not differentiable): no kernel for them, nor for the
    ops after them, even when they read a tensor that has one (the scale's own kernel stays)."""
    graph = graph_of([helper.make_node("Floor", ["h"], ["f"], name="floor"),
                      helper.make_node("Greater", ["f", "zero"], ["c"], name="cmp"),
                      helper.make_node("Not", ["c"], ["y"], name="op")], ["y"], [("zero", F32(0))])
    assert [k.name for k in backward_kernels(graph, DEVICE, "fp32", "fp32", "eager")] == ["scale#d"]


def test_every_op_in_the_table_has_a_backward_rule():
    assert [name for name, entry in OPS.items() if entry.backward is None] == []


@pytest.mark.parametrize("what", [lambda g: training_memory(g), lambda g: backward_kernels(g, DEVICE, "fp32", "fp32")])
def test_a_quantized_file_is_refused_in_one_line(what):
    graph = graph_of([helper.make_node("QuantizeLinear", ["h", "s", "z"], ["q"], name="q"),
                      helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], name="dq")], ["y"],
                     [("s", F32(0.1)), ("z", np.int8(0))])
    with pytest.raises(EffplanError, match=r"^cannot plan training: the file is quantized for inference.*layer q\)$"):
        what(graph)


@pytest.mark.parametrize("name", ["timm_vit_dynamo", "timm_vit_opset17", "levit_bias", "tf_same_padding", "vit_block"])
def test_train_takes_the_transformer_and_padded_files_it_refused(effplan, name):
    """Gather (ViT's class token), MatMul of two activations (attention), Pad (TF's same padding), LayerNorm:
    every file trains end to end."""
    from test_own_model import fixture

    r = effplan("train", fixture(name), "--device", "a100-80gb", "--batch", "4", "--epochs", "1", "--format", "json")
    assert r.code == 0, r.err
    assert r.json()["stages"][0]["backward_s"] > 0


def test_train_refuses_a_quantized_file_in_one_line(effplan):
    from test_own_model import fixture

    r = effplan("train", fixture("qdq"), "--device", "a100-80gb", "--batch", "4", "--epochs", "1")
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1 and "quantized for inference" in r.err


def test_attentions_backward_is_one_fused_kernel_as_flash_attention_runs_it():
    """Self-attention on h (B 1, H 2, L = S = 4 tokens, D 8): |Q| = |Y| = 64 elements. FlashAttention-2's backward
    recomputes Q K^T and runs dV, dP, dQ, dK: S (3|Q| + 2|Y|) = 4 * 320 = 1,280 MACs; FLOPs 2 * 1,280, plus 5 per
    score (B H L S = 32) and 2 per output element: 2,560 + 160 + 128 = 2,848. Bytes: it reads Q, K and V (the saved
    h, once per operand: 3 x 256) and Y (256), 4 statistics groups of two fp32 (32: a logsumexp per query row, 8
    rows) and dY (256), and writes dQ, dK and dV (3 x 256)."""
    graph = graph_of([op("Attention", ["h", "h", "h"])], ["y"], x=(1, 2, 4, 8), opset=23)
    assert kernels(graph, "op") == [(2848, 3 * 256 + 256 + 32 + 256 + 3 * 256)]
    macs = [k.macs for k in backward_kernels(graph, DEVICE, "fp32", "fp32", "eager") if k.name == "op#d"]
    assert macs == [1280]


def test_a_product_keeps_an_operand_only_when_its_partner_needs_a_gradient():
    """mul: self: grad * other, other: grad * self. Besides x, which the learned scale keeps (256 bytes):
    h * 0.125 (attention's scale) keeps nothing of h; h / 2 nothing; h * gamma (a learned [8] scale) keeps h for
    gamma's gradient; h * n of two activations keeps both."""
    def saved(nodes, inits=()):
        return training_memory(graph_of(nodes, ["y"], inits), "fp32", "sgd").activation_bytes

    assert saved([op("Mul", ["h", "c"])], [("c", F32(0.125))]) == N * F
    assert saved([op("Div", ["h", "c"])], [("c", F32(2))]) == N * F
    assert saved([op("Mul", ["h", "gamma"])], [("gamma", np.ones(8, F32))]) == 2 * N * F
    assert saved([helper.make_node("Neg", ["h"], ["n"], name="neg"), op("Mul", ["h", "n"])]) == 3 * N * F


def test_slices_that_split_a_tensor_are_one_backward_as_split():
    """The dynamo exporter writes unbind/chunk as one Slice per piece: two halves of h's last axis cover it, so
    their forward and their backward are one kernel each, as Split's (reading both pieces' gradients, writing dh), and h gets no
    gradient accumulation; a lone Slice (the first half only) is slice_backward."""
    halves = [helper.make_node("Slice", ["h", "s0", "e0", "ax"], ["a"], name="first"),
              helper.make_node("Slice", ["h", "s1", "e1", "ax"], ["b"], name="op"),
              helper.make_node("Mul", ["a", "b"], ["y"], name="join")]
    consts = [("s0", np.array([0])), ("e0", np.array([4])), ("s1", np.array([4])), ("e1", np.array([8])),
              ("ax", np.array([2]))]
    graph = graph_of(halves, ["y"], consts)
    names = [k.name for k in backward_kernels(graph, DEVICE, "fp32", "fp32", "eager")]
    assert kernels(graph, "op") == [(0, 2 * (N // 2) * F + N * F)] and kernels(graph, "first") == []
    assert not any("accumulate" in n for n in names)
    from effplan.plan.roofline import kernel_groups  # and one forward kernel, as Split's

    assert kernel_groups(graph, "eager") == [["scale"], ["first", "op"], ["join"]]


def test_a_slice_of_the_whole_tensor_is_no_op_at_all():
    """h[:, :, 0:8] on h [2, 4, 8] keeps all of h: PyTorch's indexing returns h itself (TensorIndexing.h applySlice),
    only TorchScript's tracer records it. No backward kernel and no forward kernel (it is a view); the half slice
    h[:, :, 0:4] stays one of each."""
    from effplan.plan.roofline import kernel_groups

    consts = [("s", np.array([0])), ("e", np.array([8])), ("half", np.array([4])), ("ax", np.array([2]))]
    whole = graph_of([op("Slice", ["h", "s", "e", "ax"]), helper.make_node("Relu", ["y"], ["r"], name="relu")],
                     ["r"], consts)
    half = graph_of([op("Slice", ["h", "s", "half", "ax"]), helper.make_node("Relu", ["y"], ["r"], name="relu")],
                    ["r"], consts)
    assert kernels(whole, "op") == [] and len(kernels(half, "op")) == 1
    assert ["op"] not in kernel_groups(whole, "eager") and ["op"] in kernel_groups(half, "eager")


def test_a_learned_bias_add_runs_its_gradients_reduction():
    """h + b (a learned [8] bias): dh is dY itself, b's gradient sums dY over the other axes: one kernel, an add
    per dY element, reading dY and writing the bias gradient."""
    graph = graph_of([op("Add", ["h", "b"])], ["y"], [("b", np.ones(8, F32))])
    assert kernels(graph, "op") == [(N, N * F + 8 * F)]


def test_attention_written_out_in_onnx_trains_as_the_one_fused_kernel():
    """sdpa(h, h, h) as both exporters write it, Mul(h, sqrt(scale)) @ Mul(Transpose(h), sqrt(scale)) -> Softmax ->
    MatMul(., h) on h (1, 2, 4, 8): the composite's backward is FlashAttention-2's one kernel, as the Attention op's:
    S (3|Q| + 2|Y|) = 4 * (192 + 128) = 1,280 MACs and 2,848 FLOPs (see the test above). The scales and the
    transpose run inside the kernel, so q = k = v = h. Bytes: it reads q, k and v (h three times, 3 x 256), Y (256),
    a logsumexp per row (8 rows x 4) and dY (256), and writes the gradients of q, k and v (3 x 256): 2,080. No
    kernel for its inner ops."""
    nodes = [helper.make_node("Mul", ["h", "c"], ["qs"], name="qs"),
             helper.make_node("Transpose", ["h"], ["kt"], name="kt", perm=[0, 1, 3, 2]),
             helper.make_node("Mul", ["kt", "c"], ["ks"], name="ks"),
             helper.make_node("MatMul", ["qs", "ks"], ["s"], name="qk"),
             helper.make_node("Softmax", ["s"], ["p"], name="softmax", axis=-1),
             op("MatMul", ["p", "h"])]
    graph = graph_of(nodes, ["y"], [("c", F32(0.35 ** 0.5))], x=(1, 2, 4, 8))
    assert kernels(graph, "op") == [(2848, 3 * 256 + 256 + 32 + 256 + 3 * 256)]
    assert all(kernels(graph, n) == [] for n in ("qs", "kt", "ks", "qk", "softmax"))
    assert [k.macs for k in backward_kernels(graph, DEVICE, "fp32", "fp32", "eager") if k.name == "op#d"] == [1280]
