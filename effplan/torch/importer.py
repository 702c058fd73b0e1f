"""An exported program (torch.export) into effplan's graph: one node per aten op that computes on
activations, named by its module path, shaped by what torch.export inferred with the batch bound.

- Parameters and buffers come from the graph signature. Each is counted once, on the first op that reads
  it (directly, or through ops that compute only from weights, such as a transpose or view of a
  weight: those are folded, as a runtime folds them); a later reader gets the shape for its costs and
  no elements (tied weights). Integer buffers (BatchNorm's num_batches_tracked, index tables) are not
  counted: effplan's buffers are floating state sized at the weights' dtype.
- Ops map to the op table through aten.py; silu is Sigmoid then Mul, the form effplan writes Swish in
  (memory.py then saves only x, as PyTorch's silu does); an aten op with no rule keeps its aten name
  and is reported as unknown.
- Stages and blocks come from each node's module path (its nn_module_stack): see `places`.
"""
from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass

from ..base.errors import EffplanError
from ..graph.builder import Weight
from ..graph.digraph import DiGraph
from ..graph.ops import OPS
from .aten import RULES, aten_name, bind, describe


class TorchError(EffplanError):
    pass


@dataclass(frozen=True, slots=True)
class SourcedWeight(Weight):
    """A weight seen at an op through a view (or a second time): its shape serves the op's costs, its
    size is the elements it adds to the totals."""

    elements: int = 0

    @property
    def size(self) -> int:
        return self.elements


def _is_tensor(value) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype")


class Shapes:
    """Concrete shapes of an exported program's values, its symbolic batch bound to `batch`."""

    def __init__(self, program, batch: int):
        self.binding = {}
        for spec in program.graph_signature.input_specs:
            if spec.kind.name == "USER_INPUT":
                node = next(n for n in program.graph.nodes if n.name == spec.arg.name)
                first = node.meta["val"].shape[0]
                if not isinstance(first, int):
                    import sympy

                    self.binding[first.node.expr] = sympy.Integer(batch)
                break

    def __call__(self, value, what: str) -> tuple[int, ...]:
        out = []
        for d in value.shape:
            if not isinstance(d, int):
                expr = d.node.expr.xreplace(self.binding)
                if not expr.is_number:
                    raise TorchError(f"{what}: a dimension torch.export could not bind ({d}); effplan binds only "
                                     f"the batch")
                d = int(expr)
            out.append(d)
        return tuple(out)


def _module_path(node) -> tuple[str, str]:
    """(innermost module path, its class) of a node; ('', '') at the top module."""
    stack = node.meta.get("nn_module_stack") or {}
    for path, kind in reversed(list(stack.values())):
        if not path.startswith("_empty"):
            return path, kind if isinstance(kind, str) else getattr(kind, "__qualname__", str(kind))
    return "", ""


INDEXED = re.compile(r"^([A-Za-z_]*?)(\d+)$")  # '3' (a Sequential's child) or 'layer3' (a numbered name)
BLOCK_CONTAINERS = {"blocks", "layers", "block", "layer"}
NAMED_BLOCKS = {"b", "block", "blk", "unit"}  # timm's RegNet s1.b1: blocks numbered from 1


def _block(rest: list[str]):
    """(block, the layer's path tokens) from what follows a stage's index; (None, rest) outside a block."""
    found = INDEXED.match(rest[0]) if rest else None
    if found and not found.group(1):
        return int(found.group(2)), rest[1:]
    if found and found.group(1) in NAMED_BLOCKS:
        return int(found.group(2)) - 1, rest[1:]
    if len(rest) > 1 and rest[0] in BLOCK_CONTAINERS and rest[1].isdigit():
        return int(rest[1]), rest[2:]
    return None, rest


def places(paths: list[str]) -> list[tuple]:
    """(stage, block, layer) of each op from its module path. The trunk is the numbered container that
    holds the most ops (timm's stages.S, torchvision's layerS or features.S, a ViT's blocks.B): its index
    is the stage, counted from 1 (from 0 for torchvision's features, whose 0 is the stem; a numbered name
    such as layer1 keeps its number), and the next index (right after it, or after a blocks/layers child)
    the block (or a numbered block name: RegNet's s1.b1). Ops of a stage outside its blocks (a downsample) join the block after them. Ops before the
    trunk are the stem, ops after it the head; ops between take the place before them. A trunk with one
    level (a ViT's blocks.B) is one stage whose blocks are its indices."""
    keys = []
    for path in paths:
        tokens = path.split(".") if path else []
        found = next((i for i, t in enumerate(tokens) if INDEXED.match(t)), None)
        keys.append(None if found is None else
                    (".".join(tokens[:found]), INDEXED.match(tokens[found]).group(1), found))
    counts: dict = {}
    for key in keys:
        if key:
            counts[key] = counts.get(key, 0) + 1
    if not counts:
        return [("stem", 0, path) for path in paths]
    trunk = max(counts, key=counts.get)
    prefix, name, at = trunk
    one_level = all(_block(p.split(".")[at + 1:])[0] is None for p, k in zip(paths, keys) if k == trunk)
    offset = 0 if name or prefix.endswith("features") else 1
    found: list = []
    for path, key in zip(paths, keys):
        if key != trunk:
            found.append(None)
            continue
        tokens = path.split(".")
        index = int(INDEXED.match(tokens[at]).group(2))
        rest = tokens[at + 1:]
        if one_level:
            found.append((1, index, ".".join(rest)))
            continue
        block, layer = _block(rest)
        stage = index + offset
        found.append(("stem", 0, ".".join(rest)) if stage == 0 else (stage, block, ".".join(layer)))
    following: dict = {}  # a stage's ops outside its blocks join the next block of that stage
    for i in range(len(found) - 1, -1, -1):
        if found[i]:
            stage, block, layer = found[i]
            if block is None:
                found[i] = (stage, following.get(stage, 0), layer)
            else:
                following[stage] = block
    first = next(i for i, p in enumerate(found) if p)
    last = max(i for i, p in enumerate(found) if p)
    out, current = [], None
    for i, (path, place) in enumerate(zip(paths, found)):
        if place:
            current = place
        elif i < first:
            current = ("stem", 0, path)
        elif i > last:
            current = ("head", 0, path)
        else:
            current = (*current[:2], path)
        out.append(current)
    return out


def to_graph(program, name: str, batch: int):
    """effplan's graph of an exported program at a batch."""
    shape = Shapes(program, batch)
    signature = program.graph_signature
    kinds, sizes = {}, {}  # placeholder -> param / buffer; its elements
    for spec in signature.input_specs:
        kinds[spec.arg.name] = {"PARAMETER": "param", "BUFFER": "buffer"}.get(spec.kind.name, spec.kind.name)
    origin: dict[str, frozenset] = {}  # a value computed only from weights -> the weights it comes from
    tensor_of: dict[str, str] = {}  # fx value -> effplan tensor name
    tensors: dict[str, tuple] = {}
    inputs: list[str] = []
    rows = []  # the fx nodes kept, in order
    items: dict[str, tuple[str, int]] = {}  # getitem -> (its multi-output source, the index)
    for node in program.graph.nodes:
        val = node.meta.get("val")
        if node.op == "placeholder":
            kind = kinds.get(node.name)
            if kind == "USER_INPUT":
                tensor = "input" if not inputs else node.name
                tensor_of[node.name] = tensor
                tensors[tensor] = shape(val, "the input")
                inputs.append(tensor)
            else:
                counted = kind in ("param", "buffer") and _is_tensor(val) and val.dtype.is_floating_point
                origin[node.name] = frozenset({node.name}) if counted else frozenset()
                if counted:
                    sizes[node.name] = math.prod(shape(val, node.name))
            continue
        if node.op != "call_function":
            continue
        if node.target is operator.getitem:
            source, index = node.args
            if source.name in origin:
                origin[node.name] = origin[source.name]
            elif source.name in tensor_of:
                items[node.name] = (source.name, index)  # named once its source is
                tensor_of[node.name] = ""
            continue
        if not (_is_tensor(val) or (isinstance(val, (list, tuple)) and any(_is_tensor(v) for v in val))):
            continue  # symbolic sizes, assertions
        used = [a for a in node.all_input_nodes if a.name in origin or a.name in tensor_of]
        if all(a.name in origin for a in used):  # computes from weights or constants only: folded
            origin[node.name] = frozenset().union(*(origin[a.name] for a in used))
            continue
        rows.append(node)
        tensor_of[node.name] = ""  # an activation: named below

    merged = _attention_layouts(rows)
    by_name = {n.name: n for n in rows}
    rows = [n for n in rows if n.name not in merged]
    places_of = places([_module_path(n)[0] for n in rows])
    graph = DiGraph(name=name, inputs=inputs, outputs=[], tensors=tensors, batch=batch)
    owned, used_names, producer, edges = set(), set(), {}, []

    def weight(role: str, value) -> list[Weight]:
        sources = origin[value.name]
        if not sources:
            return []  # a constant (a shape, an index table): neither an input nor a weight
        new = sorted(sources - owned)
        owned.update(new)
        at = shape(value.meta["val"], value.name)
        params = sum(sizes[s] for s in new if kinds[s] == "param")
        buffers = sum(sizes[s] for s in new if kinds[s] == "buffer")
        trainable = any(kinds[s] == "param" for s in sources)
        if new == [value.name] and sizes[value.name] == math.prod(at):
            return [Weight(role, at, trainable)]
        found = [SourcedWeight(role, at, trainable, params if trainable else buffers)]
        if trainable and buffers:
            found.append(SourcedWeight(f"{role}.buffers", at, False, buffers))
        return found

    def add(node_name, op, attrs, slots, node, place, outs=None):
        roles = OPS[op].weights if op in OPS else ()
        ins, weights = [], []
        for slot, value in enumerate(slots):
            if value is None or not hasattr(value, "name"):
                continue
            if value.name in origin:
                weights += weight(roles[slot] if slot < len(roles) else f"input{slot}", value)
            elif value.name in tensor_of:
                ins.append(tensor_of[value.name])
        val = node.meta["val"]
        if outs is None:
            if _is_tensor(val):
                outs = (node_name,)
                tensors[node_name] = shape(val, node_name)
            else:
                outs = tuple(f"{node_name}:{i}" for i, v in enumerate(val) if _is_tensor(v))
                for i, v in enumerate(val):
                    if _is_tensor(v):
                        tensors[f"{node_name}:{i}"] = shape(v, node_name)
        stage, block, layer = place
        graph.add_node(node_name, op=op, attrs=attrs, inputs=tuple(ins), outputs=outs, weights=tuple(weights),
                       stage=stage, block=block, layer=layer, module=_module_path(node)[1],
                       aten=aten_name(node.target))
        for t in outs:
            producer[t] = node_name
        edges.extend((producer[t], node_name, {"tensor": t}) for t in dict.fromkeys(ins) if t in producer)

    paths = [_module_path(n)[0] for n in rows]
    inner = {".".join(p.split(".")[:i]) for p in paths for i in range(1, p.count(".") + 1)}
    for node, place, path in zip(rows, places_of, paths):
        # a leaf module's op is named by its path (stages.0.blocks.0.conv_dw); another op by its module's
        # path and its aten name, numbered within that module (stages.0.blocks.0.add, .add_1)
        leaf = path and path not in inner
        base = path if leaf else ".".join(filter(None, (path, aten_name(node.target) or node.name)))
        node_name, k = base, 0
        while node_name in used_names or node_name in tensors:
            k += 1
            node_name = f"{base}_{k}" if not leaf else f"{base}.{aten_name(node.target)}" + (f"_{k - 1}" if k > 1 else "")
        used_names.add(node_name)
        tensor_of[node.name] = node_name
        for item, (source, index) in items.items():
            if source == node.name:
                tensor_of[item] = f"{node_name}:{index}"
        aten = aten_name(node.target)
        if aten == "silu":  # Sigmoid then Mul, as effplan writes Swish; the Mul stands for the op
            x = node.args[0]
            gate = f"{node_name}.sigmoid"
            tensors[gate] = shape(node.meta["val"], gate)
            add(gate, "Sigmoid", {}, [x], node, place, outs=(gate,))
            tensor_of[f"#{gate}"] = gate
            mul_slots = [x, _Named(f"#{gate}")]
            add(node_name, "Mul", {}, mul_slots, node, place)
            continue
        rule = RULES.get(aten)
        if rule is None:
            op, attrs, slots = describe(node.target), {}, list(node.all_input_nodes)
        else:
            op, attrs, slots = rule(bind(node))
        outs = None
        if node.name in merged.values():  # attention written in its fused layout: (B, L, H x D)
            views = [k for k, v in merged.items() if v == node.name]
            attrs["q_num_heads"] = shape(node.meta["val"], node_name)[1]
            outs = (node_name,)
            tensors[node_name] = shape(by_name[views[-1]].meta["val"], node_name)
            tensor_of.update(dict.fromkeys(views, node_name))
        add(node_name, op, attrs, slots, node, place, outs=outs)

    outputs = []
    for node in program.graph.nodes:
        if node.op == "output":
            for value in _flatten(node.args):
                if hasattr(value, "name") and value.name in tensor_of:
                    outputs.append(tensor_of[value.name])
    graph.graph["outputs"] = outputs
    graph.add_edges_from(edges)
    names = {s.arg.name: s.target for s in signature.input_specs if s.target}
    graph.graph["unused_weights"] = sorted(names[s] for s in sizes if s not in owned)
    return graph


class _Named:
    """A stand-in value for a tensor the importer made itself (SiLU's gate)."""

    def __init__(self, name: str):
        self.name = name


def _flatten(items):
    for item in items:
        if isinstance(item, (list, tuple)):
            yield from _flatten(item)
        else:
            yield item


def _attention_layouts(rows) -> dict[str, str]:
    """{transpose or reshape node: its attention node} where an attention output (B, H, L, D) is only read by
    transpose(1, 2), only read by a reshape to (B, L, H x D): the fused backends (flash and memory-efficient
    attention, on CUDA and the CPU) write their output as (B, L, H, D) and return a transposed view, so that
    transpose and reshape move nothing. The attention op then writes (B, L, H x D) itself, and what reads it
    (the output projection) reads the very tensor attention keeps, as autograd sees it."""
    merged = {}
    for node in rows:
        if aten_name(node.target) != "scaled_dot_product_attention" or len(node.users) != 1:
            continue
        (transpose,) = node.users
        if aten_name(transpose.target) != "transpose" or sorted(transpose.args[1:3]) != [1, 2] \
                or len(transpose.users) != 1:
            continue
        (reshape,) = transpose.users
        out = reshape.meta.get("val")
        if aten_name(reshape.target) in ("reshape", "view", "_unsafe_view", "flatten") and _is_tensor(out) \
                and len(out.shape) == 3:
            merged[transpose.name] = merged[reshape.name] = node.name
    return merged
