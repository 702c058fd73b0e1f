"""Reports: each command's rows and headers, rendered as text (human units), CSV and JSON (exact
integers) or markdown through render/tables.py."""
from __future__ import annotations

from ..base.version import __version__
from ..plan.profile import Profile, block_name, describe, layers_report
from .tables import View, render_rows, text_cell as shown_name, to_json

FORMATS = ("text", "csv", "json", "markdown")

def header(batch: int, dtype: str, precision: str | None = None, optimizer: str | None = None,
           device: str | None = None, runtime: str | None = None, origin: str | None = None) -> str:
    """The header line of a design table; `origin`: why it is at `dtype` (base/units.dtype_origin)."""
    training = (f" | infer = peak activations + weights | train = one {precision} step with {optimizer}: saved "
                f"activations, weights, gradients, optimizer state, backward transient") if precision else ""
    if device:
        training += f" | latency = roofline on {device} at {dtype}, as the {runtime} runtime runs it (effplan roofline)"
    at = f"{dtype} ({origin})" if origin else dtype
    return (f"# effplan {__version__} | batch {batch}, {at} | MACs = conv+gemm multiply-accumulates (paper's FLOPS)"
            f" | FLOPs = 2*MACs + elementwise | params = trainable (BN scale+shift; running stats apart) | bytes in MiB ="
            f" 2^20, GiB = 2^30{training}")


def si(value: float, unit: str, digits: int = 3) -> str:
    scale = {"k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}[unit]
    return f"{value / scale:.{digits}f}{unit}"


def mib(value: int) -> str:
    return f"{value / (1 << 20):.1f}"


TABLE_COLUMNS = [  # (header, key, text formatter)
    ("model", "model", str),
    ("φ", "phi", lambda v: "-" if v is None else f"{v:g}"),
    ("d", "depth_mult", lambda v: "-" if v is None else f"{v:.3f}"),  # an ONNX file not written by effplan: None
    ("w", "width_mult", lambda v: "-" if v is None else f"{v:.3f}"),
    ("res", "resolution", lambda v: "-" if v is None else str(v)),
    ("layers", "layers", str),
    ("params", "params", lambda v: si(v, "M")),
    ("MACs", "macs", lambda v: si(v, "G")),
    ("FLOPs", "flops", lambda v: si(v, "G")),
    ("weights MiB", "weight_bytes", mib),
    ("peak act MiB", "peak_activation_bytes", mib),
    ("infer MiB", "inference_bytes", mib),
    ("train GiB", "training_bytes", lambda v: "-" if v is None else f"{v / (1 << 30):.2f}"),
    ("MACs ×φ0", "macs_ratio", lambda v: "-" if v is None else f"{v:.2f}"),
    ("2^φ", "two_pow_phi", lambda v: "-" if v is None else f"{v:.2f}"),
]

# Hidden in this order when a text table is wider than the terminal (the rest always show).
TABLE_OPTIONAL = ("depth_mult", "layers", "width_mult", "flops", "weight_bytes", "two_pow_phi", "macs_ratio",
                  "resolution", "training_bytes", "peak_activation_bytes", "phi", "params")

DEVICE_COLUMNS = [
    ("latency ms", "latency_s", lambda v: f"{v * 1e3:.3f}"),
    ("images/s", "images_per_s", lambda v: f"{v:,.0f}"),
]
TRAIN_COLUMNS = [  # effplan table --train: one training step at the batch on one device
    ("train step ms", "training_step_s", lambda v: f"{v * 1e3:.2f}"),
    ("train img/s", "training_images_per_s", lambda v: f"{v:,.0f}"),
]

def _shape(v) -> str:
    return "" if v is None else "x".join(map(str, v))


LAYER_COLUMNS = [
    ("name", "name", str),
    ("op", "op", str),
    ("kind", "kind", lambda v: v or ""),
    ("stage", "stage", str),
    ("block", "block", lambda v: "" if v is None else str(v)),
    ("kernel", "kernel", _shape),
    ("stride", "stride", _shape),
    ("input", "input_shape", _shape),
    ("output", "output_shape", _shape),
    ("params", "params", lambda v: f"{v:,}"),
    ("buffers", "buffers", lambda v: f"{v:,}"),
    ("MACs", "macs", lambda v: f"{v:,}"),
    ("FLOPs", "flops", lambda v: f"{v:,}"),
    ("weights MiB", "weight_bytes", lambda v: f"{v / (1 << 20):.3f}"),
    ("output MiB", "output_bytes", lambda v: f"{v / (1 << 20):.3f}"),
    ("MACs %", "share", lambda v: "-" if v is None else f"{v:.1%}"),
]
LAYER_FORM = ("kind", "kernel", "stride")  # per layer only
LAYER_OPTIONAL = ("input_shape", "block", "stage", "output_bytes", "weight_bytes", "flops", "stride", "kernel",
                  "buffers", "output_shape", "kind", "share", "params", "op")


def render_layers(profile: Profile, by: str, fmt: str, info: dict | None = None, note: str = "",
                  view: View | None = None, sort: str | None = None, top: int | None = None) -> str:
    """`effplan layers` and `effplan analyze` output in any format; text and markdown end with the
    whole model's total row."""
    report = layers_report(profile, by, info, sort, top)
    if fmt == "json":
        return to_json(report)
    t = profile.totals
    columns = [c for c in LAYER_COLUMNS if by == "layer" or c[1] not in LAYER_FORM]
    if fmt == "csv":
        return render_rows(report["layers"], columns, fmt)
    where = f" at {report['resolution']}px" if report.get("resolution") else ""
    summary = (f"# {shown_name(report['model'])}{where}: params {t.params:,} (+ {t.buffers:,} buffers: BN running statistics), "
               f"MACs {si(t.macs, 'G')}, FLOPs {si(t.flops, 'G')}, peak activation "
               f"{t.peak_activation_bytes / (1 << 20):.1f} MiB at {shown_name(profile.peak.node or 'input')}")
    if report.get("depth_mult") is not None:
        summary = summary.replace(": params", f" (d {report['depth_mult']:.3f}, w {report['width_mult']:.3f}): params", 1)
    if note:
        summary += "\n# " + note
    shared = report.get("shared_initializers")
    if shared:
        names = list(shared)
        summary += (f"\n# {len(shared)} initializers are read by several ops, each counting it as its own params "
                    f"(the file stores {report['totals']['distinct_weight_elements']:,} weight elements): "
                    + ", ".join(f"{shown_name(n)} x{len(shared[n])}" for n in names[:4]) + (", ..." if len(names) > 4 else ""))
    if profile.unknown_ops:
        summary += "\n# no cost function (params counted, no MACs or FLOPs): " + ", ".join(
            f"{shown_name(op)} x{n}" for op, n in profile.unknown_ops.items())
    if top or sort:
        shown, of = len(report["layers"]), report.get("rows", len(report["layers"]))
        summary += (f"\n# {shown} of {of} rows" + (f", most {sort} first" if sort else "")
                    + "; the total row is the whole model's")
    total = {"name": "total", "params": t.params, "buffers": t.buffers, "macs": t.macs, "flops": t.flops,
             "weight_bytes": t.weight_bytes, "share": 1.0 if t.macs else None}
    return render_rows(report["layers"], columns, fmt, header(profile.batch, profile.dtype) + "\n" + summary, view,
                       [k for k in LAYER_OPTIONAL if k != sort and any(c[1] == k for c in columns)], total)
    # (the sorted figure always shows; roll-ups have no kind, kernel or stride)


MEMORY_COLUMNS = [
    ("name", "name", str),
    ("op", "op", str),
    ("stage", "stage", str),
    ("block", "block", lambda v: "" if v is None else str(v)),
    ("output MiB", "output_bytes", lambda v: f"{v / (1 << 20):.3f}"),
    ("live MiB", "live_bytes", lambda v: f"{v / (1 << 20):.3f}"),
    ("aware MiB", "memory_aware_live_bytes", lambda v: f"{v / (1 << 20):.3f}"),
    ("saved MiB", "saved_bytes", lambda v: "-" if v is None else f"{v / (1 << 20):.3f}"),
]


def memory_rows(graph, plain, aware, training, dtype_bytes: int, by: str) -> list[dict]:
    """Per layer: output bytes, live bytes while it runs (plain and memory-aware order), bytes saved
    for backward. Per block or stage: the largest live figures and the summed saved bytes."""
    import math

    live = dict(zip(plain.order, plain.timeline))
    live_aware = dict(zip(aware.order, aware.timeline))
    tensors = graph.graph["tensors"]
    rows = []
    for name in graph.nodes:
        node = graph.nodes[name]
        rows.append({"name": name, "op": node["op"], "stage": node["stage"], "block": node["block"],
                     "output_bytes": sum(math.prod(tensors[t]) for t in node["outputs"]) * dtype_bytes,
                     "live_bytes": live[name], "memory_aware_live_bytes": live_aware[name],
                     "saved_bytes": training.saved[name] if training else None})
    if by == "layer":
        return rows
    groups: dict = {}
    for row in rows:
        key = row["stage"] if by == "stage" else (row["stage"], row["block"])
        groups.setdefault(key, []).append(row)
    merged = []
    for key, members in groups.items():
        first = members[0]
        merged.append({"name": block_name(first["stage"], first["block"], by),
                       "op": f"{len(members)} ops", "stage": first["stage"],
                       "block": first["block"] if by == "block" else None,
                       "output_bytes": members[-1]["output_bytes"],
                       "live_bytes": max(r["live_bytes"] for r in members),
                       "memory_aware_live_bytes": max(r["memory_aware_live_bytes"] for r in members),
                       "saved_bytes": sum(r["saved_bytes"] for r in members) if training else None})
    return merged


def memory_assumptions(inplace: bool, fold_bn: bool, fuse_se: bool, training=None, order: str = "plain") -> dict:
    notes = {
        "liveness": "a tensor lives from the start of its producer to the end of its last reader; the input counts",
        "weights": "all weights resident (BN running statistics included), reported beside activations",
        "inplace": "elementwise ops overwrite a same-shape input nothing reads later" if inplace
                   else "no in-place reuse: every op writes a new tensor",
        "batch_norm": "folded into the convs (inference graph)" if fold_bn else "a separate op with its own output",
        "se_multiply": "fused into the following conv (its product is never stored)" if fuse_se
                       else "stored as its own tensor",
        "order": ("the better of the builder's order and the memory-aware one (ready branches ordered by peak "
                  "above what they leave)" if order == "aware" else
                  "the builder's order, as runtimes run the graph (--order aware plans with the memory-aware one)"),
    }
    if training:
        notes["training"] = (
            f"{training.precision} precision, {training.optimizer}: activations saved for backward as autograd "
            f"saves them (conv/gemm: input; BN: input + fp32 mean and inverse std; Swish (SiLU): input; "
            f"ReLU/Sigmoid: output; Clip/HardSwish: input; Mul: both operands; MaxPool: input + int64 indices; "
            f"average pooling: input; Dropout: 1-byte mask; Add/Concat/reshape: nothing); a tensor saved by several ops counts once, in the row of the op that produced it; plus the largest "
            f"op's input and output gradients (transient); weights, gradients and optimizer state per parameter")
        if training.checkpoint == "blocks":
            notes["checkpoint"] = ("blocks: only each block's inputs (and the stem's and head's saved tensors) are "
                                   "kept; backward recomputes one block's forward at a time")
    return notes


MEMORY_OPTIONAL = ("block", "stage", "memory_aware_live_bytes", "output_bytes", "op")


def render_memory(report: dict, rows: list[dict], fmt: str, view: View | None = None) -> str:
    from ..base.units import human_bytes

    if fmt == "json":
        return to_json({**report, "layers": rows})
    t = report.get("training")
    lines = [f"# effplan {__version__} | memory | {shown_name(report['model'])} at {report['resolution']}px, batch {report['batch']}, "
             f"{report['dtype']} | MiB = 2^20 bytes"]
    lines += [f"# {key}: {text}" for key, text in report["assumptions"].items()]
    lines.append(f"inference: peak activations {human_bytes(report['inference_peak_bytes'])} at "
                 f"{shown_name(report['peak_layer'] or 'input')} + weights {human_bytes(report['weight_bytes'])} = "
                 f"{human_bytes(report['inference_total_bytes'])}")
    gain = report["plain_order_peak_bytes"] - report["memory_aware_peak_bytes"]
    plain = human_bytes(report["plain_order_peak_bytes"])
    lines.append(f"memory-aware order: peak {human_bytes(report['memory_aware_peak_bytes'])} "
                 + (f"(would save {human_bytes(gain)} over plain order {plain}; --order aware plans with it)"
                    if gain > 0 else f"(plain order {plain}: " + ("no gain, the peak lies on a chain of ops)"
                                                                  if gain == 0 else "plain order is better here)")))
    lines.append("live at the peak: " + ", ".join(f"{x['name']} {human_bytes(x['bytes'])}"
                                                  for x in report["peak_live_tensors"]))
    if t:
        lines.append(f"training ({t['precision']}, {t['optimizer']}, checkpoint {t['checkpoint']}): "
                     f"{human_bytes(t['total_bytes'])} = activations {human_bytes(t['activation_bytes'])} + weights "
                     f"{human_bytes(t['weight_bytes'])} + gradients {human_bytes(t['gradient_bytes'])} + optimizer "
                     f"{human_bytes(t['optimizer_bytes'])} + transient {human_bytes(t['transient_bytes'])}")
        if t["checkpoint"] == "blocks":
            lines.append(f"checkpointing saves {human_bytes(t['checkpoint_saved_bytes'])} of activations for "
                         f"{si(t['recompute_flops'], 'G')} extra FLOPs (one more forward of every block)")
    columns = MEMORY_COLUMNS if t else MEMORY_COLUMNS[:-1]
    if fmt == "csv":
        return render_rows(rows, columns, fmt)
    total = {"name": "total" + (" before checkpointing" if t and t["checkpoint"] != "none" else ""),
             "saved_bytes": t["activation_bytes_without_checkpoint"]} if t else None
    return render_rows(rows, columns, fmt, "\n".join(lines), view, MEMORY_OPTIONAL, total)


def memory_report(graph, design, batch: int, dtype: str, *, inplace=False, fold_bn=False, fuse_se=False,
                  order: str = "plain", training=None, by: str = "layer") -> tuple[dict, list[dict]]:
    """The `effplan memory` report: inference peak (plain and memory-aware order; the headline in the
    `order` asked: plain, as runtimes run the graph, or the better of the two), weights, and with
    `training` (a memory.Training) the training step; plus the rows asked for by `by`."""
    from ..base.units import dtype_size
    from ..plan.memory import inference_memory

    size = dtype_size(dtype)
    m = inference_memory(graph, size, order=order, inplace=inplace, fuse_se=fuse_se)
    report = {**describe(design), "batch": batch, "dtype": dtype,
              "inference_peak_bytes": m.peak.bytes, "peak_layer": m.peak.node, "weight_bytes": m.weight_bytes,
              "inference_total_bytes": m.peak.bytes + m.weight_bytes,
              "peak_live_tensors": [{"name": t, "bytes": b} for t, b in m.live],
              "plain_order_peak_bytes": m.plain.bytes, "memory_aware_peak_bytes": m.aware.bytes,
              "options": {"inplace": inplace, "fold_bn": fold_bn, "fuse_se": fuse_se, "order": order},
              "assumptions": memory_assumptions(inplace, fold_bn, fuse_se, training, order)}
    if training:
        report["training"] = {
            "total_bytes": training.total_bytes, "activation_bytes": training.activation_bytes,
            "weight_bytes": training.weight_bytes, "gradient_bytes": training.gradient_bytes,
            "optimizer_bytes": training.optimizer_bytes, "transient_bytes": training.transient_bytes,
            "precision": training.precision, "optimizer": training.optimizer, "checkpoint": training.checkpoint,
            "activation_bytes_without_checkpoint": training.activation_bytes_without_checkpoint,
            "checkpoint_saved_bytes": training.activation_bytes_without_checkpoint - training.activation_bytes,
            "recompute_flops": training.recompute_flops}
    return report, memory_rows(graph, m.plain, m.aware, training, size, by)


def fit_report(results: list[dict], reserve: str, mode: str, fmt: str, asked: int | None = None,
               view: View | None = None, notes=()) -> str:
    """`effplan fit`: one row per design and device (or memory) (JSON: always a list). With `asked`, whether
    that batch fits: `fits` and `margin_bytes` (the budget left at that batch; negative when over)."""
    from ..base.units import human_bytes

    rows = []
    for r in results:
        f, at, budget = r["fit"], r["at"], r["budget"]
        rows.append({**describe(r["design"]), "device": r["device"], **({"dtype": r["dtype"]} if r["dtype"] else {}),
                     "batch": f.batch, "bytes_at_batch": f.bytes_at_batch,
                     "bytes_at_next_batch": f.bytes_at_next_batch, "budget_bytes": f.budget_bytes,
                     "capacity_bytes": r["capacity"], "reserve": reserve, "fixed_bytes": f.fixed_bytes,
                     "per_sample_bytes": f.per_sample_bytes, "mode": mode,
                     **({"asked_batch": asked, "bytes_at_asked_batch": at, "margin_bytes": budget - at,
                         "fits": at <= budget} if asked else {})})
    if fmt == "json":
        return to_json(rows)
    where = [("device", "device", str)] if len({r["device"] for r in rows}) > 1 else []
    where += [("dtype", "dtype", str)] if any("dtype" in r for r in rows) else []
    columns = [("model", "model", str), ("res", "resolution", str), *where, ("batch", "batch", str),
               ("memory at batch", "bytes_at_batch", human_bytes), ("at batch+1", "bytes_at_next_batch", human_bytes),
               ("fixed", "fixed_bytes", human_bytes), ("per sample", "per_sample_bytes", human_bytes)]
    optional = ("bytes_at_next_batch", "fixed_bytes", "per_sample_bytes", "resolution")  # hidden first to last
    if asked:
        columns = [("model", "model", str), ("res", "resolution", str), *where, ("batch", "asked_batch", str),
                   ("fits", "fits", lambda v: "yes" if v else "NO"),
                   ("memory", "bytes_at_asked_batch", human_bytes),
                   ("margin", "margin_bytes", lambda v: ("" if v >= 0 else "-") + human_bytes(abs(v))),
                   ("largest batch", "batch", str)]
        optional = ("batch", "resolution")
    if fmt == "csv":
        return render_rows(rows, columns, fmt)
    targets = list({r["device"]: r for r in results}.values())
    lines = [f"# effplan {__version__} | fit | " + "; ".join(
        f"{r['device']}: {human_bytes(r['capacity'])}" for r in targets)
        + f", reserve {reserve} for the runtime's context, workspace and fragmentation -> budget "
        + ", ".join(human_bytes(r["budget"]) for r in targets),
        f"# {mode}; memory(batch) = fixed + batch x per sample, solved for the largest batch within the budget "
        f"(batch 0: not even one fits)", *(f"# {note}" for note in notes)]
    return render_rows(rows, columns, fmt, "\n".join(lines), view, optional)


ROOFLINE_COLUMNS = [
    ("name", "name", str),
    ("op", "op", str),
    ("stage", "stage", str),
    ("MACs", "macs", lambda v: si(v, "M")),
    ("MB moved", "bytes", lambda v: f"{v / 1e6:.3f}"),
    ("FLOP/B", "intensity", lambda v: f"{v:.1f}"),
    ("unit", "unit", str),
    ("pad lost", "tile_loss", lambda v: f"{v:.0%}"),
    ("bound", "bound", str),
    ("time µs", "time_s", lambda v: f"{v * 1e6:.2f}"),
    ("share", "share", lambda v: f"{v:.1%}"),
]


KERNEL_SORT_KEYS = ("time_s", "macs", "flops", "bytes", "intensity", "tile_loss")


def kernel_row(k, total: float) -> dict:
    """One kernel's row (roofline's, and train's kernel view): its figures and its share of `total` seconds."""
    return {"name": k.name, "op": k.op, "stage": k.stage, "block": k.block, "macs": k.macs, "flops": k.flops,
            "bytes": k.bytes, "intensity": k.intensity, "unit": k.unit, "bound": k.bound, "time_s": k.time_s,
            "share": k.time_s / total, "compute_s": k.compute_s, "memory_s": k.memory_s,
            "overhead_s": k.overhead_s, "tile_loss": k.tile_loss, "nodes": list(k.nodes)}


def sort_top(rows: list[dict], key: str | None, top: int | None) -> tuple[list[dict], dict | None]:
    """Rows by `key`, largest first (stable: ties keep run order), and the first `top`; with what was kept:
    {"sort", "top", "of", "share"} (the kept rows' share of the time), None when all rows are kept in order."""
    if key is None and top is None:
        return rows, None
    ordered = sorted(rows, key=lambda r: -r[key]) if key else rows
    kept = ordered[:top] if top else ordered
    return kept, {"sort": key, "top": top, "of": len(rows), "share": sum(r["share"] for r in kept)}


def kept_line(kept: dict | None, what: str = "rows") -> str:
    """'the 10 of 226 kernels with the most time_s: 41.2% of the latency' for a header."""
    if not kept:
        return ""
    order = f" with the most {kept['sort']}" if kept["sort"] else " first in run order"
    n = min(kept["top"] or kept["of"], kept["of"])
    return f"# the {n} of {kept['of']} {kept.get('rows', what)}{order}: {kept['share']:.1%} of the time"


def roofline_rows(result, by: str) -> list[dict]:
    """Per kernel, or summed per block or stage (unit and bound: those holding most of the time)."""
    rows = [kernel_row(k, result.latency_s) for k in result.kernels]
    if by == "layer":
        return rows
    groups: dict = {}
    for row in rows:
        groups.setdefault(row["stage"] if by == "stage" else (row["stage"], row["block"]), []).append(row)
    merged = []
    for members in groups.values():
        first = members[0]

        def heaviest(key):
            time: dict = {}
            for r in members:
                time[r[key]] = time.get(r[key], 0) + r["time_s"]
            return max(time, key=time.get)
        sums = {k: sum(r[k] for r in members) for k in ("macs", "flops", "bytes", "time_s", "share", "compute_s",
                                                        "memory_s", "overhead_s")}
        matrix = [r for r in members if r["unit"] == "matrix" and r["macs"]]
        padded = sum(r["macs"] / (1 - r["tile_loss"]) for r in matrix)  # each kernel's padded MACs
        sums["tile_loss"] = 1 - sum(r["macs"] for r in matrix) / padded if padded else 0.0
        merged.append({"name": block_name(first["stage"], first["block"], by), "op": f"{len(members)} kernels",
                       "stage": first["stage"], "block": first["block"] if by == "block" else None, **sums,
                       "intensity": sums["flops"] / sums["bytes"] if sums["bytes"] else float("inf"),
                       "unit": heaviest("unit"), "bound": heaviest("bound"),
                       "nodes": [n for r in members for n in r["nodes"]]})
    return merged


ROOFLINE_ASSUMPTIONS = (
    "device time per kernel = max(FLOPs / (peak x efficiency) of its unit, bytes / (bandwidth x efficiency)); dense Conv/Gemm on the matrix unit, their "
    "M, N, K padded to the device's matrix tile where the runtime pads; depthwise convs and all other ops on the "
    "vector unit; a kernel reads its inputs and weights from device memory and writes what later kernels read, "
    "except a tensor read only by the next kernel that fits on chip with that kernel's output; views take no time; "
    "one stream: the host spends the runtime's per-op time launching each kernel and, where launches are async, "
    "runs ahead of the device (a kernel waits only when the host is behind), plus its fixed host time per step")


def latency_band(result) -> dict:
    """The latency's error band (plan/bands.py): {"band": {low_s, high_s, coverage, rows, regime} or None, "text"}."""
    from ..plan.bands import describe as banded
    return banded(result.latency_s, result.runtime.name, "inference", result.batch)


def input_note(result) -> str:
    """What the throughput says about the input pipeline."""
    if result.input_rate is None:
        return ("input pipeline not modelled (excluded): --input-rate, or the device file's [host] input_rate, caps "
                "throughput at its rate")
    return f"input pipeline capped at {result.input_rate:,.0f} images/s"


def roofline_report(result, design, by: str) -> tuple[dict, list[dict]]:
    d = result.device
    rt = result.runtime
    fusion = (f"{rt.description}" + (f"; host {rt.overhead(d) * 1e6:g} µs per kernel, {rt.overlap}")
              + (f", {rt.step_overhead(d) * 1e3:g} ms per step" if rt.host_step_s else ""))
    report = {**describe(design), "device": d.name, "dtype": result.dtype, "batch": result.batch,
              "runtime": rt.name, "fusion": fusion, "assumptions": ROOFLINE_ASSUMPTIONS,
              "vector_dtype": d.vector_precision(result.dtype),
              "device_figures": {"matrix_flops_per_s": d.matrix.get(result.dtype),
                                 "vector_flops_per_s": d.vector.get(d.vector_precision(result.dtype)),
                                 "bandwidth_bytes_per_s": d.bandwidth, "efficiency": d.efficiency,
                                 "launch_overhead_s": rt.overhead(d), "onchip_bytes": d.onchip_bytes,
                                 "matrix_tile": list(d.matrix_tile.get(result.dtype, ())) if rt.tile_padding else []},
              "host": rt.host_note(d), "input": input_note(result), "input_rate": result.input_rate,
              "latency_band": latency_band(result),
              "totals": {"latency_s": result.latency_s, "images_per_s": result.images_per_s, "bound": result.bound,
                         "macs": sum(k.macs for k in result.kernels), "flops": sum(k.flops for k in result.kernels),
                         "bytes": sum(k.bytes for k in result.kernels), "utilisation": result.utilisation,
                         "kernels": len(result.kernels)}}
    return report, roofline_rows(result, by)


def _band_words(found: dict) -> str:
    """What a band says in a sentence: 'x-y ms on 80% of checked measurements' or that nothing was checked."""
    return found["text"].split(" (", 1)[1].rstrip(")")


def _vector_note(report: dict) -> str:
    """Where the vector unit runs at another precision than the model's (int8 on a T4: fp16)."""
    if report["vector_dtype"] == report["dtype"]:
        return ""
    return f" (elementwise work at {report['vector_dtype']}: no {report['dtype']} vector peak)"


ROOFLINE_OPTIONAL = ("tile_loss", "stage", "intensity", "bytes", "macs", "unit", "op")


def render_roofline(report: dict, rows: list[dict], fmt: str, view: View | None = None) -> str:
    if fmt == "json":
        return to_json({**report, "layers": rows})  # `kept` (roofline --sort/--top) says which rows these are
    if fmt == "csv":
        return render_rows(rows, ROOFLINE_COLUMNS, fmt)
    t, f = report["totals"], report["device_figures"]
    lines = [f"# effplan {__version__} | roofline | {report['model']} at {report['resolution']}px on {report['device']}, "
             f"{report['dtype']}" + (f" ({report['dtype_origin']})" if report.get("dtype_origin") else "")
             + f", batch {report['batch']}, runtime {report['runtime']}",
             f"# device: matrix {f['matrix_flops_per_s'] / 1e12:g} TFLOP/s, vector {f['vector_flops_per_s'] / 1e12:g} "
             f"TFLOP/s{_vector_note(report)}, {f['bandwidth_bytes_per_s'] / 1e9:g} GB/s; efficiency matrix {f['efficiency']['matrix']:g}, "
             f"vector {f['efficiency']['vector']:g}, bandwidth {f['efficiency']['bandwidth']:g}; launch "
             f"{f['launch_overhead_s'] * 1e6:g} µs",
             f"# fusion: {report['fusion']}", f"# {report['assumptions']}", f"# {report['host']}", f"# {report['input']}",
             f"latency {t['latency_s'] * 1e3:.3f} ms ({_band_words(report['latency_band'])}), "
             f"{t['images_per_s']:,.0f} images/s ({t['bound']}-bound), "
             f"{t['kernels']} kernels, "
             f"MACs {si(t['macs'], 'G')}, {t['bytes'] / 1e6:.1f} MB moved, utilisation {t['utilisation']:.1%} of "
             f"the matrix peak"]
    if report.get("kept"):
        lines.insert(-1, kept_line(report["kept"], "rows"))
    return render_rows(rows, ROOFLINE_COLUMNS, fmt, "\n".join(lines), view, ROOFLINE_OPTIONAL)


MEASURE_COLUMNS = [
    ("name", "name", str),
    ("op", "op", str),
    ("unit", "unit", str),
    ("bound", "bound", str),
    ("est µs", "estimated_s", lambda v: f"{v * 1e6:.1f}"),
    ("meas µs", "measured_s", lambda v: f"{v * 1e6:.1f}"),
    ("best µs", "best_s", lambda v: f"{v * 1e6:.1f}"),  # the kernel's best run: a quiet machine
    ("est/meas", "ratio", lambda v: "-" if v is None else f"{v:.2f}"),
]
MEASURE_OPTIONAL = ("bound", "unit", "op", "best_s")  # hidden in this order to fit the terminal


def render_measure(report: dict, fmt: str, view: View | None = None) -> str:
    if fmt == "json":
        return to_json(report)
    if fmt == "csv":
        return render_rows(report["layers"], MEASURE_COLUMNS, fmt)
    lines = [f"# effplan {__version__} | measure | {report['model']} at {report['resolution']}px, batch {report['batch']},"
             f" fp32 | onnxruntime {report['onnxruntime']} {report['provider']}, {report['runs']} runs | estimate on "
             f"{report['device']}",
             f"total: estimated {report['estimated_s'] * 1e3:.2f} ms, measured {report['measured_s'] * 1e3:.2f} ms "
             f"(median profiled run), ratio {report['ratio']:.2f}"
             + (f"; best {report['best_s'] * 1e3:.2f} ms (each kernel's best run), ratio {report['ratio_best']:.2f}"
                if report.get("best_s") else "")
             + "; per-kernel Spearman rank correlation "
             + ("-" if report["spearman"] is None else f"{report['spearman']:.2f}")
             + (f" (best runs {report['spearman_best']:.2f})" if report.get("spearman_best") is not None else "")
             + f" over {report['kernels_timed']} kernels; {report['unassigned_s'] * 1e3:.2f} ms of the profile is in "
               f"runtime-added ops (layout reorders) no effplan kernel owns"
             + (f"; reorders: {report['reorders']['modelled']} modelled ({report['reorders']['estimated_s'] * 1e3:.2f} ms),"
                f" {report['reorders']['measured']} run" if "reorders" in report else "")]
    return render_rows(report["layers"], MEASURE_COLUMNS, fmt, "\n".join(lines), view, MEASURE_OPTIONAL)


STAGE_COLUMNS = [
    ("res", "resolution", str),
    ("epochs", "epochs", str),
    ("batch/dev", "batch", str),
    ("global", "global_batch", str),
    ("fits (largest)", "fits_text", str),
    ("fwd ms", "forward_s", lambda v: f"{v * 1e3:.2f}"),
    ("bwd ms", "backward_s", lambda v: f"{v * 1e3:.2f}"),
    ("recompute ms", "recompute_s", lambda v: f"{v * 1e3:.2f}"),
    ("optim ms", "optimizer_s", lambda v: f"{v * 1e3:.2f}"),
    ("comm ms", "communication_s", lambda v: f"{v * 1e3:.2f}"),
    ("step ms", "step_s", lambda v: f"{v * 1e3:.2f}"),
    ("img/s/dev", "images_per_s_per_device", lambda v: f"{v:,.0f}"),
    ("img/s", "images_per_s", lambda v: f"{v:,.0f}"),
    ("epoch min", "epoch_s", lambda v: f"{v / 60:.1f}"),
    ("hours", "hours", lambda v: f"{v:.2f}"),
    ("share", "share", lambda v: f"{v:.0%}"),
    ("mem/dev GiB", "memory_bytes", lambda v: f"{v / 2**30:.2f}"),
]

# hidden in this order to fit the terminal: the step's parts, then how it is shared out
TRAIN_OPTIONAL = ("recompute_s", "global_batch", "epoch_s", "images_per_s_per_device", "optimizer_s", "share",
                  "communication_s", "epochs", "memory_bytes", "backward_s", "forward_s")


def render_train(report: dict, fmt: str, view=None) -> str:
    """`effplan train`'s report (plan/training.py training_report) as text, markdown, CSV (a row per stage) or JSON."""
    if fmt == "json":
        return to_json(report)
    if fmt == "csv":
        keys = [k for k, v in report["stages"][0].items() if not isinstance(v, dict)]
        return render_rows(report["stages"], [(k, k, str) for k in keys], fmt)
    rows = [{**r, "fits_text": f"{'yes' if r['fits'] else 'NO'} ({r['largest_batch']})"} for r in report["stages"]]
    c, t = report["conventions"], report["totals"]
    link = report["link"]
    lines = [f"# effplan train | {report['model']} at {report['resolution']}px on {report['devices']} x "
             f"{report['device']}, runtime {report['runtime']}, {report['precision']} ({c['precision']}), "
             f"{report['optimizer']}, checkpoint {report['checkpoint']}",
             f"# forward: {c['forward']}", f"# backward: {c['backward']}", f"# optimizer: {c['optimizer']}",
             f"# {c['host']}", f"# communication: {c['communication']}" + (
                 f"; link {link['kind']} {link['bytes_per_s'] / 1e9:g} GB/s one way ({link['source']})" if link else ""),
             f"# batch: {c['batch']}; fits: {c['fits']}", f"# {c['estimate']}",
             *(f"# step at {r['resolution']} px: {r['step_band']['text']}, {r['bound']}-bound"
               + (f", speed-up {r['speedup']:.2f} of {report['devices']}" if report["devices"] > 1 else "")
               for r in report["stages"]),
             f"{report['epochs']} epochs of {report['dataset_size']:,} images: {t['hours']:.2f} h"
             f" ({t['device_hours']:.1f} device-hours)"
             + (f", cost {t['cost']:,.2f}" if t["cost"] is not None else "")]
    text = render_rows(rows, STAGE_COLUMNS, fmt, "\n".join(lines), view, TRAIN_OPTIONAL)
    if "kernels" in report:  # train --sort/--top: the last stage's step, kernel by kernel
        head = kept_line(report["kernels_kept"], "kernels of the step") or "# every kernel of the step, in run order"
        text += "\n" + render_rows(report["kernels"], TRAIN_KERNEL_COLUMNS, fmt, head, view, ROOFLINE_OPTIONAL)
    return text


TRAIN_KERNEL_COLUMNS = [("phase", "phase", str), *ROOFLINE_COLUMNS]


def step_kernel_rows(step) -> list[dict]:
    """A training step's kernels in run order (forward, recompute, backward, optimizer), each with its phase
    and its share of the step's time."""
    phases = [("forward", step.forward), ("recompute", step.recompute), ("backward", step.backward),
              ("optimizer", (step.optimizer_step,))]
    rows = [{"phase": phase, **kernel_row(k, step.time_s)} for phase, kernels in phases for k in kernels]
    for r in rows:
        del r["nodes"]
    return rows
