"""The gate's reports: `effplan check` (each limit's margin; text, CSV, JSON, markdown, JUnit, GitHub
annotations) and `effplan search` (the designs found, the Pareto front, the coefficient grid)."""
from __future__ import annotations

import re

from ..base.version import __version__
from .report import si
from .tables import View, render_rows, text_cell, to_json

CHECK_COLUMNS = [
    ("budget", "budget", str),
    ("model", "model", str),
    ("limit", "limit_key", str),
    ("for", "scope", str),  # max_macs bounds the whole batch; max_macs_per_image one image
    ("value", "value_text", str),
    ("max/min", "limit_text", str),
    ("margin", "margin", lambda v: f"{v:+.1%}"),
    ("result", "passed", lambda v: "pass" if v else "FAIL"),
    ("checked band", "band", lambda v: "" if v is None else v["text"]),  # plan/bands.py: times and rates only
]
CHECK_OPTIONAL = ("band", "model", "budget")  # hidden in this order to fit the terminal; what a limit bounds always shows


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
    layers = ", ".join(map(text_cell, g["layers"][:8])) + (f" and {len(g['layers']) - 8} more" if len(g["layers"]) > 8
                                                          else "")
    change = (f"grew {g['growth']:+.2%}" if g["growth"] is not None
              else "grew from a baseline of 0 (no growth ratio)")
    return (f"{g['figure']} {change} against the baseline ({g['baseline']:,} -> {g['current']:,}); "
            f"layers that grew: {layers or 'none (the total alone)'}")


def _unknown_line(budget: str, ops: dict, strict: bool) -> str:
    listed = ", ".join(f"{text_cell(op)} (x{n})" for op, n in sorted(ops.items()))  # names from the file: one line
    return (f"budget {text_cell(budget)}: no cost function for {listed}: counted as zero, so its figures are too low"
            + ("; --strict fails on this" if strict else "; --strict fails on this instead of passing"))


# characters XML 1.0 forbids (ElementTree writes them as they are, and CI parsers then reject the report)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_chars(xml: str) -> str:
    """A serialised document with each character XML 1.0 forbids written as its escape (BEL as \\x07)."""
    return _NOT_XML.sub(lambda m: repr(m.group())[1:-1], xml)


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
        return _xml_chars(ET.tostring(suites, encoding="unicode", xml_declaration=True)) + "\n"
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
                       f"# effplan {__version__} | check {source} | margin = share of the limit left (negative: over) | "
                       f"precision: the budget's dtype, else its device's default (its half precision, else fp32), "
                       f"else fp32",
                       view, CHECK_OPTIONAL)
    text += "".join(f"baseline: {_growth_line(g)}\n" for g in growth)
    text += "".join(f"{'FAIL' if strict else 'warning'}: {w}\n" for w in warnings)
    return text + f"{'pass' if passed else 'FAIL'}: {len(rows) - len(failed)} of {len(rows)} limits pass" + (
        f"; {len(growth)} figures grew against {baseline}" if growth else "") + "\n"


def search_rows(designs: list[dict], constraints) -> list[dict]:
    """The designs as `search --format json` gives them: with the precision they were costed at, and the
    runtime where a device times them."""
    extra = {"dtype": constraints.dtype}
    if constraints.device:
        from ..plan.runtime import runtime_for
        extra["runtime"] = runtime_for(constraints.device).name
    return [{**d, **extra} for d in designs]


def render_search(designs: list[dict], front: list[dict], stats: dict, constraints, model: str,
                  objective: str, fmt: str, view: View | None = None, origin: str | None = None) -> str:
    """`effplan search`: the ranked designs (JSON: best first, each marked `pareto`), then in text the
    Pareto front of every feasible design evaluated, as a table."""
    from ..gate.budget import LIMITS
    from ..gate.search import skipped_note

    designs = search_rows(designs, constraints)
    runtime = designs[0].get("runtime") if designs else None
    if fmt == "json":
        return to_json(designs)
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
                + (f" ({origin})" if origin else "")
                + (f" on {constraints.device.name}, runtime {runtime}" if constraints.device else "")
                + f" | objective {objective}\n"
                f"# {stats['evaluated']:,} of {stats['evaluated'] + stats['skipped']:,} grid designs evaluated "
                f"{stats['path']}{skipped_note(stats)}, "
                f"{stats['screened_in']:,} within every limit"
                + (f" but {', '.join(stats['unscreened'])} (a training step: eager on GPUs, xla on TPUs; checked exactly)"
                   if stats.get("unscreened") else "")
                + f", {stats['checked_exactly']} checked exactly through the "
                f"graph path; 'phi' is the largest φ that fits (to 0.01)"
                + (_timed_line(stats, constraints, any(d["search"] == "phi" for d in designs))
                   if stats.get("timed") is not None else "")
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


def _timed_line(stats: dict, constraints, phi: bool) -> str:
    """How the train-throughput objective chose the designs it timed: never a silent cut of the grid."""
    from ..plan.runtime import training_runtime_for

    rt = training_runtime_for(constraints.device, constraints.device.runtime or None).name
    timed, among = stats["timed"], stats["screened_in"]
    which = (f"all {among:,} designs within the screened limits" if timed == among else
             f"the {timed:,} with the most MACs of the {among:,} within the screened limits (--timed "
             f"{stats['timed_limit']}; {among - timed:,} not timed)")
    return (f"\n# score: training images/s per device at batch {constraints.batch} ({constraints.precision}, "
            f"{constraints.optimizer}, runtime {rt}), effplan train's step; timed {which}"
            + (", and the φ design" if phi else ""))


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
