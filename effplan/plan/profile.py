"""Profiles: one graph, costed per layer, with totals and roll-ups by block and stage."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields
from operator import attrgetter

from ..graph.builder import cost_rows
from ..base.units import dtype_size
from ..graph.ops import COSTS, OPS, LayerCost, UnknownOpError
from .memory import DEFAULT_OPTIMIZER, DEFAULT_PRECISION, Peak, inference_peak, training_memory
from ..design.scaling import Design

SUMMED = ("params", "buffers", "macs", "flops", "weight_bytes")
GROUPINGS = ("layer", "block", "stage", "op")


@dataclass(frozen=True)
class Totals:
    params: int
    buffers: int
    macs: int
    flops: int
    weight_bytes: int
    peak_activation_bytes: int
    layers: int  # ops with weights that multiply (`weighted` in the op table): Conv, ConvTranspose, Gemm, MatMul


@dataclass(frozen=True)
class Profile:
    design: Design | None
    batch: int
    dtype: str
    rows: tuple[LayerCost, ...]
    unknown_ops: dict[str, int]  # op type -> count of nodes no cost function knows
    peak: Peak
    totals: Totals
    graph: object = field(default=None, compare=False, repr=False)

    def __repr__(self) -> str:  # short: the dataclass repr of every row runs to 80,000 characters
        t = self.totals
        return (f"<Profile {self._title()}: {len(self.rows)} ops, params={t.params:,}, macs={t.macs:,}, "
                f"flops={t.flops:,}>")

    def _title(self) -> str:
        d = self.design
        what = f"{d.name} at {d.resolution}px" if d is not None else (self.graph.graph.get("name", "graph")
                                                                     if self.graph is not None else "graph")
        return f"{what}, batch {self.batch}, {self.dtype}"

    def summary(self) -> str:
        """A few lines for a person: the design and its totals, exact."""
        t = self.totals
        unknown = ", ".join(f"{op} x{n}" for op, n in self.unknown_ops.items())
        return "\n".join([
            self._title(),
            f"  params           {t.params:,} (+ {t.buffers:,} BN statistics)",
            f"  MACs             {t.macs:,}",
            f"  FLOPs            {t.flops:,}",
            f"  layers           {t.layers} (Conv, Gemm, MatMul) of {len(self.rows)} ops",
            f"  weight bytes     {t.weight_bytes:,}",
            f"  peak activation  {t.peak_activation_bytes:,} bytes (at {self.peak.node})",
            *([f"  no cost function {unknown} (counted as zero)"] if unknown else []),
        ])

    def group(self, by: str = "layer") -> list[LayerCost]:
        """Rows per layer (op), block, stage or op type; params, MACs, FLOPs and bytes sum exactly."""
        if by == "layer":
            return list(self.rows)
        key = {"block": lambda r: (r.stage, r.block), "stage": lambda r: r.stage,
               "op": lambda r: r.op}[by]
        groups: dict = {}
        for row in self.rows:
            groups.setdefault(key(row), []).append(row)
        return [_merge(k, rows, by) for k, rows in groups.items()]


def block_name(stage, block: int, by: str) -> str:
    """'stage3', 'stage3.block1', 'stem', 'stem.2' (stem and head blocks are numbered rows)."""
    if isinstance(stage, str):
        return stage if by == "stage" else f"{stage}.{block}"
    return f"stage{stage}" if by == "stage" else f"stage{stage}.block{block}"


def _merge(key, rows: list[LayerCost], by: str) -> LayerCost:
    first, last = rows[0], rows[-1]
    sums = {f: sum(getattr(r, f) for r in rows) for f in SUMMED}
    if by == "op":
        return LayerCost(name=f"{key} x{len(rows)}", op=key, stage="", block=None, layer="",
                         input_shape=(), output_shape=(), output_bytes=sum(r.output_bytes for r in rows),
                         **sums)
    name = block_name(first.stage, first.block, by)
    return LayerCost(name=name, op=f"{len(rows)} ops", stage=first.stage,
                     block=first.block if by == "block" else None, layer="",
                     input_shape=first.input_shape, output_shape=last.output_shape,
                     output_bytes=last.output_bytes, **sums)


def profile(graph, design: Design | None = None, batch: int = 1, dtype: str = "fp32",
            strict: bool = False) -> Profile:
    """Cost every node of a graph; ops no cost function knows are counted and listed, not zeroed in
    silence (their rows keep their params and weight bytes, with no MACs or FLOPs)."""
    size = dtype_size(dtype)
    rows = tuple(cost_rows(graph, size).values())  # once per graph and dtype size: a command asks again
    unknown = Counter(r.op for r in rows if r.op not in COSTS)
    if unknown and strict:
        raise UnknownOpError("no cost function for: " + ", ".join(f"{op} (x{n})" for op, n in unknown.items()))
    peak = inference_peak(graph, size)
    totals = Totals(**{f: sum(map(attrgetter(f), rows)) for f in SUMMED},
                    peak_activation_bytes=peak.bytes,
                    layers=sum(r.op in OPS and OPS[r.op].weighted for r in rows))
    return Profile(design, batch, dtype, tuple(rows), dict(unknown), peak, totals, graph)


def analyze(design: Design, batch: int = 1, dtype: str = "fp32", strict: bool = False) -> Profile:
    """Build a design's graph and profile it."""
    from ..design.blocks import build

    if batch < 1:
        from ..base.errors import EffplanError
        raise EffplanError(f"batch must be at least 1, got {batch}")
    dtype_size(dtype)
    return profile(build(design, batch), design, batch, dtype, strict)


def row_dict(row: LayerCost) -> dict:
    return {f.name: getattr(row, f.name) for f in fields(row)}


CONVENTIONS = {
    "macs": "multiply-accumulates of Conv (incl. depthwise/grouped) and Gemm/MatMul; the EfficientNet paper's 'FLOPS'",
    "flops": "2*MACs + bias adds + a fixed count per output element of every other op (BN 2, Sigmoid 3, Mul/Add/ReLU 1, pooling 1 per input)",
    "params": "trainable: conv/linear weights and biases, BatchNormalization scale and shift; BN running statistics are buffers, counted apart",
    "bytes": "elements x dtype size; weight bytes include BN buffers; activations scale with batch; text shows MiB = 2^20 bytes",
    "peak_activation": "largest total of live activation tensors (input included) running ops in topological order, no in-place reuse",
}


def describe(design) -> dict:
    """What a report says about the design it costs."""
    return {"model": design.name, "phi": design.phi, "depth_mult": design.depth_mult,
            "width_mult": design.width_mult, "resolution": design.resolution}


def conv_form(node: dict, input_shape) -> dict:
    """A layer's `kind` (Conv: depthwise when group = input channels > 1, grouped for another group,
    pointwise when 1x1, else dense), `kernel` and `stride` (ops with a kernel); None where none applies."""
    attrs = node["attrs"]
    weights = {w.role: w.shape for w in node["weights"]}
    kernel = attrs.get("kernel_shape") or (weights["W"][2:] if node["op"] == "Conv" and "W" in weights else None)
    if not kernel:
        return {"kind": None, "kernel": None, "stride": None}
    kernel = tuple(kernel)
    stride = tuple(attrs.get("strides") or (1,) * len(kernel))
    kind = None
    if node["op"] == "Conv":
        group, channels = attrs.get("group", 1), input_shape[1] if len(input_shape) > 1 else None
        kind = ("depthwise" if group > 1 and group == channels else "grouped" if group > 1
                else "pointwise" if all(k == 1 for k in kernel) else "dense")
    return {"kind": kind, "kernel": kernel, "stride": stride}


LAYER_SORT_KEYS = ("params", "buffers", "macs", "flops", "weight_bytes", "output_bytes")


def stored_weights(graph) -> tuple[dict, dict]:
    """An imported graph's ({"distinct_weight_elements": what the file stores, each initializer once},
    {"shared_initializers": {initializer: the ops that each count it}}); a built graph's ({}, {})."""
    if graph is None or "distinct_weight_elements" not in graph.graph:
        return {}, {}
    return ({"distinct_weight_elements": graph.graph["distinct_weight_elements"]},
            {"shared_initializers": graph.graph["shared_initializers"]})


def layers_report(profile: Profile, by: str, info: dict | None = None, sort: str | None = None,
                  top: int | None = None) -> dict:
    """The `effplan layers --format json` contract (also `effplan analyze`); each row's `share` is its
    part of the total MACs. `sort` orders the rows by a LAYER_SORT_KEYS figure, largest first; `top`
    keeps the first rows."""
    t = profile.totals
    rows = [row_dict(r) for r in profile.group(by)]
    for row in rows:
        if by == "layer":
            row.update(conv_form(profile.graph.nodes[row["name"]], row["input_shape"]))
        row["share"] = row["macs"] / t.macs if t.macs else None
    if sort:
        rows.sort(key=lambda r: -r[sort])
    return {
        **(info or describe(profile.design)), "batch": profile.batch, "dtype": profile.dtype, "by": by,
        "conventions": CONVENTIONS,
        "totals": {"params": t.params, "buffers": t.buffers, "macs": t.macs, "flops": t.flops,
                   "weight_bytes": t.weight_bytes, "peak_activation_bytes": t.peak_activation_bytes,
                   "layers": t.layers, "peak_layer": profile.peak.node, **stored_weights(profile.graph)[0]},
        **stored_weights(profile.graph)[1],
        "unknown_ops": profile.unknown_ops,
        **({"sort": sort} if sort else {}), **({"top": top, "rows": len(rows)} if top else {}),
        "layers": rows[:top] if top else rows,
    }


# ---- the summary row of a design (`effplan table`, `compare`, `report`) ----

def design_row(profile: Profile, base_macs: int | None, training=None) -> dict:
    """One design's summary, the `effplan table` JSON contract plus extensions."""
    d, t = profile.design, profile.totals
    return {
        "model": d.name, "phi": d.phi, "depth_mult": d.depth_mult, "width_mult": d.width_mult,
        "resolution": d.resolution, "coefficients": d.coefficients, "classes": d.classes,
        "batch": profile.batch, "dtype": profile.dtype, "layers": t.layers,
        "params": t.params, "buffers": t.buffers, "macs": t.macs, "flops": t.flops,
        "weight_bytes": t.weight_bytes, "peak_activation_bytes": t.peak_activation_bytes,
        "inference_bytes": t.weight_bytes + t.peak_activation_bytes,
        "training_bytes": training.total_bytes if training else None,
        "macs_ratio": t.macs / base_macs if base_macs else None,
        "two_pow_phi": 2.0 ** d.phi if d.phi is not None else None,
        "unknown_ops": profile.unknown_ops,
    }


def design_rows(pairs, batch, dtype, precision=DEFAULT_PRECISION, optimizer=DEFAULT_OPTIMIZER, device=None,
                runtime=None, train=False, profiles=None) -> list[dict]:
    """The summary row of each (design, baseline) pair, with its MACs ratio to the baseline; with `train`
    (and a device), a training step's time and images/s at the batch on one device. `profiles`: the
    pairs' designs already analyzed at the batch and dtype (so a caller costs them once)."""
    macs = {}  # the phi = 0 baseline's MACs of each model (a file has none)

    def base_macs(base):
        if base is None:
            return None
        if network_key(base) not in macs:
            macs[network_key(base)] = analyze(base, batch, dtype).totals.macs
        return macs[network_key(base)]

    rows = []
    for i, (design, base) in enumerate(pairs):  # one design at a time: its graph is let go before the next
        p = profiles[i] if profiles is not None else analyze(design, batch, dtype)
        rows.append(design_row(p, base_macs(base), training_memory(p.graph, precision, optimizer)))
        if device:
            rows[-1].update(device_rows([p.graph], device, dtype, batch, runtime, train, precision, optimizer)[0])
    return rows


def device_rows(graphs, device, dtype, batch, runtime=None, train=False, precision=DEFAULT_PRECISION,
                optimizer=DEFAULT_OPTIMIZER) -> list[dict]:
    """Per graph: its roofline latency and images/s on `device` at `dtype` (a graph holds shapes, not
    the element type, so one built graph serves every device); with `train`, a training step's too."""
    from .hardware import load_device
    from .roofline import roofline

    found = load_device(device)
    rows = []
    for graph in graphs:
        result = roofline(graph, found, dtype, batch, runtime=runtime)
        row = dict(device=found.name, runtime=result.runtime.name, latency_s=result.latency_s,
                   images_per_s=result.images_per_s)
        if train:
            from .training import training_step
            step = training_step(graph, found, runtime=runtime, precision=precision, optimizer=optimizer)
            row.update(training_runtime=step.runtime.name, training_step_s=step.time_s,
                       training_images_per_s=step.images_per_s)
        rows.append(row)
    return rows


def network_key(design) -> tuple:
    """What decides a design's graph (not its name or how its coefficients were found); a file's: its path."""
    if design.spec is None:
        return ("file", design.path)
    return (design.spec, design.depth_mult, design.width_mult, design.resolution, design.classes,
            design.depth_rounding)
