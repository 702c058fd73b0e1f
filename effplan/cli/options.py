"""Options and argument parsing shared by every command: designs from --phi and friends, formats, outputs."""
from __future__ import annotations

import functools
import math
import sys

import click

from ..base.errors import EffplanError, quote
from ..base.units import DTYPES as DTYPE_SIZES, RangeError, parse_range
from ..design.spec import MAX_CHANNELS
from ..gate.budget import MAX_BATCH
from ..plan.memory import DEFAULT_OPTIMIZER, DEFAULT_PRECISION, OPTIMIZER_SLOTS, PRECISIONS
from ..plan.profile import LAYER_SORT_KEYS

MAX_DESIGNS = 200  # per command: 200 at phi 15-16 cost 40 s (benchmarks/worst_case.py, docs/robustness.md)
FORMAT = click.option("--format", "fmt", type=click.Choice(["text", "csv", "json", "markdown"]),
                      default="text", show_default=True, help="Output format.")
NOTES: list[str] = []  # lines main() prints on stderr after a command succeeds


def warn(message: str) -> None:
    """A warning on stderr, as every command words one: 'effplan: warning: ...'."""
    click.echo(f"effplan: warning: {message}", err=True)


def file_batch(ctx, param, value):
    """--batch, default 1; not given, an ONNX file whose batch is fixed runs at its own batch, noted on
    stderr (only a symbolic batch can be bound)."""
    if value is not None:
        return value
    from ..onnx.model import Imported, is_file_model

    names = ctx.params.get("models") or [ctx.params.get("model")]
    files = [name for name in names if name and is_file_model(name)]
    fixed = {(name, Imported.open(name, parse_dims(ctx.params.get("dim_items"))).fixed_batch) for name in files}
    batches = {batch for _, batch in fixed if batch is not None}
    if len(batches) != 1:
        return 1
    (batch,) = batches
    name = next(name for name, b in fixed if b == batch)
    NOTES.append(f"{name} has a fixed batch of {batch}: run at batch {batch} (--batch binds only a symbolic batch)")
    return batch


def batch_option(help: str, callback=None):
    return click.option("--batch", type=click.IntRange(1, MAX_BATCH), default=None, callback=callback, help=help)


BATCH = batch_option("Batch size (activation bytes scale with it). Default 1; an ONNX file with a fixed batch, "
                     "its own.", file_batch)
DIM = click.option("--dim", "dim_items", multiple=True, metavar="NAME=VALUE",
                   help="An ONNX file: the size of a named symbolic dimension, e.g. --dim seq=128 (repeatable).")


UNFOLD_BN = click.option("--unfold-bn", is_flag=True,
                         help="An ONNX file exported in eval mode: restore a BatchNormalization after each conv "
                              "with a bias on a map wider than 1x1 (docs/training-own-models.md).")


def parse_dims(items) -> dict[str, int]:
    """--dim NAME=VALUE items as {name: size}."""
    from ..base.units import MAX_DIM

    dims = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        value = value.strip()
        if not sep or not key.strip() or not value.isdigit() or not 1 <= int(value) <= MAX_DIM:
            raise EffplanError(f"--dim {quote(item)}: expected NAME=VALUE with a size from 1 to 2^40")
        dims[key.strip()] = int(value)
    return dims


DTYPES = click.Choice(list(DTYPE_SIZES))  # base/units.py's DTYPES
RUNTIME = click.option("--runtime", default=None, metavar="NAME|FILE",
                       help="How the device runs the graph (effplan runtimes): eager, compiled, fused, xla, "
                            "onnxruntime-cpu, or a runtime file (default: the device class's, as effplan runtimes "
                            "lists; training: eager on GPUs and NPUs, xla on TPUs, eager-cpu on CPUs).")
DTYPE = click.option("--dtype", type=DTYPES, default="fp32",
                     show_default=True, help="Element type of weights and activations.")
# the one precision rule (base/units.cost_dtype), for every command that costs on a device
DEVICE_DTYPE = click.option("--dtype", type=DTYPES, default=None,
                            help="Precision of weights, activations and arithmetic. Default: on a device, the one "
                                 "inference runs at there (its half precision: fp16, or bf16 on TPUs; else fp32); "
                                 "without a device, fp32.")
OPTIMIZER = click.option("--optimizer", type=click.Choice(list(OPTIMIZER_SLOTS)), default=DEFAULT_OPTIMIZER,
                         show_default=True, help="Optimizer whose state training memory holds.")
PRECISION = click.option("--precision", type=click.Choice(list(PRECISIONS)), default=DEFAULT_PRECISION,
                         show_default=True, help="Training precision (mixed: half activations, fp32 master weights).")
CHECKPOINT = click.option("--checkpoint", type=click.Choice(["none", "blocks"]), default="none", show_default=True,
                          help="Recompute each block in backward, keeping only block inputs.")
OUTPUT = click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
                      help="Write to this file (atomically) instead of stdout.")


def design_options(fn=None, *, single: bool = False):
    """Options shared by every command that builds designs; `single` for a command of one design
    (`@design_options(single=True)`): its help promises no lists."""
    if fn is None:
        return lambda f: design_options(f, single=single)
    options = [
        click.option("--phi", "phi_text", default=None, metavar="PHI",
                     help="Compound coefficient, a number such as 1.5." if single else
                     "Compound coefficient: a number, a list 0,2,5, a range 0..7 or a stepped range 0..2:0.5."),
        click.option("--alpha", type=float, default=None, help="Depth coefficient (default 1.2)."),
        click.option("--beta", type=float, default=None, help="Width coefficient (default 1.1)."),
        click.option("--gamma", type=float, default=None, help="Resolution coefficient (default 1.15)."),
        click.option("--depth-rounding", type=click.Choice(["ceil", "round"]), default="ceil", show_default=True,
                     help="Repeats = ceil(d*r) as the official code, or rounded half up."),
        click.option("--resolution", "resolution_text", default=None, metavar="R",
                     help="Input side in pixels (overrides phi's)." + (
                         "" if single else " A list 128,192,256 gives a design each.")),
        click.option("--width-mult", type=float, default=None, help="Width multiplier, set outright (overrides phi's)."),
        click.option("--depth-mult", type=float, default=None, help="Depth multiplier, set outright (overrides phi's)."),
        click.option("--scale", "scale_items", multiple=True, metavar="DIM=FACTOR",
                     help="Scale one dimension: depth=4, width=2 or resolution=2 (repeatable)."),
        click.option("--classes", type=click.IntRange(1, MAX_CHANNELS), default=None,
                     help="Classifier outputs (default: the spec's)."),
        DIM,
        UNFOLD_BN,
        click.option("--input-shape", "input_shape_text", default=None, metavar="C,H,W",
                     help="A PyTorch model (timm:NAME, torchvision:NAME, PACKAGE.MODULE:CALLABLE): one sample's "
                          "input shape, where the model does not state it."),
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
               "scale_items", "classes", "dim_items", "unfold_bn", "input_shape_text")


def parse_phis(text: str) -> list[float]:
    """'1.5', '0,2,5', '0..7', '0..2:0.5' (ranges include both ends)."""
    from ..design.scaling import check_phi

    try:
        values = parse_range(text, default_step=1.0, limit=MAX_DESIGNS, mixed=True)
    except RangeError as exc:
        if exc.reason == "step":
            raise EffplanError(f"--phi {quote(text)}: the step must be a positive number") from None
        if exc.reason == "count":
            raise EffplanError(f"--phi {quote(text)} gives {exc.count:.0f} designs; at most {MAX_DESIGNS} at once") from None
        raise EffplanError(f"--phi {quote(text)}: the range {exc.part} is empty") from None
    except ValueError:
        raise EffplanError(f"--phi {quote(text)}: expected a number, a list a,b,c or a range a..b[:step]") from None
    for phi in values:
        check_phi(phi)
    if len(values) > MAX_DESIGNS:
        raise EffplanError(f"--phi {quote(text)} gives {len(values)} designs; at most {MAX_DESIGNS} at once")
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
        warn(f"alpha*beta^2*gamma^2 = {c.flops_factor:.3f}, far from 2: each unit of phi "
             f"multiplies FLOPS by about {c.flops_factor:.2f}, not 2")
    return c


def parse_scale(items) -> dict[str, float]:
    scale = {}
    for item in items:
        dim, sep, factor = item.partition("=")
        try:
            scale[dim.strip()] = float(factor)
        except ValueError:
            raise EffplanError(f"--scale {quote(item)}: expected DIM=FACTOR, e.g. depth=4") from None
        if not sep:
            raise EffplanError(f"--scale {quote(item)}: expected DIM=FACTOR, e.g. depth=4")
    return scale


def parse_resolutions(text: str | None) -> list[int | None]:
    if text is None:
        return [None]
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise EffplanError(f"--resolution {quote(text)}: expected a whole number of pixels "
                           f"or a list 128,192,256") from None
    if len(values) > MAX_DESIGNS:
        raise EffplanError(f"--resolution gives {len(values)} designs; at most {MAX_DESIGNS} at once")
    return values


def designs_from(models, phi_text, alpha, beta, gamma, depth_rounding, resolution_text, width_mult, depth_mult,
                 scale_items, classes, dim_items=(), unfold_bn=False, input_shape_text=None):
    """(design, its phi = 0 baseline) for every model, phi and resolution asked; an .onnx file gives
    (its Imported model, None): a file is never rescaled; so does a PyTorch model (timm:NAME...), exported
    in the command's mode (--train, or the train command: the train-mode graph)."""
    from ..onnx.model import Imported, is_file_model, refuse_rescaling
    from ..design.scaling import base_design, compound, resolve, with_overrides
    from ..torch.source import is_torch_model, open_model, parse_input_shape

    names = list(models) or ["efficientnet-b0"]
    ctx = click.get_current_context(silent=True)
    training = bool(ctx and (ctx.params.get("train") or ctx.command.name == "train"))
    input_shape = parse_input_shape(input_shape_text)
    if input_shape and not any(is_torch_model(name) for name in names):
        raise EffplanError("--input-shape sets a PyTorch model's input (timm:NAME, torchvision:NAME, "
                           "PACKAGE.MODULE:CALLABLE); a built design's comes from --resolution")
    files = [name for name in names if is_file_model(name)]
    fixed = files or [name for name in names if is_torch_model(name)]
    if fixed:
        rescaling = [("--phi", phi_text), ("--alpha", alpha), ("--beta", beta), ("--gamma", gamma),
                     ("--resolution", resolution_text), ("--width-mult", width_mult), ("--depth-mult", depth_mult),
                     ("--scale", scale_items or None), ("--classes", classes),
                     ("--depth-rounding", None if depth_rounding == "ceil" else depth_rounding)]
        given = [flag for flag, value in rescaling if value is not None]
        if files:
            refuse_rescaling(files[0], given)
        elif given:
            raise EffplanError(f"{given[0]} rescales a built design; {fixed[0]} is a PyTorch model, which fixes its "
                               f"own widths and depth (--input-shape C,H,W sets its input)")
    dims = parse_dims(dim_items)
    if unfold_bn and not files:
        raise EffplanError(f"--unfold-bn restores BatchNormalization in an ONNX file exported in eval mode; "
                           f"{names[0]} is a built design, which has its BatchNormalization")
    if dims and not files:
        raise EffplanError(f"--dim binds a named symbolic dimension of an ONNX file; {names[0]} is a built design "
                           f"(its sizes come from --resolution, --width-mult and --depth-mult)")
    resolutions = parse_resolutions(resolution_text)
    phis = parse_phis(phi_text) if phi_text is not None else None
    coeffs = coefficients(alpha, beta, gamma) if phis is not None else None
    if phis is None and any(v is not None for v in (alpha, beta, gamma)):
        raise EffplanError("--alpha/--beta/--gamma apply with --phi")
    scale = parse_scale(scale_items)
    pairs = []
    for name in names:
        if is_file_model(name):
            pairs.append((Imported.open(name, dims, unfold_bn), None))
            continue
        if is_torch_model(name):
            if ctx and ctx.command.name in ("export", "measure"):  # they write (and run) an ONNX file of effplan's
                raise EffplanError(f"effplan {ctx.command.name} takes a built design or an ONNX file; {name} is a "
                                   f"PyTorch model: export it with torch.onnx.export, then give the file")
            pairs.append((open_model(name, input_shape, training), None))
            continue
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


def guard_output(command: click.Command) -> None:
    """Make `command` refuse, before its work, an -o that names one of the files it is given (a model, spec,
    budget, device, runtime or baseline): outputs never replace inputs (base.files.refuse_input)."""
    callback = command.callback
    names = {p.name: (p.opts[-1] if isinstance(p, click.Option) else f"the {p.name.replace('_', ' ')} argument")
             for p in command.params}

    def run(**params):
        if params.get("output"):
            from ..base.files import refuse_input
            refuse_input(params["output"], {names.get(k, k): v for k, v in params.items() if k != "output"})
        return callback(**params)

    if callback is not None and "output" in names:
        command.callback = functools.update_wrapper(run, callback)


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
    """The one design of a single-design command; a list names the option that gave it."""
    for key, option, values in (("phi_text", "--phi", parse_phis), ("resolution_text", "--resolution",
                                                                    parse_resolutions)):
        if query[key] is not None and len(values(query[key])) != 1:
            raise EffplanError(f"{option} '{query[key]}': this command takes one design; give a single value")
    (pair,) = designs_from([model], **query)
    return pair[0]


TRAIN_OPTIONS = [
    click.option("--train", is_flag=True, help="Also the memory of a training step."),
    OPTIMIZER,
    PRECISION,
    CHECKPOINT,
    click.option("--inplace", is_flag=True, help="Inference: elementwise ops overwrite their input."),
    click.option("--fold-bn", is_flag=True, help="Inference: BatchNormalization folded into the convs."),
    click.option("--fuse-se", is_flag=True, help="Inference: the SE multiply runs inside the next conv."),
    click.option("--order", type=click.Choice(["plain", "aware"]), default="plain", show_default=True,
                 help="Inference: plan with the builder's op order (what runtimes run) or the better of it and "
                      "the memory-aware order."),
]


LAYER_SORT = click.option("--sort", "sort_key", type=click.Choice(LAYER_SORT_KEYS), default=None,
                          help="Order rows by this figure, largest first.")
LAYER_TOP = click.option("--top", type=click.IntRange(1), default=None, metavar="N", help="Only the first N rows.")
LAYER_BY = click.option("--by", type=click.Choice(["layer", "block", "stage", "op"]), default="layer",
                        show_default=True, help="One row per layer (op), block, stage, or op type.")
STRICT = click.option("--strict", is_flag=True, help="Fail when an op has no cost function.")


def view_options(fn):
    """--wide and --columns for text tables, passed on as `view` (a render.tables.View)."""
    import functools

    @functools.wraps(fn)
    def packed(wide, columns_text, **kwargs):
        from ..render.tables import View

        names = tuple(n.strip() for n in columns_text.split(",") if n.strip()) if columns_text is not None else ()
        if columns_text is not None and not names:
            raise EffplanError("--columns: give column names, e.g. --columns model,params,macs")
        if wide and names:
            raise EffplanError("--wide and --columns exclude each other")
        return fn(view=View(wide, names, to_file=bool(kwargs.get("output"))), **kwargs)
    packed = click.option("--columns", "columns_text", default=None, metavar="A,B,C",
                          help="Text and markdown: only these columns (keys as in CSV, or headers).")(packed)
    return click.option("--wide", is_flag=True,
                        help="Text on a terminal: every column (by default, columns that do not fit its width are "
                             "hidden; files and pipes get every column).")(packed)


def train_options(fn):
    for option in reversed(TRAIN_OPTIONS):
        fn = option(fn)
    return fn


def file_checks(design, batch: int, checkpoint: str = "none", fit: bool = False, train: bool = False) -> None:
    """What an ONNX file cannot give, refused in one line: block checkpointing where no blocks were
    recovered from its node names, the largest batch of a file whose batch is fixed. With `train`, the
    file's BatchNormalization note (folded at export, or restored by --unfold-bn) on stderr."""
    if design.spec is not None:
        return
    note = design.training_note() if train else None
    if note and note not in NOTES:
        NOTES.append(note)
    if fit and not design.symbolic_batch:
        raise EffplanError(f"{design.path} has a fixed batch: fit needs a symbolic batch dimension "
                           f"(torch.onnx.export(..., dynamic_axes={{'input': {{0: 'N'}}}}))")
    graph = design.graph(batch)
    if checkpoint == "blocks" and not any(isinstance(graph.nodes[n]["stage"], int) for n in graph.nodes):
        raise EffplanError(f"--checkpoint blocks: no blocks were recovered from the node names of {design.path} "
                           f"(effplan reads module paths such as stages.S.blocks.B, layerS.B, sS.bB and blocks.B, in "
                           f"node names or the dynamo exporter's node metadata, else starts a stage where the "
                           f"resolution drops)")


def _progress(label: str):
    """A progress bar on stderr when it is a terminal (long searches), else nothing."""
    if not sys.stderr.isatty():
        return None

    def wrap(items):
        with click.progressbar(items, label=label, file=sys.stderr) as bar:
            yield from bar
    return wrap
