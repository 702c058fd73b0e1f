"""Hardware: roofline latency, the device catalog, calibrate this machine, measure against onnxruntime."""
from __future__ import annotations


import click

from ..base.errors import EffplanError
from .options import FORMAT, BATCH, DEVICE_DTYPE, DTYPES, OUTPUT, RUNTIME, design_options, emit, describe_design, one_design, \
    view_options, warn


@click.command()
@click.argument("model")
@design_options(single=True)
@click.option("--device", required=True, help="A catalog device (effplan devices) or a device file.")
@DEVICE_DTYPE
@click.option("--by", type=click.Choice(["layer", "block", "stage"]), default="layer", show_default=True,
              help="Rows per kernel, block or stage.")
@click.option("--sort", "sort_key", type=click.Choice(["time_s", "macs", "flops", "bytes", "intensity", "tile_loss"]),
              default=None, help="Order rows by this figure, largest first (time_s: where the time goes).")
@click.option("--top", type=click.IntRange(1), default=None, metavar="N",
              help="Only the first N rows (with --sort, the N largest); the totals stay the whole model's.")
@RUNTIME
@click.option("--no-fuse", is_flag=True, help="Same as --runtime eager: one kernel per framework op, nothing fused.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, metavar="FILE.svg|.png",
              help="Write the roofline chart and the per-stage time bars (needs matplotlib).")
@click.option("--input-rate", type=click.FloatRange(min=0, min_open=True), default=None, metavar="IMAGES/S",
              help="Cap throughput at the input pipeline's rate (default: the input pipeline is not modelled).")
@BATCH
@FORMAT
@view_options
@OUTPUT
def roofline(model, query, device, dtype, by, sort_key, top, runtime, no_fuse, plot, input_rate, batch, fmt, view,
             output):
    """Per-kernel roofline latency of one design on a device.

    \b
    effplan roofline efficientnet-b4 --device t4 --sort time_s --top 10
    effplan roofline efficientnet-b4 --device a100-80gb --by stage --plot b4.svg
    """
    from ..design.blocks import build
    from ..plan.hardware import load_device
    from ..render.report import render_roofline, roofline_report
    from ..plan.roofline import roofline as estimate

    if plot is not None:
        from ..render.plot import check_plot_path
        check_plot_path(plot)
    design = one_design(model, query)
    found = load_device(device)
    if no_fuse and runtime is not None:
        raise EffplanError("--no-fuse is --runtime eager: give one of them")
    from ..base.units import cost_dtype, dtype_origin
    result = estimate(build(design, batch), found, cost_dtype(dtype, found), batch,
                      runtime="eager" if no_fuse else runtime, input_rate=input_rate)
    report, rows = roofline_report(result, design, by)
    report["dtype_origin"] = dtype_origin(dtype, found)
    from ..render.report import sort_top
    rows, report["kept"] = sort_top(rows, sort_key, top)
    if report["kept"]:
        report["kept"]["rows"] = {"layer": "kernels"}.get(by, f"{by}s")
    if plot is not None:
        from ..render.plot import plot_roofline
        plot_roofline(result, report, plot)
    emit(render_roofline(report, rows, fmt, view), output)


@click.command()
@click.option("--name", default=None, help="The device's name in the file (default: local-cpu; with --from, "
                                           "DEVICE-calibrated).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="The device file to write (default: NAME.toml here).")
@click.option("--from", "source", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Fit --device's efficiencies to measured throughput instead (the CSV timm's benchmark script "
                   "writes, or a plain CSV: model, batch, images_per_s or ms, resolution, precision, mode, gpus, "
                   "runtime).")
@click.option("--device", default=None, help="With --from: the device file whose efficiencies are fitted.")
@click.option("--fit", "names", default="matrix,vector,bandwidth", show_default=True,
              help="With --from: the efficiencies to fit, at most 6 (matrix, vector, bandwidth, kernel classes).")
def calibrate(name, output, source, device, names):
    """Measure this machine into a device file: GEMM peak, and inside a small network run by onnxruntime its
    dense and depthwise conv rates, memory-bound bandwidth and per-kernel cost; each over 5 rounds, with spread.
    With --from FILE: fit a device's named efficiencies to measured throughput (least squares on log ratios,
    k-fold cross-validated) and write the device file recording what it was fitted on."""
    if source is not None:
        from .calibrate import calibrate_from
        return calibrate_from(source, device, names, name, output)
    name = name or "local-cpu"
    from ..plan.hardware import device_from_table
    from ..plan.measure import calibrate as run
    from ..plan.measure import load_warnings, unsteady_warnings
    from ..base.files import write_atomic

    if not name or not all(c.isalnum() or c in "-_." for c in name):
        raise EffplanError(f"--name '{name}': use letters, digits, '-', '_' or '.'")
    text, figures = run(name)
    import tomllib
    device_from_table(tomllib.loads(text), "calibration")  # the file must load as any catalog file does
    path = output or f"{name}.toml"
    write_atomic(path, text)
    for line in load_warnings(figures["load"]) + unsteady_warnings(figures["spreads"]):
        warn(line)
    spreads = ", ".join(f"{k} {v:.0%}" for k, v in figures["spreads"].items())
    click.echo(f"wrote {path}: matrix {figures['matrix_fp32'] / 1e9:.1f} GFLOP/s peak (numpy GEMM) at efficiency "
               f"{figures['matrix_efficiency']:.2f} (onnxruntime's convs), vector "
               f"{figures['vector_fp32'] / 1e9:.1f} GFLOP/s ({figures['vector_kind']}), {figures['bandwidth'] / 1e9:.1f} GB/s "
               f"(memory-bound kernels; a DRAM copy {figures['copy_bandwidth'] / 1e9:.1f}), {figures['launch'] * 1e6:.2f} µs "
               f"per kernel; spread over the rounds: {spreads}; "
               f"use it with --device {path}")


@click.command()
@click.argument("model")
@design_options(single=True)
@click.option("--device", default=None, help="Device file or name to estimate with (default: calibrate now).")
@click.option("--provider", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True,
              help="onnxruntime execution provider (cuda needs onnxruntime-gpu and a GPU).")
@click.option("--runs", type=click.IntRange(1, 1000), default=20, show_default=True, help="Timed runs.")
@BATCH
@FORMAT
@view_options
@OUTPUT
def measure(model, query, device, provider, runs, batch, fmt, view, output):
    """Run a design in onnxruntime with profiling: measured time per kernel beside the roofline estimate."""
    import tomllib

    from ..design.blocks import build
    from ..plan.hardware import device_from_table, load_device
    from ..plan.measure import calibrate as run_calibration
    from ..plan.measure import load_warnings, unsteady_warnings
    from ..plan.measure import measure as run_measure
    from ..render.report import render_measure
    from ..plan.roofline import roofline as estimate

    design = one_design(model, query)
    if device:
        found = load_device(device)
    else:
        click.echo("calibrating this machine (effplan calibrate writes it to a file for reuse)...", err=True)
        found = device_from_table(tomllib.loads(run_calibration()[0]), "calibration")
    graph = build(design, batch)
    result = estimate(graph, found, "fp32", batch)
    for line in load_warnings():
        warn(line)
    provider_name = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}[provider]
    report = run_measure(graph, design, result, runs, provider_name)
    for line in unsteady_warnings({"whole-model": report["spread"]}):
        warn(line)
    emit(render_measure({**describe_design(design), "device": found.name, "batch": batch, **report}, fmt, view),
         output)


@click.command()
@FORMAT
@view_options
@OUTPUT
def devices(fmt, view, output):
    """The device catalog: peaks per precision, bandwidth, memory, and their sources."""
    from ..plan.hardware import builtin_device_paths, load_device
    from ..render.tables import render_rows, to_json

    found = [load_device(name) for name in builtin_device_paths()]
    if fmt == "json":
        return emit(to_json([d.as_dict() for d in found]), output)

    def peaks(table):
        return " ".join(f"{p}:{v / 1e12:g}" for p, v in table.items())
    rows = [{"name": d.name, "class": d.kind, "memory": f"{d.memory_bytes / 2**30:g} GiB",
             "bandwidth": f"{d.bandwidth / 1e9:g} GB/s", "matrix": peaks(d.matrix), "vector": peaks(d.vector),
             "description": d.description} for d in found]
    columns = [(k, k, str) for k in ("name", "class", "memory", "bandwidth", "matrix", "vector", "description")]
    emit(render_rows(rows, columns, fmt, "# peaks in TFLOP/s (int8: TOPS), dense; sources in "
                                        "`effplan devices --format json` and specs/hardware/", view,
                     ("description", "vector", "class", "bandwidth", "matrix")), output)


@click.command()
@FORMAT
@view_options
@OUTPUT
def runtimes(fmt, view, output):
    """The runtimes: how each engine groups ops into kernels and what a launch costs (specs/runtimes/)."""
    from ..plan.runtime import DEFAULT_RUNTIME, DEFAULT_TRAINING_RUNTIME, builtin_runtime_paths, load_runtime
    from ..render.tables import render_rows, to_json

    found = [load_runtime(name) for name in builtin_runtime_paths()]
    if fmt == "json":
        return emit(to_json([{**r.as_dict(),
                              "default_for": [c for c, n in DEFAULT_RUNTIME.items() if n == r.name],
                              "training_default_for": [c for c, n in DEFAULT_TRAINING_RUNTIME.items()
                                                       if n == r.name]} for r in found]), output)
    rows = [{"name": r.name, "default for": ", ".join(c for c, n in DEFAULT_RUNTIME.items() if n == r.name) or "-",
             "trains": f"yes, all-reduce {r.allreduce}" if r.trains else "-",
             "launch": ("device's" if r.overhead_s is None else f"{r.overhead_s * 1e6:g} µs") + f" {r.overlap}",
             "fusion": ("off" if not r.fusion else f"epilogue {r.epilogue_kernel}"),
             "tiles": "padded" if r.tile_padding else "-", "description": r.description} for r in found]
    columns = [(k, k, str) for k in ("name", "default for", "launch", "fusion", "tiles", "trains", "description")]
    emit(render_rows(rows, columns, fmt, "# specs/runtimes/*.toml; pass --runtime NAME or a runtime file "
                                         "to roofline, table --device, check and search", view,
                     ("description", "trains", "tiles", "default for")), output)
