"""Memory: the inference peak by liveness, training memory per step, and the largest batch that fits.

Every function reads tensor shapes from the graph and multiplies activation sizes by `scale`,
so a graph built at batch 1 answers for any batch (all activations carry the batch dimension).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from ..base.errors import EffplanError
from ..graph.builder import _derived, readers
from ..graph.composite import attention_views, composites
from ..graph.ops import INDICES, INPUT, INPUTS, MASK, OPERANDS, OPS, OUTPUT, STATISTICS, graph_weights, weight_bytes


@dataclass(frozen=True)
class Peak:
    bytes: int
    node: str  # the op running when the peak occurs ("" if it is the input alone)
    live: tuple[str, ...]  # the tensors live then
    order: tuple[str, ...] = ()  # the schedule the nodes ran in
    timeline: tuple[int, ...] = ()  # live bytes while each node of `order` runs


def se_multiplies(graph) -> set[str]:
    """The squeeze-excitation scale: a Mul by a per-channel [N, C, 1, 1] gate whose only reader is a Conv.
    Fused, the conv reads the feature map and the gate and the product is never stored."""
    tensors, read = graph.graph["tensors"], readers(graph)
    fused = set()
    for name in graph.nodes:
        node = graph.nodes[name]
        if node["op"] != "Mul" or len(node["inputs"]) != 2:
            continue
        shapes = [tensors[t] for t in node["inputs"]]
        (out,) = node["outputs"]
        gate = any(len(s) == 4 and s[2:] == (1, 1) for s in shapes) and any(s == tensors[out] for s in shapes)
        consumers = read.get(out, [])
        if gate and len(consumers) == 1 and graph.nodes[consumers[0]]["op"] == "Conv" \
                and out not in graph.graph["outputs"]:
            fused.add(name)
    return fused


def live_steps(graph, *, order=None, inplace: bool = False, fuse_se: bool = False):
    """The schedule's structure: (order, the tensors holding memory at the start, and for each node
    the tensors holding memory while it runs). Which tensors are live does not depend on their sizes,
    so one schedule serves every resolution and batch (see `inference_peak` and the search).

    A tensor is live from the start of its producer until its last reader has run; while a node
    runs, its inputs and outputs are live together. The graph input counts, weights do not.
    A composite op (graph/composite.py: Swish, GELU, HardSwish, a decomposed LayerNorm) is one op, as
    frameworks run it: the tensors inside it are never stored.
    `inplace`: an elementwise op writes over an input of its output's shape that no later op reads
    (never the graph input). `fuse_se`: squeeze-excitation multiplies run inside the next conv.
    Computed once per graph and options (`fit` asks at several batches, a command asks again).
    """
    key = ("live_steps", None if order is None else tuple(order), inplace, fuse_se)
    return _derived(graph, key, lambda g: _live_steps(g, order, inplace, fuse_se))


# Planning memory costs time in the ops that run side by side: the timeline holds each step's live set, and
# the memory-aware order weighs every ready chain at each step. A hostile graph of 10^5 parallel ops would
# take hours and gigabytes; these bound the work (about 5 s and 10 s; docs/robustness.md), where a real
# network's (EfficientNet-L2: 2,000 ops, 10 live at once) is 10^4 times less.
MAX_LIVE_ENTRIES = 25_000_000  # live tensors summed over the steps
MAX_CHAINS_WEIGHED = 2_000_000  # ready chains summed over the steps of the memory-aware order


def _too_wide(graph, what: str) -> EffplanError:
    return EffplanError(f"{graph.graph.get('name', 'the model')}: {what}: too many ops run side by side to plan "
                        f"its memory ({len(graph.nodes):,} ops)")


def _live_steps(graph, order, inplace: bool, fuse_se: bool):
    order = list(order or graph.nodes)
    position = {name: i for i, name in enumerate(order)}
    tensors, read = graph.graph["tensors"], readers(graph)
    fused = se_multiplies(graph) if fuse_se else set()
    last_use = {t: max(map(position.__getitem__, names)) for t, names in read.items()}
    stored = set(tensors) - swish_gates(graph)
    for name in fused:  # the fused multiply's operands stay until its conv has run
        (out,) = graph.nodes[name]["outputs"]
        for t in graph.nodes[name]["inputs"]:
            last_use[t] = max(last_use[t], last_use[out])
        stored.discard(out)
    for t in graph.graph["outputs"]:
        last_use[t] = len(order)

    live = dict.fromkeys(graph.graph["inputs"])  # insertion-ordered set
    start, steps, entries = tuple(live), [], 0
    for i, name in enumerate(order):
        node = graph.nodes[name]
        for t in node["outputs"]:
            source = _overwritten(node, t, tensors, live, last_use, i, graph) if inplace else None
            if source is not None:
                del live[source]  # the output takes over the input's buffer
            live[t] = None
        steps.append(tuple(filter(stored.__contains__, live)))
        entries += len(live)
        if entries > MAX_LIVE_ENTRIES:
            raise _too_wide(graph, f"more than {MAX_LIVE_ENTRIES:,} live tensors summed over its steps")
        for t in [t for t in live if last_use.get(t, i) <= i]:
            del live[t]
    return tuple(order), start, tuple(steps)  # shared by every caller: not to be changed


def swish_gates(graph) -> set[str]:
    """The tensors inside composite ops (Swish's gate, GELU's Div and Erf outputs...): never stored."""
    return _derived(graph, "inner", lambda g: {t for c in composites(g).values() for t in c.inner})


def inference_peak(graph, dtype_bytes: int, *, order=None, inplace: bool = False, fuse_se: bool = False,
                   scale: int = 1) -> Peak:
    """Largest total of live activation tensors while the nodes run in `order` (default: stored
    order); the rules are those of `live_steps`. Computed once per graph and options in stored order
    (a command's profile, memory plan and report each ask)."""
    if order is None and type(dtype_bytes) is int and type(scale) is int:
        key = ("peak", dtype_bytes, inplace, fuse_se, scale)
        return _derived(graph, key, lambda g: _peak(g, dtype_bytes, None, inplace, fuse_se, scale))
    return _peak(graph, dtype_bytes, order, inplace, fuse_se, scale)


def _peak(graph, dtype_bytes, order, inplace: bool, fuse_se: bool, scale) -> Peak:
    order, start, steps = live_steps(graph, order=order, inplace=inplace, fuse_se=fuse_se)
    tensors = graph.graph["tensors"]
    size = {t: math.prod(s) * dtype_bytes * scale for t, s in tensors.items()}
    timeline = [sum(map(size.__getitem__, live)) for live in steps]
    best = (sum(size[t] for t in start), "", start)
    for name, live, total in zip(order, steps, timeline):
        if total > best[0]:
            best = (total, name, live)
    return Peak(best[0], best[1], best[2], tuple(order), tuple(timeline))


def _overwritten(node, out, tensors, live, last_use, i, graph):
    if node["op"] not in OPS or not OPS[node["op"]].in_place:
        return None
    for t in node["inputs"]:
        if t in live and tensors[t] == tensors[out] and last_use.get(t) == i and t not in graph.graph["inputs"]:
            return t
    return None


def memory_aware_order(graph, dtype_bytes: int = 4) -> list[str]:
    """A topological order for branchy graphs: among the chains of ops ready to run (a chain runs
    until a fork or a join), run first the one whose own peak stands highest above what it leaves
    live (the rule that orders independent branches of a fork optimally); ties keep stored order."""
    tensors, read = graph.graph["tensors"], readers(graph)
    gates = swish_gates(graph)
    size = {t: 0 if t in gates else math.prod(s) * dtype_bytes for t, s in tensors.items()}
    stored = {name: i for i, name in enumerate(graph.nodes)}
    pending = {t: len(r) for t, r in read.items()}
    waiting = {name: graph.in_degree(name) for name in graph.nodes}
    keep = set(graph.graph["outputs"]) | set(graph.graph["inputs"])

    def chain(start):
        nodes = [start]
        while graph.out_degree(nodes[-1]) == 1:
            (nxt,) = graph.successors(nodes[-1])
            if graph.in_degree(nxt) != 1:
                break
            nodes.append(nxt)
        return nodes

    def priority(nodes):
        """(-(chain peak - what it leaves live), stored position): smaller runs first."""
        left, grown, top, readers_left = 0, 0, 0, {}  # readers left of the tensors this chain reads
        for name in nodes:
            node = graph.nodes[name]
            grown += sum(size[t] for t in node["outputs"])
            top = max(top, grown)
            for t in set(node["inputs"]):
                readers_left[t] = readers_left.get(t, pending[t]) - 1
                if readers_left[t] == 0 and t not in keep:
                    grown -= size[t]
        left = grown
        return (-(top - left), stored[nodes[0]])

    order: list[str] = []
    ready = [name for name, n in waiting.items() if n == 0]
    weighed = 0
    while ready:
        weighed += len(ready)
        if weighed > MAX_CHAINS_WEIGHED:
            raise _too_wide(graph, f"its memory-aware order would weigh more than {MAX_CHAINS_WEIGHED:,} chains")
        nodes = min((chain(r) for r in ready), key=priority)
        ready.remove(nodes[0])
        members = set(nodes)  # a set: a chain of 10^5 ops asked once per op
        for name in nodes:
            order.append(name)
            for t in set(graph.nodes[name]["inputs"]):
                pending[t] -= 1
            for successor in graph.successors(name):
                waiting[successor] -= 1
                if waiting[successor] == 0 and successor not in members:
                    ready.append(successor)
    return order


def order_peaks(graph, dtype_bytes: int, **options) -> tuple[Peak, Peak]:
    """(peak in stored order, peak in memory-aware order)."""
    plain = inference_peak(graph, dtype_bytes, **options)
    return plain, inference_peak(graph, dtype_bytes, order=memory_aware_order(graph, dtype_bytes), **options)


def best_order_peak(graph, dtype_bytes: int, **options) -> tuple[Peak, Peak]:
    """(peak in stored order, peak in the better of stored and memory-aware order)."""
    plain, aware = order_peaks(graph, dtype_bytes, **options)
    return plain, min(plain, aware, key=lambda p: p.bytes)


@dataclass(frozen=True)
class InferenceMemory:
    plain: Peak  # stored order, as runtimes run the graph
    aware: Peak  # memory-aware order
    peak: Peak  # the headline: plain, or the better of the two when the order asked is "aware"
    weight_bytes: int
    live: tuple[tuple[str, int], ...]  # (tensor, bytes) live at the headline peak, largest first


def inference_memory(graph, dtype_bytes: int, *, order: str = "plain", inplace: bool = False,
                     fuse_se: bool = False) -> InferenceMemory:
    """What `effplan memory` reports for inference: both orders' peaks, the headline, weights, the live tensors."""
    plain, aware = order_peaks(graph, dtype_bytes, inplace=inplace, fuse_se=fuse_se)
    peak = min(plain, aware, key=lambda p: p.bytes) if order == "aware" else plain
    tensors = graph.graph["tensors"]
    live = sorted(((t, math.prod(tensors[t]) * dtype_bytes) for t in peak.live if t in tensors), key=lambda x: -x[1])
    return InferenceMemory(plain, aware, peak, weight_bytes(graph, dtype_bytes), tuple(live))


# ---- training ----

# What each op's backward keeps is in its entry of the op table (graph/ops/). A composite op
# (graph/composite.py) saves what its one op saves: Swish (SiLU, no entry of its own) its input.
SWISH_SAVES = (INPUT,)
OPTIMIZER_SLOTS = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}  # state tensors per parameter
# (activation and activation-gradient bytes, weight bytes per param, weight-gradient bytes, optimizer bytes per slot)
PRECISIONS = {
    "fp32": (4, 4, 4, 4),
    "tf32": (4, 4, 4, 4),  # fp32 storage, TF32 matrix math (torch.backends.cuda.matmul/cudnn.allow_tf32)
    "fp16": (2, 2, 2, 2),
    "bf16": (2, 2, 2, 2),
    "mixed": (2, 6, 4, 4),  # fp32 master weights + the half-precision copy autocast keeps; fp32 grads and state
}
# The one set of training defaults (the CLI, budgets and the Python API): how image models train today.
DEFAULT_PRECISION, DEFAULT_OPTIMIZER = "mixed", "adamw"
# Kept back from a device's memory for the runtime's context, workspace and fragmentation (fit, train, the API).
DEFAULT_RESERVE = "10%"


@dataclass(frozen=True)
class Training:
    precision: str
    optimizer: str
    checkpoint: str
    activation_bytes: int  # saved for backward (after checkpointing)
    weight_bytes: int
    gradient_bytes: int
    optimizer_bytes: int
    transient_bytes: int  # the largest op's output and input gradients, live together in backward
    recompute_flops: int  # extra forward FLOPs of checkpointing
    activation_bytes_without_checkpoint: int
    saved: dict  # node -> bytes saved for backward (before checkpointing), each tensor once: see _saved_once

    @property
    def total_bytes(self) -> int:
        return (self.activation_bytes + self.weight_bytes + self.gradient_bytes + self.optimizer_bytes
                + self.transient_bytes)


def refuse_untrainable(graph) -> None:
    """One line for a graph that cannot be trained (an op whose Backward is `refused`: a file quantized
    for inference)."""
    for name in graph.nodes:
        entry = OPS.get(graph.nodes[name]["op"])
        if entry and entry.backward and entry.backward.refused:
            raise EffplanError(f"cannot plan training: {entry.backward.refused} (layer {name})")


def _saved_by(graph, name: str, act_bytes: int, scale: int, tensors: dict, parts: dict) -> dict[str, int]:
    """The tensors (or derived buffers, keyed by name) a node's backward needs, with their bytes.
    `parts` (composites(graph)) maps each node of a composite op to it: its last node stands for the
    whole op, saving what the op saves; the others save nothing."""
    node = graph.nodes[name]
    op, inputs = node["op"], [t for t in node["inputs"] if t in tensors]
    if op not in OPS:
        raise EffplanError(f"training memory: no rule for what {op} saves for backward (layer {name})")
    saves, groups = OPS[op].saves, None
    if name in parts:
        whole = parts[name]
        if name != whole.nodes[-1]:
            return {}
        if whole.kind == "Attention":
            return _attention_saves(graph, whole, act_bytes, scale, tensors)
        op, inputs, groups = whole.kind, [whole.input], whole.groups * scale
        saves = OPS[op].saves if op in OPS else SWISH_SAVES
    (out,) = node["outputs"][:1]
    saved = {}
    for what in saves:
        if what == INPUT:
            saved[inputs[0]] = math.prod(tensors[inputs[0]]) * act_bytes * scale
        elif what == OPERANDS:  # x * scale keeps nothing of x; x * gamma, a * b keep their activations
            learned = any(w.trainable for w in node["weights"])
            graded = [o for o in inputs if o not in _gradientless(graph)]  # a drop path's mask needs none
            saved.update({t: math.prod(tensors[t]) * act_bytes * scale for t in inputs
                          if learned or any(o != t for o in graded)})
        elif what == INPUTS:
            saved.update({t: math.prod(tensors[t]) * act_bytes * scale for t in inputs})
        elif what == OUTPUT:
            saved[out] = math.prod(tensors[out]) * act_bytes * scale
        elif what == STATISTICS:  # fp32, counted at the full batch
            at_batch = (tensors[out][0] * scale, *tensors[out][1:])
            saved[f"{name}#stats"] = 2 * (groups or OPS[op].statistics(node["attrs"], at_batch)) * 4
        elif what == INDICES:
            saved[f"{name}#indices"] = math.prod(tensors[out]) * 8 * scale
        elif what == MASK and node["attrs"].get("ratio", 0.5) == 0:  # a Dropout that drops nothing: no mask
            continue
        elif what == MASK:
            saved[f"{name}#mask"] = math.prod(tensors[out]) * scale
    return saved


def _gradientless(graph) -> set[str]:
    """Tensors no gradient reaches: outputs of ops that carry none (Backward.gradient: comparisons, Floor,
    random draws) and of ops reading only such tensors or constants."""
    def compute(g):
        found: set[str] = set()
        for name in g.nodes:
            node = g.nodes[name]
            entry = OPS.get(node["op"])
            if (entry and entry.backward and not entry.backward.gradient) or (
                    node["inputs"] and not node["weights"] and all(t in found for t in node["inputs"])):
                found.update(node["outputs"])
        return found
    return _derived(graph, "gradientless", compute)


def _attention_saves(graph, whole, act_bytes: int, scale: int, tensors: dict) -> dict[str, int]:
    """What scaled_dot_product_attention keeps for backward (flash and memory-efficient kernels): q, k, v, its
    output, a mask or bias that is an activation, and a logsumexp per row (fp32), never the scores."""
    kept = [*whole.operands, graph.nodes[whole.nodes[-1]]["outputs"][0]]  # q, k, v, any mask, the output
    saved = {t: math.prod(tensors[t]) * act_bytes * scale for t in dict.fromkeys(kept) if t in tensors}
    saved[f"{whole.nodes[-1]}#logsumexp"] = whole.groups * scale * 4
    return saved


def storage_views(graph) -> dict[str, str]:
    """Tensors PyTorch holds as views of another tensor's storage, each -> that tensor: an attention's output seen
    through its transpose back (composite.attention_views); what a Gather of one constant index picks (x[:, 0],
    ViT's class token; qkv[0], qkv[1], qkv[2]: aten::select is a view, so what saves it keeps the whole tensor
    alive); a Transpose (transpose and permute are views: k.transpose(-2, -1) saved by a product is k's storage);
    and a Dropout that drops nothing or an Identity (the tensor itself)."""
    def compute(g):
        tensors, views = g.graph["tensors"], dict(attention_views(g))
        for n in g.nodes:  # stored order: a view's base is resolved before it
            node = g.nodes[n]
            if not node["inputs"] or node["weights"]:
                continue
            x, y = node["inputs"][0], node["outputs"][0]
            select = node["op"] == "Gather" and len(node["inputs"]) == 1 and len(tensors[y]) == len(tensors[x]) - 1
            nothing = node["op"] == "Dropout" and node["attrs"].get("ratio", 0.5) == 0
            if select or nothing or node["op"] in ("Identity", "Transpose"):
                views[y] = views.get(x, x)
        return views
    return _derived(graph, "storage_views", compute)


def _blocks(graph) -> dict[tuple, list[str]]:
    """The nodes of every block inside a stage (stem and head are not checkpointed)."""
    blocks: dict[tuple, list[str]] = {}
    for name in graph.nodes:
        node = graph.nodes[name]
        if isinstance(node["stage"], int):
            blocks.setdefault((node["stage"], node["block"]), []).append(name)
    return blocks


def training_memory(graph, precision: str = DEFAULT_PRECISION, optimizer: str = DEFAULT_OPTIMIZER,
                    checkpoint: str = "none",
                    scale: int = 1, shapes: dict | None = None) -> Training:
    """Memory of one training step: saved activations, weights, gradients, optimizer state and the
    backward's transient gradients. `checkpoint="blocks"` stores only each block's inputs and
    recomputes its forward during backward, one block at a time. `shapes` replaces the graph's
    tensor shapes (numpy sides: many resolutions at once, without checkpointing)."""
    from ..graph.ops import node_cost

    if precision not in PRECISIONS:
        raise EffplanError(f"unknown precision '{precision}'; known: {', '.join(PRECISIONS)}")
    if optimizer not in OPTIMIZER_SLOTS:
        raise EffplanError(f"unknown optimizer '{optimizer}'; known: {', '.join(OPTIMIZER_SLOTS)}")
    refuse_untrainable(graph)
    act, weight, grad, state = PRECISIONS[precision]
    tensors = shapes or graph.graph["tensors"]
    parts, gates = composites(graph), swish_gates(graph)
    views = storage_views(graph)  # a tensor saved as a view keeps its base's storage (each storage once)
    saved = {name: {views.get(t, t): (math.prod(tensors[views[t]]) * act * scale if t in views else b)
                    for t, b in _saved_by(graph, name, act, scale, tensors, parts).items()}
             for name in graph.nodes}
    everything: dict[str, int] = {}
    for per_node in saved.values():
        everything.update(per_node)
    activations = plain = sum(everything.values())
    recompute = 0
    if checkpoint == "blocks":
        blocks = _blocks(graph)
        inside = {n for names in blocks.values() for n in names}
        resident: dict[str, int] = {}
        for name in graph.nodes:
            if name not in inside:
                resident.update(saved[name])
        produced_in = {t: key for key, names in blocks.items() for n in names for t in graph.nodes[n]["outputs"]}
        for key, names in blocks.items():  # a block's inputs from outside it are stored
            for n in names:
                for t in graph.nodes[n]["inputs"]:
                    if t in tensors and produced_in.get(t) != key:
                        resident[t] = math.prod(tensors[t]) * act * scale
        largest = max((sum(b for t, b in {k: v for n in names for k, v in saved[n].items()}.items()
                           if t not in resident) for names in blocks.values()), default=0)
        activations = sum(resident.values()) + largest
        recompute = scale * sum(node_cost(graph, n, act).flops for names in blocks.values() for n in names)
    elif checkpoint != "none":
        raise EffplanError(f"unknown checkpoint mode '{checkpoint}'; known: none, blocks")
    params, buffers = graph_weights(graph)
    maximum = max if shapes is None else functools.partial(functools.reduce, np.maximum)  # numpy sides: elementwise
    transient = maximum([
        sum(math.prod(tensors[t]) for t in {*node["inputs"], *node["outputs"]} if t in tensors and t not in gates)
        for _, node in graph.nodes(data=True)]) * act * scale
    if np.ndim(transient) == 0:
        transient = int(transient)
    return Training(precision, optimizer, checkpoint, activations,
                    weight * params + (4 if precision == "mixed" else weight) * buffers,
                    grad * params, OPTIMIZER_SLOTS[optimizer] * state * params, transient, recompute, plain,
                    _saved_once(graph, saved))


def _saved_once(graph, saved: dict) -> dict[str, int]:
    """Saved bytes per node with each tensor counted once, on its producer's row (the network input on
    the first node that saves it, a derived buffer such as BN statistics on its own node): the rows
    sum to the activations saved before checkpointing."""
    producer = {t: n for n in graph.nodes for t in graph.nodes[n]["outputs"]}
    rows, seen = dict.fromkeys(saved, 0), set()
    for name, per_node in saved.items():
        for tensor, size in per_node.items():
            if tensor not in seen:
                seen.add(tensor)
                rows[producer.get(tensor, name)] += size
    return rows


# ---- the largest batch ----

@dataclass(frozen=True)
class Fit:
    batch: int  # 0 when not even one sample fits
    bytes_at_batch: int
    bytes_at_next_batch: int
    budget_bytes: int
    fixed_bytes: int  # memory(b) = fixed + per_sample * b
    per_sample_bytes: int


def largest_batch(memory_at, budget: int, limit: int = 1 << 40) -> Fit:
    """The largest b with memory_at(b) <= budget < memory_at(b + 1), for memory affine in b:
    solved from two evaluations, then confirmed (and corrected) by evaluating b and b + 1."""
    one, two = memory_at(1), memory_at(2)
    per_sample, fixed = two - one, 2 * one - two
    if per_sample <= 0:
        raise EffplanError("memory does not grow with the batch; no largest batch to solve for")
    b = max(min((budget - fixed) // per_sample, limit), 0)
    while b > 0 and memory_at(b) > budget:
        b -= 1
    while memory_at(b + 1) <= budget and b < limit:
        b += 1
    return Fit(b, memory_at(b) if b else 0, memory_at(b + 1), budget, fixed, per_sample)


def inference_graph(design, batch: int, fold_bn: bool = False):
    """A design's graph at a batch as inference runs it: BatchNormalization folded into the convs with `fold_bn`."""
    from ..design.blocks import build
    from ..graph.builder import fold_batch_norm

    graph = build(design, batch)
    return fold_batch_norm(graph) if fold_bn else graph


def memory_by_batch(design, *, train: bool = False, dtype: str = "fp32", precision: str = DEFAULT_PRECISION,
                    optimizer: str = DEFAULT_OPTIMIZER, checkpoint: str = "none", inplace: bool = False,
                    fold_bn: bool = False, fuse_se: bool = False, order: str = "plain"):
    """batch -> bytes a design needs: a training step (`train`), else weights + the inference peak
    (with the inference options of `effplan memory`). The graph is built once, at batch 1."""
    from ..design.blocks import build
    from ..base.units import dtype_size

    if train:
        graph = build(design, 1)
        return lambda b: training_memory(graph, precision, optimizer, checkpoint, scale=b).total_bytes
    graph, size = inference_graph(design, 1, fold_bn), dtype_size(dtype)
    weights = weight_bytes(graph, size)
    schedule = best_order_peak(graph, size, inplace=inplace, fuse_se=fuse_se)[1].order if order == "aware" else None
    return lambda b: weights + inference_peak(graph, size, order=schedule, inplace=inplace, fuse_se=fuse_se,
                                              scale=b).bytes


def memory_budget(memory, reserve=DEFAULT_RESERVE) -> tuple[int, int]:
    """(capacity, budget): `memory` (bytes, or text: '16GiB', '16g') and what is left of it after `reserve`
    ('10%' of it, or an amount); refused when nothing is left."""
    from ..base.units import human_bytes, parse_bytes, parse_reserve

    capacity = memory if isinstance(memory, int) and not isinstance(memory, bool) else parse_bytes(memory, "--memory")
    if capacity <= 0:
        raise EffplanError(f"--memory '{memory}' must be more than 0 bytes")
    budget = capacity - parse_reserve(reserve, capacity)
    if budget <= 0:
        raise EffplanError(f"--reserve {reserve} is the whole capacity ({human_bytes(capacity)}) or more: "
                           f"nothing is left for the model")
    return capacity, budget


def fit(design, memory, *, reserve=DEFAULT_RESERVE, **options) -> Fit:
    """The largest batch of a design (or model name) within `memory` (bytes, or text: '16GiB', '16g') less `reserve`
    (default 10% of it, as `effplan fit`); `options` as memory_by_batch (train=True for a training step)."""
    from ..design.scaling import resolve

    design = resolve(design) if isinstance(design, str) else design
    return largest_batch(memory_by_batch(design, **options), memory_budget(memory, reserve)[1])
