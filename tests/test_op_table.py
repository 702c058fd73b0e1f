"""The op table: one complete entry per op type, and adding an op is that one entry."""
import dataclasses
import math

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import effplan
from effplan.design.scaling import model_names
from effplan.graph import ops
from effplan.graph.builder import GraphBuilder, Weight
from effplan.onnx.fold import evaluate_op
from effplan.onnx.importer import from_onnx
from effplan.graph.infer import same
from effplan.graph.shapes import ShapeError
from effplan.plan.memory import inference_peak, training_memory
from effplan.plan.roofline import kernel_groups, roofline
from effplan.plan.training import training_step
from test_roofline import DEVICE


def test_every_entry_is_a_complete_onnx_op():
    """Imported graphs are costed by the same table: every entry names a real ONNX op type, and every
    op whose initializers import reads as weights has an entry."""
    for name, entry in ops.OPS.items():
        assert entry.name == name
        dataclasses.replace(entry)  # runs the entry's checks again: every property set, and valid
    assert [op for op in ops.OPS if not onnx.defs.has(op)] == []
    assert {op for op, e in ops.OPS.items() if e.weighted} == {"Conv", "ConvTranspose", "Gemm", "MatMul"}
    assert evaluate_op("Concat") is ops.OPS["Concat"].evaluate and evaluate_op("NoSuchOp") is None
    assert set(ops.COSTS) == set(ops.OPS) and ops.COSTS["Conv"] is ops.OPS["Conv"].cost


def test_every_op_the_models_build_has_a_shape_rule():
    for name in model_names():
        g = effplan.build(effplan.resolve(name))
        for op in {g.nodes[n]["op"] for n in g.nodes}:
            assert op in ops.OPS and callable(ops.OPS[op].infer), f"{name}: {op}"


def test_the_builder_shapes_an_op_by_the_rule_import_uses():
    """One shape rule per op: the builder takes Squeeze's from its entry, as import does, and gets what
    ONNX's own shape inference gets; an op with no entry has no rule."""
    b = GraphBuilder("t", (1, 4, 1, 2))
    b.at(1, 0)
    y = b.add("Squeeze", ["input"], "x", "sq", attrs={"axes": (2,)})  # opset 11: axes an attribute
    node = helper.make_node("Squeeze", ["x"], ["y"], axes=[2])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 1, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = onnx.shape_inference.infer_shapes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)]))
    assert b.shape(y) == tuple(d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim) == (1, 4, 2)
    with pytest.raises(ShapeError, match="no shape rule for FancyOp"):
        b.add("FancyOp", ["input"], "x", "fancy")
    with pytest.raises(ShapeError, match=r"x.bad \(Squeeze\): Squeeze of \(1, 4, 1, 2\) on axes"):  # axis 1 is 4, not 1
        b.add("Squeeze", ["input"], "x", "bad", attrs={"axes": (1,)})


def test_an_incomplete_entry_is_refused_and_not_registered():
    with pytest.raises(ValueError, match="Toy.*fusion"):
        ops.elementwise(1, "Toy", infer=same, saves=(), fusion="fused-somehow")
    with pytest.raises(ValueError, match="Toy.*statistics"):
        ops.elementwise(1, "Toy", infer=same, saves=(ops.INPUT, ops.STATISTICS), fusion=ops.POINTWISE)
    assert "Toy" not in ops.OPS


def test_statistics_are_counted_at_the_full_batch():
    """BatchNormalization keeps one mean and inverse std per channel, whatever the batch; LayerNorm one
    per row of every sample."""
    stats = {op: ops.OPS[op].statistics for op in ("BatchNormalization", "LayerNormalization",
                                                    "GroupNormalization", "InstanceNormalization")}
    assert stats["BatchNormalization"]({}, (8, 32, 7, 7)) == 32
    assert stats["LayerNormalization"]({"axis": -1}, (8, 197, 768)) == 8 * 197
    assert stats["GroupNormalization"]({"num_groups": 4}, (8, 32, 7, 7)) == 8 * 4
    assert stats["InstanceNormalization"]({}, (8, 32, 7, 7)) == 8 * 32


def test_adding_an_op_is_one_entry():
    """Two made-up ops, registered here and nowhere else: a matrix-unit anchor with a weight and an
    activation. The builder shapes them, the profile costs them, training memory knows what they save,
    the roofline fuses them into one kernel on the right units, in-place mode reuses the buffer, and
    training time runs their forward and backward kernels."""
    ops.register("ToyDense", infer=same, saves=(ops.INPUT,), unit=ops.MATRIX, fusion=ops.ANCHOR, weights=("X", "W"),
                 weighted=True, backward=ops.Backward(products=True))(
        lambda attrs, inputs, output, weights: (math.prod(output) * 3, 2 * math.prod(output) * 3))
    ops.elementwise(7, "ToyAct", infer=same, saves=(ops.OUTPUT,), fusion=ops.ACTIVATION, backward=ops.Backward(2))
    try:
        b = GraphBuilder("t", (1, 16, 8, 8))
        b.at(1, 0)
        dense = b.add("ToyDense", ["input"], "x", "dense", weights=(Weight("W", (16, 16)),))
        act = b.add("ToyAct", [dense], "x", "act")
        act2 = b.add("ToyAct", [act], "x", "act2")
        g = b.finish(act2)
        n = 16 * 8 * 8

        p = effplan.profile(g)
        assert p.unknown_ops == {} and p.totals.macs == 3 * n and p.totals.flops == 6 * n + 7 * n + 7 * n

        t = training_memory(g, "fp32", "sgd")
        assert t.saved == {dense: n * 4, act: n * 4, act2: n * 4}  # its input; each ToyAct its output

        assert kernel_groups(g) == [[dense, act, act2]]  # an anchor, an activation, one more after an add's place
        (k,) = roofline(g, DEVICE, "fp16").kernels
        assert (k.op, k.unit, k.flops) == ("ToyDense+ToyAct+ToyAct", "matrix", 20 * n)
        assert k.compute_s == pytest.approx(6 * n / 50e12 + 14 * n / 10e12)  # the epilogue on the vector unit

        # while the second ToyAct runs: its input and output, or (in place) one buffer
        assert inference_peak(g, 4).timeline[2] == 2 * n * 4
        assert inference_peak(g, 4, inplace=True).timeline[2] == n * 4

        # training at fp16 under eager (one kernel per op, no fusion), 2 bytes a value. Forward: the three
        # ops. Backward, last op first: each ToyAct reads its saved output and dY and writes dX (3n
        # values, 2 FLOPs each); ToyDense's input is the image (no dX), its dW is the forward's 3n MACs
        # reading dY and the saved input and writing the 256 weight gradients
        step = training_step(g, DEVICE, runtime="eager", precision="fp16", optimizer="sgd")
        assert [k.op for k in step.forward] == ["ToyDense", "ToyAct", "ToyAct"]
        assert [(k.op, k.unit, k.macs, k.flops, k.bytes) for k in step.backward] == [
            ("ToyAct(backward)", "vector", 0, 2 * n, 3 * n * 2), ("ToyAct(backward)", "vector", 0, 2 * n, 3 * n * 2),
            ("ToyDense(weight gradient)", "matrix", 3 * n, 6 * n, 2 * n * 2 + 256 * 2)]
        assert step.params == 256
    finally:
        ops.OPS.pop("ToyDense", None)
        ops.OPS.pop("ToyAct", None)


def _transposed_conv(cin, cout, group):
    """One ConvTranspose, 3x3 stride 2, no bias, on a 5x5 input: output 11x11 ((5 - 1) * 2 + 3)."""
    w = numpy_helper.from_array(np.zeros((cin, cout // group, 3, 3), np.float32), "w")
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], kernel_shape=[3, 3], strides=[2, 2], group=group)
    graph = helper.make_graph([node], "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, 5, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cout, 11, 11])], [w])
    return from_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def test_a_transposed_conv_runs_on_the_matrix_unit():
    """A transposed conv is a GEMM of its input with its kernel (col2im): M = N*Hin*Win = 25, N =
    Cout/group*Kh*Kw = 4*9 = 36, K = Cin/group = 8: 7,200 MACs, 14,400 FLOPs on the toy's matrix unit
    (100 TFLOP/s at half efficiency). Depthwise (one input channel per group) it is the vector unit's."""
    (k,) = roofline(_transposed_conv(8, 4, 1), DEVICE, "fp16").kernels
    assert (k.op, k.unit, k.macs) == ("ConvTranspose", "matrix", 25 * 36 * 8)
    assert k.compute_s == pytest.approx(2 * 7200 / 50e12)
    (k,) = roofline(_transposed_conv(8, 8, 8), DEVICE, "fp16").kernels  # 8 groups of 1 in, 1 out channel
    assert (k.unit, k.macs) == ("vector", 25 * 9 * 8)
    assert k.compute_s == pytest.approx(2 * 1800 / 10e12)


def test_hard_sigmoid_gates_like_sigmoid():
    """MobileNetV3's SE gate, conv_expand -> HardSigmoid: one kernel on TensorRT-style `fused`, as
    conv_expand -> Sigmoid is (TensorRT fuses a convolution with any activation layer)."""
    for gate in ("Sigmoid", "HardSigmoid"):
        b = GraphBuilder("t", (1, 8, 1, 1))
        b.at(1, 0)
        conv = b.add("Conv", ["input"], "se", "expand", {"kernel_shape": [1, 1], "strides": [1, 1],
                                                         "pads": [0, 0, 0, 0]},
                     (Weight("W", (16, 8, 1, 1)), Weight("B", (16,))))
        act = b.add(gate, [conv], "se", "gate")
        assert kernel_groups(b.finish(act), "fused") == [[conv, act]], gate
