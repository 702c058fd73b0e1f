"""Training time: one step's kernels (forward, backward, optimizer), the gradient all-reduce of data
parallelism, and the hours of a whole run, with EfficientNetV2's progressive learning.

Every kernel is timed as the roofline times one (roofline.Kernel: max(FLOPs / the achievable rate of
its unit, bytes moved / achievable bandwidth), both at its kernel class's efficiency), and the whole step
(forward, recomputed blocks, backward, update) runs as one stream with the host's launches
(roofline.sequence: backward kernels at the runtime's [host] backward_op_s). This module says which
kernels a training step runs and what each one computes and moves. The rules, each with its source:

Forward
  The kernels roofline.kernels runs under the runtime (specs/runtimes/*.toml: one kernel per op under
  `eager`, inductor's generated epilogues under `compiled`, XLA's fusions under `xla`), at the step's
  precision, with its launch overhead and tile padding. Training adds one kernel per BatchNormalization
  (an op whose entry has Backward.statistics): the batch statistics, a read of its input (3 FLOPs an
  element: sum, square, add), before it can normalise (PyTorch's CUDA batch norm:
  batch_norm_collect_statistics, then batch_norm_elemt).

Backward (one kernel per op under `eager`; `compiled` and `xla` fuse elementwise chains, below)
  Conv, Gemm, MatMul with weights (the op table's Backward.products): two products, each with its own
    shapes (PyTorch's convolution_backward: cuDNN's backward-data and backward-filter calls). Input
    gradient dX = dY (*) W transposed: the forward's MACs exactly (every pair of output element and
    weight tap meets once), reading dY and W, writing dX; skipped when the input is the network's
    input (an image needs no gradient).
    Weight gradient dW = X (*) dY summed over batch and pixels: the forward's MACs again, reading the
    saved X and dY, writing dW at the weight-gradient precision (plus the bias gradient, an add per
    element of dY). Both on the forward's unit: dense on the matrix unit, depthwise (one input
    channel per group) on the vector unit (op table, graph/ops/); on the matrix unit each GEMM is
    padded to the device's tile with its own dims where the runtime pads (gradient_gemms).
  Every other op: memory-bound over what it reads, as PyTorch's autograd formulas
    (tools/autograd/derivatives.yaml) read it: the tensors it saved for backward (exactly the ones
    memory.py sizes from the op table's `saves`), its output gradient, and it writes each input
    gradient once; FLOPs per element from its entry's `backward`. One kernel per op, reading each
    tensor once: a lower bound where autograd runs more than one (a broadcast Mul's gradient is a multiply and a
    sum). BatchNorm where elementwise chains do not fuse (eager): a reduction and an elementwise pass
    (BN_BACKWARD). A conv's gradients are kernel classes of their own (conv/depthwise/grouped _dgrad, _wgrad). Views and same-shape Adds pass the gradient on untouched (no kernel); Concat's gradient is
    slices of dY (views): Backward.kernel and broadcast_only.
  A tensor read by k ops gets k gradients, summed by the autograd engine: k - 1 add kernels
    (torch/csrc/autograd/input_buffer.cpp accumulate), each reading two and writing one.
  `--checkpoint blocks`: every kernel of a block's forward runs once more in backward
    (torch.utils.checkpoint recomputes the block's forward), as memory.py counts its FLOPs.
  Backward fusion (runtimes whose [fusion] has pointwise_chains: `compiled`, `xla`): the backward is
    compiled as the forward is - torch.compile's AOTAutograd traces the joint graph and inductor lowers
    the backward graph with the same pointwise/reduction fusion (TorchInductor design post; PyTorch
    docs 'torch.compile', AOTAutograd); under XLA the gradient is part of the same HLO module, so the
    same loop/input fusion passes run on it (OpenXLA 'Operation fusion', instruction_fusion.cc). So
    when an elementwise op's backward kernel (fusion class norm, activation, residual or pointwise)
    writes exactly one gradient, and that gradient is read only by the backward kernel of the op that
    produced the tensor (one reader in the forward: no accumulation), the two run as one kernel: the
    FLOPs add, the gradient between them is neither written nor read (2 x its bytes saved), one launch
    (fuse_backward). Convolution backward stays its own library/MXU kernels in both runtimes (no
    output or input fusion of elementwise gradients into them: a stated simplification for `xla`).

Optimizer (memory-bound over every parameter, launched as the runtime's [host] optimizer_launch says:
  OPTIMIZER_OPS, CHUNK_TENSORS) reads and writes the weights at master precision, reads the gradient, reads
  and writes each state slot (memory.py's OPTIMIZER_SLOTS); `mixed` also writes the half-precision copy
  autocast makes of each weight once a step (reading the fp32 master: 6 bytes a parameter; under a runtime
  with [host] weight_casts these are the forward's cast kernels instead), and at fp16 GradScaler unscales the
  gradients in place (read and write: 8 bytes; its own launches where the update is launched). bf16 needs
  no scaler. Runs on the vector unit in fp32.

Data parallel (`devices` > 1): the gradients (params x gradient bytes) are summed by a ring
  all-reduce: each device sends and receives 2 (N - 1) / N of them at the link's bus bandwidth, plus the
  link's latency per call. Overlap by runtime (its file's [training] allreduce, with its source):
  `bucketed` (bucketed_allreduce_s: DDP's buckets all-reduced as the backward fills them, one call after
  another; what ends after the backward is exposed) or `after-backward` (XLA's cross-replica sum runs
  after the backward: not overlapped). On top, every data-parallel step pays the runtime's [training]
  data_parallel_step_s (the processes meet every step; fitted, see its source), at the device's host speed.
  `input_rate`: the step waits for the input pipeline where it is slower. Whether a runtime trains at all
  is its [training] trains; the default per device class is runtime.py's DEFAULT_TRAINING_RUNTIME.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

from ..base.errors import EffplanError
from ..graph.builder import readers as tensor_readers
from ..graph.composite import attention_transposes, composites, slice_groups, whole_slices
from ..graph.ops import (ACTIVATION, MATRIX, NORM, OPS, POINTWISE, RESIDUAL, VECTOR, Backward, graph_weights,
                         node_cost, weight_counts)
from .hardware import Device
from .memory import (DEFAULT_OPTIMIZER, DEFAULT_PRECISION, OPTIMIZER_SLOTS, PRECISIONS, _saved_by, refuse_untrainable,
                     training_memory)
from .roofline import Kernel, kernel_class, kernels as forward_kernels, replaced, sequence, unit_of
from .parallel import Link, bucketed_allreduce_s, device_link, gradient_kernels, ring_allreduce_s
from .runtime import Runtime, runtime_for, training_runtime_for

# What each op's backward computes is its entry's `backward` in the op table (graph/ops/). A composite op
# (graph/composite.py) is one backward kernel, its op's; Swish (SiLU, no entry of its own): silu_backward,
# s = sigmoid(x) (3), dy * s * (1 + x * (1 - s)) (5).
SWISH_BACKWARD_FLOPS = 8
SWISH_BACKWARD = Backward(SWISH_BACKWARD_FLOPS)

# Optimizer state: (slots as memory.py, FLOPs per parameter). Adam: m (3), v (4), update (5: sqrt,
# +eps, divide, times lr, subtract; bias corrections fold into the step size); AdamW adds the
# decoupled decay (2); SGD w -= lr g (2); momentum m = mu m + g, w -= lr m (4). torch.optim docs.
OPTIMIZER_FLOPS = {"sgd": 2, "momentum": 4, "adam": 12, "adamw": 14}
# The weights the update reads and writes, from memory.py's PRECISIONS: the weight bytes, less under mixed the
# half copy autocast keeps beside the fp32 master (its size is mixed's activation bytes).
MASTER_BYTES = {p: weight - (act if p == "mixed" else 0) for p, (act, weight, _, _) in PRECISIONS.items()}
HALF_COPY_BYTES = MASTER_BYTES["mixed"] + PRECISIONS["mixed"][0]  # autocast reads the master, writes the copy
SCALER_BYTES = 8  # fp16 mixed precision: GradScaler's unscale reads and writes each fp32 gradient
# BatchNorm's backward in training where elementwise chains do not fuse (eager), as PyTorch's CUDA kernels run it
# (aten/src/ATen/native/cuda/Normalization.cuh: batch_norm_backward_reduce, then batch_norm_backward_elemt; cuDNN's
# batch-norm backward likewise makes a reduction pass and an elementwise pass): FLOPs per input element of
# (the reduction: x_hat 2, sum dy 1, sum dy x_hat 2; the elementwise pass: x_hat again 2, dx 3). Each reads the
# saved input and dY; the reduction writes the scale and shift gradients, the elementwise pass dX.
BN_BACKWARD = (5, 5)
# The update as launched (runtime [host] optimizer_launch): single (compiled into one kernel: XLA), fused (one
# kernel per chunk of tensors: torch.optim's fused=True), foreach (one launch per operation per chunk: the default
# on CUDA since PyTorch 2.0, torch.optim docs 'Algorithms: foreach and fused implementations'), for-loop (one launch
# per operation per parameter tensor: foreach=False). A chunk: multi_tensor_apply's at most 110 tensors a launch
# (aten/src/ATen/native/cuda/MultiTensorApply.cuh depth_to_max_tensors for one tensor list; fewer for more lists,
# not modelled). Operations per update (torch/optim/sgd.py, adam.py, adamw.py _multi_tensor_*): SGD 1 (add), momentum
# 3 (buffer mul, add, param add), Adam about 7 (lerp, mul, addcmul, sqrt, div, add, addcdiv), AdamW 8 (+ decay mul).
OPTIMIZER_OPS = {"sgd": 1, "momentum": 3, "adam": 7, "adamw": 8}
CHUNK_TENSORS = 110  # tensors per multi_tensor_apply launch (above)


def compute_dtype(device: Device, precision: str) -> str:
    """The precision the step's arithmetic runs at: mixed is the device's half precision
    (Device.half_dtype), else the precision asked. tf32 keeps fp32 tensors and runs convolutions and matrix
    products on the TF32 matrix unit (PyTorch docs, 'CUDA semantics: TensorFloat-32 (TF32) on Ampere (and
    later) devices': torch.backends.cudnn.allow_tf32 defaults to True; elementwise work stays fp32)."""
    if precision not in PRECISIONS:
        raise EffplanError(f"unknown precision '{precision}'; known: {', '.join(PRECISIONS)}")
    if precision == "mixed":
        half = device.half_dtype
        if half is None:
            raise EffplanError(f"device {device.name} has no half-precision matrix unit for mixed precision; "
                               f"use --precision fp32")
        return half
    if precision == "tf32" and "tf32" not in device.matrix:
        raise EffplanError(f"device {device.name} has no TF32 matrix unit; use --precision fp32 or mixed")
    return precision


# ---- the kernels of one step ----

def _kernel(name, op, node, macs, flops, moved, unit, device, dtype, rt: Runtime, padded: int | None = None,
            kind: str = "elementwise") -> Kernel:
    """A kernel timed as roofline times one: its FLOPs on `unit` (matrix work padded to the tile:
    `padded` MACs), its bytes at the achievable bandwidth, both at its class's efficiency (`kind`), the
    runtime's launch overhead."""
    extra = 2 * (padded - macs) if padded is not None else 0
    loss = 1 - macs / padded if padded else 0.0
    factor = device.class_efficiency(kind, rt.name)
    return Kernel(name, op, node["stage"], node["block"], (name,), int(macs), int(flops), int(moved), unit,
                  (flops + extra) / device.compute(unit, dtype) / factor, moved / device.achievable_bandwidth / factor,
                  rt.overhead(device), rt.overlap, loss, kind=kind)


def _ceil_to(dim: int, multiple: int) -> int:
    return -(-dim // multiple) * multiple


def gradient_gemms(graph, name: str) -> tuple[tuple, tuple] | None:
    """The (groups, M, N, K) of a matrix op's input-gradient and weight-gradient products, from its
    forward GEMM (groups, M, N, K) with K = Cin/group x taps: dX is M' = the input's pixels x batch,
    N' = Cin/group, K' = N x taps; dW is M'' = N (Cout/group), N'' = K, K'' = M (summed over batch and pixels)."""
    node, tensors = graph.nodes[name], graph.graph["tensors"]
    entry = OPS[node["op"]]
    if entry.gemm is None:
        return None
    inputs = [tensors[t] for t in node["inputs"]]
    weights = {w.role: w.shape for w in node["weights"]}
    groups, m, n, k = entry.gemm(node["attrs"], inputs, tensors[node["outputs"][0]], weights)
    backward = entry.backward
    taps = backward.taps(weights) if backward and backward.taps else 1  # a conv's kernel taps, else 1
    cin = k // taps  # per group
    return (groups, math.prod(inputs[0]) // (cin * groups), cin, n * taps), (groups, n, k, m)


def _padded(macs: int, gemm: tuple, tile) -> int | None:
    """MACs on a matrix unit with tile (m, n, k): `macs` scaled by how much each dim of `gemm` is padded
    (exact for dW, whose GEMM has the forward's MACs; dX of a strided conv skips the zeros its GEMM
    form would multiply, so only the padding ratio of its dims is applied)."""
    if tile is None or gemm is None:
        return None
    _, m, n, k = gemm
    ratio = _ceil_to(m, tile[0]) * _ceil_to(n, tile[1]) * _ceil_to(k, tile[2]) / (m * n * k)
    return math.ceil(macs * ratio)


def _needs_grad(graph) -> set[str]:
    """Tensors that get a gradient: those computed from a trainable weight (not the input's own chain), and
    not through an op whose output carries none (Backward.gradient: comparisons, shape arithmetic)."""
    needs: set[str] = set()
    for name in graph.nodes:  # stored order is topological
        node = graph.nodes[name]
        entry = OPS.get(node["op"])
        if entry and entry.backward and not entry.backward.gradient:
            continue
        if any(w.trainable for w in node["weights"]) or any(t in needs for t in node["inputs"]):
            needs.update(node["outputs"])
    return needs


def batch_norm_statistics(graph, device: Device, dtype: str, act: int, rt: Runtime) -> list[Kernel]:
    """The batch-statistics kernels training's forward adds (op table: Backward.statistics), one per op."""
    result = []
    tensors = graph.graph["tensors"]
    for name in graph.nodes:
        node = graph.nodes[name]
        entry = OPS.get(node["op"])
        flops = entry.backward.statistics if entry and entry.backward else 0
        if flops:
            elements = math.prod(tensors[node["inputs"][0]])
            result.append(_kernel(f"{name}#statistics", f"{node['op']}(statistics)", node, 0, flops * elements,
                                  elements * act, VECTOR, device, dtype, rt))
    return result


def backward_kernels(graph, device: Device, dtype: str, precision: str, runtime: Runtime | str = "eager") -> list[Kernel]:
    """The backward of one step, in reverse order of the forward; see the module's rules."""
    rt = runtime_for(device, runtime)
    refuse_untrainable(graph)
    tile = device.matrix_tile.get(dtype) if rt.tile_padding else None
    act, _, grad, _ = PRECISIONS[precision]
    tensors, nodes = graph.graph["tensors"], graph.nodes
    needs = _needs_grad(graph)
    parts = composites(graph)  # each runs its op's backward (attention: the fused kernel) at its last node
    pieces = slice_groups(graph)
    readers = tensor_readers(graph)
    size = lambda t: math.prod(tensors[t])  # noqa: E731
    result = []
    chains = {}  # kernel name -> (the tensor whose gradient it reads, the gradients it writes): fuse_backward
    for name in reversed(list(nodes)):
        node = nodes[name]
        op = node["op"]
        out = node["outputs"][0]
        whole = parts.get(name)
        if out not in needs or (whole and name != whole.nodes[-1]):
            continue  # nothing upstream needs this gradient; a composite's part runs inside its last node's kernel
        kind = whole.kind if whole else op
        back = OPS[kind].backward if kind in OPS else SWISH_BACKWARD if whole else None
        if back is None:
            raise EffplanError(f"training time: no backward rule for {op} (layer {name})")
        if pieces.get(name, name) != name or name in whole_slices(graph) or (
                rt.attention and name in attention_transposes(graph)):
            continue  # one of a split's Slices: its group's last runs the one kernel; a Slice of everything or the
            # transpose back of a fused attention's output: a view, no op
        group = [n for n, last in pieces.items() if last == name] or [name]
        dy = sum(size(t) for n in group for t in nodes[n]["outputs"] if t in tensors) * act  # every piece's
        inputs = [whole.input] if whole else [t for t in node["inputs"] if t in tensors]
        shapes = [tensors[t] for t in inputs]
        if whole and whole.kind == "Attention":  # q, k, v as the fused kernel reads them; shapes as its products see them
            first = nodes[next(n for n in whole.nodes if nodes[n]["op"] == "MatMul")]
            q, k_t = (tensors[t] for t in first["inputs"][:2])
            inputs = list(whole.operands[:3])
            shapes = [q, (*k_t[:-2], k_t[-1], k_t[-2]), tensors[inputs[2]]]
        wanted = [t for t in inputs if t in needs]
        members = whole.nodes if whole else (name,)  # a product's weight gradient; BN's scale and shift's
        params = sum(weight_counts(nodes[n]["weights"])[0] for n in members)
        if back.fused:  # one kernel (attention's): reads what it saved and dY, writes its inputs' gradients
            macs, flops = back.fused({} if whole else node["attrs"], shapes, tensors[out])
            twice = sum(map(size, inputs)) - sum(map(size, set(inputs)))  # q, k, v each read, even one tensor twice
            moved = sum(_saved_by(graph, name, act, 1, tensors, parts).values()) + (twice + sum(map(size, wanted))) * act + dy
            result.append(_kernel(f"{name}#d", f"{kind}(backward)", node, macs, flops, moved, MATRIX, device, dtype,
                                  rt, kind="gemm"))
            continue
        if back.products and node["weights"]:
            cost = node_cost(graph, name, act)
            unit = unit_of(graph, name)
            x = inputs[0]
            bias = size(out) if any(w.role == "B" for w in node["weights"]) else 0
            dx_gemm, dw_gemm = gradient_gemms(graph, name) or (None, None)
            on_tiles = tile if unit == MATRIX else None
            kind = kernel_class(graph, name)  # conv, depthwise, grouped: its gradients have classes of their own
            grads = (f"{kind}_dgrad", f"{kind}_wgrad") if kind != "gemm" else ("gemm", "gemm")
            if x in needs:
                result.append(_kernel(f"{name}#dX", f"{op}(input gradient)", node, cost.macs, 2 * cost.macs,
                                      dy + params * act + size(x) * act, unit, device, dtype, rt,
                                      _padded(cost.macs, dx_gemm, on_tiles), grads[0]))
            result.append(_kernel(f"{name}#dW", f"{op}(weight gradient)", node, cost.macs, 2 * cost.macs + bias,
                                  dy + size(x) * act + params * grad, unit, device, dtype, rt,
                                  _padded(cost.macs, dw_gemm, on_tiles), grads[1]))
            continue
        if back.products and len(inputs) >= 2:  # a product of activations (attention's q @ k^T)
            cost, unit = node_cost(graph, name, act), unit_of(graph, name)
            entry = OPS[op]
            gemm = entry.gemm(node["attrs"], [tensors[t] for t in inputs], tensors[out], {}) if entry.gemm else None
            for i, t in enumerate(inputs):  # dA = dY B^T (M, K, N), dB = A^T dY (K, N, M): the forward's MACs each
                if t in needs:
                    g, m, n, k = gemm or (0, 0, 0, 0)
                    shape = gemm and ((g, m, k, n) if i == 0 else (g, k, n, m))
                    others = sum(size(o) for o in inputs if o != t) * act
                    result.append(_kernel(f"{name}#d{i}", f"{op}(operand gradient)", node, cost.macs, 2 * cost.macs,
                                          dy + others + size(t) * act, unit, device, dtype, rt,
                                          _padded(cost.macs, shape, tile if unit == MATRIX else None)))
            continue
        if not back.kernel:
            continue
        if back.broadcast_only and not params and all(tensors[t] == tensors[out] for t in inputs):
            continue  # dY passes to every operand untouched (a learned bias: its gradient sums dY, a kernel)
        if back.broadcast_only:  # an operand of the output's shape takes dY itself: only the others are written
            wanted = [t for t in wanted if tensors[t] != tensors[out]]
        if (op == "Mul" and not whole and len(inputs) == 2 and len(set(map(tensors.get, inputs))) == 2
                and set(inputs) <= needs and not (rt.fusion and rt.pointwise_chains)):
            result += broadcast_mul_backward(name, node, inputs, out, tensors, act, device, dtype, rt)
            continue
        flops = back.flops_of(node["attrs"], tensors[out])
        if flops is None and back.products:  # one operand (an einsum that sums or permutes): dY expanded back
            flops = 0
        if flops is None:
            raise EffplanError(f"training time: no backward rule for {op} (layer {name})")
        saved = _saved_by(graph, name, act, 1, tensors, parts)
        if back.shape_only:
            saved = {t: b for t, b in saved.items() if t not in tensors}
        written = sum(size(t) for t in wanted) * act
        elements = size(inputs[0]) if back.per_input else size(out)
        if back.statistics and not (rt.fusion and rt.pointwise_chains):  # BN_BACKWARD: two kernels
            reads = sum(saved.values()) + dy
            result.append(_kernel(f"{name}#dreduce", f"{kind}(backward reduce)", node, 0,
                                  BN_BACKWARD[0] * elements, reads + params * grad, VECTOR, device, dtype, rt))
            result.append(_kernel(f"{name}#d", f"{kind}(backward)", node, 0, BN_BACKWARD[1] * elements,
                                  reads + written, VECTOR, device, dtype, rt))
            continue
        result.append(_kernel(f"{name}#d", f"{kind}(backward)", node, 0, flops * elements,
                              sum(saved.values()) + dy + written + params * grad, VECTOR, device, dtype, rt))
        if OPS[op].fusion in ELEMENTWISE:
            chains[result[-1].name] = (out, tuple(wanted))
    producer = {t: n for n in nodes for t in nodes[n]["outputs"]}
    inner = {t for c in parts.values() for t in c.inner}
    unit = lambda n: parts[n].nodes[-1] if n in parts else pieces.get(n, n)  # noqa: E731  (one reader each)
    for t, names in readers.items():  # gradients of a tensor read by several ops are summed
        taking = list(dict.fromkeys(unit(n) for n in names if t in needs and t not in inner
                                    and nodes[unit(n)]["outputs"][0] in needs))
        if len(taking) > 1:
            node = nodes[producer[t]] if t in producer else nodes[names[0]]
            for i in range(len(taking) - 1):
                result.append(_kernel(f"{t}#accumulate{i}", "gradient accumulation", node, 0, size(t),
                                      3 * size(t) * act, VECTOR, device, dtype, rt))
    if rt.fusion and rt.pointwise_chains:
        result = fuse_backward(result, chains, lambda t: size(t) * act, device, dtype, rt)
    host = rt.backward_overhead(device)  # the autograd engine launches these: [host] backward_op_s
    return [replaced(k, overhead_s=host) for k in result]


def broadcast_mul_backward(name, node, inputs, out, tensors, act, device, dtype, rt) -> list[Kernel]:
    """y = a * b with b broadcast (the SE scale x * gate) as eager autograd runs it (tools/autograd/derivatives.yaml
    mul.Tensor: grad * other and grad * self, each then summed to its operand's shape, sum_to_size): the full-size
    operand's gradient, one multiply (reads dY and the small operand, writes dA); the broadcast one's, a full-size
    multiply (reads dY and the full operand, writes the product) and a reduction of it (reads it, writes dB)."""
    full, small = sorted(inputs, key=lambda t: -math.prod(tensors[t]))
    n, m = math.prod(tensors[out]), math.prod(tensors[small])
    return [_kernel(f"{name}#d", "Mul(backward)", node, 0, n, (2 * n + m) * act, VECTOR, device, dtype, rt),
            _kernel(f"{name}#dproduct", "Mul(backward product)", node, 0, n, 3 * n * act, VECTOR, device, dtype, rt),
            _kernel(f"{name}#dsum", "Mul(backward sum)", node, 0, n, (n + m) * act, VECTOR, device, dtype, rt)]


ELEMENTWISE = frozenset({NORM, ACTIVATION, RESIDUAL, POINTWISE})  # fusion classes whose backward chains fuse


def fuse_backward(kernels: list[Kernel], chains: dict, gradient_bytes, device: Device, dtype: str,
                  rt: Runtime) -> list[Kernel]:
    """Merge each elementwise backward kernel into the one before it in its chain (the module's 'Backward
    fusion' rule): `chains` maps a kernel to (the tensor whose gradient it reads, the gradients it writes);
    a gradient written alone by one kernel and read by the next merges them. Accumulated gradients (a
    tensor read by several ops) have an accumulation kernel in between and never match."""
    accumulated = {k.name.split("#accumulate")[0] for k in kernels if "#accumulate" in k.name}
    writer = {}  # tensor -> the (possibly merged) kernel that writes its gradient alone
    out: list[Kernel] = []
    for k in kernels:
        if k.name not in chains:
            out.append(k)
            continue
        reads, writes = chains[k.name]
        before = writer.pop(reads, None)
        if before is not None and reads not in accumulated:
            i = out.index(before)
            saved = 2 * gradient_bytes(reads)
            node = {"stage": before.stage, "block": before.block}
            k = _kernel(f"{before.name}+{k.name}", f"{before.op}+{k.op}", node, 0, before.flops + k.flops,
                        before.bytes + k.bytes - saved, VECTOR, device, dtype, rt)
            out[i] = k
        else:
            out.append(k)
        if len(writes) == 1:
            writer[writes[0]] = k
    return out


def optimizer_bytes_per_param(precision: str, optimizer: str, half: str) -> int:
    """Bytes the update moves per parameter (the optimizer rule in the module's docstring)."""
    if optimizer not in OPTIMIZER_SLOTS:
        raise EffplanError(f"unknown optimizer '{optimizer}'; known: {', '.join(OPTIMIZER_SLOTS)}")
    _, _, grad, state = PRECISIONS[precision]
    moved = 2 * MASTER_BYTES[precision] + grad + 2 * OPTIMIZER_SLOTS[optimizer] * state
    if precision == "mixed":
        moved += HALF_COPY_BYTES + (SCALER_BYTES if half == "fp16" else 0)
    return moved


def optimizer_launches(tensors: int, optimizer: str, launch: str) -> int:
    """Kernels the update launches for `tensors` parameter tensors (OPTIMIZER_OPS, CHUNK_TENSORS)."""
    chunks = max(1, -(-tensors // CHUNK_TENSORS))
    return {"single": 1, "fused": chunks, "foreach": OPTIMIZER_OPS[optimizer] * chunks,
            "for-loop": OPTIMIZER_OPS[optimizer] * max(1, tensors)}[launch]


def optimizer_kernels(params: int, device: Device, precision: str, optimizer: str, dtype: str, rt: Runtime,
                      tensors: int = 1) -> list[Kernel]:
    """The update as the runtime launches it: its bytes and FLOPs shared evenly over optimizer_launches kernels,
    each paying the runtime's launch; with fp16 mixed precision under a launching runtime, GradScaler's
    unscale-and-inf-check (one foreach launch a chunk: torch.cuda.amp.GradScaler, _amp_foreach_non_finite_check_
    and_unscale_) and scale update (one kernel) before it."""
    update_dtype = "fp32" if "fp32" in device.vector else dtype
    moved = params * optimizer_bytes_per_param(precision, optimizer, dtype)
    if rt.weight_casts and precision == "mixed":  # the half copies are the forward's cast kernels here
        moved -= params * HALF_COPY_BYTES
    node = {"stage": "optimizer", "block": 0}
    launches = optimizer_launches(tensors, optimizer, rt.optimizer_launch)
    flops = params * OPTIMIZER_FLOPS[optimizer]
    out = []
    if rt.optimizer_launch != "single" and precision == "mixed" and dtype == "fp16":
        chunks = max(1, -(-tensors // CHUNK_TENSORS))
        moved -= params * SCALER_BYTES
        out += [_kernel(f"optimizer#unscale{i}", "GradScaler unscale+inf check", node, 0, params // chunks,
                        params * SCALER_BYTES // chunks, VECTOR, device, update_dtype, rt) for i in range(chunks)]
        out.append(_kernel("optimizer#scale", "GradScaler update", node, 0, 1, 8, VECTOR, device, update_dtype, rt))
    name = lambda i: "optimizer" if launches == 1 else f"optimizer#{i}"  # noqa: E731
    return out + [_kernel(name(i), f"{optimizer} update", node, 0, flops / launches, moved / launches, VECTOR,
                          device, update_dtype, rt) for i in range(launches)]


# ---- a step ----

@dataclass(frozen=True)
class Step:
    device: Device
    runtime: Runtime
    precision: str
    optimizer: str
    checkpoint: str
    dtype: str  # the arithmetic's precision
    batch: int  # per device
    devices: int
    forward: tuple[Kernel, ...]
    backward: tuple[Kernel, ...]
    recompute: tuple[Kernel, ...]
    update: tuple[Kernel, ...]  # the optimizer's kernels as launched
    params: int
    gradient_bytes: int
    link: Link | None
    allreduce_s: float  # the whole all-reduce
    communication_s: float  # the part not hidden behind backward
    memory_bytes: int  # per device
    input_rate: float | None = None  # images/s the input pipeline feeds all devices together; None: not modelled

    @functools.cached_property  # a step is frozen; its shares and throughput read these again and again
    def forward_s(self) -> float:
        return sum(k.time_s for k in self.forward)

    @functools.cached_property  # a step is frozen; its shares and throughput read these again and again
    def backward_s(self) -> float:
        return sum(k.time_s for k in self.backward)

    @functools.cached_property  # a step is frozen; its shares and throughput read these again and again
    def recompute_s(self) -> float:
        return sum(k.time_s for k in self.recompute)

    @functools.cached_property
    def optimizer_s(self) -> float:
        return sum(k.time_s for k in self.update)

    @property
    def optimizer_step(self) -> Kernel:
        """The update's kernels as one (their bytes, FLOPs and times summed; they share one shape)."""
        if len(self.update) == 1:
            return self.update[0]
        total = lambda attr: sum(getattr(k, attr) for k in self.update)  # noqa: E731
        return dataclasses.replace(self.update[-1], name="optimizer", bytes=total("bytes"), flops=total("flops"),
                                   compute_s=total("compute_s"), memory_s=total("memory_s"),
                                   overhead_s=total("overhead_s"), wait_s=total("wait_s"))

    @property
    def device_time_s(self) -> float:
        return self.forward_s + self.backward_s + self.recompute_s + self.optimizer_s + self.communication_s

    @property
    def time_s(self) -> float:
        """The step, or the time the input pipeline takes to deliver its images where that is longer."""
        fed = self.batch * self.devices / self.input_rate if self.input_rate else 0.0
        return max(self.device_time_s, fed)

    @property
    def input_bound(self) -> bool:
        return self.time_s > self.device_time_s

    @property
    def images_per_s(self) -> float:  # per device
        return self.batch / self.time_s

    @property
    def speedup(self) -> float:
        """Throughput of all devices over one device's (the same per-device step without the all-reduce), each
        capped at the input pipeline's rate where one is given."""
        cap = self.input_rate or float("inf")
        one = min(self.batch / (self.device_time_s - self.communication_s), cap)
        return min(self.batch * self.devices / self.device_time_s, cap) / one


def training_step(graph, device: Device, *, runtime: str | Runtime | None = None,
                  precision: str = DEFAULT_PRECISION, optimizer: str = DEFAULT_OPTIMIZER, checkpoint: str = "none",
                  devices: int = 1, link: Link | None = None, input_rate: float | None = None) -> Step:
    """One training step of a graph (built at the per-device batch) on `devices` devices, under `runtime`
    (a name, a runtime file or a Runtime; default: the device class's training runtime). `input_rate`: images/s
    the input pipeline delivers to all devices together (default: the device file's [host] input_rate, else not
    modelled: excluded)."""
    rt = training_runtime_for(device, runtime)
    input_rate = device.host.get("input_rate") if input_rate is None else input_rate
    if input_rate is not None and not input_rate > 0:
        raise EffplanError(f"--input-rate must be positive images/s, got {input_rate:g}")
    if checkpoint not in ("none", "blocks"):
        raise EffplanError(f"unknown checkpoint mode '{checkpoint}'; known: none, blocks")
    if devices < 1:
        raise EffplanError(f"--devices must be at least 1, got {devices}")
    dtype = compute_dtype(device, precision)
    act = PRECISIONS[precision][0]
    casts = rt.weight_casts and precision == "mixed"  # autocast casts each weight in the forward (roofline)
    forward = forward_kernels(graph, device, dtype, rt, casts=casts) + batch_norm_statistics(graph, device, dtype, act, rt)
    backward = backward_kernels(graph, device, dtype, precision, rt)
    recompute = [k for k in forward if isinstance(k.stage, int)] if checkpoint == "blocks" else []
    params = graph_weights(graph)[0]
    tensors = sum(w.trainable for n in graph.nodes for w in graph.nodes[n]["weights"])
    update = optimizer_kernels(params, device, precision, optimizer, dtype, rt, tensors)
    # one stream: forward, the recomputed blocks and the backward, then the update (roofline.sequence)
    timed = sequence([*forward, *recompute, *backward, *update])
    cut = [len(forward), len(forward) + len(recompute), len(timed) - len(update)]
    forward, recompute, backward, update = timed[:cut[0]], timed[cut[0]:cut[1]], timed[cut[1]:cut[2]], timed[cut[2]:]
    gradient_bytes = params * PRECISIONS[precision][2]
    if devices > 1 and link is None:
        link = device_link(device)
        if link is None:
            raise EffplanError(f"device {device.name} has no interconnect figure for --devices {devices}; "
                               f"give the link with --link-gbs")
    if devices > 1 and rt.allreduce == "bucketed":
        whole, exposed = bucketed_allreduce_s(backward, gradient_kernels(graph, backward, PRECISIONS[precision][2]),
                                              devices, link)
    else:  # after-backward: one call once the backward ends, nothing hidden
        whole = exposed = (link.latency_s + ring_allreduce_s(gradient_bytes, devices, link.bytes_per_s)
                           if devices > 1 else 0.0)
    if devices > 1:  # the processes meet every step: what the runtime's [training] says that costs beyond the all-reduce
        whole, exposed = whole + rt.data_parallel_overhead(device), exposed + rt.data_parallel_overhead(device)
    batch = graph.graph["tensors"][graph.graph["inputs"][0]][0]
    memory = training_memory(graph, precision, optimizer, checkpoint).total_bytes
    return Step(device, rt, precision, optimizer, checkpoint, dtype, batch, devices, tuple(forward),
                tuple(backward), tuple(recompute), tuple(update), params, gradient_bytes, link if devices > 1 else None, whole,
                exposed, memory, input_rate)


# ---- a run ----
