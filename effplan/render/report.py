"""Rendering: the same rows as text (human units), CSV and JSON (exact integers) or markdown."""
from __future__ import annotations

import csv
import io
import json
import math
import shutil
import textwrap
from dataclasses import dataclass

from ..base.errors import EffplanError, did_you_mean
from ..base.version import __version__
from ..plan.profile import Profile, block_name, describe, layers_report

FORMATS = ("text", "csv", "json", "markdown")

def header(batch: int, dtype: str, precision: str | None = None, optimizer: str | None = None,
           device: str | None = None, runtime: str | None = None) -> str:
    training = (f" | infer = peak activations + weights | train = one {precision} step with {optimizer}: saved "
                f"activations, weights, gradients, optimizer state, backward transient") if precision else ""
    if device:
        training += f" | latency = roofline on {device} at {dtype}, as the {runtime} runtime runs it (effplan roofline)"
    return (f"# effplan {__version__} | batch {batch}, {dtype} | MACs = conv+gemm multiply-accumulates (paper's FLOPS)"
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
TABLE_OPTIONAL = ("two_pow_phi", "macs_ratio", "depth_mult", "width_mult", "layers", "flops", "resolution",
                  "training_bytes", "weight_bytes", "peak_activation_bytes", "phi", "params")

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


TEXT_KEYS = {"metric", "model", "name", "op", "stage", "family", "kind", "description", "budget", "limit_key", "search"}


def csv_cell(value):
    """Integers exact; floats to 12 significant digits (1.1^2 is 1.21, not 1.2100000000000002)."""
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    if isinstance(value, float):
        return f"{value:.12g}"
    return value


@dataclass(frozen=True)
class View:
    """The columns text output shows: those that fit `width` (None: the terminal's; COLUMNS overrides,
    80 when there is no terminal), every one (`wide`), or the ones named (`columns`: keys or headers,
    in text and markdown). CSV and JSON always keep every column."""
    wide: bool = False
    columns: tuple[str, ...] = ()
    width: int | None = None

    def text_width(self) -> int:
        return self.width or shutil.get_terminal_size((80, 24)).columns


MIN_CUT = 20  # a free-text column is cut to fit, but never below this; then it is hidden
CUT_KEYS = {"description"}


def named_columns(columns, names) -> list:
    """The columns asked for by key or header (any case), in the order asked."""
    known = {}
    for column in columns:
        known.setdefault(column[1].lower(), column)
        known.setdefault(column[0].lower(), column)
    unknown = [n for n in names if n.lower() not in known]
    if unknown:
        keys = [key for _, key, _ in columns]
        raise EffplanError(f"--columns: unknown column '{unknown[0]}'{did_you_mean(unknown[0], keys)}; "
                           f"known: {', '.join(keys)}")
    return list(dict.fromkeys(known[n.lower()] for n in names))


def fit_columns(columns, cells: dict, optional, width: int) -> tuple[list, list]:
    """The columns that fit `width` characters: every column not in `optional`, then the optional
    ones, last first, each that still fits (a free-text column is cut to fit, if MIN_CUT wide);
    returns (shown columns, hidden keys)."""
    widths = {key: max([len(h) + 2, *map(len, cells[key])]) for h, key, _ in columns}  # tabulate pads headers by 2
    optional = [key for key in optional if key in widths]  # a table may lack some (search's device columns)
    shown = {key for _, key, _ in columns} - set(optional)

    def total(keys):
        return sum(widths[k] for k in keys) + 2 * (len(keys) - 1)
    for key in reversed(optional):
        room = width - total(shown | {key})
        if room < 0 and key in CUT_KEYS and widths[key] + room >= MIN_CUT:
            widths[key] += room
            cells[key] = [c if len(c) <= widths[key] else c[:widths[key] - 1] + "…" for c in cells[key]]
            room = 0
        if room >= 0:
            shown.add(key)
    return [c for c in columns if c[1] in shown], [k for k in optional if k not in shown]


def wrap_text(text: str, width: int) -> str:
    """Long header and note lines wrapped to the width; a '# ' line goes on as '#   '."""
    lines = []
    for line in text.splitlines():
        indent = "#   " if line.startswith("# ") else "  "
        lines += textwrap.wrap(line, width, subsequent_indent=indent, break_long_words=False,
                               break_on_hyphens=False) or [""]
    return "\n".join(lines)


def markdown_preamble(text: str) -> str:
    """Header lines as HTML comments (a '# ' line would be an H1 heading on GitHub), other lines as
    paragraphs of their own."""
    return "\n\n".join(f"<!-- {line[2:].replace('-->', '->')} -->" if line.startswith("# ") else line
                        for line in text.splitlines() if line)


def render_rows(rows: list[dict], columns, fmt: str, preamble: str = "", view: View | None = None,
                optional=(), total: dict | None = None) -> str:
    """Text and markdown show human units; CSV shows exact values under the same column keys. Text
    fits the width by hiding `optional` columns (see View); `total` is a last row (text and markdown)."""
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow([key for _, key, _ in columns])
        for row in rows:
            writer.writerow([csv_cell(row[key]) for _, key, _ in columns])
        return buf.getvalue()
    from tabulate import tabulate

    view = view or View()
    listed = rows + ([total] if total else [])
    cells = {key: [f(row[key]) if key in row else "" for row in listed] for _, key, f in columns}
    shown, hidden, width = columns, [], view.text_width()
    if view.columns:
        shown = named_columns(columns, view.columns)
    elif fmt == "text" and not view.wide:
        shown, hidden = fit_columns(columns, cells, optional, width)
    body = list(zip(*(cells[key] for _, key, _ in shown))) if listed else []
    align = ["left" if key in TEXT_KEYS else "right" for _, key, _ in shown]
    table = tabulate(body, headers=[h for h, _, _ in shown], colalign=align,
                     tablefmt="github" if fmt == "markdown" else "simple", disable_numparse=True)
    if total and fmt == "text":  # a rule above the total row, as under the header
        lines = table.split("\n")
        table = "\n".join(lines[:-1] + [lines[1], lines[-1]])
    if fmt == "markdown":
        return (markdown_preamble(preamble) + "\n\n" if preamble else "") + table + "\n"
    note = (f"# {len(hidden)} columns hidden to fit {width} characters: {', '.join(hidden)} (--wide shows "
            f"every column, --columns a,b,c chooses)" if hidden else "")
    return "".join(part + "\n" for part in (wrap_text(preamble, width), table, wrap_text(note, width)) if part)


def to_json(obj) -> str:
    """JSON proper: a NaN or infinity (a figure no file should give, but a device file or an ONNX file's
    metadata may) is written as null, never as the NaN that JSON parsers refuse."""
    return json.dumps(_finite(obj), indent=2, default=_plain, allow_nan=False) + "\n"


def _finite(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy scalars
        return _finite(value.item())
    return value


def _plain(value):
    """numpy scalars as numbers, tuples and arrays as lists."""
    return value.item() if hasattr(value, "item") and getattr(value, "ndim", 1) == 0 else list(value)


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
    summary = (f"# {report['model']}{where}: params {t.params:,} (+ {t.buffers:,} buffers: BN running statistics), "
               f"MACs {si(t.macs, 'G')}, FLOPs {si(t.flops, 'G')}, peak activation "
               f"{t.peak_activation_bytes / (1 << 20):.1f} MiB at {profile.peak.node or 'input'}")
    if report.get("depth_mult") is not None:
        summary = summary.replace(": params", f" (d {report['depth_mult']:.3f}, w {report['width_mult']:.3f}): params", 1)
    if note:
        summary += "\n# " + note
    shared = report.get("shared_initializers")
    if shared:
        names = list(shared)
        summary += (f"\n# {len(shared)} initializers are read by several ops, each counting it as its own params "
                    f"(the file stores {report['totals']['distinct_weight_elements']:,} weight elements): "
                    + ", ".join(f"{n} x{len(shared[n])}" for n in names[:4]) + (", ..." if len(names) > 4 else ""))
    if profile.unknown_ops:
        summary += "\n# no cost function (params counted, no MACs or FLOPs): " + ", ".join(
            f"{op} x{n}" for op, n in profile.unknown_ops.items())
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
    lines = [f"# effplan {__version__} | memory | {report['model']} at {report['resolution']}px, batch {report['batch']}, "
             f"{report['dtype']} | MiB = 2^20 bytes"]
    lines += [f"# {key}: {text}" for key, text in report["assumptions"].items()]
    lines.append(f"inference: peak activations {human_bytes(report['inference_peak_bytes'])} at "
                 f"{report['peak_layer'] or 'input'} + weights {human_bytes(report['weight_bytes'])} = "
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
    import math

    from ..base.units import dtype_size
    from ..graph.ops import weight_bytes
    from ..plan.memory import inference_peak, memory_aware_order

    size = dtype_size(dtype)
    options = dict(inplace=inplace, fuse_se=fuse_se)
    plain = inference_peak(graph, size, **options)
    aware = inference_peak(graph, size, order=memory_aware_order(graph, size), **options)
    best = min(plain, aware, key=lambda p: p.bytes) if order == "aware" else plain
    tensors = graph.graph["tensors"]
    weights = weight_bytes(graph, size)
    live = sorted(((t, math.prod(tensors[t]) * size) for t in best.live if t in tensors), key=lambda x: -x[1])
    report = {**describe(design), "batch": batch, "dtype": dtype,
              "inference_peak_bytes": best.bytes, "peak_layer": best.node, "weight_bytes": weights,
              "inference_total_bytes": best.bytes + weights,
              "peak_live_tensors": [{"name": t, "bytes": b} for t, b in live],
              "plain_order_peak_bytes": plain.bytes, "memory_aware_peak_bytes": aware.bytes,
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
    return report, memory_rows(graph, plain, aware, training, size, by)


def fit_report(results, where: str, capacity: int, budget: int, reserve: str, mode: str, fmt: str,
               asked: int | None = None, view: View | None = None) -> str:
    """`effplan fit`: one row per design (JSON: always a list). With `asked`, whether that batch
    fits: `fits` and `margin_bytes` (the budget left at that batch; negative when over)."""
    from ..base.units import human_bytes

    rows = [{**describe(d), "batch": f.batch, "bytes_at_batch": f.bytes_at_batch,
             "bytes_at_next_batch": f.bytes_at_next_batch, "budget_bytes": f.budget_bytes,
             "capacity_bytes": capacity, "reserve": reserve, "fixed_bytes": f.fixed_bytes,
             "per_sample_bytes": f.per_sample_bytes, "mode": mode,
             **({"asked_batch": asked, "bytes_at_asked_batch": at, "margin_bytes": budget - at, "fits": at <= budget}
                if asked else {})} for d, f, at in results]
    if fmt == "json":
        return to_json(rows)
    columns = [("model", "model", str), ("res", "resolution", str), ("batch", "batch", str),
               ("memory at batch", "bytes_at_batch", human_bytes), ("at batch+1", "bytes_at_next_batch", human_bytes),
               ("fixed", "fixed_bytes", human_bytes), ("per sample", "per_sample_bytes", human_bytes)]
    optional = ("bytes_at_next_batch", "fixed_bytes", "per_sample_bytes", "resolution")  # hidden first to last
    if asked:
        columns = [("model", "model", str), ("res", "resolution", str), ("batch", "asked_batch", str),
                   ("fits", "fits", lambda v: "yes" if v else "NO"),
                   ("memory", "bytes_at_asked_batch", human_bytes),
                   ("margin", "margin_bytes", lambda v: ("" if v >= 0 else "-") + human_bytes(abs(v))),
                   ("largest batch", "batch", str)]
        optional = ("batch", "resolution")
    if fmt == "csv":
        return render_rows(rows, columns, fmt)
    preamble = (f"# effplan {__version__} | fit | {where}: {human_bytes(capacity)}, reserve {reserve} for the runtime's "
                f"context, workspace and fragmentation -> budget {human_bytes(budget)}\n# {mode}; memory(batch) = "
                f"fixed + batch x per sample, solved for the largest batch within the budget (batch 0: not even one fits)")
    return render_rows(rows, columns, fmt, preamble, view, optional)


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


def roofline_rows(result, by: str) -> list[dict]:
    """Per kernel, or summed per block or stage (unit and bound: those holding most of the time)."""
    total = result.latency_s
    rows = [{"name": k.name, "op": k.op, "stage": k.stage, "block": k.block, "macs": k.macs, "flops": k.flops,
             "bytes": k.bytes, "intensity": k.intensity, "unit": k.unit, "bound": k.bound, "time_s": k.time_s,
             "share": k.time_s / total, "compute_s": k.compute_s, "memory_s": k.memory_s,
             "overhead_s": k.overhead_s, "tile_loss": k.tile_loss, "nodes": list(k.nodes)} for k in result.kernels]
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
    "time per kernel = max(FLOPs / (peak x efficiency) of its unit, bytes / (bandwidth x efficiency)), with the "
    "runtime's launch overhead as a floor (async) or added (serial); dense Conv/Gemm on the matrix unit, their "
    "M, N, K padded to the device's matrix tile where the runtime pads; depthwise convs and all other ops on the "
    "vector unit; a kernel reads its inputs and weights from device memory and writes what later kernels read, "
    "except a tensor read only by the next kernel that fits on chip with that kernel's output; views take no time")


def roofline_report(result, design, by: str) -> tuple[dict, list[dict]]:
    d = result.device
    rt = result.runtime
    fusion = (f"{rt.description}" + (f"; launch {rt.overhead(d) * 1e6:g} µs per kernel, {rt.overlap}"))
    report = {**describe(design), "device": d.name, "dtype": result.dtype, "batch": result.batch,
              "runtime": rt.name, "fusion": fusion, "assumptions": ROOFLINE_ASSUMPTIONS,
              "vector_dtype": d.vector_precision(result.dtype),
              "device_figures": {"matrix_flops_per_s": d.matrix.get(result.dtype),
                                 "vector_flops_per_s": d.vector.get(d.vector_precision(result.dtype)),
                                 "bandwidth_bytes_per_s": d.bandwidth, "efficiency": d.efficiency,
                                 "launch_overhead_s": rt.overhead(d), "onchip_bytes": d.onchip_bytes,
                                 "matrix_tile": list(d.matrix_tile.get(result.dtype, ())) if rt.tile_padding else []},
              "totals": {"latency_s": result.latency_s, "images_per_s": result.images_per_s,
                         "macs": sum(k.macs for k in result.kernels), "flops": sum(k.flops for k in result.kernels),
                         "bytes": sum(k.bytes for k in result.kernels), "utilisation": result.utilisation,
                         "kernels": len(result.kernels)}}
    return report, roofline_rows(result, by)


def _vector_note(report: dict) -> str:
    """Where the vector unit runs at another precision than the model's (int8 on a T4: fp16)."""
    if report["vector_dtype"] == report["dtype"]:
        return ""
    return f" (elementwise work at {report['vector_dtype']}: no {report['dtype']} vector peak)"


ROOFLINE_OPTIONAL = ("tile_loss", "stage", "intensity", "bytes", "macs", "unit", "op")


def render_roofline(report: dict, rows: list[dict], fmt: str, view: View | None = None) -> str:
    if fmt == "json":
        return to_json({**report, "layers": rows})
    if fmt == "csv":
        return render_rows(rows, ROOFLINE_COLUMNS, fmt)
    t, f = report["totals"], report["device_figures"]
    lines = [f"# effplan {__version__} | roofline | {report['model']} at {report['resolution']}px on {report['device']}, "
             f"{report['dtype']}, batch {report['batch']}, runtime {report['runtime']}",
             f"# device: matrix {f['matrix_flops_per_s'] / 1e12:g} TFLOP/s, vector {f['vector_flops_per_s'] / 1e12:g} "
             f"TFLOP/s{_vector_note(report)}, {f['bandwidth_bytes_per_s'] / 1e9:g} GB/s; efficiency matrix {f['efficiency']['matrix']:g}, "
             f"vector {f['efficiency']['vector']:g}, bandwidth {f['efficiency']['bandwidth']:g}; launch "
             f"{f['launch_overhead_s'] * 1e6:g} µs",
             f"# fusion: {report['fusion']}", f"# {report['assumptions']}",
             f"latency {t['latency_s'] * 1e3:.3f} ms, {t['images_per_s']:,.0f} images/s, {t['kernels']} kernels, "
             f"MACs {si(t['macs'], 'G')}, {t['bytes'] / 1e6:.1f} MB moved, utilisation {t['utilisation']:.1%} of "
             f"the matrix peak"]
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


CHECK_COLUMNS = [
    ("budget", "budget", str),
    ("model", "model", str),
    ("limit", "limit_key", str),
    ("for", "scope", str),  # max_macs bounds the whole batch; max_macs_per_image one image
    ("value", "value_text", str),
    ("max/min", "limit_text", str),
    ("margin", "margin", lambda v: f"{v:+.1%}"),
    ("result", "passed", lambda v: "pass" if v else "FAIL"),
]
CHECK_OPTIONAL = ("model", "budget")  # hidden in this order to fit the terminal; what a limit bounds always shows


SEARCH_COLUMNS = [
    ("search", "search", str),
    ("φ", "phi", lambda v: "-" if v is None else f"{v:.3f}"),
    ("d", "depth_mult", lambda v: f"{v:.3f}"),
    ("w", "width_mult", lambda v: f"{v:.3f}"),
    ("res", "resolution", str),
    ("MACs", "macs", lambda v: si(v, "G")),
    ("params", "params", lambda v: si(v, "M")),
    ("infer MiB", "inference_bytes", lambda v: f"{v / (1 << 20):.1f}"),
    ("score", "score", lambda v: f"{v:.4g}"),
]
# hidden in this order to fit the terminal (d, w, res and MACs always show; pareto, latency and the
# training columns are added to these tables when they apply)
SEARCH_OPTIONAL = ("score", "images_per_s", "search", "pareto", "phi", "params", "training_step_s", "training_bytes",
                   "inference_bytes", "latency_s")


# ---- check and search ----

def _verdict(row: dict) -> str:
    """Why a limit failed: a maximum is exceeded, a minimum not reached."""
    from ..gate.budget import LIMITS

    side = "exceeds" if LIMITS[row["limit_key"]].upper else "is below"
    return f"{row['figure']} {row['value_text']} {side} {row['limit_key']} {row['limit_text']} ({row['margin']:+.1%})"


def _growth_line(g: dict) -> str:
    layers = ", ".join(g["layers"][:8]) + (f" and {len(g['layers']) - 8} more" if len(g["layers"]) > 8 else "")
    change = (f"grew {g['growth']:+.2%}" if g["growth"] is not None
              else "grew from a baseline of 0 (no growth ratio)")
    return (f"{g['figure']} {change} against the baseline ({g['baseline']:,} -> {g['current']:,}); "
            f"layers that grew: {layers or 'none (the total alone)'}")


def _unknown_line(budget: str, ops: dict, strict: bool) -> str:
    listed = ", ".join(f"{op} (x{n})" for op, n in sorted(ops.items()))
    return (f"budget {budget}: no cost function for {listed}: counted as zero, so its figures are too low"
            + ("; --strict fails on this" if strict else "; --strict fails on this instead of passing"))


def _data(text: str) -> str:
    """A GitHub workflow command's message."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    """A GitHub workflow command's property value (file=, title=)."""
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def render_check(rows: list[dict], growth: list[dict], fmt: str, source: str, baseline: str | None,
                 strict: bool = False, view: View | None = None) -> str:
    """`effplan check` as text, JSON, JUnit XML or GitHub workflow commands."""
    from ..gate.budget import unknown_ops

    failed = [r for r in rows if not r["passed"]]
    unknown = unknown_ops(rows)
    passed = not failed and not growth and not (strict and unknown)
    warnings = [_unknown_line(b, ops, strict) for b, ops in unknown.items()]
    if fmt == "json":
        return to_json({"passed": passed, "source": source, "checks": rows, "baseline": baseline, "growth": growth,
                        "unknown_ops": unknown, "strict": strict})
    if fmt == "junit":
        from xml.etree import ElementTree as ET

        suites = ET.Element("testsuites")
        cases = len(rows) + (1 if baseline else 0) + (len(unknown) if strict else 0)
        failures = len(failed) + (1 if growth else 0) + (len(unknown) if strict else 0)
        suite = ET.SubElement(suites, "testsuite", name=f"effplan budgets: {source}", tests=str(cases),
                              failures=str(failures))
        if unknown:
            properties = ET.SubElement(suite, "properties")
            for budget, ops in unknown.items():
                ET.SubElement(properties, "property", name=f"unknown_ops.{budget}",
                              value=", ".join(f"{op} x{n}" for op, n in sorted(ops.items())))
        for r in rows:
            case = ET.SubElement(suite, "testcase", classname=f"effplan.{r['budget']}", name=r["limit_key"])
            if not r["passed"]:
                ET.SubElement(case, "failure", message=_verdict(r))
        if strict:
            for budget, line in zip(unknown, warnings):
                ET.SubElement(ET.SubElement(suite, "testcase", classname=f"effplan.{budget}", name="unknown_ops"),
                              "failure", message=line)
        if baseline:
            case = ET.SubElement(suite, "testcase", classname="effplan.baseline", name=baseline)
            if growth:
                ET.SubElement(case, "failure", message="; ".join(_growth_line(g) for g in growth))
        if warnings:
            ET.SubElement(suite, "system-out").text = "\n".join(f"warning: {w}" for w in warnings)
        return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
    if fmt == "github":
        where = f"file={_property(source)},"
        lines = [f"::error {where}title={_property('effplan budget ' + r['budget'])}::{_data(_verdict(r))}"
                 for r in failed]
        lines += [f"::error title=effplan baseline::{_data(_growth_line(g))}" for g in growth]
        lines += [f"::{'error' if strict else 'warning'} {where}title={_property('effplan budget ' + b)}::{_data(w)}"
                  for b, w in zip(unknown, warnings)]
        lines.append(f"::notice title=effplan budgets::{len(rows) - len(failed)} of {len(rows)} limits pass"
                     + (", baseline regressed" if growth else "") + (", unknown ops (--strict)" if strict and unknown
                                                                      else ""))
        return "\n".join(lines) + "\n"
    text = render_rows(rows, CHECK_COLUMNS, "text",
                       f"# effplan {__version__} | check {source} | margin = share of the limit left (negative: over)",
                       view, CHECK_OPTIONAL)
    text += "".join(f"baseline: {_growth_line(g)}\n" for g in growth)
    text += "".join(f"{'FAIL' if strict else 'warning'}: {w}\n" for w in warnings)
    return text + f"{'pass' if passed else 'FAIL'}: {len(rows) - len(failed)} of {len(rows)} limits pass" + (
        f"; {len(growth)} figures grew against {baseline}" if growth else "") + "\n"


def render_search(designs: list[dict], front: list[dict], stats: dict, constraints, model: str,
                  objective: str, fmt: str, view: View | None = None) -> str:
    """`effplan search`: the ranked designs (JSON: best first, each marked `pareto`), then in text the
    Pareto front of every feasible design evaluated, as a table."""
    from ..gate.budget import LIMITS
    from ..gate.search import skipped_note

    runtime = None
    if constraints.device:
        from ..plan.runtime import runtime_for
        runtime = runtime_for(constraints.device).name
    if fmt == "json":
        return to_json([{**d, "runtime": runtime} for d in designs] if runtime else designs)
    extra = [("train GiB", "training_bytes", lambda v: f"{v / (1 << 30):.2f}"),
             ("latency ms", "latency_s", lambda v: f"{v * 1e3:.3f}"),
             ("images/s", "images_per_s", lambda v: f"{v:,.0f}"),
             ("train step ms", "training_step_s", lambda v: f"{v * 1e3:.2f}")]
    columns = SEARCH_COLUMNS + [c for c in extra if all(c[1] in d for d in designs)]
    marked = columns + [("pareto", "pareto", lambda v: "yes" if v else "")]
    if fmt == "csv":
        return render_rows(designs, marked, fmt)
    wanted = ", ".join(f"{k} {LIMITS[k].show(v)}" for k, v in constraints.limits.items())
    grid_found = sum(d["search"] == "grid" for d in designs)
    preamble = (f"# effplan {__version__} | search {model} | {wanted} | batch {constraints.batch}, {constraints.dtype}"
                + (f" on {constraints.device.name}, runtime {runtime}" if constraints.device else "")
                + f" | objective {objective}\n"
                f"# {stats['evaluated']:,} of {stats['evaluated'] + stats['skipped']:,} grid designs evaluated "
                f"{stats['path']}{skipped_note(stats)}, "
                f"{stats['screened_in']:,} within every limit"
                + (f" but {', '.join(stats['unscreened'])} (a training step: eager on GPUs, xla on TPUs; checked exactly)"
                   if stats.get("unscreened") else "")
                + f", {stats['checked_exactly']} checked exactly through the "
                f"graph path; 'phi' is the largest φ that fits (to 0.01)"
                + ("" if grid_found else "\n# no grid design fits: only the φ search found one"))
    shown = [c for c in columns if c[1] not in ("score", "images_per_s") and all(c[1] in d for d in front)]
    among = f"the {stats['screened_in']:,} grid designs within every limit" + (
        " and the φ design" if any(d["search"] == "phi" for d in designs) else "")
    title = (f"# Pareto front of {among} (MACs up; inference memory{', latency' if constraints.device else ''} "
             f"down): {len(front)} designs, most MACs first")
    front_view = view
    if view and view.columns:  # the front has no pareto or score column: it shows the others asked
        named = {n.lower() for n in view.columns}
        shown = [c for c in shown if c[0].lower() in named or c[1].lower() in named] or shown
        front_view = View(wide=True)
    return (render_rows(designs, marked, fmt, preamble, view, SEARCH_OPTIONAL) + "\n"
            + render_rows(front, shown, fmt, title, front_view, SEARCH_OPTIONAL))


def render_coefficients(rows, design, tolerance, fmt, view: View | None = None) -> str:
    if fmt == "json":
        return to_json(rows)
    columns = [("α", "alpha", lambda v: f"{v:.2f}"), ("β", "beta", lambda v: f"{v:.2f}"),
               ("γ", "gamma", lambda v: f"{v:.2f}"), ("αβ²γ²", "flops_factor", lambda v: f"{v:.3f}"),
               ("d", "depth_mult", lambda v: f"{v:.3f}"), ("w", "width_mult", lambda v: f"{v:.3f}"),
               ("res", "resolution", str), ("MACs", "macs", lambda v: si(v, "G")),
               ("MACs ×φ0", "macs_ratio", lambda v: f"{v:.3f}")]
    preamble = (f"# effplan {__version__} | coefficient grid for {design.name}: α, β, γ >= 1 in steps of 0.05 with "
                f"|αβ²γ² - 2| <= {tolerance:g}; the real MACs ratio of φ = 1 after rounding channels to 8, repeats up "
                f"and resolution half up (closest to 2 first; the paper chose α 1.2, β 1.1, γ 1.15 by accuracy)")
    return render_rows(rows, columns, fmt, "" if fmt == "csv" else preamble, view,
                       ("macs_ratio", "depth_mult", "width_mult", "resolution"))


# ---- effplan train ----

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
             f"# communication: {c['communication']}" + (
                 f"; link {link['kind']} {link['bytes_per_s'] / 1e9:g} GB/s one way ({link['source']})" if link else ""),
             f"# batch: {c['batch']}; fits: {c['fits']}", f"# {c['estimate']}",
             f"{report['epochs']} epochs of {report['dataset_size']:,} images: {t['hours']:.2f} h"
             f" ({t['device_hours']:.1f} device-hours)"
             + (f", cost {t['cost']:,.2f}" if t["cost"] is not None else "")]
    return render_rows(rows, STAGE_COLUMNS, fmt, "\n".join(lines), view, TRAIN_OPTIONAL)
