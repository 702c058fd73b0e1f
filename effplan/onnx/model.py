"""A network from an ONNX file, standing where a built design stands: every command that takes a
model takes a file through this one import path (onnx.importer.from_onnx), and `build(imported, batch)`
returns its graph at that batch. A file fixes its own widths, depth and input size, so it has no φ,
multipliers or spec to rescale; only a symbolic batch is bound.
"""
from __future__ import annotations

import math
from pathlib import Path

from ..base.errors import EffplanError
from ..base.files import reads

SUFFIX = ".onnx"


def is_file_model(name: str) -> bool:
    return name.lower().endswith(SUFFIX)


class Imported:
    """An ONNX file, parsed once; its graph is imported once per batch asked."""

    coefficients = "file"
    classes = None
    depth_rounding = None
    spec = None

    def __init__(self, path: str, name: str | None = None, dims: dict[str, int] | None = None,
                 unfold_bn: bool = False):
        from .importer import read_file

        self.path = str(path)
        self.dims = dict(dims or {})  # --dim NAME=VALUE: the file's other symbolic dimensions
        self.unfold_bn = unfold_bn  # --unfold-bn: BatchNormalization restored after each biased conv (unfold_batch_norm)
        self.model = read_file(self.path)
        self.meta = dict(self.model.metadata)
        self.name = name or Path(self.path).name  # the file, not the model it says it holds: two files differ
        self._graphs: dict[int | None, object] = {}

    def __repr__(self) -> str:
        return f"Imported({self.path!r})"

    @property
    def phi(self) -> float | None:
        return meta_number(self.meta, "phi")

    @property
    def depth_mult(self) -> float | None:
        return meta_number(self.meta, "depth_mult")

    @property
    def width_mult(self) -> float | None:
        return meta_number(self.meta, "width_mult")

    @property
    def resolution(self) -> int | None:
        from .importer import resolution
        return resolution(self._any_graph())

    @property
    def symbolic_batch(self) -> bool:
        """Whether the first data input's leading dimension is symbolic (bound by --batch)."""
        first = self._any_graph().graph["inputs"]
        for value in self.model.inputs:
            if first and value.name == first[0]:
                dims = value.dims or ()
                return len(dims) >= 2 and not (isinstance(dims[0], int) and dims[0] > 0)
        return False

    @property
    def fixed_batch(self) -> int | None:
        """The first data input's leading dimension where the file fixes it (read from the file, not
        imported), else None."""
        weights = {t.name for t in self.model.initializers}
        value = next((v for v in self.model.inputs if v.name not in weights), None)
        dims = (value.dims or ()) if value is not None else ()
        return dims[0] if len(dims) >= 2 and isinstance(dims[0], int) and dims[0] > 0 else None

    @classmethod
    def open(cls, path: str, dims: dict[str, int] | None = None, unfold_bn: bool = False) -> "Imported":
        """The file parsed once per process (the batch callback and the command both ask for it), parsed
        again when it changed on disk."""
        reads(path)  # each command that opens it, parsed or cached: no output of it may replace the file
        stat = Path(path).stat() if Path(path).is_file() else None
        key = (str(path), stat and (stat.st_mtime_ns, stat.st_size), tuple(sorted((dims or {}).items())), unfold_bn)
        if key not in _OPENED:
            if len(_OPENED) >= 8:  # a command opens a few files: keep the latest few
                _OPENED.pop(next(iter(_OPENED)))
            _OPENED[key] = cls(path, dims=dims, unfold_bn=unfold_bn)
        return _OPENED[key]

    def _any_graph(self):
        """A graph at any batch already imported (what does not depend on the batch), else at the file's."""
        return next(iter(self._graphs.values())) if self._graphs else self.graph(None)

    def graph(self, batch: int | None):
        """The file's graph with its symbolic batch bound to `batch` (None: the file's own batch, or 1)."""
        if batch not in self._graphs:
            from .importer import import_file

            graph, self.model = import_file(self.model, self.path, batch, self.dims)
            graph.graph["name"] = self.name
            self._graphs[batch] = unfold_batch_norm(graph) if self.unfold_bn else graph
        return self._graphs[batch]

    def training_note(self) -> str | None:
        """The one line every training output of this file says when its BatchNormalization looks folded."""
        graph = self._any_graph()
        if self.unfold_bn:
            bases = [n[:-len(UNFOLDED)] for n in graph.nodes if n.endswith(UNFOLDED)]
            convs = sum(1 for b in bases if b in graph.nodes and graph.nodes[b]["op"] == "Conv")
            linears = f" and {len(bases) - convs} linear layers" if len(bases) > convs else ""
            return f"{self.name}: BatchNormalization restored after {convs} convs{linears} (--unfold-bn)"
        convs, linears = foldable_convs(graph), foldable_linears(graph)
        if not convs and not linears:
            return None
        what = " and ".join(f"{len(found)} {kind} with biases" for found, kind in
                            ((convs, "convs"), (linears, "linear layers")) if found)
        bn = any(graph.nodes[n]["op"] == "BatchNormalization" for n in graph.nodes)
        said = f"has {what} where its other layers have BatchNormalization" if bn else \
            f"has no BatchNormalization but {what}"
        return (f"{self.name} {said}: BN looks folded at export, "
                f"and training memory and time leave it out; export with training=torch.onnx.TrainingMode.TRAINING, "
                f"do_constant_folding=False (or the dynamo exporter on a model in train mode), or pass --unfold-bn")


UNFOLDED = "#bn"
NORMS = {"BatchNormalization", "LayerNormalization", "GroupNormalization", "InstanceNormalization"}
ACTIVATIONS = {"Relu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "LeakyRelu", "PRelu", "Gelu", "Tanh", "Elu",
               "Selu", "Mish", "Softplus", "Swish"}  # Swish: the composite x * Sigmoid(x)


def _normed(graph) -> bool:
    from ..graph.composite import composites

    return any(graph.nodes[n]["op"] in NORMS for n in graph.nodes) or \
        any(c.kind == "LayerNormalization" for c in composites(graph).values())


def foldable_convs(graph) -> list[str]:
    """Convs whose bias may be a folded BatchNormalization: a bias and an output wider than 1x1 (a
    squeeze-excitation conv on a pooled map never had BN). In a file with no norm, every such conv. A file with
    norms (BatchNormalization after its other layers, as LeViT's linear layers beside its folded conv stem;
    LayerNorm beside conv-BN stems, as MobileViT and EfficientFormer) shows it by a biased conv that feeds an
    activation straight away (an exported GELU or SiLU composite too, as the one op); there, a conv feeding a norm
    (EfficientFormer's MLP) or reading one (ConvNeXt's pre-norm MLP, through the permute back) is not one."""
    from ..graph.builder import readers

    from ..graph.composite import composites

    tensors, read, nodes = graph.graph["tensors"], readers(graph), graph.nodes
    normed, parts = _normed(graph), composites(graph)
    producer = {t: n for n in nodes for t in nodes[n]["outputs"]}

    def kind(n):  # an op, or the composite it is part of (an exported GELU, SiLU, LayerNorm)
        return parts[n].kind if n in parts else nodes[n]["op"]

    def feeds(name, ops):
        return any(kind(r) in ops for t in nodes[name]["outputs"] for r in read.get(t, ()))

    def after_norm(name):  # a pre-norm block's first layer (ConvNeXt's MLP: LayerNorm, permuted back, then the conv)
        made = producer.get(nodes[name]["inputs"][0]) if nodes[name]["inputs"] else None
        if made is not None and nodes[made]["op"] == "Transpose":
            made = producer.get(nodes[made]["inputs"][0])
        return made is not None and kind(made) in NORMS

    found = [n for n in nodes if nodes[n]["op"] == "Conv" and any(w.role == "B" for w in nodes[n]["weights"])
             and math.prod(tensors[nodes[n]["outputs"][0]][2:]) > 1
             and not (normed and (feeds(n, NORMS | {"Transpose"}) or after_norm(n)))]
    if normed and not any(feeds(n, ACTIVATIONS) for n in found):
        return []
    return found


VIEWS = {"Reshape", "Flatten", "Squeeze", "Unsqueeze"}


def _linear(graph, name: str, read) -> tuple[str, bool] | None:
    """A linear layer (MatMul or Gemm with a weight): (its output after any bias, whether it has a bias: Gemm's C,
    or an Add of a learned vector that alone reads the product)."""
    node = graph.nodes[name]
    if node["op"] not in ("MatMul", "Gemm") or not any(w.role == "W" for w in node["weights"]):
        return None
    out = node["outputs"][0]
    if any(w.role == "B" for w in node["weights"]):
        return out, True
    after = read.get(out, ())
    if len(after) == 1 and graph.nodes[after[0]]["op"] == "Add" and any(
            w.trainable for w in graph.nodes[after[0]]["weights"]):
        return graph.nodes[after[0]]["outputs"][0], True
    return out, False


def foldable_linears(graph) -> list[str]:
    """Linear layers whose bias may be a folded BatchNorm1d: where the file's unbiased linear layers are each
    followed by a BatchNormalization (through views: LeViT's LinearNorm, bn(x.flatten(0, 1)).reshape_as(x)), a
    biased one that feeds an activation straight away. A transformer's linear layers (ViT, Swin, ConvNeXt's MLP)
    feed no BatchNormalization: never these."""
    from ..graph.builder import readers

    from ..graph.composite import composites

    read, nodes, parts = readers(graph), graph.nodes, composites(graph)

    def reaches_bn(t, steps=3):
        after = read.get(t, ())
        if len(after) != 1 or steps == 0:
            return False
        op = nodes[after[0]]["op"]
        return op == "BatchNormalization" or (op in VIEWS and reaches_bn(nodes[after[0]]["outputs"][0], steps - 1))

    linears = {n: found for n in nodes if (found := _linear(graph, n, read))}
    if not any(reaches_bn(out) for out, biased in linears.values() if not biased):
        return []
    return [n for n, (out, biased) in linears.items()
            if biased and any((parts[r].kind if r in parts else nodes[r]["op"]) in ACTIVATIONS
                              for r in read.get(out, ()))]


def unfold_batch_norm(graph):
    """The training graph of an eval-mode export (some convs carry biases: foldable_convs): every conv on a map
    wider than 1x1, with a bias or without (the dynamo exporter drops a folded bias that is zero), loses its bias
    and a BatchNormalization follows it (scale and shift: params; running mean and variance: buffers; one per
    output channel), as the conv-BN pair it was folded from. In a file with norms, only the foldable convs. Each
    foldable linear layer (foldable_linears) likewise: its bias becomes a BatchNorm1d over its output features,
    on the output flattened to (rows, features) and reshaped back, as LeViT's LinearNorm runs it."""
    from ..graph.builder import Weight
    from ..graph.digraph import DiGraph

    tensors, biased = graph.graph["tensors"], foldable_convs(graph)
    if _normed(graph):  # beside other norms only the convs that show a folded bias
        convs = set(biased)
    else:  # else every conv on a map wider than 1x1: the dynamo exporter drops a folded bias that is zero
        convs = {n for n in graph.nodes if graph.nodes[n]["op"] == "Conv" and graph.nodes[n]["outputs"]
                 and math.prod(tensors[graph.nodes[n]["outputs"][0]][2:]) > 1} if biased else set()
    from ..graph.builder import readers

    read = readers(graph)
    biases = {}  # the node holding a foldable linear's bias (a Gemm itself, or the Add after a MatMul)
    for n in foldable_linears(graph):
        after = read.get(graph.nodes[n]["outputs"][0], ())
        biases[n if graph.nodes[n]["op"] == "Gemm" else after[0]] = n
    attrs = {k: v for k, v in graph.graph.items() if k != "derived"}
    out = DiGraph(**{**attrs, "tensors": dict(graph.graph["tensors"])})

    def batch_norm(name, node, x, y, channels):
        out.add_node(f"{name}{UNFOLDED}", op="BatchNormalization", attrs={"epsilon": 1e-5}, inputs=(x,), outputs=(y,),
                     stage=node["stage"], block=node["block"], layer=node["layer"],
                     weights=(Weight("scale", (channels,)), Weight("B", (channels,)),
                              Weight("mean", (channels,), False), Weight("var", (channels,), False)))

    for name in graph.nodes:
        node = dict(graph.nodes[name])
        if name not in convs and name not in biases:
            out.add_node(name, **node)
            continue
        (y,) = node["outputs"][:1]
        shape = tensors[y]
        if name in convs or node["op"] == "Gemm":  # the op keeps its product, the BN takes its output
            raw = f"{y}{UNFOLDED}"
            out.graph["tensors"][raw] = shape
            kept = tuple(w for w in node["weights"] if w.role != "B")
            out.add_node(name, **{**node, "outputs": (raw,), "weights": kept})
            batch_norm(name, node, raw, y, shape[1] if name in convs else shape[-1])
            continue
        product = next(t for t in node["inputs"] if t in tensors)  # the MatMul's output: the Add becomes the BN
        if len(shape) == 2:
            batch_norm(name, node, product, y, shape[1])
            continue
        flat, normed = (f"{y}#rows", f"{y}#rows{UNFOLDED}")
        out.graph["tensors"][flat] = out.graph["tensors"][normed] = (math.prod(shape[:-1]), shape[-1])
        place = {k: node[k] for k in ("stage", "block", "layer")}
        out.add_node(f"{name}#flatten", op="Flatten", attrs={"axis": len(shape) - 1}, inputs=(product,),
                     outputs=(flat,), weights=(), **place)
        batch_norm(name, node, flat, normed, shape[-1])
        out.add_node(f"{name}#reshape", op="Reshape", attrs={}, inputs=(normed,), outputs=(y,), weights=(), **place)
    producer = {t: n for n in out.nodes for t in out.nodes[n]["outputs"]}
    out.add_edges_from((producer[t], n, {"tensor": t}) for n in out.nodes for t in dict.fromkeys(out.nodes[n]["inputs"])
                       if t in producer)
    return out


_OPENED: dict[tuple, Imported] = {}


def meta_number(meta: dict, key: str) -> float | None:
    """A figure from a file's metadata (phi, depth_mult, width_mult as export writes them); text that is no
    finite number (a hand-edited "abc", "nan", "1e999") is none: reports never hold NaN or Infinity."""
    try:
        value = float(meta.get(key) or "nan")
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def refuse_rescaling(path: str, given: list[str]) -> None:
    """One line for options that rescale a built design, given with a file."""
    if given:
        raise EffplanError(f"{given[0]} rescales a built design; {path} is an ONNX file, which fixes its own widths, "
                           f"depth and input size (export it again at the size you want; --batch binds a symbolic "
                           f"batch)")
