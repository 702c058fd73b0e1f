"""Rendering: the same rows as text (human units), CSV and JSON (exact integers) or markdown."""
from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path

from . import __version__
from .analysis import Profile, row_dict
from .errors import EffplanError

FORMATS = ("text", "csv", "json", "markdown")

CONVENTIONS = {
    "macs": "multiply-accumulates of Conv (incl. depthwise/grouped) and Gemm/MatMul; the EfficientNet paper's 'FLOPS'",
    "flops": "2*MACs + bias adds + a fixed count per output element of every other op (BN 2, Sigmoid 3, Mul/Add/ReLU 1, pooling 1 per input)",
    "params": "trainable: conv/linear weights and biases, BatchNormalization scale and shift; BN running statistics are buffers, counted apart",
    "bytes": "elements x dtype size; weight bytes include BN buffers; activations scale with batch; MB = 10^6 bytes",
    "peak_activation": "largest total of live activation tensors (input included) running ops in topological order, no in-place reuse",
}


def header(batch: int, dtype: str) -> str:
    return (f"# effplan {__version__} | batch {batch}, {dtype} | MACs = conv+gemm multiply-accumulates (paper's FLOPS)"
            f" | FLOPs = 2*MACs + elementwise | params = trainable (BN scale+shift; running stats apart) | MB = 10^6 bytes")


def si(value: float, unit: str, digits: int = 3) -> str:
    scale = {"k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}[unit]
    return f"{value / scale:.{digits}f}{unit}"


def mb(value: int) -> str:
    return f"{value / 1e6:.1f}"


def design_row(profile: Profile, base_macs: int | None) -> dict:
    """One design's summary, the `effplan table` JSON contract plus extensions."""
    d, t = profile.design, profile.totals
    return {
        "model": d.name, "phi": d.phi, "depth_mult": d.depth_mult, "width_mult": d.width_mult,
        "resolution": d.resolution, "coefficients": d.coefficients, "classes": d.classes,
        "batch": profile.batch, "dtype": profile.dtype, "layers": t.layers,
        "params": t.params, "buffers": t.buffers, "macs": t.macs, "flops": t.flops,
        "weight_bytes": t.weight_bytes, "peak_activation_bytes": t.peak_activation_bytes,
        "macs_ratio": t.macs / base_macs if base_macs else None,
        "two_pow_phi": 2.0 ** d.phi if d.phi is not None else None,
        "unknown_ops": profile.unknown_ops,
    }


TABLE_COLUMNS = [  # (header, key, text formatter)
    ("model", "model", str),
    ("φ", "phi", lambda v: "-" if v is None else f"{v:g}"),
    ("d", "depth_mult", lambda v: f"{v:.3f}"),
    ("w", "width_mult", lambda v: f"{v:.3f}"),
    ("res", "resolution", str),
    ("layers", "layers", str),
    ("params", "params", lambda v: si(v, "M")),
    ("MACs", "macs", lambda v: si(v, "G")),
    ("FLOPs", "flops", lambda v: si(v, "G")),
    ("weights MB", "weight_bytes", mb),
    ("peak act MB", "peak_activation_bytes", mb),
    ("MACs ×φ0", "macs_ratio", lambda v: "-" if v is None else f"{v:.2f}"),
    ("2^φ", "two_pow_phi", lambda v: "-" if v is None else f"{v:.2f}"),
]

LAYER_COLUMNS = [
    ("name", "name", str),
    ("op", "op", str),
    ("stage", "stage", str),
    ("block", "block", lambda v: "" if v < 0 else str(v)),
    ("input", "input_shape", lambda v: "x".join(map(str, v))),
    ("output", "output_shape", lambda v: "x".join(map(str, v))),
    ("params", "params", lambda v: f"{v:,}"),
    ("MACs", "macs", lambda v: f"{v:,}"),
    ("FLOPs", "flops", lambda v: f"{v:,}"),
    ("weights MB", "weight_bytes", lambda v: f"{v / 1e6:.3f}"),
    ("output MB", "output_bytes", lambda v: f"{v / 1e6:.3f}"),
]


TEXT_KEYS = {"metric", "model", "name", "op", "stage", "family", "kind", "description"}


def render_rows(rows: list[dict], columns, fmt: str, preamble: str = "") -> str:
    """Text and markdown show human units; CSV shows exact values under the same column keys."""
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow([key for _, key, _ in columns])
        for row in rows:
            writer.writerow(["x".join(map(str, v)) if isinstance(v, tuple) else v
                             for v in (row[key] for _, key, _ in columns)])
        return buf.getvalue()
    from tabulate import tabulate

    body = [[f(row[key]) for _, key, f in columns] for row in rows]
    align = ["left" if key in TEXT_KEYS else "right" for _, key, _ in columns]
    table = tabulate(body, headers=[h for h, _, _ in columns], colalign=align,
                     tablefmt="github" if fmt == "markdown" else "simple", disable_numparse=True)
    return (preamble + "\n\n" if preamble and fmt == "markdown" else preamble + "\n" if preamble else "") + table + "\n"


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


def to_json(obj) -> str:
    return json.dumps(obj, indent=2, default=list) + "\n"


def write_atomic(path: str, text: str) -> None:
    """Write a whole file or nothing: a temporary file in the same folder, then a rename."""
    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent if str(target.parent) else ".", prefix=f".{target.name}.")
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except (OSError, UnboundLocalError):
            pass
        raise EffplanError(f"cannot write {path}: {exc.strerror or exc}") from None


def render_layers(profile: Profile, by: str, fmt: str, info: dict | None = None, note: str = "") -> str:
    """`effplan layers` and `effplan analyze` output in any format."""
    report = layers_report(profile, by, info)
    if fmt == "json":
        return to_json(report)
    t = profile.totals
    where = f" at {report['resolution']}px" if report.get("resolution") else ""
    summary = (f"# {report['model']}{where}: params {t.params:,}, MACs {si(t.macs, 'G')}, FLOPs {si(t.flops, 'G')}, "
               f"peak activation {t.peak_activation_bytes / 1e6:.1f} MB at {profile.peak.node or 'input'}")
    if report.get("depth_mult") is not None:
        summary = summary.replace(": params", f" (d {report['depth_mult']:.3f}, w {report['width_mult']:.3f}): params", 1)
    if note:
        summary += "\n# " + note
    if profile.unknown_ops:
        summary += "\n# no cost function (counted as nothing): " + ", ".join(
            f"{op} x{n}" for op, n in profile.unknown_ops.items())
    preamble = "" if fmt == "csv" else header(profile.batch, profile.dtype) + "\n" + summary
    return render_rows(report["layers"], LAYER_COLUMNS, fmt, preamble)
