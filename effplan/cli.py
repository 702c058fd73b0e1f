"""The command line: parse, call the library, render. Exit 0 ok, 1 budget violated or nothing fits,
2 bad input, 70 internal error."""
from __future__ import annotations

import math
import sys

import click

from . import __version__
from .budget import MAX_BATCH
from .units import MAX_DIM
from .errors import EffplanError

MAX_DESIGNS = 1000
FORMAT = click.option("--format", "fmt", type=click.Choice(["text", "csv", "json", "markdown"]),
                      default="text", show_default=True, help="Output format.")
BATCH = click.option("--batch", type=click.IntRange(1, MAX_BATCH), default=1, show_default=True,
                     help="Batch size (activation bytes scale with it).")
DTYPES = click.Choice(["fp32", "fp16", "bf16", "int8"])
DTYPE = click.option("--dtype", type=DTYPES, default="fp32",
                     show_default=True, help="Element type of weights and activations.")
OPTIMIZER = click.option("--optimizer", type=click.Choice(["sgd", "momentum", "adam", "adamw"]), default="adamw",
                         show_default=True, help="Optimizer whose state training memory holds.")
PRECISION = click.option("--precision", type=click.Choice(["fp32", "fp16", "bf16", "mixed"]), default="mixed",
                         show_default=True, help="Training precision (mixed: half activations, fp32 master weights).")
OUTPUT = click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
                      help="Write to this file (atomically) instead of stdout.")


def design_options(fn):
    """Options shared by every command that builds designs."""
    options = [
        click.option("--phi", "phi_text", default=None, metavar="PHI",
                     help="Compound coefficient: a number, a list 0,2,5, a range 0..7 or a stepped range 0..2:0.5."),
        click.option("--alpha", type=float, default=None, help="Depth coefficient (default 1.2)."),
        click.option("--beta", type=float, default=None, help="Width coefficient (default 1.1)."),
        click.option("--gamma", type=float, default=None, help="Resolution coefficient (default 1.15)."),
        click.option("--depth-rounding", type=click.Choice(["ceil", "round"]), default="ceil", show_default=True,
                     help="Repeats = ceil(d*r) as the official code, or rounded half up."),
        click.option("--resolution", "resolution_text", default=None, metavar="R",
                     help="Input side in pixels (overrides phi's); a list 128,192,256 gives a design each."),
        click.option("--width-mult", type=float, default=None, help="Width multiplier, set outright (overrides phi's)."),
        click.option("--depth-mult", type=float, default=None, help="Depth multiplier, set outright (overrides phi's)."),
        click.option("--scale", "scale_items", multiple=True, metavar="DIM=FACTOR",
                     help="Scale one dimension: depth=4, width=2 or resolution=2 (repeatable)."),
        click.option("--classes", type=int, default=None, help="Classifier outputs (default: the spec's)."),
    ]
    import functools

    @functools.wraps(fn)
    def packed(**kwargs):
        query = {key: kwargs.pop(key) for key in DESIGN_KEYS}
        return fn(query=query, **kwargs)

    for option in reversed(options):
        packed = option(packed)
    return packed


DESIGN_KEYS = ("phi_text", "alpha", "beta", "gamma", "depth_rounding", "resolution_text", "width_mult", "depth_mult",
               "scale_items", "classes")


def parse_phis(text: str) -> list[float]:
    """'1.5', '0,2,5', '0..7', '0..2:0.5' (ranges include both ends)."""
    from .scaling import check_phi

    values: list[float] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if ".." in part:
                span, _, step_text = part.partition(":")
                lo, hi = (float(x) for x in span.split(".."))
                step = float(step_text) if step_text else 1.0
                if not step > 0 or not math.isfinite(step):
                    raise EffplanError(f"--phi '{text}': the step must be a positive number")
                count = math.floor((hi - lo) / step + 1e-9) + 1 if math.isfinite(hi - lo) else 0
                if count > MAX_DESIGNS:
                    raise EffplanError(f"--phi '{text}' gives {count} designs; at most {MAX_DESIGNS} at once")
                values += [round(lo + i * step, 10) for i in range(max(count, 0))]
                if count < 1:
                    raise EffplanError(f"--phi '{text}': the range {part} is empty")
            else:
                values.append(float(part))
        except ValueError:
            raise EffplanError(f"--phi '{text}': expected a number, a list a,b,c or a range a..b[:step]") from None
    for phi in values:
        check_phi(phi)
    if len(values) > MAX_DESIGNS:
        raise EffplanError(f"--phi '{text}' gives {len(values)} designs; at most {MAX_DESIGNS} at once")
    return values


def coefficients(alpha, beta, gamma):
    """The compound coefficients with overrides, warning when alpha*beta^2*gamma^2 is far from 2."""
    import dataclasses

    from .scaling import MAX_MULTIPLIER, default_coefficients

    c = default_coefficients()
    given = {k: v for k, v in (("alpha", alpha), ("beta", beta), ("gamma", gamma)) if v is not None}
    for name, value in given.items():  # above the largest multiplier, even phi = 1 is no design
        if not (math.isfinite(value) and 1 <= value <= MAX_MULTIPLIER):
            raise EffplanError(f"--{name} must be a number from 1 (the paper's constraint) to {MAX_MULTIPLIER:g}, "
                               f"got {value:g}")
    c = dataclasses.replace(c, **given)
    if given and abs(c.flops_factor - 2) > 0.1:
        click.echo(f"warning: alpha*beta^2*gamma^2 = {c.flops_factor:.3f}, far from 2: each unit of phi "
                   f"multiplies FLOPS by about {c.flops_factor:.2f}, not 2", err=True)
    return c


def parse_scale(items) -> dict[str, float]:
    scale = {}
    for item in items:
        dim, sep, factor = item.partition("=")
        try:
            scale[dim.strip()] = float(factor)
        except ValueError:
            raise EffplanError(f"--scale '{item}': expected DIM=FACTOR, e.g. depth=4") from None
        if not sep:
            raise EffplanError(f"--scale '{item}': expected DIM=FACTOR, e.g. depth=4")
    return scale


def parse_resolutions(text: str | None) -> list[int | None]:
    if text is None:
        return [None]
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise EffplanError(f"--resolution '{text}': expected a whole number of pixels or a list 128,192,256") from None
    if len(values) > MAX_DESIGNS:
        raise EffplanError(f"--resolution gives {len(values)} designs; at most {MAX_DESIGNS} at once")
    return values


def designs_from(models, phi_text, alpha, beta, gamma, depth_rounding, resolution_text, width_mult, depth_mult,
                 scale_items, classes):
    """(design, its phi = 0 baseline) for every model, phi and resolution asked."""
    from .scaling import base_design, compound, resolve, with_overrides

    names = list(models) or ["efficientnet-b0"]
    resolutions = parse_resolutions(resolution_text)
    phis = parse_phis(phi_text) if phi_text is not None else None
    coeffs = coefficients(alpha, beta, gamma) if phis is not None else None
    if phis is None and any(v is not None for v in (alpha, beta, gamma)):
        raise EffplanError("--alpha/--beta/--gamma apply with --phi")
    scale = parse_scale(scale_items)
    pairs = []
    for name in names:
        design = resolve(name)
        for resolution in resolutions:
            base_overrides = dict(resolution=resolution, classes=classes, depth_rounding=depth_rounding)
            base = with_overrides(base_design(design.spec), **base_overrides)
            scaled = [compound(design, phi, coeffs) for phi in phis] if phis is not None else [design]
            pairs += [(with_overrides(d, **base_overrides, width_mult=width_mult, depth_mult=depth_mult, scale=scale),
                       base) for d in scaled]
    if len(pairs) > MAX_DESIGNS:
        raise EffplanError(f"{len(pairs)} designs asked; at most {MAX_DESIGNS} at once")
    return pairs


def design_rows(pairs, batch, dtype, precision="mixed", optimizer="adamw", device=None) -> list[dict]:
    """The summary row of each (design, baseline) pair, with its MACs ratio to the baseline."""
    from .analysis import analyze
    from .report import design_row

    profiles = [analyze(design, batch, dtype) for design, _ in pairs]
    macs = {network_key(d): p.totals.macs for (d, _), p in zip(pairs, profiles)}
    for _, base in pairs:  # the phi = 0 baseline of each model, built only when not in the table
        if network_key(base) not in macs:
            macs[network_key(base)] = analyze(base, batch, dtype).totals.macs
    from .memory import training_memory

    rows = [design_row(p, macs[network_key(base)], training_memory(p.graph, precision, optimizer))
            for (_, base), p in zip(pairs, profiles)]
    if device:
        from .hardware import load_device
        from .roofline import roofline

        found = load_device(device)
        for row, p in zip(rows, profiles):
            result = roofline(p.graph, found, dtype, batch)
            row.update(device=found.name, latency_s=result.latency_s, images_per_s=result.images_per_s)
    return rows


def network_key(design) -> tuple:
    """What decides a design's graph (not its name or how its coefficients were found)."""
    return (design.spec, design.depth_mult, design.width_mult, design.resolution, design.classes,
            design.depth_rounding)


def emit(text: str, output: str | None) -> None:
    if output:
        from .report import write_atomic
        write_atomic(output, text)
    else:
        click.echo(text, nl=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="effplan")
def cli():
    """Static FLOPs, parameter and memory planner for compound-scaled CNNs."""


@cli.command()
@click.argument("models", nargs=-1)
@design_options
@click.option("--device", default=None, help="Add roofline latency and throughput on this device (at --dtype).")
@click.option("--sort", "sort_key", type=click.Choice(["latency_s", "macs", "params", "training_bytes"]),
              default=None, help="Order rows by this figure, smallest first.")
@BATCH
@click.option("--dtype", type=DTYPES, default=None,
              help="Element type of weights and activations (default fp32; with --device, the device's half "
                   "precision as in effplan roofline).")
@OPTIMIZER
@PRECISION
@FORMAT
@OUTPUT
def table(models, query, device, sort_key, batch, dtype, optimizer, precision, fmt, output):
    """One row per design: MODELS (default efficientnet-b0) at each --phi, or as published.

    \b
    effplan table --phi 0..7
    effplan table efficientnet-b0 efficientnet-b4 --format json
    """
    from .report import DEVICE_COLUMNS, TABLE_COLUMNS, header, render_rows, to_json

    if dtype is None:
        from .hardware import load_device
        dtype = load_device(device).preferred_dtype if device else "fp32"
    pairs = designs_from(models, **query)
    rows = design_rows(pairs, batch, dtype, precision, optimizer, device)
    if sort_key == "latency_s" and not device:
        raise EffplanError("--sort latency_s needs --device")
    if sort_key:
        rows.sort(key=lambda r: r[sort_key])
    columns = TABLE_COLUMNS + (DEVICE_COLUMNS if device else [])
    if fmt == "json":
        emit(to_json(rows), output)
    else:
        preamble = header(batch, dtype, precision, optimizer, device)
        emit(render_rows(rows, columns, fmt, "" if fmt == "csv" else preamble), output)


@cli.command()
@click.argument("model")
@design_options
@click.option("--by", type=click.Choice(["layer", "block", "stage", "op"]), default="layer", show_default=True,
              help="One row per layer (op), block, stage, or op type.")
@click.option("--strict", is_flag=True, help="Fail when an op has no cost function.")
@BATCH
@DTYPE
@FORMAT
@OUTPUT
def layers(model, query, by, strict, batch, dtype, fmt, output):
    """Per-layer (or per-block, per-stage) params, MACs, FLOPs and bytes of one design."""
    from .analysis import analyze
    from .report import render_layers

    emit(render_layers(analyze(one_design(model, query), batch, dtype, strict), by, fmt), output)


def describe_design(design) -> dict:
    from .report import describe
    return describe(design)


def one_design(model, query: dict):
    pairs = designs_from([model], **query)
    if len(pairs) != 1:
        raise EffplanError("this command takes one design: give a single --phi value")
    return pairs[0][0]


@cli.command()
@click.argument("model")
@design_options
@click.option("--batch", type=click.IntRange(1, MAX_DIM), default=None, help="Batch size of the input (default 1).")
@click.option("--dynamic-batch", is_flag=True, help="A symbolic batch dimension 'N' instead of --batch.")
@click.option("--opset", type=int, default=17, show_default=True, help="ONNX opset (14 or newer).")
@click.option("--fold-bn", is_flag=True, help="Fold BatchNormalization into the convs (the inference graph).")
@click.option("--weights", type=click.Choice(["random", "zeros"]), default="random", show_default=True,
              help="Initializer values: seeded He-normal (real arithmetic) or zeros.")
@click.option("--check", is_flag=True, help="Run the file in onnxruntime on random input and report.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="The .onnx file to write.")
def export(model, query, batch, dynamic_batch, opset, fold_bn, weights, check, output):
    """Write a design as an ONNX model that runtimes execute."""
    import onnx

    from .analysis import profile
    from .blocks import build
    from .graph import fold_batch_norm
    from .onnx_io import needs_external_data, save, to_onnx

    if batch is not None and dynamic_batch:
        raise EffplanError("--batch and --dynamic-batch exclude each other: a dynamic batch is bound at run time")
    batch = batch or 1
    design = one_design(model, query)
    if not 14 <= opset <= onnx.defs.onnx_opset_version():
        raise EffplanError(f"--opset must be between 14 (HardSwish) and {onnx.defs.onnx_opset_version()}, got {opset}")
    graph = build(design, batch)
    if fold_bn:
        graph = fold_batch_norm(graph)
    proto = to_onnx(graph, design, opset=opset, dynamic_batch=dynamic_batch, weights=weights)
    external = needs_external_data(proto)
    try:  # in memory before writing, except a model too large for one message: as the file it became
        if not external:
            onnx.checker.check_model(proto)
        files = save(proto, output)
        if external:
            onnx.checker.check_model(files[0])
    except onnx.checker.ValidationError as exc:
        raise EffplanError(f"the exported graph is not valid at opset {opset}: {str(exc).splitlines()[0]}") from None
    t = profile(graph).totals
    form = "params with BN folded into the convs" if fold_bn else "params"
    click.echo(f"wrote {', '.join(files)}: {design.name} at {design.resolution}px, batch "
               f"{'N (dynamic)' if dynamic_batch else batch}, opset {opset}, {t.params:,} {form}"
               f" + {t.buffers:,} BN statistics in {len(proto.graph.initializer)} initializers")
    if check:
        click.echo(run_check(files[0], batch if not dynamic_batch else 1))


def run_check(path: str, batch: int) -> str:
    """Run an ONNX file in onnxruntime (CPU) on seeded random input: output shape, finiteness, time."""
    import statistics
    import time

    try:
        import numpy as np
        import onnxruntime as ort
    except ImportError:
        raise EffplanError("--check needs onnxruntime: pip install 'effplan[run]'") from None
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    shape = [batch if not isinstance(d, int) else d for d in inp.shape]
    x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        (y,) = session.run(None, {inp.name: x})[:1]
        times.append(time.perf_counter() - start)
    return (f"onnxruntime {ort.__version__} (CPU): output {list(y.shape)}, "
            f"{'finite' if np.isfinite(y).all() else 'NOT FINITE'}, {statistics.median(times) * 1e3:.1f} ms median of 5 runs")


@cli.command()
@click.argument("path", type=click.Path(dir_okay=True))
@click.option("--batch", type=click.IntRange(1, MAX_DIM), default=None,
              help="Size of a symbolic batch dimension (default: 1; a fixed batch is the file's).")
@click.option("--dim", "dim_items", multiple=True, metavar="NAME=VALUE", help="Size of a named symbolic dimension.")
@click.option("--by", type=click.Choice(["layer", "block", "stage", "op"]), default="layer", show_default=True)
@click.option("--dtype", type=DTYPES, default=None,
              help="Element type for bytes (default: the model input's).")
@click.option("--strict", is_flag=True, help="Fail when an op has no cost function.")
@FORMAT
@OUTPUT
def analyze(path, batch, dim_items, by, dtype, strict, fmt, output):
    """Per-layer costs of any ONNX model, the same report as `effplan layers`."""
    from .analysis import profile
    from .onnx_io import analyze_file, resolution
    from .report import render_layers

    dims = {}
    for item in dim_items:
        key, sep, value = item.partition("=")
        value = value.strip()
        if not sep or not key.strip() or not value.isdigit() or not 1 <= int(value) <= MAX_DIM:
            raise EffplanError(f"--dim '{item}': expected NAME=VALUE with a size from 1 to 2^40")
        dims[key.strip()] = int(value)
    graph, meta, file_dtype = analyze_file(path, batch, dims)
    result = profile(graph, None, graph.graph["batch"], dtype or file_dtype, strict)
    info = {"model": meta.get("model", graph.graph["name"]), "phi": float(meta["phi"]) if meta.get("phi") else None,
            "depth_mult": float(meta["depth_mult"]) if "depth_mult" in meta else None,
            "width_mult": float(meta["width_mult"]) if "width_mult" in meta else None,
            "resolution": resolution(graph), "source": str(path), "weight_inputs": graph.graph["weight_inputs"]}
    notes = ["BatchNormalization is folded into the convs in this file"] if meta.get("folded_bn") == "True" else []
    if graph.graph["weight_inputs"]:
        fed = graph.graph["weight_inputs"]
        notes.append(f"{len(fed)} weights are graph inputs, fed at run time (exported without parameters), "
                     f"counted as params: {', '.join(fed[:3])}{', ...' if len(fed) > 3 else ''}")
    emit(render_layers(result, by, fmt, info, "\n# ".join(notes)), output)


TRAIN_OPTIONS = [
    click.option("--train", is_flag=True, help="Also the memory of a training step."),
    OPTIMIZER,
    PRECISION,
    click.option("--checkpoint", type=click.Choice(["none", "blocks"]), default="none", show_default=True,
                 help="Recompute each block in backward, keeping only block inputs."),
    click.option("--inplace", is_flag=True, help="Inference: elementwise ops overwrite their input."),
    click.option("--fold-bn", is_flag=True, help="Inference: BatchNormalization folded into the convs."),
    click.option("--fuse-se", is_flag=True, help="Inference: the SE multiply runs inside the next conv."),
    click.option("--order", type=click.Choice(["plain", "aware"]), default="plain", show_default=True,
                 help="Inference: plan with the builder's op order (what runtimes run) or the better of it and "
                      "the memory-aware order."),
]


def train_options(fn):
    for option in reversed(TRAIN_OPTIONS):
        fn = option(fn)
    return fn


def inference_graph(design, batch: int, fold_bn: bool):
    from .blocks import build
    from .graph import fold_batch_norm

    graph = build(design, batch)
    return fold_batch_norm(graph) if fold_bn else graph


@cli.command()
@click.argument("model")
@design_options
@train_options
@click.option("--by", type=click.Choice(["layer", "block", "stage"]), default="stage", show_default=True,
              help="Rows per layer (op), block or stage.")
@BATCH
@DTYPE
@FORMAT
@OUTPUT
def memory(model, query, train, optimizer, precision, checkpoint, inplace, fold_bn, fuse_se, order, by, batch, dtype,
           fmt, output):
    """Inference peak by liveness (and with --train, a training step's memory) of one design."""
    from .blocks import build
    from .memory import training_memory
    from .report import memory_report, render_memory

    design = one_design(model, query)
    training = training_memory(build(design, batch), precision, optimizer, checkpoint) if train else None
    report, rows = memory_report(inference_graph(design, batch, fold_bn), design, batch, dtype, inplace=inplace,
                                 fold_bn=fold_bn, fuse_se=fuse_se, order=order, training=training, by=by)
    emit(render_memory(report, rows, fmt), output)


@cli.command()
@click.argument("models", nargs=-1, required=True)
@design_options
@train_options
@click.option("--device", default=None, help="A catalog device (its memory), e.g. a100-80gb.")
@click.option("--memory", "memory_text", default=None, metavar="SIZE", help="Memory to fit in, e.g. 16GiB.")
@click.option("--reserve", default="10%", show_default=True, metavar="SHARE|SIZE",
              help="Kept back for the runtime's context, workspace and fragmentation: 10% or 1.5GiB.")
@DTYPE
@FORMAT
def fit(models, query, train, optimizer, precision, checkpoint, inplace, fold_bn, fuse_se, order, device, memory_text,
        reserve, dtype, fmt):
    """The largest batch that fits a device or an amount of memory (inference, or --train).

    \b
    effplan fit efficientnet-b7 --device a100-80gb --train --precision mixed --optimizer adamw
    effplan fit efficientnetv2-s --memory 16GiB --train --resolution 128,192,256,300,384
    """
    from .blocks import build
    from .costs import dtype_size
    from .memory import best_order_peak, inference_peak, largest_batch, training_memory
    from .report import fit_report
    from .units import human_bytes, parse_bytes, parse_reserve

    if (device is None) == (memory_text is None):
        raise EffplanError("give one of --device NAME or --memory SIZE")
    if device:
        from .hardware import load_device
        found = load_device(device)
        capacity, where = found.memory_bytes, found.name
    else:
        capacity, where = parse_bytes(memory_text, "--memory"), memory_text
        if capacity <= 0:
            raise EffplanError(f"--memory '{memory_text}' must be more than 0 bytes")
    budget = capacity - parse_reserve(reserve, capacity)
    if budget <= 0:
        raise EffplanError(f"--reserve {reserve} is the whole capacity ({human_bytes(capacity)}) or more: "
                           f"nothing is left for the model")
    results = []
    for design, _ in designs_from(models, **query):
        if train:
            graph = build(design, 1)

            def memory_at(b, graph=graph):
                return training_memory(graph, precision, optimizer, checkpoint, scale=b).total_bytes
        else:
            graph, size = inference_graph(design, 1, fold_bn), dtype_size(dtype)
            weights = sum(w.size for n in graph.nodes for w in graph.nodes[n]["weights"]) * size
            schedule = best_order_peak(graph, size, inplace=inplace, fuse_se=fuse_se)[1].order if order == "aware" \
                else None

            def memory_at(b, graph=graph, size=size, weights=weights, schedule=schedule):
                return weights + inference_peak(graph, size, order=schedule, inplace=inplace, fuse_se=fuse_se,
                                                scale=b).bytes
        results.append((design, largest_batch(memory_at, budget)))
    mode = (f"training: {precision} precision, {optimizer}, checkpoint {checkpoint}" if train
            else f"inference: {dtype}, peak activations + weights"
                 + "".join(f", {flag}" for flag, on in (("in-place", inplace), ("BN folded", fold_bn),
                                                          ("SE fused", fuse_se), ("memory-aware order", order == "aware"))
                           if on))
    click.echo(fit_report(results, where, capacity, budget, reserve, mode, fmt), nl=False)
    if any(fit.batch == 0 for _, fit in results):
        sys.exit(1)


@cli.command()
@click.argument("model")
@design_options
@click.option("--device", required=True, help="A catalog device (effplan devices) or a device file.")
@click.option("--dtype", type=DTYPES, default=None,
              help="Precision of weights, activations and arithmetic (default: the device's half precision, "
                   "fp16 or bf16, else fp32).")
@click.option("--by", type=click.Choice(["layer", "block", "stage"]), default="layer", show_default=True,
              help="Rows per kernel, block or stage.")
@click.option("--no-fuse", is_flag=True, help="One kernel per op (no conv + BN + activation fusion).")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, metavar="FILE.svg|.png",
              help="Write the roofline chart and the per-stage time bars (needs matplotlib).")
@BATCH
@FORMAT
@OUTPUT
def roofline(model, query, device, dtype, by, no_fuse, plot, batch, fmt, output):
    """Per-kernel roofline latency of one design on a device."""
    from .blocks import build
    from .hardware import load_device
    from .report import render_roofline, roofline_report
    from .roofline import roofline as estimate

    if plot is not None:
        from .plot import check_plot_path
        check_plot_path(plot)
    design = one_design(model, query)
    found = load_device(device)
    result = estimate(build(design, batch), found, dtype or found.preferred_dtype, batch, fuse=not no_fuse)
    report, rows = roofline_report(result, design, by)
    if plot is not None:
        from .plot import plot_roofline
        plot_roofline(result, report, plot)
    emit(render_roofline(report, rows, fmt), output)


@cli.command()
@click.option("--name", default="local-cpu", show_default=True, help="The device's name in the file.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="The device file to write (default: NAME.toml here).")
def calibrate(name, output):
    """Measure this machine (GEMM, depthwise conv, copy bandwidth, per-op overhead) into a device file."""
    from .hardware import device_from_table
    from .measure import calibrate as run
    from .report import write_atomic

    if not name or not all(c.isalnum() or c in "-_." for c in name):
        raise EffplanError(f"--name '{name}': use letters, digits, '-', '_' or '.'")
    text, figures = run(name)
    import tomllib
    device_from_table(tomllib.loads(text), "calibration")  # the file must load as any catalog file does
    path = output or f"{name}.toml"
    write_atomic(path, text)
    click.echo(f"wrote {path}: matrix {figures['matrix_fp32'] / 1e9:.1f} GFLOP/s (numpy GEMM), vector "
               f"{figures['vector_fp32'] / 1e9:.1f} GFLOP/s (depthwise conv), {figures['bandwidth'] / 1e9:.1f} GB/s "
               f"copy, {figures['launch'] * 1e6:.2f} µs per op; use it with --device {path}")


@cli.command()
@click.argument("model")
@design_options
@click.option("--device", default=None, help="Device file or name to estimate with (default: calibrate now).")
@click.option("--provider", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True,
              help="onnxruntime execution provider (cuda needs onnxruntime-gpu and a GPU).")
@click.option("--runs", type=click.IntRange(1, 1000), default=20, show_default=True, help="Timed runs.")
@BATCH
@FORMAT
def measure(model, query, device, provider, runs, batch, fmt):
    """Run a design in onnxruntime with profiling: measured time per kernel beside the roofline estimate."""
    import tomllib

    from .blocks import build
    from .hardware import device_from_table, load_device
    from .measure import calibrate as run_calibration
    from .measure import measure as run_measure
    from .report import render_measure
    from .roofline import roofline as estimate

    design = one_design(model, query)
    if device:
        found = load_device(device)
    else:
        click.echo("calibrating this machine (effplan calibrate writes it to a file for reuse)...", err=True)
        found = device_from_table(tomllib.loads(run_calibration()[0]), "calibration")
    graph = build(design, batch)
    result = estimate(graph, found, "fp32", batch)
    provider_name = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}[provider]
    report = run_measure(graph, design, result, runs, provider_name)
    click.echo(render_measure({**describe_design(design), "device": found.name, "batch": batch, **report}, fmt),
               nl=False)


@cli.command()
@FORMAT
def devices(fmt):
    """The device catalog: peaks per precision, bandwidth, memory, and their sources."""
    from .hardware import builtin_device_paths, load_device
    from .report import render_rows, to_json

    found = [load_device(name) for name in builtin_device_paths()]
    if fmt == "json":
        return click.echo(to_json([d.as_dict() for d in found]), nl=False)

    def peaks(table):
        return " ".join(f"{p}:{v / 1e12:g}" for p, v in table.items())
    rows = [{"name": d.name, "class": d.kind, "memory": f"{d.memory_bytes / 2**30:g} GiB",
             "bandwidth": f"{d.bandwidth / 1e9:g} GB/s", "matrix": peaks(d.matrix), "vector": peaks(d.vector),
             "description": d.description} for d in found]
    columns = [(k, k, str) for k in ("name", "class", "memory", "bandwidth", "matrix", "vector", "description")]
    click.echo(render_rows(rows, columns, fmt, "# peaks in TFLOP/s (int8: TOPS), dense; sources in "
                                              "`effplan devices --format json` and specs/hardware/"), nl=False)


@cli.command()
@click.argument("budget_file", metavar="BUDGETS.toml")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "junit", "github"]), default="text",
              show_default=True, help="text, JSON, JUnit XML (CI dashboards) or GitHub workflow annotations.")
@click.option("--baseline", default=None, metavar="REPORT.json",
              help="A saved `effplan layers --format json`: fail when a figure grew beyond --tolerance.")
@click.option("--tolerance", default="0%", show_default=True,
              help="Allowed growth against the baseline: a percentage (5%) or a share in [0, 1] (0.05).")
@click.option("--strict", is_flag=True, help="Fail (exit 1) when a design has ops with no cost function.")
@OUTPUT
def check(budget_file, fmt, baseline, tolerance, strict, output):
    """Check designs against their budgets: exit 0 all pass, 1 any fails, 2 bad file.

    \b
    [[budget]]
    model = "efficientnet-b0"
    max_macs = "0.5G"
    max_params = "6M"
    """
    from .budget import baseline_growth, load_budgets, unknown_ops
    from .budget import check as check_budgets
    from .report import render_check
    from .units import parse_share

    share = parse_share(tolerance, "--tolerance")
    budgets = load_budgets(budget_file)
    rows = check_budgets(budgets)
    growth = baseline_growth(budgets, rows, baseline, share) if baseline else []
    emit(render_check(rows, growth, fmt, budget_file, baseline, strict), output)
    if any(not r["passed"] for r in rows) or growth or strict and unknown_ops(rows):
        sys.exit(1)


@cli.command()
@click.argument("model")
@click.option("--max-macs", help="e.g. 1G")
@click.option("--max-flops", help="e.g. 2G")
@click.option("--max-params", help="e.g. 10M")
@click.option("--max-weight-bytes", help="e.g. 40MB")
@click.option("--max-inference-memory", help="weights + peak activations at --batch, e.g. 1GiB")
@click.option("--max-training-memory", help="one training step at --batch, e.g. 16GiB")
@click.option("--max-latency", help="roofline latency on --device, e.g. 5ms")
@click.option("--min-throughput", help="images/s on --device, e.g. 1000")
@click.option("--device", default=None, help="Device for latency and throughput.")
@click.option("--depth", "depth_text", default="1..3:0.1", show_default=True, help="Depth multipliers to search.")
@click.option("--width", "width_text", default="1..2:0.05", show_default=True, help="Width multipliers to search.")
@click.option("--resolution", "resolution_text", default=None,
              help="Resolutions to search (default: base..3*base:8).")
@click.option("--objective", type=click.Choice(["macs", "mnas"]), default="macs", show_default=True,
              help="macs: largest MACs under budget; mnas: ACC x (MACs/T)^w with --accuracy.")
@click.option("--accuracy", "accuracy_file", default=None, help="TOML of [[point]] macs/top1 for --objective mnas.")
@click.option("--mnas-w", type=float, default=-0.07, show_default=True, help="The exponent w of MnasNet's reward.")
@click.option("--top", type=click.IntRange(1, 1000), default=10, show_default=True, help="Designs to return.")
@click.option("--coefficients", "coefficient_mode", is_flag=True,
              help="Instead: alpha, beta, gamma on a grid with alpha*beta^2*gamma^2 near 2 (the paper's step 1).")
@click.option("--tolerance", type=float, default=0.1, show_default=True,
              help="With --coefficients: how far alpha*beta^2*gamma^2 may be from 2.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Pareto plot (.svg or .png).")
@BATCH
@DTYPE
@OPTIMIZER
@PRECISION
@FORMAT
def search(model, max_macs, max_flops, max_params, max_weight_bytes, max_inference_memory, max_training_memory,
           max_latency, min_throughput, device, depth_text, width_text, resolution_text, objective, accuracy_file,
           mnas_w, top, coefficient_mode, tolerance, plot, batch, dtype, optimizer, precision, fmt):
    """The largest design that fits: the largest phi, and the best (depth, width, resolution) on a grid.

    \b
    effplan search efficientnet-b0 --max-macs 2G --max-inference-memory 300MiB
    effplan search mobilenet-v2 --device t4 --max-latency 1ms --format json
    effplan search efficientnet-b0 --coefficients
    """
    import numpy as np

    from . import search as engine
    from .budget import parse_limits
    from .report import render_coefficients, render_search

    design = engine.searchable(model)
    progress = _progress("designs")
    if coefficient_mode:
        if not 0 < tolerance <= 1:
            raise EffplanError(f"--tolerance {tolerance}: expected a number in (0, 1]")
        rows = engine.coefficient_grid(design, tolerance, progress=progress)
        return click.echo(render_coefficients(rows, design, tolerance, fmt), nl=False)
    given = {"max_macs": max_macs, "max_flops": max_flops, "max_params": max_params,
             "max_weight_bytes": max_weight_bytes, "max_inference_memory": max_inference_memory,
             "max_training_memory": max_training_memory, "max_latency": max_latency, "min_throughput": min_throughput}
    limits = parse_limits({k: v for k, v in given.items() if v is not None}, lambda key: "--" + key.replace("_", "-"))
    if not limits:
        raise EffplanError("give at least one constraint: --max-macs, --max-params, --max-inference-memory, ...")
    found = None
    if device:
        from .hardware import load_device
        found = load_device(device)
    elif max_latency or min_throughput:
        raise EffplanError("--max-latency and --min-throughput need --device")
    if plot:
        from .plot import check_plot_path
        check_plot_path(plot)
    constraints = engine.Constraints(limits, batch, dtype, found, precision, optimizer)
    score = engine.objective(objective, limits, accuracy_file, mnas_w)
    depths, widths = engine.grid(depth_text, "--depth"), engine.grid(width_text, "--width")
    sides = (engine.grid(resolution_text, "--resolution", integer=True) if resolution_text
             else np.arange(design.resolution, 3 * design.resolution + 1, 8))
    engine.check_grid(design, depths, widths, sides)
    ranked, stats = engine.grid_search(design, depths, widths, sides, constraints, score, top, progress)
    phi = engine.largest_phi(design, constraints)
    if phi:
        phi["score"] = float(score(np.array([phi["macs"]]))[0])
    designs = sorted(ranked + ([phi] if phi else []), key=lambda d: -d["score"])
    if not designs:
        raise engine.NoFit(engine.no_fit_message(constraints, stats))
    front = engine.pareto(stats["front"] + ([phi] if phi else []))  # the grid's front already beats the rest
    for d in designs:
        d["pareto"] = engine.on_front(d, front)
    if plot:
        from .plot import plot_pareto
        plot_pareto(designs, front, plot, model)
    click.echo(render_search(designs, front, stats, constraints, model, objective, fmt), nl=False)


def _progress(label: str):
    """A progress bar on stderr when it is a terminal (long searches), else nothing."""
    if not sys.stderr.isatty():
        return None

    def wrap(items):
        with click.progressbar(items, label=label, file=sys.stderr) as bar:
            yield from bar
    return wrap


@cli.command()
@click.argument("models", nargs=-1, required=True)
@BATCH
@DTYPE
@FORMAT
def compare(models, batch, dtype, fmt):
    """Designs side by side, one column each: effplan compare efficientnet-b4 efficientnetv2-s resnet-50."""
    from .report import TABLE_COLUMNS, header, render_rows, to_json

    pairs = designs_from(models, **{**dict.fromkeys(DESIGN_KEYS), "depth_rounding": "ceil", "scale_items": ()})
    rows = design_rows(pairs, batch, dtype)
    if fmt == "json":
        return click.echo(to_json(rows), nl=False)
    metrics = [(h, key, f) for h, key, f in TABLE_COLUMNS if key not in ("model", "macs_ratio", "two_pow_phi")]
    exact = fmt == "csv"
    body = [{"metric": key if exact else h, **{r["model"]: r[key] if exact else f(r[key]) for r in rows}}
            for h, key, f in metrics]
    columns = [("metric", "metric", str)] + [(r["model"], r["model"], str) for r in rows]
    click.echo(render_rows(body, columns, fmt, "" if fmt == "csv" else header(batch, dtype)), nl=False)


@cli.command()
@FORMAT
def models(fmt):
    """The built-in models, with a line each."""
    from .report import render_rows, to_json
    from .scaling import _builtin_spec, scaling_table
    from .spec import builtin_spec_paths

    rows = []
    for name in builtin_spec_paths():
        spec = _builtin_spec(name)
        rows.append({"name": name, "family": spec.family, "kind": "spec", "description": spec.description,
                     "resolution": spec.resolution})
    for name, p in scaling_table()[1].items():
        if name in builtin_spec_paths():
            continue
        spec = _builtin_spec(p.spec)
        rows.append({"name": name, "family": spec.family, "kind": "published",
                     "description": f"{p.spec} scaled: width {p.width:g}, depth {p.depth:g}, {p.resolution} px"
                                    f" (published coefficients)", "resolution": p.resolution})
    rows.sort(key=lambda r: (r["family"], r["name"]))
    if fmt == "json":
        return click.echo(to_json(rows), nl=False)
    if fmt == "csv":
        columns = [(h, h, str) for h in ("name", "family", "kind", "resolution", "description")]
        return click.echo(render_rows(rows, columns, fmt), nl=False)
    columns = [(h.capitalize(), h, str) for h in ("name", "kind", "resolution", "description")]
    families = dict.fromkeys(r["family"] for r in rows)
    sections = [render_rows([r for r in rows if r["family"] == family], columns, fmt,
                            f"{'### ' if fmt == 'markdown' else ''}{family}") for family in families]
    click.echo("\n".join(sections), nl=False)


def main(argv=None) -> None:
    """Entry point: every user error is one line on stderr and exit code 2, never a traceback."""
    try:
        cli.main(args=argv, prog_name="effplan", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"effplan: error: {exc.format_message()}", err=True)
        sys.exit(2)
    except EffplanError as exc:
        click.echo(f"effplan: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("effplan: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:  # `effplan layers ... | head`
        sys.stderr.close()
        sys.exit(0)
    except Exception as exc:  # a bug, not bad input: still one line, unless asked for the traceback
        import os
        if os.environ.get("EFFPLAN_DEBUG"):
            raise
        click.echo(f"effplan: internal error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                   f" (EFFPLAN_DEBUG=1 shows the traceback; please report it)", err=True)
        sys.exit(70)
