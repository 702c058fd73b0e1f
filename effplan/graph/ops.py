"""The cost registry: one small function per ONNX op type, and the per-layer profile of a graph.

A cost function takes (attrs, input shapes, output shape, weight shapes by role) and returns
(macs, flops). It uses only arithmetic on the shape entries, so the same function accepts
numpy arrays of shapes and costs many designs at once. Params and bytes do not depend on
the op type: they come from the node's weights and output shape.

Conventions (also printed in every report):
  macs   multiply-accumulates of Conv (incl. depthwise/grouped) and Gemm/MatMul:
         N*Hout*Wout*Cout*(Cin/group)*Kh*Kw and N*In*Out. The EfficientNet paper's "FLOPS".
         ConvTranspose: N*Cin*Hin*Win*(Cout/group)*Kh*Kw; MatMul: prod(batch dims)*M*K*N.
  flops  2*macs, plus bias adds, plus FLOPS_PER_ELEMENT[op] per output element of every other op.
  params trainable parameters (conv/linear weights, biases, BatchNormalization scale and shift);
         BN running mean and variance are buffers, counted apart.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..base.errors import EffplanError, did_you_mean

DTYPE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1}

# Ops that are deliberately free, with the reason; any op in neither table is reported.
ZERO_COST: dict[str, str] = {}
COSTS: dict[str, object] = {}
# Elementwise work per output element, for the FLOPs convention table in the docs.
FLOPS_PER_ELEMENT: dict[str, int] = {}


def register(*ops: str):
    """Decorator: the cost function of these op types. Registering an op twice is an error."""
    def decorate(fn):
        for op in ops:
            if op in COSTS or op in ZERO_COST:
                raise ValueError(f"two cost functions registered for {op}")
            COSTS[op] = fn
        return fn
    return decorate


def free(reason: str, *ops: str) -> None:
    register(*ops)(lambda attrs, inputs, output, weights: (0, 0))
    ZERO_COST.update(dict.fromkeys(ops, reason))


def elementwise(flops_per_element: int, *ops: str) -> None:
    """Ops whose cost is a fixed number of FLOPs per output element and no MACs."""
    for op in ops:
        FLOPS_PER_ELEMENT[op] = flops_per_element
    register(*ops)(lambda attrs, inputs, output, weights: (0, flops_per_element * math.prod(output)))


def _kernel(weights, inputs):
    """A conv's weight shape: its initializer, or input 1 when an imported graph computes it."""
    return weights["W"] if "W" in weights else inputs[1]


@register("Conv")
def conv_cost(attrs, inputs, output, weights):
    per_output = math.prod(_kernel(weights, inputs)[1:])  # (Cin/group) * Kh * Kw
    macs = math.prod(output) * per_output
    return macs, 2 * macs + (math.prod(output) if "B" in weights else 0)


@register("ConvTranspose")
def conv_transpose_cost(attrs, inputs, output, weights):
    # every input element meets (Cout/group) * Kh * Kw weights (W is [Cin, Cout/group, Kh, Kw])
    macs = math.prod(inputs[0]) * math.prod(_kernel(weights, inputs)[1:])
    return macs, 2 * macs + (math.prod(output) if "B" in weights else 0)


@register("Gemm", "MatMul")
def matmul_cost(attrs, inputs, output, weights):
    # prod(output) * K, K read off the left operand, which may be the weight ("A", a constant on the left)
    a = weights["A"] if "A" in weights else inputs[0]
    inner = a[0] if attrs.get("transA", 0) else a[-1]
    macs = math.prod(output) * inner
    bias = "B" in weights or len(inputs) > 2
    return macs, 2 * macs + (math.prod(output) if bias else 0)


@register("GlobalAveragePool", "ReduceMean")
def mean_pool_cost(attrs, inputs, output, weights):
    # one add per input element, one divide per output element
    return 0, math.prod(inputs[0]) + math.prod(output)


@register("MaxPool", "AveragePool")
def window_pool_cost(attrs, inputs, output, weights):
    # one compare (or add) per window element; AveragePool's divide is counted as one of them
    return 0, math.prod(output) * math.prod(attrs["kernel_shape"])


@register("Resize", "Upsample")
def resize_cost(attrs, inputs, output, weights):
    # each output element is a weighted sum of its neighbours, 2 (linear) or 4 (cubic) per spatial
    # axis: that many multiplies and one add fewer; nearest mode copies
    neighbours = {"linear": 2, "cubic": 4}.get(attrs.get("mode", "nearest"))
    if neighbours is None:
        return 0, 0
    taps = neighbours ** (len(output) - 2)
    return 0, (2 * taps - 1) * math.prod(output)


elementwise(1, "Relu", "Add", "Sub", "Mul", "Div", "Max", "Min", "Neg", "Exp", "Sqrt", "Tanh")
# BN at inference: x*a + b with folded a, b; PRelu and LeakyRelu: a compare and a multiply
elementwise(2, "BatchNormalization", "Clip", "LeakyRelu", "PRelu")
# statistics (an add for the sum, a multiply and an add for the sum of squares), then x*a + b with
# a, b folded per channel (instance, group) or per row (layer); per-row divides are not counted
elementwise(5, "InstanceNormalization", "GroupNormalization", "LayerNormalization")
elementwise(3, "Sigmoid", "Softmax")  # exp, add, divide
elementwise(4, "HardSigmoid")  # multiply, add, min, max
elementwise(5, "HardSwish")  # HardSigmoid, then multiply
free("identity at inference", "Dropout", "Identity")
free("a view of the same data: no arithmetic", "Flatten", "Reshape", "Squeeze", "Unsqueeze")
free("data movement: no arithmetic", "Concat", "Slice", "Split", "Transpose", "Pad", "Expand")
free("shape arithmetic on small integer tensors", "Shape", "Gather", "Cast", "ConstantOfShape", "Range")


class UnknownOpError(EffplanError):
    pass


@dataclass(frozen=True, slots=True)
class LayerCost:
    name: str
    op: str
    stage: str | int
    block: int | None  # None in roll-ups by stage or op
    layer: str
    input_shape: tuple
    output_shape: tuple
    params: int
    buffers: int
    macs: int
    flops: int
    weight_bytes: int
    output_bytes: int


def node_cost(graph, name: str, dtype_bytes: int, shapes: dict | None = None,
              costed_only: bool = True) -> LayerCost | None:
    """The cost row of one node. When no cost function knows its op: None, or with `costed_only=False`
    a row that keeps its params and bytes, with no MACs or FLOPs (the caller lists the op as unknown).
    `shapes` replaces the graph's tensor shapes (the search passes shapes whose sides are numpy arrays)."""
    node = graph.nodes[name]
    tensors = shapes or graph.graph["tensors"]
    fn = COSTS.get(node["op"])
    if fn is None and costed_only:
        return None
    inputs = [tensors[t] for t in node["inputs"]]
    output = tensors[node["outputs"][0]]
    weights = {w.role: w.shape for w in node["weights"]}
    macs, flops = fn(node["attrs"], inputs, output, weights) if fn else (0, 0)
    params = sum(w.size for w in node["weights"] if w.trainable)
    buffers = sum(w.size for w in node["weights"] if not w.trainable)
    return LayerCost(name, node["op"], node["stage"], node["block"], node["layer"],
                     inputs[0] if inputs else (), output, params, buffers, macs, flops,
                     (params + buffers) * dtype_bytes, math.prod(output) * dtype_bytes)


def dtype_size(dtype: str) -> int:
    if dtype not in DTYPE_BYTES:
        raise EffplanError(f"unknown dtype '{dtype}'{did_you_mean(dtype, DTYPE_BYTES)}; "
                           f"known: {', '.join(DTYPE_BYTES)}")
    return DTYPE_BYTES[dtype]
