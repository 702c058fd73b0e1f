"""The op table: everything effplan knows about an ONNX op type, in one entry per op type, and the
cost row of a graph's node.

An entry (`Op`) says, for one op type:
  infer   its outputs' shapes and element types with ONNX's semantics: (attrs, shapes, types, values,
          opset, outputs) -> [(shape, elem_type)] per output (infer.py, infer_layout.py). The one shape
          rule of the op: the builders call it as they add a node (builder.py), import calls it on every
          node of a file (onnx/importer.py); it raises CannotInfer where its answer would not be ONNX's
  cost    (attrs, input shapes, output shape, weight shapes by role) -> (macs, flops). Only arithmetic
          on the shape entries, so the same function accepts numpy arrays of shapes and costs many
          designs at once. Params and bytes do not depend on the op type: they come from the node's
          weights and output shape. `free`: why an op deliberately costs nothing.
  saves   what its backward keeps, as PyTorch's autograd saves it (memory.py sizes them): INPUT (the
          first input), INPUTS (every activation input), OPERANDS (a product's: each activation input
          whose partner needs a gradient, another activation or a trainable weight: mul's grad * other), OUTPUT, STATISTICS (two fp32 values per
          normalised group; `statistics` counts the groups), INDICES (an int64 argmax per output
          element), MASK (one byte per output element)
  unit    the compute unit its FLOPs run on (roofline.py): MATRIX or VECTOR, or a function of
          (attrs, input shapes, weight shapes by role) that says which
  fusion  its part in the roofline's kernels: an ANCHOR (Conv, Gemm) runs as one kernel with its
          epilogue: NORM, then ACTIVATION, then a RESIDUAL add, then ACTIVATION. CONTRACTION (a matrix
          product whose epilogue is not fused), POINTWISE, REDUCTION and LAYOUT ops run as kernels of
          their own; a VIEW moves nothing and takes no time. NORM, ACTIVATION, RESIDUAL, POINTWISE
          and VIEW ops may write their output over a same-shaped input (memory.py's in-place mode).
  weights the roles of its positional inputs; a constant in one of these slots is a parameter (BN's
          mean and var: buffers) that the cost functions and the exporter find by role (onnx/export.py)
  weighted whether it is one of the profile's `layers`: an op whose weights multiply its input
  evaluate (attrs, *input values) -> output value with numpy: how onnx/fold.py folds shape arithmetic
          (Shape -> Gather -> Div -> ...) once the input shape is known; None: never folded
  backward what training time (plan/training.py) times for its backward (`Backward`); None: no rule,
          refused by name rather than timed as zero
  passes_weight  on import (onnx/importer.py), a weight through its first input is still that weight, sized
          as the initializer the file stores (LeViT's bias table gathered by constant indices)
  learned on import, a float constant of more than one element in an input slot beyond `weights` is a
          parameter: a bias or scale (Add, Mul), a learned token (ViT's cls_token through Concat)
An op type with no entry is unknown: reported, never a silent zero. Adding an op is one entry:
`register` with its cost function, or `elementwise` or `free` for ops whose cost is shared.

Conventions (also printed in every report):
  macs   multiply-accumulates of Conv (incl. depthwise/grouped) and Gemm/MatMul:
         N*Hout*Wout*Cout*(Cin/group)*Kh*Kw and N*In*Out. The EfficientNet paper's "FLOPS".
         ConvTranspose: N*Cin*Hin*Win*(Cout/group)*Kh*Kw; MatMul: prod(batch dims)*M*K*N.
  flops  2*macs, plus bias adds, plus a fixed count per output element of every other op
         (the `elementwise` calls below).
  params trainable parameters (conv/linear weights, biases, BatchNormalization scale and shift);
         BN running mean and variance are buffers, counted apart.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ...base.errors import EffplanError

SAVED_KINDS = INPUT, INPUTS, OPERANDS, OUTPUT, STATISTICS, INDICES, MASK = (
    "input", "inputs", "operands", "output", "statistics", "indices", "mask")
UNITS = MATRIX, VECTOR = "matrix", "vector"
FUSION_CLASSES = ANCHOR, NORM, ACTIVATION, RESIDUAL, CONTRACTION, POINTWISE, REDUCTION, LAYOUT, VIEW = (
    "anchor", "norm", "activation", "residual", "contraction", "pointwise", "reduction", "layout", "view")
IN_PLACE = frozenset({NORM, ACTIVATION, RESIDUAL, POINTWISE, VIEW})


@dataclass(frozen=True)
class Backward:
    """What an op's backward computes in training, from its gradient formula in PyTorch's
    tools/autograd/derivatives.yaml (plan/training.py says how each is timed)."""
    # per element of its output gradient (per_input: of its input), or (attrs, output shape) -> that; None: no rule
    flops: int | Callable | None = None
    per_input: bool = False  # `flops` count per element of its first input (BN, global pooling)
    shape_only: bool = False  # its saved input is read for its shape only (pooling's backward reads dY)
    kernel: bool = True  # False: its input gradients are dY or views of it (narrow, cat): no kernel
    broadcast_only: bool = False  # a kernel only when an operand is broadcast (Add: else dY passes on)
    products: bool = False  # with weights: dX and dW, two matrix products of the forward's MACs each
    taps: Callable | None = None  # products: (weight shapes by role) -> kernel taps per input channel
    statistics: int = 0  # training's forward first runs a batch-statistics kernel: FLOPs per input element
    gradient: bool = True  # False: its output carries no gradient (integers, booleans, a step function)
    refused: str = ""  # why a graph holding it cannot be trained at all
    # (attrs, input shapes, output shape) -> (macs, flops) of the one fused kernel its backward runs (attention's)
    fused: Callable | None = None

    def flops_of(self, attrs, output) -> int | None:
        return self.flops(attrs, output) if callable(self.flops) else self.flops


VIEW_GRADIENT = Backward(kernel=False)
# derivatives.yaml marks them non-differentiable (comparisons, logic, shape arithmetic) or gives zeros_like
# (ceil, floor): nothing flows back through them, so no kernel and nothing upstream waits on them
NO_GRADIENT = Backward(kernel=False, gradient=False)


@dataclass(frozen=True)
class Op:
    """One op type's entry; checked when registered, so every entry is complete."""
    name: str
    infer: Callable
    cost: Callable
    saves: tuple[str, ...]
    unit: Callable | str
    fusion: str
    free: str = ""  # why it costs nothing; "" when it is costed
    statistics: Callable | None = None  # (attrs, output shape) -> normalised groups, with STATISTICS
    gemm: Callable | None = None  # matrix-unit ops: (attrs, inputs, output, weights) -> (groups, M, N, K)
    weights: tuple[str, ...] = ()  # the roles of its positional inputs
    weighted: bool = False
    evaluate: Callable | None = None
    backward: Backward | None = None
    passes_weight: bool = False
    learned: bool = False

    def __post_init__(self):
        problems = [what for what, ok in (
            ("infer", callable(self.infer)),
            ("cost", callable(self.cost)),
            ("saves", isinstance(self.saves, tuple) and set(self.saves) <= set(SAVED_KINDS)),
            ("unit", callable(self.unit) or self.unit in UNITS),
            ("fusion", self.fusion in FUSION_CLASSES),
            ("statistics", (STATISTICS in self.saves) == callable(self.statistics)),
            ("weights", isinstance(self.weights, tuple) and all(isinstance(r, str) for r in self.weights)),
            ("weighted", not self.weighted or bool(self.weights)),
            ("evaluate", self.evaluate is None or callable(self.evaluate)),
            ("backward", self.backward is None or isinstance(self.backward, Backward))) if not ok]
        if problems:
            raise ValueError(f"the entry of {self.name} has a bad {', '.join(problems)}")

    def unit_of(self, attrs, inputs, weights) -> str:
        return self.unit(attrs, inputs, weights) if callable(self.unit) else self.unit

    @property
    def in_place(self) -> bool:
        return self.fusion in IN_PLACE


OPS: dict[str, Op] = {}


class _Costs(Mapping):
    """op type -> cost function: a view of OPS."""

    def __getitem__(self, op):
        return OPS[op].cost

    def __iter__(self):
        return iter(OPS)

    def __len__(self):
        return len(OPS)


COSTS = _Costs()


def register(*ops: str, **entry):
    """Decorator: the cost function of these op types, with the rest of their entry (Op's fields).
    Registering an op twice is an error."""
    def decorate(fn):
        for op in ops:
            if op in OPS:
                raise ValueError(f"two entries registered for {op}")
        for op in ops:
            OPS[op] = Op(op, cost=fn, **entry)
        return fn
    return decorate


def free(reason: str, *ops: str, **entry) -> None:
    """Ops that deliberately cost nothing, for `reason`; they run on the vector unit if at all."""
    register(*ops, free=reason, unit=VECTOR, **entry)(lambda attrs, inputs, output, weights: (0, 0))


def elementwise(flops_per_element: int, *ops: str, **entry) -> None:
    """Ops whose cost is a fixed number of FLOPs per output element and no MACs, on the vector unit."""
    register(*ops, unit=VECTOR, **entry)(
        lambda attrs, inputs, output, weights: (0, flops_per_element * math.prod(output)))


# The values ops compute, for folding shape arithmetic (onnx/fold.py): numpy on small tensors.


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
    entry = OPS.get(node["op"])
    fn = entry.cost if entry else None
    if fn is None and costed_only:
        return None
    inputs = [tensors[t] for t in node["inputs"]]
    output = tensors[node["outputs"][0]]
    owned = node["weights"]
    weights = {w.role: w.shape for w in owned} if owned else {}
    macs, flops = fn(node["attrs"], inputs, output, weights) if fn else (0, 0)
    params, buffers = weight_counts(owned) if owned else (0, 0)
    return LayerCost(name, node["op"], node["stage"], node["block"], node["layer"],
                     inputs[0] if inputs else (), output, params, buffers, macs, flops,
                     (params + buffers) * dtype_bytes, math.prod(output) * dtype_bytes)


def weight_counts(weights) -> tuple[int, int]:
    """(trainable parameters, buffers) among some weights: a node's, or a whole graph's (graph_weights)."""
    params = buffers = 0
    for w in weights:
        if w.trainable:
            params += w.size
        else:
            buffers += w.size
    return params, buffers


def graph_weights(graph) -> tuple[int, int]:
    """(trainable parameters, buffers) of a graph: the sum over its nodes, each op counting its own."""
    return weight_counts(w for n in graph.nodes for w in graph.nodes[n]["weights"])


def weight_bytes(graph, dtype_bytes: int) -> int:
    """The bytes of all a graph's weights, parameters and buffers, stored at `dtype_bytes` each."""
    return sum(graph_weights(graph)) * dtype_bytes
