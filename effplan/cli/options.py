"""Options and argument parsing shared by every command: designs from --phi and friends, formats, outputs."""
from __future__ import annotations

import math
import sys

import click

from ..base.errors import EffplanError
from ..gate.budget import MAX_BATCH

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
    from ..design.scaling import check_phi

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

    from ..design.scaling import MAX_MULTIPLIER, default_coefficients

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
    from ..design.scaling import base_design, compound, resolve, with_overrides

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
    from ..plan.profile import analyze
    from ..render.report import design_row

    profiles = [analyze(design, batch, dtype) for design, _ in pairs]
    macs = {network_key(d): p.totals.macs for (d, _), p in zip(pairs, profiles)}
    for _, base in pairs:  # the phi = 0 baseline of each model, built only when not in the table
        if network_key(base) not in macs:
            macs[network_key(base)] = analyze(base, batch, dtype).totals.macs
    from ..plan.memory import training_memory

    rows = [design_row(p, macs[network_key(base)], training_memory(p.graph, precision, optimizer))
            for (_, base), p in zip(pairs, profiles)]
    if device:
        from ..plan.hardware import load_device
        from ..plan.roofline import roofline

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
        from ..base.files import write_atomic
        write_atomic(output, text)
    else:
        click.echo(text, nl=False)


def describe_design(design) -> dict:
    from ..render.report import describe
    return describe(design)


def one_design(model, query: dict):
    pairs = designs_from([model], **query)
    if len(pairs) != 1:
        raise EffplanError("this command takes one design: give a single --phi value")
    return pairs[0][0]


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
    from ..design.blocks import build
    from ..graph.builder import fold_batch_norm

    graph = build(design, batch)
    return fold_batch_norm(graph) if fold_bn else graph


def _progress(label: str):
    """A progress bar on stderr when it is a terminal (long searches), else nothing."""
    if not sys.stderr.isatty():
        return None

    def wrap(items):
        with click.progressbar(items, label=label, file=sys.stderr) as bar:
            yield from bar
    return wrap
