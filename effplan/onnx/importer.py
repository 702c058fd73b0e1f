"""ONNX import: deserialisation plus shape inference into effplan's graph, so one op table serves
built and imported graphs alike. A file is read by protobuf (read.py, with its refusals) and shaped by
effplan's own rules (each op's `infer`); where they cannot, ONNX's shape inference shapes it. Import
never reads external weight data: initializer shapes are in the model proto itself. What an op type means on import (its weight slots, whether a weight
passes through it, whether a constant operand is learned) is its entry in the op table (ops.py).
"""
from __future__ import annotations

import heapq
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from ..base.errors import quote
from ..base.units import MAX_DIM
from ..graph import dtypes
from ..graph.builder import Weight
from ..graph.digraph import DiGraph
from ..graph.ops import OPS
from .common import OnnxError
from .wire import SMALL_INITIALIZER, Model, NotPlain, from_proto, proto_value

BUFFER_ROLES = ("mean", "var")
# initializers named as a module's buffer (exporters name them by the module path): PyTorch counts them apart
BUFFER_NAME = re.compile(r"(?:^|[._])(?:\w*mask|\w*_index|running_mean|running_var|num_batches_tracked|position_ids)$")
# a module path (layers.0.attn.proj.bias) names a parameter or buffer of the model; any other name (val_12,
# onnx::Reshape_234, unsqueeze_1) is a constant the exporter computed: a folded or gathered table
MODULE_NAME = re.compile(r"^[A-Za-z_]\w*(?:\.\w+)+$")
FLOAT_TYPES = dtypes.FLOAT_PRECISIONS
PLACE_RE = [  # names that say their own stage: torchvision's features.N.M (features.0 is the stem) and
    # Keras's block2b_expand_conv (stage 2, block b). Every other module path goes by _indices
    (re.compile(r"(?:^|[/.])features[._](\d+)(?:[._](\d+))?(?=[/._]|$)"), 0),
    (re.compile(r"(?:^|[/_])block(\d+)([a-z])_"), 0),
]
# a container named with its number (layer2, s1, b1), not a layer's own name (conv1, bn2, fc1)
LAYER_NAME = r"conv|bn|norm|fc|act|relu|pool|proj|linear|dense"
NUMBERED = re.compile(rf"(?!{LAYER_NAME})([A-Za-z_]*[A-Za-z])(\d+)", re.I)
NOT_STAGES = {"head", "classifier", "fc", "mlp", "attn", "se", "proj", "downsample", "shortcut", "qkv", "norm", "pool"}
BLOCK_LISTS = {"blocks", "block", "layers", "layer", "b", "units", "unit", "res"}  # a stage's list of blocks


def _roles(op: str) -> tuple[str, ...]:
    """The roles of an op's positional inputs (its op table entry's `weights`): a constant in one of these
    slots is a parameter; () for an op without weights or without an entry."""
    return OPS[op].weights if op in OPS else ()


def _passes_weight(op: str) -> bool:
    """Whether a weight through the op's first input is still that weight (its entry's `passes_weight`)."""
    return op in OPS and OPS[op].passes_weight


@dataclass(frozen=True, slots=True)
class SourcedWeight(Weight):
    """A weight that reaches its op reshaped (Gather, Transpose, Reshape): its shape at the op serves
    the op's costs, its size is the initializer's the file stores."""

    elements: int = 0

    @property
    def size(self) -> int:
        return self.elements


def _label(node) -> str:
    return node.name or node.op_type


def _order(model: Model, name: str) -> list[int]:
    """Node indices in a topological order (stored order where it is one), refusing dangling reads,
    tensors written twice and cycles before shape inference sees the graph."""
    nodes = model.nodes
    known = {i.name for i in model.inputs} | {i.name for i in model.initializers}
    producer: dict[str, int] = {}
    for i, node in enumerate(nodes):
        if not any(node.output):
            raise OnnxError(f"{name}: node {quote(_label(node))} ({quote(node.op_type)}) has no named output; "
                            f"every node writes at least one tensor")
        for t in filter(None, node.output):
            if t in known or t in producer:
                first = "the graph's inputs" if t in known else f"node {_label(nodes[producer[t]])}"
                raise OnnxError(f"{name}: tensor {quote(t)} is written by {first} and by node {_label(node)}")
            producer[t] = i
    waiting, readers = [0] * len(nodes), [[] for _ in nodes]
    for i, node in enumerate(nodes):
        sources = set()
        for t in filter(None, node.input):
            if t in known:
                continue
            if t not in producer:
                raise OnnxError(f"{name}: node {_label(node)} reads {quote(t)}, which nothing produces")
            sources.add(producer[t])
        waiting[i] = len(sources)
        for j in sources:
            readers[j].append(i)
    ready = [i for i, n in enumerate(waiting) if n == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for j in readers[i]:
            waiting[j] -= 1
            if not waiting[j]:
                heapq.heappush(ready, j)
    if len(order) < len(nodes):  # what is left waits on itself: walk back to a node seen twice
        left = {i for i, n in enumerate(waiting) if n}
        path, i = [], min(left)
        while i not in path:
            path.append(i)
            i = next(producer[t] for t in nodes[i].input if producer.get(t) in left)
        cycle = path[path.index(i):][::-1]
        raise OnnxError(f"{name}: the graph has a cycle through {' -> '.join(_label(nodes[j]) for j in cycle)}")
    return order


def _weight_inputs(model: Model) -> set[str]:
    """Graph inputs that feed only the weight slots of ops, maybe through Identity, Cast or
    DequantizeLinear: weights fed at run time (PyTorch's export_params=False), not data. MatMul's
    operands are alike, so a graph input there is data."""
    uses: dict[str, list] = {}
    for node in model.nodes:
        for slot, t in enumerate(node.input):
            uses.setdefault(t, []).append((node, slot))
    outputs = {o.name for o in model.outputs}

    def weight_only(tensor: str) -> bool:
        todo, seen = [tensor], set()
        while todo:
            t = todo.pop()
            if t in seen:
                continue
            seen.add(t)
            if t in outputs or t not in uses:
                return False
            for node, slot in uses[t]:
                if _passes_weight(node.op_type) and slot == 0:
                    todo += filter(None, node.output)
                elif not (slot > 0 and _roles(node.op_type) and node.op_type != "MatMul"):
                    return False
        return True

    initializers = {i.name for i in model.initializers}
    return {i.name for i in model.inputs if i.name not in initializers and weight_only(i.name)}


def _constants(model: Model, order: list[int], weight_inputs: set[str]):
    """Which nodes compute only from constants (initializers, Constant nodes, weight inputs): a runtime
    folds them, so they are no ops of the graph, and their outputs count like initializers. Returns
    (folded node indices, {constant tensor: the tensor it carries}): a weight seen through Identity,
    Cast or DequantizeLinear is still that weight, so an op sharing it does not count it again."""
    origin = {t: t for t in [i.name for i in model.initializers] + sorted(weight_inputs)}
    outputs = {o.name for o in model.outputs}
    folded = set()
    for i in order:
        node = model.nodes[i]
        sources = [t for t in node.input if t]
        if node.op_type == "Constant" or (sources and all(t in origin for t in sources)
                                          and not outputs.intersection(node.output)):
            folded.add(i)
            for t in filter(None, node.output):
                passes = _passes_weight(node.op_type) and node.input[0] in origin  # an empty first input passes none
                origin[t] = origin[node.input[0]] if passes else t
    return folded, origin


def _bind_dims(inputs: list, batch: int | None, dims: dict[str, int]) -> dict[str, int]:
    """Give every symbolic dimension of the data inputs a value: --dim NAME=VALUE, else --batch
    (default 1) for the first dimension of an input of rank 2 or more. A fixed batch is checked,
    never overridden. Returns {dimension name: value}; an unnamed symbolic batch is bound as ''."""
    names = {d for v in inputs for d in v.dims or () if isinstance(d, str)}
    for key, value in dims.items():
        if key not in names:
            have = f"its symbolic dimensions: {', '.join(sorted(names))}" if names else "it has no symbolic dimensions"
            raise OnnxError(f"--dim {key}: the file has no dimension {quote(key)}; {have}")
    for what, value in [("--batch", batch), *((f"--dim {k}", v) for k, v in dims.items())]:
        if value is not None and not 1 <= value <= MAX_DIM:
            raise OnnxError(f"{what} {value}: expected a size from 1 to 2^40")
    bound = dict(dims)
    for value in inputs:
        shape = value.dims or ()
        for i, dim in enumerate(shape):
            is_batch = i == 0 and len(shape) >= 2
            key = dim if isinstance(dim, str) else ""
            if isinstance(dim, int) and dim > 0:
                size = dim
            elif key in bound:
                size = bound[key]
            elif is_batch:
                size = bound[key] = batch or 1
            else:
                raise OnnxError(f"input {quote(value.name)} has a symbolic dimension {key or i!r}: "
                                f"give it a size with --dim {key or 'NAME'}=VALUE")
            if is_batch and batch is not None and size != batch:
                fixed = f"dimension {quote(key)} = {size} (--dim)" if key else f"a fixed batch of {size}"
                raise OnnxError(f"input {quote(value.name)} has {fixed}, which --batch {batch} cannot change"
                                + ("" if key else ": only symbolic dimensions are bound (export with a dynamic batch)"))
    return bound


def _bound(value, bound: dict[str, int], graph_input: bool = False) -> tuple | None:
    """A declared shape with its symbols bound (a graph input's unnamed batch dimension takes the unnamed
    binding): None where it has no shape, a None entry for each dimension that stays unknown."""
    if value.dims is None:
        return None
    out = []
    for i, d in enumerate(value.dims):
        unnamed = "" if graph_input and i == 0 and len(value.dims) >= 2 else None
        out.append(d if isinstance(d, int) and d > 0 else bound.get(d if isinstance(d, str) else unnamed))
    return tuple(out)


def _own_shapes(model: Model, order: list[int], shapes: dict, types: dict) -> set[int]:
    """Every node's output shapes and types by effplan's rules (NotPlain where one cannot), shape
    arithmetic evaluated on the way; returns the nodes evaluated."""
    from .fold import fold_shapes, own_inference

    return fold_shapes(model, order, shapes, types, own_inference)


def _onnx_shapes(model: Model, order: list[int], shapes: dict, types: dict, bound: dict, name: str) -> set[int]:
    """ONNX's shape inference over the whole model (its proto), then its per-node inference where shape
    arithmetic left tensors open; the file's own shapes fill what both leave. Returns the nodes evaluated."""
    import onnx
    from onnx import TensorProto, helper

    from .fold import fold_shapes, onnx_inference

    proto = model.proto
    unknown = {(n.domain, n.op_type) for n in model.nodes} - set(model.functions)  # asked once per op type
    unknown = {key for key in unknown if not onnx.defs.has(key[1], key[0])}
    no_schema = {t for n in model.nodes if (n.domain, n.op_type) in unknown
                 for t in n.output}  # custom ops (com.microsoft...): inference cannot type their outputs
    light = onnx.ModelProto(ir_version=proto.ir_version)  # no weights' data: initializers become typed inputs
    light.opset_import.extend(proto.opset_import)
    light.functions.extend(proto.functions)  # model-local functions that nodes may call
    g, out = proto.graph, light.graph
    out.name = g.name
    out.node.extend(g.node)
    out.input.extend(g.input)
    out.sparse_initializer.extend(g.sparse_initializer)
    out.value_info.extend(v for v in g.value_info if v.name in no_schema)
    present = {i.name for i in g.input}
    for init in g.initializer:  # small ones stay (shapes, Resize scales: inference reads their values)
        if math.prod(init.dims) <= SMALL_INITIALIZER and init.data_location != TensorProto.EXTERNAL:
            out.initializer.append(init)
        elif init.name not in present:
            out.input.append(helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    for v in [*out.input, *out.value_info]:  # the symbolic dimensions bound, as the inputs' own
        shape = v.type.tensor_type.shape.dim
        for i, d in enumerate(shape):
            key = d.dim_param if d.dim_param else "" if i == 0 and len(shape) >= 2 and v in out.input else None
            if key in bound and not (d.HasField("dim_value") and d.dim_value > 0):
                d.dim_value = bound[key]
    try:
        inferred = onnx.shape_inference.infer_shapes(light, check_type=True, strict_mode=True, data_prop=True).graph
    except Exception as exc:  # onnx's InferenceError, or its checker's ValidationError
        raise OnnxError(f"{name}: {_inference_words(str(exc))}") from None
    inferred = map(proto_value, [*inferred.input, *inferred.value_info])
    for v in [*model.value_info, *model.outputs, *inferred]:  # the file's own shapes, then the inferred ones
        shape = _bound(v, bound)
        if shape is not None and (all(shape) or v.name not in shapes):
            shapes[v.name] = shape
        types[v.name] = v.elem_type or types.get(v.name, 0)
    return fold_shapes(model, order, shapes, types, onnx_inference)


def _inference_words(text: str) -> str:
    """ONNX's inference error in the user's words: the node it names and what is wrong, without onnx's
    bracketed class tags ('[ShapeInferenceError] (op_type:Add, node name: add1): B has inconsistent type')."""
    text = " ".join(text.split())
    clean = lambda s: re.sub(r"\[\w*Error\]\s*|Inference error\(s\):\s*", "", s).strip(" :")  # noqa: E731
    found = list(re.finditer(r"\(op_type:([^,)]*)(?:, node name: ([^)]*))?\)", text))
    if not found:
        return f"ONNX's shape inference refuses the model: {clean(text)[:300]}"
    op, node = found[-1].groups()
    what = f"node {quote(node)} ({op})" if node else f"a node of type {op}"
    return f"ONNX's shape inference refuses {what}: {clean(text[found[-1].end():])[:300]}"


def _doc_place(doc: str):
    """(stage, block, layer) from the doc_string effplan writes, or None."""
    if doc.startswith("effplan ") and len(doc) < 1000:  # effplan writes about 50 characters
        try:
            place = json.loads(doc[len("effplan "):])
            stage, block, layer = place["stage"], place["block"], place["layer"]
        except (ValueError, KeyError, TypeError, RecursionError):
            return None
        number = lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_DIM  # noqa: E731
        if (stage in ("stem", "head") or number(stage)) and number(block) and isinstance(layer, str):
            return stage, block, layer
    return None


def module_path(node) -> str:
    """The dotted module path a node came from: the dynamo exporter's metadata (name_scopes, else namespace:
    the deepest module's), else TorchScript's node name, whose slash segments nest in any way
    (/stages/stages.0/blocks/blocks.0/conv/Conv and /s1/b1/conv/Conv: stages.0.blocks.0.conv, s1.b1.conv)."""
    scopes = node.scopes
    if "pkg.torch.onnx.name_scopes" in scopes:  # ['', 'stages', 'stages.0', 'stages.0.0', 'stages.0.0.bn', 'op']
        names = re.findall(r"'([^']*)'", scopes["pkg.torch.onnx.name_scopes"])
        return names[-2] if len(names) >= 2 else ""
    if "namespace" in scopes:  # ': pkg.Net/stages: torch...Sequential/stages.0: ...Block/relu: aten.relu.default'
        parts = [p.split(":")[0].strip() for p in scopes["namespace"].split("/")]
        return parts[-2] if len(parts) >= 2 else ""
    if "/" not in node.name:  # a dotted module name (blocks.2.0.act), as some exporters name nodes
        return node.name
    segments, path = [s for s in node.name.split("/") if s][:-1], []  # the last segment names the op
    for s in segments:
        if path and s.startswith(path[-1] + "."):  # stages.0 inside stages: the longer name stands for both
            path[-1] = s
        else:
            path.append(s)
    return ".".join(path)


def _indices(path: str) -> list[int]:
    """The stage and block numbers along a module path, from 0: a Python index (stages.0, blocks.3) as it is, a
    numbered container (layer2, s1, b1) less 1. The first indexes any list but a head's or a layer's parts
    (classifier.1, mlp.0); the second follows the first at once (blocks.0.0, layer1.0) or indexes a list of
    blocks (stages.0.blocks.1, s1.b1), never a block's own parts (blocks.0.mlp.0). The path's last name is the
    op's own module (conv1), never a container."""
    parts = path.split(".")
    numbers, previous = [], -1  # previous: where the last number taken stands
    for i, part in enumerate(parts):
        if part.isdigit() and i > 0:
            number, name, at = int(part), parts[i - 1].lower(), i - 1  # its list is the name before it
        elif i < len(parts) - 1 and (m := NUMBERED.fullmatch(part)):
            number, name, at = max(int(m[2]) - 1, 0), m[1].lower(), i - 1
        else:
            continue
        if not numbers and (name in NOT_STAGES or re.match(LAYER_NAME, name)):
            return []
        if numbers and not (at == previous or name in BLOCK_LISTS):
            break
        numbers.append(number)
        previous = i
        if len(numbers) == 2:
            break
    return numbers


def _name_place(name: str, path: str, nested: bool):
    """(stage, block) from a node's name and module path, or None. A path with two container numbers is
    (stage, block) (stages.0.blocks.1, layer2.0, s1.b1); with one, a block of the one stage of a file where no
    path has two (ViT's blocks.3), else the place before (a stage's downsample, a head's classifier.1)."""
    for pattern, offset in PLACE_RE:
        found = list(pattern.finditer(path)) or list(pattern.finditer(name))
        if found:
            stage, block = found[-1].groups()  # the deepest module: features.3.1, not features.3
            stage = int(stage) + offset
            block = ord(block) - ord("a") if block and block.isalpha() else int(block or 0)
            return ("stem", 0) if stage == 0 else (stage, block)
    numbers = _indices(path)
    if len(numbers) >= 2:
        return numbers[0] + 1, numbers[1]
    return (1, numbers[0]) if len(numbers) == 1 and not nested else None


def _resolution_places(nodes: list, shapes: dict) -> list[tuple | None]:
    """Places from the graph itself, for a file whose names say nothing: the stem runs until the first op
    that lowers the spatial resolution, then each further drop starts a stage; a block ends at a residual Add
    (two same-shaped activations); the ops after the last one with a spatial output (side > 1) are the head."""
    def side(node):
        out = shapes.get(node.output[0]) if node.output else None
        return math.prod(out[2:]) if out and len(out) == 4 and all(out) else None

    sides = [side(n) for n in nodes]
    last = max((i for i, s in enumerate(sides) if s and s > 1), default=-1)
    data = next((shapes.get(t) for n in nodes for t in n.input if t and len(shapes.get(t) or ()) == 4), None)
    smallest = math.prod(data[2:]) if data and all(data) else None
    places, drops, block = [], 0, 0
    for i, (node, s) in enumerate(zip(nodes, sides)):
        if s is not None:
            if smallest is not None and s < smallest:
                drops, block = drops + 1, 0
            smallest = s if smallest is None else min(smallest, s)
        stage = "stem" if drops <= 1 else drops - 1  # the first drop is the stem's own
        places.append(("head", 0) if i > last >= 0 else (stage, block))
        inputs = [shapes.get(t) for t in node.input if t]
        if node.op_type == "Add" and len(inputs) == 2 and inputs[0] == inputs[1] and s and stage != "stem":
            block += 1
    return places


def _places(nodes: list, shapes: dict | None = None) -> list[tuple]:
    """(stage, block, layer) of each node: effplan's doc_string, else its module path (names or the dynamo
    exporter's metadata), else (no node placed by either) the resolution rule. Ops before the first placed
    op are the stem, ops after the last the head, ops between take the place before."""
    paths = [module_path(n) for n in nodes]
    nested = any(len(_indices(p)) >= 2 for p in paths)
    found = [_doc_place(n.doc_string) or _name_place(n.name, p, nested) for n, p in zip(nodes, paths)]
    if shapes is not None and not any(found):
        found = _resolution_places(nodes, shapes)
    last = max((i for i, p in enumerate(found) if p), default=-1)
    places, current = [], ("stem", 0, "")
    for i, p in enumerate(found):
        current = (*p, "")[:3] if p else ("head", 0, "") if i > last >= 0 else current
        places.append(current)
    return places


def from_onnx(model, name: str = "model", batch: int | None = None, dims: dict[str, int] | None = None):
    """effplan's graph of an ONNX model (an onnx ModelProto, or a Model read_file read): shaped, symbolic
    dimensions bound. Nodes that compute only from constants are folded away; a constant in a weight slot
    (Conv W and B, Gemm B and C, MatMul's constant operand, normalisation scale and bias, PRelu slope), or
    one of more than one element in Add, Sub, Mul, Div, Expand, Concat, Tile or an op with no cost
    function, is a parameter of that op, sized as the initializer it comes from; scalars and integer
    tensors (shapes) are not. Shapes come from effplan's own rules, shape arithmetic evaluated on the way
    (onnx/fold.py); where a rule cannot, from ONNX's inference on the model's proto."""
    light = model if isinstance(model, Model) else from_proto(model)
    order = _order(light, name)
    weight_inputs = _weight_inputs(light)
    folded, origin = _constants(light, order, weight_inputs)
    initializers = {i.name for i in light.initializers}
    data_inputs = [v for v in light.inputs if v.name not in initializers and v.name not in weight_inputs]
    bound = _bind_dims(data_inputs, batch, dims or {})

    def seeded() -> tuple[dict, dict]:
        shapes = {i.name: i.dims for i in light.initializers}
        types = {i.name: i.data_type for i in light.initializers}
        for v in light.inputs:
            if v.name not in initializers:
                shapes[v.name], types[v.name] = _bound(v, bound, graph_input=True), v.elem_type
        return shapes, types

    shapes, types = seeded()
    try:
        evaluated = _own_shapes(light, order, shapes, types)
    except NotPlain:
        if light.proto is None:
            raise
        shapes, types = seeded()
        evaluated = _onnx_shapes(light, order, shapes, types, bound, name)
    nodes = light.nodes
    graph_outputs = {o.name for o in light.outputs}
    for i in evaluated:
        if not graph_outputs.intersection(nodes[i].output):
            folded.add(i)
            for t in filter(None, nodes[i].output):
                origin.setdefault(t, t)  # a weight through Identity or Gather keeps its source

    def param_role(op: str, slot: int, t: str) -> str | None:
        roles = _roles(op)
        if slot < len(roles):
            return roles[slot]  # of any type: an int8 or unknown-typed Conv weight is still the op's operand
        if types.get(t) not in FLOAT_TYPES:
            return None  # shapes and indices
        size = math.prod(_concrete(shapes.get(t), t))
        # a learned constant operand (a bias, a token), or a table reshaped by a live op on its way (Reshape)
        passes = slot == 0 and _passes_weight(op)
        return f"input{slot}" if size > 1 and (op not in OPS or OPS[op].learned or passes) else None

    graph = DiGraph(name=name, inputs=[v.name for v in data_inputs], outputs=[o.name for o in light.outputs],
                    tensors={}, weight_inputs=sorted(weight_inputs))
    tensors = graph.graph["tensors"]
    for t in graph.graph["inputs"]:
        tensors[t] = _concrete(shapes.get(t), t)
    first = next((tensors[t] for t in graph.graph["inputs"] if len(tensors[t]) >= 2), None)
    graph.graph["batch"] = first[0] if first else 1
    live = [i for i in order if i not in folded]
    places = _places([nodes[i] for i in live], shapes)
    traced = {o for n in nodes if n.op_type == "Constant" for o in n.output}
    small = {i.name: i.value for i in light.initializers if i.value is not None}  # Dropout's ratio, training_mode
    small.update({n.output[0]: n.attrs["value"].value for n in nodes if n.op_type == "Constant" and n.output
                  and getattr(n.attrs.get("value"), "value", None) is not None})
    used, owners, producer, edges, computed = set(), {}, {}, [], {}  # owners: source initializer -> the ops that own it as a weight
    for i, (stage, block, layer) in zip(live, places):
        node = nodes[i]
        node_name = node.name or f"{node.op_type}_{i}"
        while node_name in used:
            node_name = f"{node_name}_{i}"
        used.add(node_name)
        weights, inputs = [], []
        for slot, t in enumerate(node.input):
            if t and t not in origin:
                inputs.append(t)
            elif t and (role := param_role(node.op_type, slot, t)):
                shape, source = _concrete(shapes.get(t), t), origin[t]
                stored = math.prod(_concrete(shapes.get(source), source))
                # a Constant node's value added or multiplied in (no weight slot) is no parameter: PyTorch's
                # exporters write parameters as initializers, a value computed when the model was traced (a
                # non-persistent buffer: Swin's attention mask) as a Constant
                trainable = role not in BUFFER_ROLES and not BUFFER_NAME.search(source) and not (
                    source in traced and role.startswith("input"))
                weights.append(Weight(role, shape, trainable) if stored == math.prod(shape)
                               else SourcedWeight(role, shape, trainable, stored))
                if trainable and role.startswith("input") and not MODULE_NAME.match(source):
                    computed.setdefault(source, (shape, stored))
                owners.setdefault(source, []).append(node_name)
        outs = tuple(filter(None, node.output))
        for o in outs:
            tensors[o] = _concrete(shapes.get(o), o)
            producer[o] = node_name
        attrs = _dropout_ratio(node, small) if node.op_type == "Dropout" else node.attrs
        graph.add_node(node_name, op=node.op_type, attrs=attrs, inputs=tuple(inputs), outputs=outs,
                       weights=tuple(weights), stage=stage, block=block, layer=layer)
        edges += [(producer[t], node_name, {"tensor": t}) for t in dict.fromkeys(inputs) if t in producer]
    graph.add_edges_from(edges)  # one call: the same edges in the same order as one call per node
    # each op owns the weights in its slots (the totals sum the rows); what the file stores counts each
    # initializer once: an exporter's merged equal tensors (all-zero biases) and tied weights differ here
    graph.graph["distinct_weight_elements"] = sum(math.prod(shapes[s]) for s in owners)
    graph.graph["shared_initializers"] = {s: ops for s, ops in owners.items() if len(ops) > 1}
    # learned operands (an Add's bias table) whose constant the exporter computed (no module path names it):
    # counted at the size stored, which may be a gathered table's expansion (computed_params_note)
    graph.graph["computed_params"] = {s: stored for s, (_, stored) in computed.items()}
    return graph


def _dropout_ratio(node, small: dict) -> dict:
    """A Dropout's attrs with its ratio (opset 12 on: an input) where the file gives it: 0 when its training_mode
    is false (it drops nothing), so memory.py keeps no mask for it."""
    attrs = dict(node.attrs)
    ratio, mode = (small.get(node.input[i]) if len(node.input) > i and node.input[i] else None for i in (1, 2))
    if ratio is not None:
        attrs["ratio"] = float(ratio)
    if mode is not None and not bool(mode):
        attrs["ratio"] = 0.0
    return attrs


def computed_params_note(graph) -> str | None:
    """Which constants were counted as params though no module path names them, and why."""
    computed = graph.graph.get("computed_params") or {}
    if not computed:
        return None
    listed = ", ".join(f"{name} ({size:,})" for name, size in list(computed.items())[:3])
    return (f"{sum(computed.values()):,} params are constants the exporter computed ({listed}"
            f"{', ...' if len(computed) > 3 else ''}), counted at the size the file stores them: where one is a "
            f"table gathered by an index (a relative-position bias), PyTorch counts the smaller table; export with "
            f"do_constant_folding=False to keep the table and its Gather")


def _concrete(shape, tensor: str) -> tuple:
    if shape is None:
        raise OnnxError(f"tensor {quote(tensor)} has no inferred shape")
    if any(not isinstance(d, int) or d <= 0 for d in shape):
        raise OnnxError(f"tensor {quote(tensor)} has an unknown dimension {shape}: "
                        f"bind it with --batch or --dim NAME=VALUE")
    return tuple(shape)


def resolution(graph) -> int | None:
    """The input's side (its width), NCHW or NHWC: the layout whose channels match the first conv's."""
    shape = graph.graph["tensors"][graph.graph["inputs"][0]] if graph.graph["inputs"] else ()
    if len(shape) != 4:
        return None
    conv = next((n for n in graph.nodes if graph.nodes[n]["op"] == "Conv" and graph.nodes[n]["inputs"]), None)
    channels = graph.graph["tensors"][graph.nodes[conv]["inputs"][0]][1] if conv else shape[1]
    return shape[2] if shape[3] == channels != shape[1] else shape[3]


def read_file(path: str) -> Model:
    """An ONNX file as protobuf reads it (read.load, with its refusals)."""
    return from_proto(load(path))


def import_file(model: Model, path: str, batch: int | None = None, dims: dict[str, int] | None = None):
    """(graph, model) of a file read by read_file."""
    return from_onnx(model, str(path), batch, dims), model


def load(path: str):
    from .read import load

    return load(path)


def input_type(model: Model, graph) -> str:
    """The precision of the first data input ("fp32", "fp16", "bf16")."""
    first = graph.graph["inputs"][0] if graph.graph["inputs"] else None
    elem = next((v.elem_type for v in model.inputs if v.name == first), dtypes.FLOAT)
    return FLOAT_TYPES.get(elem, "fp32")


def analyze_file(path: str, batch: int | None = None, dims: dict[str, int] | None = None):
    """(graph, model metadata, dtype) of an ONNX file."""
    graph, model = import_file(read_file(path), path, batch, dims)
    graph.graph["name"] = Path(path).stem
    return graph, dict(model.metadata), input_type(model, graph)
