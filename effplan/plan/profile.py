"""Profiles: one graph, costed per layer, with totals and roll-ups by block and stage."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields

from ..graph.ops import COSTS, LayerCost, UnknownOpError, dtype_size, node_cost
from .memory import Peak, inference_peak
from ..design.scaling import Design

SUMMED = ("params", "buffers", "macs", "flops", "weight_bytes")
GROUPINGS = ("layer", "block", "stage", "op")
WEIGHTED_OPS = ("Conv", "Gemm", "MatMul")


@dataclass(frozen=True)
class Totals:
    params: int
    buffers: int
    macs: int
    flops: int
    weight_bytes: int
    peak_activation_bytes: int
    layers: int  # ops with weights that multiply: Conv, Gemm, MatMul


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
    rows = [node_cost(graph, name, size, costed_only=False) for name in graph.nodes]
    unknown = Counter(r.op for r in rows if r.op not in COSTS)
    if unknown and strict:
        raise UnknownOpError("no cost function for: " + ", ".join(f"{op} (x{n})" for op, n in unknown.items()))
    peak = inference_peak(graph, size)
    totals = Totals(**{f: sum(getattr(r, f) for r in rows) for f in SUMMED},
                    peak_activation_bytes=peak.bytes,
                    layers=sum(r.op in WEIGHTED_OPS for r in rows))
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
    "bytes": "elements x dtype size; weight bytes include BN buffers; activations scale with batch; MB = 10^6 bytes",
    "peak_activation": "largest total of live activation tensors (input included) running ops in topological order, no in-place reuse",
}


def describe(design) -> dict:
    """What a report says about the design it costs."""
    return {"model": design.name, "phi": design.phi, "depth_mult": design.depth_mult,
            "width_mult": design.width_mult, "resolution": design.resolution}


def layers_report(profile: Profile, by: str, info: dict | None = None) -> dict:
    """The `effplan layers --format json` contract (also `effplan analyze`)."""
    t = profile.totals
    return {
        **(info or describe(profile.design)), "batch": profile.batch, "dtype": profile.dtype, "by": by,
        "conventions": CONVENTIONS,
        "totals": {"params": t.params, "buffers": t.buffers, "macs": t.macs, "flops": t.flops,
                   "weight_bytes": t.weight_bytes, "peak_activation_bytes": t.peak_activation_bytes,
                   "layers": t.layers, "peak_layer": profile.peak.node},
        "unknown_ops": profile.unknown_ops,
        "layers": [row_dict(r) for r in profile.group(by)],
    }
