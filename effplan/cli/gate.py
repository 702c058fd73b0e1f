"""Gates: budgets (check) and the design search (search)."""
from __future__ import annotations

import sys

import click

from ..base.errors import EffplanError
from .options import BATCH, DEVICE_DTYPE, RUNTIME, OPTIMIZER, PRECISION, OUTPUT, emit, _progress, view_options, warn


def size_notes(written: list[tuple[str, str]]) -> None:
    """A warning for each size written in GB that a GPU's GiB figure was most likely meant as (base/units.size_note)."""
    from ..base.units import BYTE_UNITS, byte_unit, size_note

    decimal = [(where, text) for where, text in written if isinstance(text, str) and text.rstrip()[-2:].lower() == "gb"
               and byte_unit(text.rstrip()[-2:]) in BYTE_UNITS]
    if decimal:
        from .memory import catalog_memories
        devices = catalog_memories()
        for where, text in decimal:
            if note := size_note(text, devices):
                warn(f"{where}: {note}")


@click.command()
@click.argument("budget_file", metavar="BUDGETS.toml")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "junit", "github", "html"]), default="text",
              show_default=True, help="text, JSON, JUnit XML (CI dashboards), GitHub workflow annotations or an "
                                      "HTML page.")
@click.option("--baseline", default=None, metavar="REPORT.json",
              help="A saved `effplan layers --format json`: fail when a figure grew beyond --tolerance.")
@click.option("--tolerance", default="0%", show_default=True,
              help="Allowed growth against the baseline: a percentage (5%) or a share in [0, 1] (0.05).")
@click.option("--strict", is_flag=True, help="Fail (exit 1) when a design has ops with no cost function.")
@view_options
@OUTPUT
def check(budget_file, fmt, baseline, tolerance, strict, view, output):
    """Check designs against their budgets: exit 0 all pass, 1 any fails, 2 bad file.

    \b
    [[budget]]
    model = "efficientnet-b0"
    max_macs = "0.5G"
    max_params = "6M"
    """
    from ..gate.budget import baseline_growth, load_budgets, unknown_ops
    from ..gate.budget import check as check_budgets
    from ..render.gate import render_check
    from ..base.units import parse_share

    share = parse_share(tolerance, "--tolerance")
    budgets = load_budgets(budget_file)
    size_notes([(f"{b.where}.{key}", text) for b in budgets for key, text in b.written.items()])
    rows = check_budgets(budgets)
    _training_notes(budgets, budget_file)
    growth = baseline_growth(budgets, rows, baseline, share) if baseline else []
    if fmt == "html":
        from ..render.html import check_page
        emit(check_page(rows, growth, budget_file, baseline, strict), output)
    else:
        emit(render_check(rows, growth, fmt, budget_file, baseline, strict, view), output)
    if any(not r["passed"] for r in rows) or growth or strict and unknown_ops(rows):
        sys.exit(1)


def _training_notes(budgets, budget_file) -> None:
    """The BatchNormalization note of every ONNX file a training limit bounds (onnx.model.Imported.training_note)."""
    from pathlib import Path

    from ..onnx.model import Imported, is_file_model
    from .options import NOTES

    for b in budgets:
        if is_file_model(b.model) and any(k.startswith(("max_training", "min_training")) for k in b.limits):
            path = b.model if Path(b.model).is_absolute() else str(Path(b.folder) / b.model)
            note = Imported.open(path).training_note() if Path(path).is_file() else None
            if note and note not in NOTES:
                NOTES.append(note)


@click.command()
@click.argument("model")
@click.option("--max-macs", help="e.g. 1G")
@click.option("--max-flops", help="e.g. 2G")
@click.option("--max-params", help="e.g. 10M")
@click.option("--max-weight-bytes", help="e.g. 40MB")
@click.option("--max-inference-memory", help="weights + peak activations at --batch, e.g. 1GiB")
@click.option("--max-training-memory", help="one training step at --batch, e.g. 16GiB")
@click.option("--max-latency", help="roofline latency on --device, e.g. 5ms")
@click.option("--min-throughput", help="images/s on --device, e.g. 1000")
@click.option("--max-training-step-time", help="a training step at --batch on --device (effplan train), e.g. 50ms")
@click.option("--min-training-throughput", help="training images/s at --batch on --device, e.g. 2000")
@click.option("--device", default=None, help="Device for latency and throughput.")
@RUNTIME
@click.option("--depth", "depth_text", default="1..3:0.1", show_default=True, help="Depth multipliers to search.")
@click.option("--width", "width_text", default="1..2:0.05", show_default=True, help="Width multipliers to search.")
@click.option("--resolution", "resolution_text", default=None,
              help="Resolutions to search (default: base..3*base:8).")
@click.option("--objective", type=click.Choice(["macs", "mnas", "train-throughput"]), default="macs",
              show_default=True,
              help="macs: largest MACs under budget; mnas: ACC x (MACs/T)^w with --accuracy; train-throughput: "
                   "most training images/s per device at --batch on --device (effplan train's step).")
@click.option("--timed", type=click.IntRange(1, 100), default=None,  # bounded: docs/robustness.md
              help="With --objective train-throughput: how many designs within the limits to time, the most MACs "
                   "first (default and at most 100; the output says how many were).")
@click.option("--accuracy", "accuracy_file", default=None, help="TOML of [[point]] macs/top1 for --objective mnas.")
@click.option("--mnas-w", type=float, default=-0.07, show_default=True, help="The exponent w of MnasNet's reward.")
@click.option("--top", type=click.IntRange(1, 1000), default=10, show_default=True, help="Designs to return.")
@click.option("--coefficients", "coefficient_mode", is_flag=True,
              help="Instead: alpha, beta, gamma on a grid with alpha*beta^2*gamma^2 near 2 (the paper's step 1).")
@click.option("--tolerance", type=float, default=0.1, show_default=True,
              help="With --coefficients: how far alpha*beta^2*gamma^2 may be from 2.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Pareto plot (.svg or .png).")
@BATCH
@DEVICE_DTYPE
@OPTIMIZER
@PRECISION
@click.option("--format", "fmt", type=click.Choice(["text", "csv", "json", "markdown", "html"]), default="text",
              show_default=True, help="Output format (html: a page with the Pareto front and the limits drawn).")
@view_options
@OUTPUT
def search(model, max_macs, max_flops, max_params, max_weight_bytes, max_inference_memory, max_training_memory,
           max_latency, min_throughput, max_training_step_time, min_training_throughput, device, runtime, depth_text,
           width_text, resolution_text, objective, timed, accuracy_file,
           mnas_w, top, coefficient_mode, tolerance, plot, batch, dtype, optimizer, precision, fmt, view, output):
    """The largest design that fits: the largest phi, and the best (depth, width, resolution) on a grid.

    \b
    effplan search efficientnet-b0 --max-macs 2G --max-inference-memory 300MiB
    effplan search mobilenet-v2 --device t4 --max-latency 1ms --format json
    effplan search efficientnet-b0 --coefficients
    """
    from ..gate import search as engine
    from ..gate.budget import parse_limits
    from ..render.gate import render_coefficients, render_search

    design = engine.searchable(model)
    progress = _progress("designs")
    if coefficient_mode:
        if not 0 < tolerance <= 1:
            raise EffplanError(f"--tolerance {tolerance}: expected a number in (0, 1]")
        rows = engine.coefficient_grid(design, tolerance, progress=progress)
        return emit(render_coefficients(rows, design, tolerance, fmt, view), output)
    given = {"max_macs": max_macs, "max_flops": max_flops, "max_params": max_params,
             "max_weight_bytes": max_weight_bytes, "max_inference_memory": max_inference_memory,
             "max_training_memory": max_training_memory, "max_latency": max_latency, "min_throughput": min_throughput,
             "max_training_step_time": max_training_step_time, "min_training_throughput": min_training_throughput}
    limits = parse_limits({k: v for k, v in given.items() if v is not None}, lambda key: "--" + key.replace("_", "-"))
    size_notes([("--" + k.replace("_", "-"), v) for k, v in given.items() if v is not None])
    if not limits:
        raise EffplanError("give at least one constraint: --max-macs, --max-params, --max-inference-memory, ...")
    if (max_latency or min_throughput) and not device:
        raise EffplanError("--max-latency and --min-throughput need --device")
    if (max_training_step_time or min_training_throughput) and not device:
        raise EffplanError("--max-training-step-time and --min-training-throughput need --device")
    if plot:
        from ..render.plot import check_plot_path
        check_plot_path(plot)
    designs, front, stats, constraints = engine.run(
        design, limits, batch=batch, dtype=dtype, device=device, runtime=runtime, precision=precision,
        optimizer=optimizer,
        depths=depth_text, widths=width_text, resolutions=resolution_text, top=top, objective_kind=objective,
        accuracy_file=accuracy_file, mnas_w=mnas_w, progress=progress, timed=timed)
    if plot:
        from ..render.plot import plot_pareto
        plot_pareto(designs, front, stats, constraints, plot, model)
    if fmt == "html":
        from ..render.html import search_page
        return emit(search_page(designs, front, stats, constraints, model, objective), output)
    from ..base.units import dtype_origin
    origin = dtype_origin(dtype, constraints.device)
    emit(render_search(designs, front, stats, constraints, model, objective, fmt, view, origin), output)
