"""Roofline latency: each kernel takes max(compute time, memory time) on a device (at its unit's and its
kernel class's efficiency), and the kernels run as one stream with the host's launches (sequence): the
runtime's per-op host time (specs/runtimes/*.toml, plan/runtime.py) is paid by the host ahead of the device
where launches are asynchronous ("async": a kernel waits only when the host is behind), before every kernel
where the same cores dispatch and compute ("serial"); the runtime's fixed host time per step comes first.

Which ops run as one kernel is the runtime's (see kernel_groups): eager PyTorch runs one kernel per
framework op, a TensorRT-style engine ("fused") runs conv + BN + activation + residual Add as one,
inductor ("compiled") runs the library conv and one generated kernel after it, XLA fuses every
elementwise op into its producer or consumer. Each op's fusion class comes from the op table
(graph/ops/). Views (Reshape, Flatten, Identity, Dropout at inference) take no time.
A kernel's main op's FLOPs run on that op's unit in the op table (dense Conv, Gemm and MatMul on the
matrix unit, padded to the device's matrix tile where the runtime says so; depthwise convs and every
other op on the vector unit); the rest on the vector unit.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from ..base.errors import EffplanError
from ..base.units import dtype_size
from ..graph.ops import ANCHOR, OPS, POINTWISE, RESIDUAL, VIEW, node_cost
from ..graph.builder import readers as tensor_readers
from ..graph.builder import _derived, cost_rows, gelu_chains, swish_pairs
from ..graph.composite import attention_blocks, attention_transposes, slice_groups, whole_slices
from .hardware import Device
from .reorders import ELEMENTWISE, fusion_class, nchwc_reorders, with_reorders
from .runtime import UNITS, Runtime, load_runtime, runtime_for


@dataclass(frozen=True)
class Kernel:
    name: str  # the main op's node name (an anchor's, else the first op's)
    op: str  # op types joined by '+', e.g. Conv+BatchNormalization+Sigmoid+Mul
    stage: str | int
    block: int
    nodes: tuple[str, ...]
    macs: int
    flops: int
    bytes: int  # device-memory traffic: inputs and weights read, outputs written, less what stays on chip
    unit: str  # matrix or vector
    compute_s: float
    memory_s: float
    overhead_s: float
    overlap: str = "serial"  # async: the launch overhead is a floor under the kernel; serial: it adds to it
    tile_loss: float = 0.0  # share of the matrix unit's work spent on padding to its tile
    fixed_s: float = 0.0  # host time nothing overlaps: the runtime's per-step host cost, on a step's first kernel

    wait_s: float | None = None  # device idle before it, waiting for the host to launch it (see sequence)
    kind: str = "elementwise"  # its class (hardware.KERNEL_CLASSES): the device's class efficiency applies

    @property
    def device_s(self) -> float:
        compute, memory = self.compute_s, self.memory_s
        if isinstance(compute, float) and isinstance(memory, float):
            return max(compute, memory)  # the common case, ten times faster than numpy's on scalars
        return np.maximum(compute, memory)  # numpy: sides may be arrays (search costs many designs at once)

    @property
    def time_s(self) -> float:
        """Its share of the sequence's time: device time plus the wait for the host (sequence); a kernel
        outside a sequence costs max(device, launch) (async) or device + launch (serial)."""
        device = self.device_s
        if self.wait_s is not None:
            return device + self.wait_s + self.fixed_s
        launched = np.maximum(device, self.overhead_s) if self.overlap == "async" else device + self.overhead_s
        return launched + self.fixed_s

    @property
    def bound(self) -> str:
        """host where the device waits longer for the host than it computes; else compute or memory,
        whichever of the two is longer."""
        host = (self.overhead_s if self.wait_s is None else self.wait_s) + self.fixed_s
        if np.all(host > self.device_s):
            return "host"
        return "compute" if np.all(self.compute_s >= self.memory_s) else "memory"

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes if self.bytes else math.inf


def replaced(kernel: Kernel, **changes) -> Kernel:
    """dataclasses.replace(kernel, **changes) without running __init__ again (Kernel has no __post_init__ and
    no cached property to go stale): a sequence and a training step replace every kernel, and replace's
    field checks cost more than the copy."""
    new = object.__new__(Kernel)
    new.__dict__.update(kernel.__dict__, **changes)
    return new


def _as_runtime(runtime) -> Runtime:
    return runtime if isinstance(runtime, Runtime) else load_runtime(runtime)


def kernel_groups(graph, runtime: Runtime | str = "fused") -> list[list[str]]:
    """The nodes each kernel runs, in order (views are left out), as `runtime` groups them.

    Units: Sigmoid(x) * x is one op (swish) where the runtime says so; GELU written as five ops is
    one op always; an attention the exporter wrote out (graph/composite.py: its scale, k's transpose, the two
    products and the softmax) is one kernel, at its last node, where the runtime's single_kernel has
    "attention" (scaled_dot_product_attention's fused kernel: attention_record); the Slices that together cut
    one tensor into pieces (the dynamo exporter's unbind/chunk/split, graph/composite.py slice_groups) are one
    kernel, as the one Split TorchScript writes for them is; a Slice that keeps its whole input is a view
    (composite.whole_slices), and so is the transpose back of an attention's output where it runs fused
    (composite.attention_transposes). An anchor (the runtime's `anchors`: Conv, Gemm, MatMul) absorbs the chain of units
    that follows it (its `epilogue`: op types or fusion classes), each the only reader of the running
    result and each with its other operands made by earlier kernels; a residual Add (same shape as
    the running result) counts against `max_adds`: where both operands come from convs (a projection
    shortcut) the later conv takes it. `epilogue_kernel = "separate"`: the epilogue is one kernel of
    its own after the anchor's. `pointwise_chains`: a chain of elementwise units not after an anchor
    is one kernel. `reductions_fuse_producer`: a GlobalAveragePool or ReduceMean of the kernel's
    result joins the kernel. `consumer_fusion`: a pointwise op (the SE scale) whose only reader is an
    anchor runs inside that anchor as it reads its input. `standalone` ops neither absorb nor are
    absorbed."""
    rt = _as_runtime(runtime)
    nodes, tensors = graph.nodes, graph.graph["tensors"]
    readers = tensor_readers(graph)
    swish = swish_pairs(graph) if rt.swish else {}
    gelu = gelu_chains(graph)
    gelu_head = {chain[0]: chain for chain in gelu.values()}
    outputs = set(graph.graph["outputs"])
    attention = attention_blocks(graph) if rt.attention else {}
    groups: list[list[str]] = []
    taken: set = set(attention)  # no other kernel absorbs an attention's ops
    splits: dict[str, list[str]] = {}
    for piece, last in slice_groups(graph).items():
        splits.setdefault(last, []).append(piece)
    split_of = {piece: splits[last] for piece, last in slice_groups(graph).items()}
    ready = set(graph.graph["inputs"])
    prologue: dict[str, list[str]] = {}  # anchor -> the ops it applies as it reads its input

    def op(n):
        return nodes[n]["op"]

    def out(n):
        return nodes[n]["outputs"][0]

    def kind_class(kind):
        return UNITS.get(kind) or fusion_class(kind)

    def elementwise(kind):
        return kind_class(kind) in ELEMENTWISE and kind not in rt.standalone

    def unit_at(n):
        if n in swish:
            return "swish", [n, swish[n]]
        if n in gelu_head:
            return "gelu", list(gelu_head[n])
        return op(n), [n]

    def unit_after(t):
        if t in outputs:
            return None
        names = readers.get(t, [])
        if len(names) == 1:
            return unit_at(names[0]) if names[0] in gelu_head else (op(names[0]), names)
        sig = next((n for n in names if n in swish), None)
        if sig is not None and sorted(names) == sorted([sig, swish[sig]]):
            return "swish", [sig, swish[sig]]
        if t in gelu and set(names) <= set(gelu[t]):
            return "gelu", list(gelu[t])
        return None

    def into_consumer(members) -> str | None:
        """The anchor a pointwise unit runs inside (consumer fusion), or None."""
        t = out(members[-1])
        names = readers.get(t, [])
        if (rt.consumer_fusion and len(names) == 1 and t not in outputs
                and kind_class(op(members[0])) == POINTWISE and rt.anchors_at(op(names[0]))):
            return names[0]
        return None

    def chain(t, accept, made: set, adds: int) -> list[str]:
        absorbed: list[str] = []
        while (found := unit_after(t)) is not None:
            kind, members = found
            if kind in rt.standalone or not accept(kind) or any(m in taken for m in members):
                break
            if into_consumer(members):
                break
            outs = {out(m) for m in members}  # `made` grows in place: a chain of 10^5 ops is no copy per op
            others = {i for m in members for i in nodes[m]["inputs"]} - made - outs - {t}
            if not others <= ready:
                break  # an operand a later kernel makes
            if kind_class(kind) == RESIDUAL and others:  # a residual Add, not a bias
                if tensors[out(members[-1])] != tensors[t] or adds == 0:
                    break  # a broadcast, not a residual; or the runtime takes no more adds
                adds -= 1
            absorbed += members
            made |= outs
            t = out(members[-1])
        return absorbed

    def emit(group):
        if group:
            groups.append(group)
            taken.update(group)
            ready.update(t for n in group for t in nodes[n]["outputs"])

    whole = whole_slices(graph) | (attention_transposes(graph) if rt.attention else frozenset())

    def view(n):
        return op(n) in rt.views or fusion_class(op(n)) == VIEW or n in whole

    for name in nodes:
        if name in attention:
            if name == attention[name].nodes[-1]:  # its operands are all made by now
                emit([n for n in attention[name].nodes if not view(n)])
            continue
        if name in taken:
            continue
        if view(name):
            taken.add(name)
            ready.update(nodes[name]["outputs"])
            continue
        if name in split_of:  # the first Slice of a split: all its pieces at once
            emit(list(split_of[name]))
            continue
        kind, members = unit_at(name)
        group = prologue.pop(name, []) + members
        if rt.fusion and rt.anchors_at(op(name)):
            epilogue = chain(out(name), rt.absorbs, {out(name)}, rt.max_adds)
            if rt.epilogue_kernel == "separate" and epilogue:
                emit(group)
                group = epilogue
            else:
                group += epilogue
        elif rt.pointwise_chains and elementwise(kind):
            group += chain(out(members[-1]), elementwise, {out(m) for m in members}, rt.max_adds)
            anchor = into_consumer(group)
            if anchor is not None:
                prologue[anchor] = group
                taken.update(group)
                continue
        if rt.reductions_fuse_producer and (rt.epilogue_kernel != "separate" or not rt.anchors_at(op(group[0]))):
            tail = out(group[-1])
            pool = next((r for r in readers.get(tail, []) if op(r) in ("GlobalAveragePool", "ReduceMean")
                         and tuple(nodes[r]["inputs"]) == (tail,) and r not in taken), None)
            if pool is not None:
                group.append(pool)
        emit(group)
    return groups


def kernel_class(graph, name: str) -> str:
    """A node's kernel class (hardware.KERNEL_CLASSES): a Conv is conv (one group), depthwise (one input channel a
    group) or grouped; Gemm and MatMul gemm; every other op elementwise (memory-bound elementwise and reductions)."""
    node = graph.nodes[name]
    if node["op"] == "Conv":
        weight = next((w.shape for w in node["weights"] if w.role == "W"), None)
        group = node["attrs"].get("group", 1)
        return "conv" if group == 1 else "depthwise" if weight is not None and weight[1] == 1 else "grouped"
    return "gemm" if node["op"] in ("Gemm", "MatMul") else "elementwise"


def unit_of(graph, name: str) -> str:
    node, tensors = graph.nodes[name], graph.graph["tensors"]
    return OPS[node["op"]].unit_of(node["attrs"], [tensors[t] for t in node["inputs"]],
                                   {w.role: w.shape for w in node["weights"]})


def _padded(dim, multiple: int):
    return -(-dim // multiple) * multiple  # ceil to the multiple; numpy arrays too


def padded_macs(graph, name: str, tile: tuple[int, int, int] | None, shapes: dict | None = None):
    """The MACs a matrix unit with tile (m, n, k) spends on a node: groups * ceil(M) * ceil(N) * ceil(K),
    each dim rounded up to its multiple (a conv: M = N*Hout*Wout, N = Cout/group, K = Cin/group*Kh*Kw)."""
    node = graph.nodes[name]
    tensors = shapes or graph.graph["tensors"]
    entry = OPS.get(node["op"])
    inputs = [tensors[t] for t in node["inputs"]]
    weights = {w.role: w.shape for w in node["weights"]}
    groups, m, n, k = entry.gemm(node["attrs"], inputs, tensors[node["outputs"][0]], weights)
    if tile is None:
        return groups * m * n * k
    return groups * _padded(m, tile[0]) * _padded(n, tile[1]) * _padded(k, tile[2])


def _where(condition, yes, no):
    if isinstance(condition, (bool, np.bool_)):
        return yes if condition else no
    return np.where(condition, yes, no)


def kernels(graph, device: Device, dtype: str | None = None, runtime: Runtime | str | None = None,
            shapes: dict | None = None, casts: bool | None = None) -> list[Kernel]:
    """Every kernel of a graph as `runtime` runs it (default: the device class's), timed on a device
    at a precision (default: the device's preferred_dtype; `shapes`: see costs.node_cost).

    Each kernel reads the tensors it does not make and its weights and writes what a later kernel or
    the caller reads. On-chip rule: a tensor written by one kernel and read by the next kernel only
    costs no device-memory traffic (neither the write nor the read) when it and everything that next
    kernel writes fit in the device's on-chip memory (`onchip_mb`: L2, CMEM, SRAM) together.
    `casts`: whether weights are cast to `dtype` before each weighted op (default: the runtime's [host]
    weight_casts at a half precision, as autocast does; a model already in half precision has none)."""
    rt = runtime_for(device, runtime)
    dtype = dtype or device.preferred_dtype
    size = dtype_size(dtype)
    casts = rt.weight_casts and dtype in HALF if casts is None else casts
    tensors = shapes or graph.graph["tensors"]
    nodes = graph.nodes
    rates = {unit: device.compute(unit, dtype) for unit in ("matrix", "vector")}
    tile = device.matrix_tile.get(dtype) if rt.tile_padding else None
    outputs = set(graph.graph["outputs"])
    whole = whole_slices(graph) | (attention_transposes(graph) if rt.attention else frozenset())
    view_of = {nodes[n]["outputs"][0]: nodes[n]["inputs"][0] for n in nodes
               if (nodes[n]["op"] in rt.views or fusion_class(nodes[n]["op"]) == VIEW or n in whole) and nodes[n]["inputs"]}

    def source(t):  # a view's output is its input's memory
        while t in view_of:
            t = view_of[t]
        return t
    records, read = [], tensor_readers(graph)
    try:  # the grouping depends on the graph and the runtime alone: once per graph and runtime
        groups = _derived(graph, ("kernel_groups", rt), lambda g: kernel_groups(g, rt))
    except TypeError:  # a runtime with an unhashable field
        groups = kernel_groups(graph, rt)
    rows = cost_rows(graph, size) if shapes is None else None  # the profile's rows: costed once per graph

    def cost(n):  # node_cost(graph, n, size, shapes): None for an op no cost function knows
        if rows is None:
            return node_cost(graph, n, size, shapes)
        entry = OPS.get(nodes[n]["op"])
        return rows[n] if entry and entry.cost else None
    attention = attention_blocks(graph) if rt.attention else {}
    for at, group in enumerate(groups):
        if group[-1] in attention:
            records.append(attention_record(graph, attention[group[-1]], group, at, size, tile, tensors, source))
            continue
        costs = [cost(n) for n in group]
        if any(c is None for c in costs):
            continue  # ops without a cost function are listed by the profile, not timed
        inside = set(group)
        main = next((i for i, n in enumerate(group) if fusion_class(nodes[n]["op"]) == ANCHOR), 0)
        node = nodes[group[main]]
        produced = {t for n in group for t in nodes[n]["outputs"]}
        reads = {source(t) for n in group for t in nodes[n]["inputs"] if t not in produced and t in tensors}
        writes = {t for t in produced if t in tensors and (t in outputs or any(n not in inside for n in read.get(t, ())))}
        unit = unit_of(graph, group[main])
        weight_bytes = sum(c.weight_bytes for c in costs)
        main_cost = costs[main]
        total_flops = sum(c.flops for c in costs)
        matrix_flops, loss = 0, 0.0
        if unit == "matrix":
            padded = padded_macs(graph, group[main], tile, shapes) if OPS[node["op"]].gemm else main_cost.macs
            matrix_flops = main_cost.flops + 2 * (padded - main_cost.macs)
            loss = 1 - main_cost.macs / padded if tile is not None else 0.0
        vector_flops = total_flops - (main_cost.flops if unit == "matrix" else 0)
        record = {"group": group, "node": node, "main": group[main], "reads": reads, "writes": writes,
                  "kind": kernel_class(graph, group[main]),
                  "weights": weight_bytes, "macs": sum(c.macs for c in costs), "flops": total_flops,
                  "unit": unit, "matrix": matrix_flops, "vector": vector_flops, "loss": loss,
                  "op": "+".join(nodes[n]["op"] for n in group), "extra": {}, "at": at}
        if casts and fusion_class(node["op"]) == ANCHOR and weight_bytes:
            records.append(_weight_cast(record, size))
        bias = next((w for w in node["weights"] if w.role == "B"), None)
        if rt.conv_bias == "separate" and node["op"] == "Conv" and bias is not None and len(group) == 1:
            out, before = node["outputs"][0], node["outputs"][0] + "#before-bias"
            elements = math.prod(tensors[out])
            bias_bytes = bias.size * size
            record.update(writes={before}, weights=weight_bytes - bias_bytes, flops=total_flops - elements,
                          extra={before: tensors[out]})
            record["matrix" if unit == "matrix" else "vector"] -= elements
            records.append(record)
            record = {**record, "reads": {before}, "writes": writes, "weights": bias_bytes, "macs": 0, "kind": "elementwise",
                      "flops": elements, "unit": "vector", "matrix": 0, "vector": elements, "loss": 0.0,
                      "op": "Add(bias)", "extra": {before: tensors[out]}}
        records.append(record)
    if rt.reorders == "nchwc" and device.nchwc_block:
        records = with_reorders(records, nchwc_reorders(graph, groups, device.nchwc_block), nodes, tensors)

    def size_of(t, record):
        return math.prod(record["extra"].get(t) or tensors[t]) * size
    onchip = [0] * len(records)
    readers_of: dict = {}
    for i, r in enumerate(records):
        for t in r["reads"]:
            readers_of.setdefault(t, set()).add(i)
    for i, r in enumerate(records[:-1]):
        nxt = records[i + 1]
        for t in r["writes"]:
            if t not in outputs and readers_of.get(t) == {i + 1}:
                fits = size_of(t, r) + sum(size_of(w, nxt) for w in nxt["writes"]) <= device.onchip_bytes
                saved = _where(fits, size_of(t, r), 0)
                onchip[i] = onchip[i] + saved
                onchip[i + 1] = onchip[i + 1] + saved
    bandwidth = device.achievable_bandwidth
    overhead = rt.overhead(device)
    result = []
    for i, (r, kept) in enumerate(zip(records, onchip)):
        moved = sum(size_of(t, r) for t in r["reads"] | r["writes"]) + r["weights"] - kept
        node = r["node"]
        factor = device.class_efficiency(r["kind"], rt.name)
        result.append(Kernel(r["main"], r["op"], node["stage"], node["block"], tuple(r["group"]), r["macs"],
                             r["flops"], moved, r["unit"],
                             (r["matrix"] / rates["matrix"] + r["vector"] / rates["vector"]) / factor,
                             moved / bandwidth / factor, overhead, rt.overlap, r["loss"],
                             rt.step_overhead(device) if i == 0 else 0.0, kind=r["kind"]))
    return sequence(result)


HALF = ("fp16", "bf16")


def attention_record(graph, block, group: list, at: int, size: int, tile, tensors: dict, source) -> dict:
    """An attention the exporter wrote out, as scaled_dot_product_attention's fused kernel runs it (PyTorch docs,
    torch.nn.functional.scaled_dot_product_attention: FlashAttention-2 or memory-efficient attention on CUDA, a
    flash kernel on CPU; aten/src/ATen/native/transformers/attention.cpp): it reads q, k and v (and a mask where one
    is added) once, computes the scores and probabilities on chip (FlashAttention-2, Dao 2023, Algorithm 1), and
    writes the output and one fp32 logsumexp per query row (_scaled_dot_product_flash_attention returns it; the
    backward reads it). Its cost is the Attention op's (graph/ops/conv.py): S (|Q| + |Y|) MACs (2 S^2 d per head
    when L = S), 2 MACs + 5 FLOPs a score (scale, softmax; a mask's add); both products on the matrix unit, each
    padded to the tile."""
    nodes = graph.nodes
    products = [n for n in block.nodes if nodes[n]["op"] == "MatMul"]
    first, last = nodes[products[0]], nodes[products[-1]]
    q, k_t = (tensors[t] for t in first["inputs"][:2])
    out = last["outputs"][0]
    shapes = [q, (*k_t[:-2], k_t[-1], k_t[-2]), tensors[last["inputs"][1]], *(tensors[t] for t in block.operands[3:])]
    macs, flops = OPS["Attention"].cost({}, shapes, tensors[out], {})
    padded = sum(padded_macs(graph, n, tile, tensors) for n in products) if tile is not None else macs
    logsumexp = f"{block.nodes[-1]}#logsumexp"
    return {"group": group, "node": first, "main": products[0], "kind": "gemm",
            "reads": {source(t) for t in block.operands if t in tensors}, "writes": {out, logsumexp},
            "weights": 0, "macs": macs, "flops": flops, "unit": "matrix", "matrix": 2 * padded,
            "vector": flops - 2 * macs,
            "loss": 1 - macs / padded if tile is not None else 0.0, "op": "Attention", "at": at,
            "extra": {logsumexp: (block.groups, max(1, 4 // size))}}  # fp32 whatever the precision


def _weight_cast(record: dict, size: int) -> dict:
    """torch.autocast's cast of a conv's or GEMM's fp32 weight to half precision before the op (PyTorch docs,
    'Automatic Mixed Precision package': ops in the float16 list cast their inputs; aten/src/ATen/autocast_mode.cpp
    cached_cast, whose cache lives only as long as the autocast region, so a step casts again): one elementwise
    kernel that reads 4 bytes a weight and writes `size`. The bias (a vector) is cast too but rides in the same
    count: the record's weight bytes are at half precision already."""
    elements = record["weights"] // size
    return {**record, "group": [], "main": f"{record['main']}#cast", "reads": set(), "writes": set(), "kind": "elementwise",
            "weights": elements * (4 + size), "macs": 0, "flops": 0, "unit": "vector", "matrix": 0, "vector": 0,
            "loss": 0.0, "op": "Cast(weight)", "extra": {}}


def kernel_time(kernel: Kernel) -> float:
    """Seconds one kernel takes (see Kernel.time_s): what a caller summing its own kernels needs."""
    return kernel.time_s


BOUNDS = ("compute", "memory", "host")


def _larger(a, b):
    """np.maximum, by the builtin on two floats (ten times faster on scalars; numpy for the search's arrays)."""
    return max(a, b) if isinstance(a, float) and isinstance(b, float) else np.maximum(a, b)


def sequence(kernels: list[Kernel]) -> list[Kernel]:
    """Kernels as one stream runs them, each with the time the device waits for the host (wait_s).

    The host spends each kernel's overhead_s (Python call, dispatcher, launch) before the kernel can start.
    async (CUDA's asynchronous launches: the host queues kernels ahead of the device; CUDA Programming Guide,
    'Asynchronous Concurrent Execution'): the host goes on to the next op at once, so kernel i is launched at
    H_i = h_1 + ... + h_i and starts at max(H_i, the end of kernel i-1); a run of long kernels lets the host
    run ahead and hides the launches of the short ones after it. serial (the same cores dispatch and compute):
    the host launches kernel i only once kernel i-1 is done, so each waits its own h_i. A kernel's fixed_s
    (the step's host cost) comes before everything after it."""
    out, launched, finished = [], 0.0, 0.0
    for k in kernels:
        if k.fixed_s:  # the step's fixed host cost: nothing runs beside it
            finished = finished + k.fixed_s
            launched = _larger(launched + k.fixed_s, finished)
        if k.overlap == "async":
            launched = launched + k.overhead_s
            wait = _larger(launched - finished, 0.0)
        else:
            wait = k.overhead_s
        finished = finished + wait + k.device_s
        if k.overlap != "async":
            launched = finished
        out.append(replaced(k, wait_s=wait))
    return out


def step_bound(kernels) -> str:
    """What bounds a sequence of kernels: the bound whose kernels take the most time (BOUNDS)."""
    time = dict.fromkeys(BOUNDS, 0.0)
    for k in kernels:
        time[k.bound] += float(k.time_s)
    return max(BOUNDS, key=time.get)


@dataclass(frozen=True)
class Roofline:
    device: Device
    dtype: str
    batch: int
    kernels: tuple[Kernel, ...]
    runtime: Runtime
    input_rate: float | None = None  # images/s the input pipeline delivers; None: not modelled (excluded)

    @property
    def fused(self) -> bool:
        return self.runtime.fusion

    @functools.cached_property  # every row's share reads it: summed once
    def latency_s(self) -> float:
        return sum(k.time_s for k in self.kernels)

    @property
    def images_per_s(self) -> float:
        """batch / latency, capped at the input pipeline's rate where one is given."""
        rate = self.batch / self.latency_s
        return rate if self.input_rate is None else min(rate, self.input_rate)

    @property
    def bound(self) -> str:
        """What bounds the whole pass: compute, memory or host (step_bound), or input where the input
        pipeline's rate caps the throughput."""
        if self.input_rate is not None and self.input_rate < self.batch / self.latency_s:
            return "input"
        return step_bound(self.kernels)

    @property
    def utilisation(self) -> float:
        """Achieved FLOP/s over the matrix unit's peak at this precision."""
        return sum(k.flops for k in self.kernels) / self.latency_s / self.device.matrix[self.dtype]


def roofline(graph, device: Device, dtype: str | None = None, batch: int = 1,
             runtime: Runtime | str | None = None, input_rate: float | None = None) -> Roofline:
    """The roofline of a graph on a device as `runtime` runs it (default: the device class's; `eager`: one
    kernel per framework op, nothing fused) at `dtype` (default: the device's preferred_dtype); `input_rate`
    (images/s; default: the device file's [host] input_rate) caps the throughput where the input pipeline is known."""
    rt = runtime_for(device, runtime)
    dtype = dtype or device.preferred_dtype
    input_rate = device.host.get("input_rate") if input_rate is None else input_rate
    if input_rate is not None and not input_rate > 0:
        raise EffplanError(f"--input-rate must be positive images/s, got {input_rate:g}")
    return Roofline(device, dtype, batch, tuple(kernels(graph, device, dtype, rt)), rt, input_rate)
