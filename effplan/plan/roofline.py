"""Roofline latency: each kernel takes max(compute time, memory time) + launch overhead on a device.

Fusion (as inference runtimes do; `fuse=False` turns it off), by each op's fusion class in the op
table (graph/ops.py): an anchor (Conv, Gemm) runs as one kernel with what follows it on its output
alone: a norm (BatchNormalization), then an activation (ReLU, Clip, Sigmoid, HardSwish, or Swish as
Sigmoid + Mul), then a residual Add, then an activation. Every other op is a kernel of its own,
except views (Reshape, Flatten, Identity, Dropout at inference), which move nothing and take no time.
A kernel reads its inputs and weights from device memory and writes its output there. Its main op's
FLOPs run on that op's unit in the op table (dense Conv, Gemm and MatMul on the matrix unit; depthwise
convs and every other op on the vector unit); the epilogue's on the vector unit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..graph.ops import ACTIVATION, ANCHOR, NORM, OPS, RESIDUAL, VIEW, dtype_size, node_cost
from ..graph.builder import readers as tensor_readers
from ..graph.builder import gelu_chains, swish_pairs
from .hardware import Device


def _fusion(op: str) -> str | None:
    return OPS[op].fusion if op in OPS else None


@dataclass(frozen=True)
class Kernel:
    name: str  # the main op's node name
    op: str  # op types joined by '+', e.g. Conv+BatchNormalization+Sigmoid+Mul
    stage: str | int
    block: int
    nodes: tuple[str, ...]
    macs: int
    flops: int
    bytes: int
    unit: str  # matrix or vector
    compute_s: float
    memory_s: float
    overhead_s: float

    @property
    def time_s(self) -> float:
        return np.maximum(self.compute_s, self.memory_s) + self.overhead_s  # numpy: sides may be arrays

    @property
    def bound(self) -> str:
        if self.overhead_s > max(self.compute_s, self.memory_s):
            return "overhead"
        return "compute" if self.compute_s >= self.memory_s else "memory"

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes if self.bytes else math.inf


def _epilogue(graph, tail: str, readers, swish, outputs, ready: set) -> list[str]:
    """The ops a conv or matrix-product kernel absorbs: each the only reader of the running result
    (Swish: its Sigmoid and Mul; GELU: its five ops), in the order bias Add (a MatMul's), BatchNormalization,
    activation, residual Add, activation. A residual Add is absorbed only when its other operand is
    `ready` (made by an earlier kernel): where both operands come from convs (a projection shortcut),
    the later conv takes it."""
    nodes, tensors = graph.nodes, graph.graph["tensors"]
    gelu = gelu_chains(graph)
    absorbed: list[str] = []
    for allowed in ("bias", NORM, ACTIVATION, RESIDUAL, ACTIVATION):
        if tail in outputs:
            break
        names = readers.get(tail, [])
        ops = sorted(nodes[n]["op"] for n in names)
        if allowed == "bias":  # an Add of a weight to the product alone
            if len(names) == 1 and nodes[names[0]]["op"] == "Add" and nodes[names[0]]["inputs"] == (tail,) \
                    and nodes[names[0]]["weights"]:
                absorbed.append(names[0])
            else:
                continue
        elif len(names) == 1 and _fusion(nodes[names[0]]["op"]) == allowed:
            (taken,) = names
            if allowed == RESIDUAL and (tensors[nodes[taken]["outputs"][0]] != tensors[tail]
                                        or not set(nodes[taken]["inputs"]) - {tail} <= ready):
                break  # a broadcast, not a residual; or its other operand is not made yet
            absorbed.append(taken)
        elif allowed == ACTIVATION and ops == ["Mul", "Sigmoid"]:  # Swish
            sig = next(n for n in names if nodes[n]["op"] == "Sigmoid")
            if swish.get(sig) not in names:
                break
            absorbed += [sig, swish[sig]]
        elif allowed == ACTIVATION and tail in gelu and set(names) <= set(gelu[tail]):
            absorbed += gelu[tail]
        else:
            continue
        tail = nodes[absorbed[-1]]["outputs"][0]
    return absorbed


def kernel_groups(graph, fuse: bool = True) -> list[list[str]]:
    """The nodes each kernel runs, in order (views are left out)."""
    readers, swish, nodes = tensor_readers(graph), swish_pairs(graph), graph.nodes
    outputs = set(graph.graph["outputs"])
    groups, taken, ready = [], set(), set(graph.graph["inputs"])
    for name in nodes:
        if name in taken:
            continue
        group = [name]
        if fuse and _fusion(nodes[name]["op"]) == ANCHOR:
            group += _epilogue(graph, nodes[name]["outputs"][0], readers, swish, outputs, ready)
        taken.update(group)
        ready.update(t for n in group for t in nodes[n]["outputs"])
        if _fusion(nodes[name]["op"]) != VIEW:
            groups.append(group)
    return groups


def unit_of(graph, name: str) -> str:
    node, tensors = graph.nodes[name], graph.graph["tensors"]
    return OPS[node["op"]].unit_of(node["attrs"], [tensors[t] for t in node["inputs"]],
                                   {w.role: w.shape for w in node["weights"]})


def kernels(graph, device: Device, dtype: str = "fp16", fuse: bool = True, shapes: dict | None = None) -> list[Kernel]:
    """Every kernel of a graph, timed on a device at a precision (`shapes`: see costs.node_cost)."""
    size = dtype_size(dtype)
    tensors = shapes or graph.graph["tensors"]
    bandwidth = device.achievable_bandwidth
    rates = {unit: device.compute(unit, dtype) for unit in ("matrix", "vector")}
    result = []
    for group in kernel_groups(graph, fuse):
        costs = [node_cost(graph, n, size, shapes) for n in group]
        if any(c is None for c in costs):
            continue  # ops without a cost function are listed by the profile, not timed
        produced = {t for n in group for t in graph.nodes[n]["outputs"]}
        reads = {t for n in group for t in graph.nodes[n]["inputs"] if t not in produced and t in tensors}
        out = graph.nodes[group[-1]]["outputs"][0]
        moved = sum(math.prod(tensors[t]) for t in reads | {out}) * size + sum(c.weight_bytes for c in costs)
        unit = unit_of(graph, group[0])
        main = costs[0]
        main_flops = main.flops if unit == "matrix" else 0
        vector_flops = sum(c.flops for c in costs) - main_flops
        compute = main_flops / rates["matrix"] + vector_flops / rates["vector"]
        node = graph.nodes[group[0]]
        result.append(Kernel(group[0], "+".join(graph.nodes[n]["op"] for n in group), node["stage"], node["block"],
                             tuple(group), sum(c.macs for c in costs), sum(c.flops for c in costs), moved, unit,
                             compute, moved / bandwidth, device.launch_overhead_s))
    return result


@dataclass(frozen=True)
class Roofline:
    device: Device
    dtype: str
    batch: int
    kernels: tuple[Kernel, ...]
    fused: bool

    @property
    def latency_s(self) -> float:
        return sum(k.time_s for k in self.kernels)

    @property
    def images_per_s(self) -> float:
        return self.batch / self.latency_s

    @property
    def utilisation(self) -> float:
        """Achieved FLOP/s over the matrix unit's peak at this precision."""
        return sum(k.flops for k in self.kernels) / self.latency_s / self.device.matrix[self.dtype]


def roofline(graph, device: Device, dtype: str = "fp16", batch: int = 1, fuse: bool = True) -> Roofline:
    return Roofline(device, dtype, batch, tuple(kernels(graph, device, dtype, fuse)), fuse)
