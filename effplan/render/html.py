"""HTML reports: one self-contained page per report (`effplan report`, `check --format html`,
`search --format html`). The page embeds one JSON blob built from the same report objects as the text
and JSON outputs (layers_report, memory_report, roofline_report, design_row, render_check's and
render_search's rows) and a small inline script draws it: tables that sort and filter, SVG charts,
a hover that names each mark. No network, no library: it opens offline in any browser. The script
and styles are report.js and report.css beside this module (package data), inlined into each page.

Figures shown as text in the page are formatted here, with the text reports' own column formatters,
so the page and `--format text` print the same strings; the script only sorts, filters and draws.
Fields the page does not know (a runtime, a step time, added by newer reports) are listed as they come.
"""
from __future__ import annotations

import functools
import html
import importlib.resources
import json
from pathlib import PurePath

from ..base.version import __version__
from .plot import COLORS
from .gate import CHECK_COLUMNS, SEARCH_COLUMNS, render_check, search_rows
from .report import DEVICE_COLUMNS, TABLE_COLUMNS, header
from .tables import _finite, _plain


def _cells(row: dict, columns) -> dict:
    """A row's figures as the text reports print them (key -> text)."""
    return {key: f(row[key]) for _, key, f in columns if key in row}


def _columns(columns, rows=()) -> list:
    """[header, key] of the columns every row has."""
    return [[h, key] for h, key, _ in columns if all(key in r for r in rows)]


def embed(data) -> str:
    """Compact JSON safe inside a <script> element."""
    text = json.dumps(_finite(data), separators=(",", ":"), default=_plain, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def page(data: dict) -> str:
    """The whole HTML document for `data` (its `kind`: model, compare, check or search)."""
    data = shareable({**data, "version": __version__})
    css, script = assets()
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{html.escape(data["title"])}</title>\n<style>{css}</style></head>\n<body>\n'
            f'<div id="app"></div><div id="tip" hidden></div>\n'
            f'<script type="application/json" id="data">{embed(data)}</script>\n'
            f'<script>{script}</script>\n</body></html>\n')


def _stage_bound(rows: list[dict]) -> list[dict]:
    """Kernel time per stage, summed by what bounds each kernel (the report's per-kernel rows)."""
    stages: dict = {}
    for r in rows:
        s = stages.setdefault(str(r["stage"]), {"stage": r["stage"], "compute": 0.0, "memory": 0.0, "host": 0.0})
        s[r["bound"]] += r["time_s"]
    return list(stages.values())


def device_data(result, design) -> dict:
    """One device's roofline: the report, every kernel (with its achieved FLOP/s), time per stage and bound."""
    from .report import roofline_report

    from .report import sort_top

    report, rows = roofline_report(result, design, "layer")
    for r in rows:
        r["flops_per_s"] = r["flops"] / r["time_s"] if r["time_s"] else None
        del r["nodes"]
    totals = {**report["totals"], **{k + "_text": v for k, v in _cells(report["totals"], DEVICE_COLUMNS).items()}}
    if "latency_s_text" in totals:  # with the interval that held on check measurements (plan/bands.py)
        totals["latency_s_text"] += " (" + report["latency_band"]["text"].split(" (", 1)[1]
    top, kept = sort_top(rows, "time_s", TOP_KERNELS)  # where the time goes, as `roofline --sort time_s --top`
    return {**report, "totals": totals, "kernels": rows, "stage_bound": _stage_bound(rows),
            "top_kernels": [r["name"] for r in top], "top_kept": kept}


TOP_KERNELS = 10
PHI_KEYS = ("phi", "macs_ratio", "two_pow_phi")
COMPOUND = ("published", "formula")  # a design's `coefficients` when φ scaled it (base, custom: not)


def shareable(data):
    """A page meant to be shared names files, not where they lie here: every `source` and `baseline` path as its
    file name."""
    if isinstance(data, dict):
        return {k: (PurePath(v).name if k in ("source", "baseline") and isinstance(v, str) and ("/" in v or "\\" in v)
                    else shareable(v)) for k, v in data.items()}
    if isinstance(data, list):
        return [shareable(v) for v in data]
    return data


def model_page(profile, base_macs, step, memory: tuple, devices: list[dict], options: dict) -> str:
    """`effplan report MODEL`: summary (`effplan table`'s row; `step` its training memory), per-layer
    table and roll-ups, roofline per device (device_data), time per stage, memory over the schedule
    (`memory`: memory_report's (report, rows), per layer; with a training step, its saved activations)."""
    from ..plan.profile import layers_report
    from ..plan.profile import design_row

    row = design_row(profile, base_macs, step)
    report, rows = memory
    layers = layers_report(profile, "layer")
    data = {
        "kind": "model", "title": f"effplan report: {row['model']}",
        "header": header(profile.batch, profile.dtype, step.precision, step.optimizer,
                         origin=options.get("dtype_origin")),
        "options": options, "summary": row, "summary_text": _cells(row, TABLE_COLUMNS),
        "summary_columns": _columns(TABLE_COLUMNS),
        "layers": layers,
        "rollups": {by: layers_report(profile, by)["layers"] for by in ("block", "stage")},
        "memory": {**report, "layers": [{k: r[k] for k in ("name", "op", "stage", "block", "live_bytes",
                                                             "saved_bytes")} for r in rows]},
        "devices": devices,
    }
    return page(data)


def compare_page(rows: list[dict], devices: list[dict], options: dict) -> str:
    """`effplan report M1 M2 ...` or `--phi 0..7`: the designs side by side and, where a model has
    several φ, the scaling curves against 2^φ. `devices`: [{"device", "rows": design_rows at it}]."""
    compound = any(r.get("coefficients") in COMPOUND for r in rows)  # φ says something only then
    metrics = [c for c in TABLE_COLUMNS if c[1] != "model" and (compound or c[1] not in PHI_KEYS)]
    data = {
        "compound": compound,
        "kind": "compare", "title": f"effplan report: {', '.join(dict.fromkeys(r['model'] for r in rows))} "
                                    f"({len(rows)} designs)",
        "header": header(options["batch"], options["dtype"], options.get("precision"), options.get("optimizer"),
                         origin=options.get("dtype_origin")),
        "options": options, "rows": rows, "text": [_cells(r, TABLE_COLUMNS) for r in rows],
        "metrics": _columns(metrics),
        "devices": [{"device": d["device"], "dtype": d["dtype"], "runtime": d["rows"][0].get("runtime"),
                     "rows": [{k: r.get(k) for k in ("latency_s", "images_per_s")} for r in d["rows"]],
                     "text": [_cells(r, DEVICE_COLUMNS) for r in d["rows"]]} for d in devices],
    }
    return page(data)


def check_page(rows, growth, source: str, baseline, strict: bool) -> str:
    """`effplan check --format html`: every limit with its margin, the baseline growth, the verdict
    (the JSON report's content)."""
    report = json.loads(render_check(rows, growth, "json", source, baseline, strict))
    name = PurePath(source).name  # the file, not where it lies on this machine
    data = {"kind": "check", "title": f"effplan check: {name}", "report": report,
            "text": [_cells(r, CHECK_COLUMNS) for r in rows], "columns": _columns(CHECK_COLUMNS),
            "header": f"effplan {__version__} | check {name} | margin = share of the limit left (negative: over)"}
    return page(data)


def search_page(designs, front, stats, constraints, model: str, objective: str) -> str:
    """`effplan search --format html`: every grid design within the limits, the Pareto front, the
    designs found (best first) and the limits drawn, MACs against inference memory."""
    from ..gate.budget import LIMITS

    designs = search_rows(designs, constraints)
    columns = [c for c in SEARCH_COLUMNS if all(c[1] in d for d in designs)]
    fitting = stats.get("fitting", {})
    data = {"kind": "search", "title": f"effplan search: {model}", "model": model, "objective": objective,
            "header": f"effplan {__version__} | search {model} | Pareto front: MACs up, inference memory"
                      + (", latency" if constraints.device else "") + " down",
            "designs": designs, "front": front, "text": [_cells(d, columns) for d in designs],
            "columns": _columns(columns),
            "fitting": {k: list(v) for k, v in fitting.items()},
            "limits": [{"key": k, "figure": LIMITS[k].figure, "value": v, "text": LIMITS[k].show(v),
                        "upper": LIMITS[k].upper} for k, v in constraints.limits.items()],
            "stats": {k: v for k, v in stats.items() if k not in ("fitting", "front")},
            "batch": constraints.batch, "dtype": constraints.dtype,
            "device": constraints.device.name if constraints.device else None}
    return page(data)


@functools.cache
def assets() -> tuple[str, str]:
    """(CSS, script): report.css and report.js, package data beside this module, read once when a
    page is rendered; the script gets the plots' colours (render/plot.py COLORS) filled in."""
    folder = importlib.resources.files(__package__)
    css = folder.joinpath("report.css").read_text(encoding="utf-8")
    script = folder.joinpath("report.js").read_text(encoding="utf-8")
    return css, script.replace("%COLORS%", json.dumps({f"{u} {b}": c for (u, b), c in COLORS.items()}))
