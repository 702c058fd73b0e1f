"""Budgets: limits on a design's figures, read from TOML, checked exactly through the graph path.

    [[budget]]
    model = "efficientnet-b0"   # a built-in name, a spec file or an .onnx file
    max_macs = "0.5G"
    max_params = "6M"
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from ..base.errors import EffplanError, quote
from ..base.schema import Custom, Number, Table, Text, Where, read_table_list, validate
from ..base.files import reads
from ..torch.source import is_torch_model  # the argument's form only: torch is imported for such a model alone
from ..plan.memory import DEFAULT_OPTIMIZER, DEFAULT_PRECISION, OPTIMIZER_SLOTS, PRECISIONS
from ..base.units import DTYPES, bytes_as_written, cost_dtype, human_bytes, parse_bytes, parse_count, parse_seconds


MAX_BATCH = 1 << 20  # the largest batch any command takes: figures stay far from integer limits
MAX_BUDGETS = 256  # entries in one budget file: a CI gate's list, each built and costed in turn
MAX_REPORT_BYTES = 64 << 20  # a --baseline report (EfficientNet-L2's layers report is about 1 MB)


@dataclass(frozen=True)
class Limit:
    figure: str  # the key of `figures()` it bounds
    parse: object  # (text, what) -> number
    upper: bool  # max_ (True) or min_ (False)
    show: object  # number -> text
    needs: str = ""  # what the figure needs: "device" or "training"
    scope: str = "batch"  # what it counts: the whole "batch", one "image", the "model" (any batch)


def _count(v):
    return f"{v / 1e9:.3f}G" if v >= 1e9 else f"{v / 1e6:.3f}M" if v >= 1e6 else f"{v:,.0f}"


def _hours(value, what: str) -> float:
    """Hours as a number (24, 1.5) or a numeric string ("24")."""
    try:
        hours = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        hours = math.nan
    if not math.isfinite(hours):
        raise EffplanError(f"{what}: expected a number of hours (e.g. 24), got {value!r}")
    return hours


LIMITS = {
    "max_macs": Limit("macs", parse_count, True, _count),
    "max_flops": Limit("flops", parse_count, True, _count),
    "max_macs_per_image": Limit("macs_per_image", parse_count, True, _count, scope="image"),
    "max_flops_per_image": Limit("flops_per_image", parse_count, True, _count, scope="image"),
    "max_params": Limit("params", parse_count, True, _count, scope="model"),
    "max_weight_bytes": Limit("weight_bytes", parse_bytes, True, human_bytes, scope="model"),
    "max_inference_memory": Limit("inference_bytes", parse_bytes, True, human_bytes),
    "max_training_memory": Limit("training_bytes", parse_bytes, True, human_bytes, "training"),
    "max_latency": Limit("latency_s", parse_seconds, True, lambda v: f"{v * 1e3:.3f} ms", "device"),
    "min_throughput": Limit("images_per_s", parse_count, False, lambda v: f"{v:,.1f}/s", "device"),
    # training time (plan/training.py): a step at train_batch per device, on `devices` devices
    "max_training_step_time": Limit("training_step_s", parse_seconds, True, lambda v: f"{v * 1e3:.3f} ms", "device",
                                    "train"),
    "min_training_throughput": Limit("training_images_per_s", parse_count, False, lambda v: f"{v:,.1f}/s", "device",
                                     "train"),
    "max_training_hours": Limit("training_hours", _hours, True, lambda v: f"{v:,.2f} h", "device", "run"),
}
TRAINING_TIME = frozenset(k for k, v in LIMITS.items() if v.scope in ("train", "run"))
RUN_KEYS = ("epochs", "dataset_size", "progressive")  # the run max_training_hours bounds
IMAGENET = 1281167  # ImageNet-1k training images: the default dataset_size
DESIGN_KEYS = ("model", "name", "phi", "resolution", "batch", "dtype", "device", "runtime", "optimizer", "precision",
               "train_batch", "width_mult", "depth_mult", "devices", "input_shape", *RUN_KEYS)
SHAPED_KEYS = ("phi", "resolution", "width_mult", "depth_mult", "progressive")  # an ONNX file fixes these itself


@dataclass(frozen=True)
class Budget:
    name: str
    model: str
    limits: dict  # key -> value (numbers)
    phi: float | None = None
    resolution: int | None = None
    width_mult: float | None = None
    depth_mult: float | None = None
    batch: int = 1
    dtype: str | None = None  # None: base/units.cost_dtype, the one rule (the device's default, else fp32)
    device: str | None = None
    runtime: str | None = None  # plan/runtime.py: a name or file; None: the device class's default
    optimizer: str = DEFAULT_OPTIMIZER
    precision: str = DEFAULT_PRECISION
    train_batch: int | None = None
    devices: int = 1  # data parallel, for the training-time limits
    epochs: int | None = None  # the run max_training_hours bounds
    dataset_size: int = IMAGENET
    progressive: tuple | None = None  # (min side, max side, stages), plan/training_run.parse_progressive
    input_shape: str | None = None  # a PyTorch model's one-sample shape, "C,H,W" (--input-shape)
    folder: Path = field(default=Path("."), compare=False)
    where: str = "budget"  # the file and entry, for errors: budgets.toml: budget[2]
    written: dict = field(default_factory=dict, compare=False)  # limit key -> the text the file gave


def limit_value(key: str, value, what) -> float:
    """A limit's value as a number (its unit parsed); more than 0, or an error naming `what`."""
    if isinstance(value, bool):
        raise EffplanError(f"{what}: expected a number with a unit, got {value!r}")
    number = LIMITS[key].parse(value, str(what))
    if number <= 0:
        raise EffplanError(f"{what}: {value!r}: a limit must be more than 0")
    return number


def parse_limits(table: dict, label) -> dict:
    """{key: number} for the limit keys of a table; negative or non-numeric values are errors naming
    `label(key)` (a budget file's entry and key, or a command-line option)."""
    return {key: limit_value(key, value, label(key)) for key, value in table.items() if key in LIMITS}


def _progressive(value, where):
    from ..plan.training_run import parse_progressive
    if not isinstance(value, str):
        raise EffplanError(f"{where}: expected a string MIN:MAX:STAGES, e.g. \"128:300:4\"")
    try:
        return parse_progressive(value)
    except EffplanError as exc:
        raise EffplanError(f"{where}: {str(exc).removeprefix('--progressive ')}") from None


def _int(lo, hi, default=None):
    return Number(whole=True, lo=lo, hi=hi, default=default)


# A [[budget]] entry: its limits (each parsed in its unit), then the design they bound.
ENTRY = Table({
    **{key: Custom(lambda value, where, key=key: limit_value(key, value, where), default=None) for key in LIMITS},
    "model": Text(nonempty=True, expect="a built-in name, a spec file, an .onnx file or a PyTorch model"),
    "input_shape": Text(default=None),  # a PyTorch model's "C,H,W", where it does not state it
    "name": Text(default=None),
    "phi": Number(lo=0, hi=16, default=None),
    "resolution": _int(8, 16384),
    "width_mult": Number(lo=0.01, hi=64, default=None),
    "depth_mult": Number(lo=0.01, hi=64, default=None),
    "batch": _int(1, MAX_BATCH, 1),
    "dtype": Text(choices=tuple(DTYPES), default=None),  # None: base/units.cost_dtype
    "device": Text(default=None),
    "runtime": Text(default=None),  # plan/runtime.py: a name or file
    "optimizer": Text(choices=tuple(OPTIMIZER_SLOTS), default=DEFAULT_OPTIMIZER),
    "precision": Text(choices=tuple(PRECISIONS), default=DEFAULT_PRECISION),
    "train_batch": _int(1, MAX_BATCH),
    "devices": _int(1, 1 << 20, 1),
    "epochs": _int(1, 1 << 20),
    "dataset_size": _int(1, 1 << 40, IMAGENET),
    "progressive": Custom(_progressive, default=None),
})


def load_budgets(path: str) -> list[Budget]:
    """Every [[budget]] of a file, validated; errors name the file, the entry and the key
    (budgets.toml: budget[2].max_macs: ...)."""
    entries = read_table_list(path, "budget", "budgets are [[budget]] tables", EffplanError)
    if not entries:
        raise EffplanError(f"{path}: no budgets: add at least one [[budget]] table with a model and limits")
    if len(entries) > MAX_BUDGETS:
        raise EffplanError(f"{path}: {len(entries)} budgets; at most {MAX_BUDGETS} in one file")
    budgets = []
    for i, entry in enumerate(entries):
        where = Where(str(path), f"budget[{i}]")
        v = validate(ENTRY, entry, where, EffplanError)
        if v["model"].endswith(".onnx") or is_torch_model(v["model"]):
            shaped = [k for k in SHAPED_KEYS if k in entry]
            if shaped:
                raise EffplanError(f"{where / shaped[0]}: an ONNX file or PyTorch model fixes its own design; "
                                   f"{shaped[0]} applies to built-in names and spec files (batch, dtype and device "
                                   f"apply to all)")
        limits = {k: v[k] for k in LIMITS if v[k] is not None}
        if not limits:
            raise EffplanError(f"{where}: no limits; give at least one of {', '.join(LIMITS)}")
        needs_device = [k for k in limits if LIMITS[k].needs == "device"]
        if needs_device and not v["device"]:
            raise EffplanError(f"{where / needs_device[0]}: needs a device (device = \"t4\", say)")
        if v["runtime"] is not None and not v["device"]:
            raise EffplanError(f"{where / 'runtime'}: needs a device (device = \"t4\", say)")
        _check_training_time(v, limits, entry, where)
        if "max_latency" in limits and "min_throughput" in limits:
            most = v["batch"] / limits["max_latency"]
            if most < limits["min_throughput"]:
                raise EffplanError(f"{where}: contradictory limits: within max_latency at batch {v['batch']} the "
                                   f"throughput is at most {most:,.1f}/s, below min_throughput")
        budgets.append(Budget(
            name=v["name"] or v["model"], limits=limits, written={k: entry[k] for k in limits},
            **{k: v[k] for k in DESIGN_KEYS if k != "name"},
            folder=Path(path).resolve().parent, where=str(where)))
    for budget in budgets:  # every entry's model and device found before any is evaluated
        _named(budget, lambda: _resolve(budget))
    return budgets


def _check_training_time(v: dict, limits: dict, entry: dict, where: Where) -> None:
    """The run keys go with the training-time limits: epochs with max_training_hours (which needs it),
    devices with any of them; a training-time limit needs a runtime that trains."""
    timed = [k for k in limits if k in TRAINING_TIME]
    if "max_training_hours" in limits and v["epochs"] is None:
        raise EffplanError(f"{where / 'max_training_hours'}: needs epochs (epochs = 350, say; dataset_size defaults "
                           f"to ImageNet's {IMAGENET:,} images)")
    for key in RUN_KEYS:
        if key in entry and "max_training_hours" not in limits:
            raise EffplanError(f"{where / key}: applies with max_training_hours")
    if "devices" in entry and not timed:
        raise EffplanError(f"{where / 'devices'}: applies with the training-time limits "
                           f"({', '.join(sorted(TRAINING_TIME))})")
    if "max_training_step_time" in limits and "min_training_throughput" in limits:
        images = (v["train_batch"] or v["batch"]) * v["devices"]
        if images / limits["max_training_step_time"] < limits["min_training_throughput"]:
            raise EffplanError(f"{where}: contradictory limits: within max_training_step_time, {images} images a step "
                               f"train at most {images / limits['max_training_step_time']:,.1f}/s, below "
                               f"min_training_throughput")
    if timed and v["runtime"] is not None:
        from ..plan.runtime import training_runtime
        try:
            training_runtime(v["runtime"])
        except EffplanError as exc:
            raise EffplanError(f"{where / 'runtime'}: {exc}") from None


def _resolve(budget: Budget):
    """(the budget's design, or the path of its ONNX file; its device or None), checked without
    building a graph, so a bad late entry is reported before minutes of evaluating earlier ones."""
    from ..design.scaling import check_design, compound, resolve, with_overrides
    from ..plan.hardware import load_device

    device = load_device(budget.device) if budget.device else None
    if budget.devices > 1:
        from ..plan.parallel import device_link
        if device_link(device) is None:
            raise EffplanError(f"devices = {budget.devices}: device {device.name} has no [interconnect] figure in its "
                               f"file for the gradient all-reduce")
    if budget.runtime is not None:
        from ..plan.runtime import load_runtime
        load_runtime(_runtime_path(budget))
    model = budget.model
    from ..torch.source import open_model, parse_input_shape
    if is_torch_model(model):  # its inference graph; budget_graphs plans training on the train-mode export
        return open_model(model, parse_input_shape(budget.input_shape)), device
    if budget.input_shape is not None:
        raise EffplanError(f"{budget.where}.input_shape: sets a PyTorch model's input (timm:NAME, "
                           f"PACKAGE.MODULE:CALLABLE); {quote(model)} takes its size from resolution")
    if model.endswith(".onnx"):
        path = model if Path(model).is_absolute() else str(budget.folder / model)
        if not Path(path).is_file():
            raise EffplanError(f"{quote(model)}: no such ONNX file")
        return path, device
    if model.endswith(".toml") and not Path(model).is_absolute():
        model = str(budget.folder / model)
    design = resolve(model)
    if budget.phi is not None:
        design = compound(design, budget.phi)
    design = with_overrides(design, resolution=budget.resolution, width_mult=budget.width_mult,
                            depth_mult=budget.depth_mult)
    check_design(design)
    return design, device


def figures(graph, batch: int, dtype: str, device=None, precision=DEFAULT_PRECISION, optimizer=DEFAULT_OPTIMIZER,
            train_graph=None, wanted=(), runtime=None) -> dict:
    """Every figure a budget can bound, of one graph (the training ones only when wanted)."""
    from ..plan.profile import profile
    from ..plan.memory import training_memory

    p = profile(graph, None, batch, dtype)
    t = p.totals
    out = {"macs": t.macs, "flops": t.flops, "params": t.params, "weight_bytes": t.weight_bytes,
           "macs_per_image": t.macs // batch, "flops_per_image": t.flops // batch,  # both exactly linear in N
           "inference_bytes": t.weight_bytes + t.peak_activation_bytes, "unknown_ops": p.unknown_ops}
    if "training_bytes" in wanted:
        out["training_bytes"] = training_memory(train_graph or graph, precision, optimizer).total_bytes
    if device is not None and {"latency_s", "images_per_s"} & set(wanted):
        from ..plan.roofline import roofline
        result = roofline(graph, device, dtype, batch, runtime=runtime)
        out.update(latency_s=result.latency_s, images_per_s=result.images_per_s)
    return out


def training_time(budget: Budget, device) -> dict:
    """The training-time figures (plan/training_run.time_figures) of a budget's design on its device: a run of
    `epochs` (1 when only a step is bounded) at train_batch (else batch) per device."""
    from ..plan.training_run import time_figures, training_run

    design, _ = _resolve(budget)
    if isinstance(design, str):
        from ..onnx.model import Imported
        design = Imported(design)
    design = _train_mode(budget, design)
    run = training_run(design, device, batch=budget.train_batch or budget.batch, devices=budget.devices,
                       epochs=budget.epochs or 1, dataset_size=budget.dataset_size, progressive=budget.progressive,
                       runtime=budget.runtime, precision=budget.precision, optimizer=budget.optimizer)
    return time_figures(run)


def budget_graphs(budget: Budget):
    """(graph at the budget's batch, graph at its training batch or None, a description: model,
    phi, resolution)."""
    from ..design.blocks import build

    design, _ = _resolve(budget)
    if isinstance(design, str):  # an ONNX file, through the import every command uses
        from ..onnx.model import Imported
        model = Imported(design)
        graph = build(model, budget.batch)
        train = build(model, budget.train_batch) if budget.train_batch else None
        return graph, train, {"model": Path(budget.model).stem, "phi": None, "resolution": model.resolution,
                              "source": design}
    if design.spec is None:  # a PyTorch model: inference on its eval graph, training on its train-mode one
        train = _train_mode(budget, design).graph(budget.train_batch or budget.batch)
        return design.graph(budget.batch), train, {"model": budget.model, "phi": None, "resolution": design.resolution}
    graph = build(design, budget.batch)
    train = build(design, budget.train_batch) if budget.train_batch else None
    return graph, train, {"model": design.name, "phi": design.phi, "resolution": design.resolution}


def _train_mode(budget: Budget, design):
    """A PyTorch model's train-mode export (dropout, batch statistics), which training figures plan; else the design."""
    if getattr(design, "coefficients", None) != "torch":
        return design
    from ..torch.source import open_model, parse_input_shape
    return open_model(budget.model, parse_input_shape(budget.input_shape), train=True)


def _named(budget: Budget, step):
    """Run `step`; an error names the budget's file and entry."""
    try:
        return step()
    except EffplanError as exc:
        raise type(exc)(f"{budget.where}: {exc}") from None


def _runtime_path(budget: Budget) -> str | None:
    """The budget's runtime: a catalog name, or a file relative to the budget file's folder."""
    from ..design.spec import looks_like_path
    if budget.runtime is None or not looks_like_path(budget.runtime) or Path(budget.runtime).is_absolute():
        return budget.runtime
    return str(budget.folder / budget.runtime)


def check(budgets: list[Budget]) -> list[dict]:
    """One row per limit: value, limit, margin (share of the limit left; negative when over), pass;
    `unknown_ops` lists the ops no cost function knows (counted as zero)."""
    from ..plan.bands import figure_band
    from ..plan.hardware import load_device
    from ..plan.runtime import runtime_for, training_runtime_for

    rows = []
    for i, budget in enumerate(budgets):
        graph, train, about = _named(budget, lambda: budget_graphs(budget))
        wanted = {LIMITS[k].figure for k in budget.limits}
        device = _named(budget, lambda: load_device(budget.device)) if budget.device else None
        dtype = cost_dtype(budget.dtype, device)
        values = figures(graph, budget.batch, dtype, device, budget.precision, budget.optimizer, train, wanted,
                         _runtime_path(budget))
        if TRAINING_TIME & set(budget.limits):
            values.update(_named(budget, lambda: training_time(budget, device)))
        for key, limit in budget.limits.items():
            spec = LIMITS[key]
            value = values[spec.figure]
            margin = (limit - value) / limit if spec.upper else (value - limit) / limit
            scope = {"image": "one image", "model": "the model"}.get(spec.scope, f"batch of {budget.batch}")
            if spec.needs == "training" or spec.scope in ("train", "run"):
                scope = f"train batch of {budget.train_batch or budget.batch}"
            if spec.scope in ("train", "run") and budget.devices > 1:
                scope += f" per device on {budget.devices} devices"
            if spec.scope == "run":
                scope = f"{budget.epochs} epochs of {budget.dataset_size:,} images, " + scope
            rows.append({"budget": budget.name, "entry": i, **about, "batch": budget.batch, "scope": scope,
                         "dtype": dtype, "device": budget.device,
                         "runtime": runtime_for(device, _runtime_path(budget)).name if device else None,
                         "limit_key": key, "figure": spec.figure,
                         "value": value, "limit": limit, "margin": margin, "passed": margin >= 0,
                         **dict(zip(("value_text", "limit_text"),
                                    (spec.parse is parse_bytes and bytes_as_written(value, budget.written.get(key)))
                                    or (spec.show(value), spec.show(limit)))),
                         "unknown_ops": values["unknown_ops"]})
            training = spec.scope in ("train", "run")
            ran = training_runtime_for(device, _runtime_path(budget)).name if training and device else rows[-1]["runtime"]
            rows[-1]["band"] = figure_band(spec.figure, value, ran,
                                           budget.train_batch or budget.batch if training else budget.batch, spec.show)
    return rows


def unknown_ops(rows: list[dict]) -> dict[str, dict]:
    """Budget -> {op: count} of the ops its design has no cost function for."""
    return {r["budget"]: r["unknown_ops"] for r in rows if r["unknown_ops"]}


# ---- baselines ----

COMPARED = ("params", "macs", "flops", "weight_bytes", "peak_activation_bytes")
MATCHED = ("model", "resolution", "batch", "dtype")  # a baseline must be of the same design as its budget


def read_report(path: str) -> dict:
    """A saved `effplan layers --format json` (or `analyze`) report."""
    import json

    reads(path)
    try:
        with open(path, "rb") as fh:  # bounded: --baseline /dev/zero would read forever
            data = fh.read(MAX_REPORT_BYTES + 1)
        if len(data) > MAX_REPORT_BYTES:
            raise EffplanError(f"--baseline {path}: larger than {MAX_REPORT_BYTES >> 20} MiB; not a layers report")
        report = json.loads(data.decode("utf-8"), parse_constant=_Constant, parse_int=_integer)
    except OSError as exc:
        raise EffplanError(f"--baseline {path}: cannot read: {exc.strerror or exc}") from None
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise EffplanError(f"--baseline {path}: not JSON; save one with effplan layers --format json") from None
    bad = _bad_number(report)
    if bad:
        raise EffplanError(f"--baseline {path}: {bad[0]} is {bad[1]}; a report holds finite numbers of magnitude "
                           f"up to 2^63 (strict JSON)")
    if not isinstance(report, dict) or not isinstance(report.get("totals"), dict) \
            or not isinstance(report.get("layers"), list) or any(k not in report for k in MATCHED) \
            or not _figures_ok(report["totals"]) \
            or not all(isinstance(r, dict) and isinstance(r.get("name"), str) and _figures_ok(r) for r in report["layers"]):
        raise EffplanError(f"--baseline {path}: not an `effplan layers --format json` report")
    return report


class _Constant(str):
    """NaN, Infinity or -Infinity in a JSON text: no JSON number (Python's json reads them unless told)."""


def _integer(text: str):
    """A JSON integer; one of more digits than any figure (Python's int() refuses 4,300) is none."""
    return int(text) if len(text) <= 24 else _Constant(f"a number of {len(text.lstrip('-'))} digits")


def _bad_number(value, limit: float = 2.0 ** 63) -> tuple[str, str] | None:
    """(key path, text) of the first value that is no finite number within `limit`, or None."""
    todo = [("", value)]
    while todo:
        where, v = todo.pop()
        if isinstance(v, dict):
            todo += [(f"{where}.{k}" if where else str(k), item) for k, item in reversed(list(v.items()))]
        elif isinstance(v, list):
            todo += [(f"{where}[{i}]", item) for i, item in reversed(list(enumerate(v)))]
        elif isinstance(v, _Constant) or (isinstance(v, (int, float)) and not isinstance(v, bool)
                                          and not abs(v) <= limit):  # NaN compares false; a huge int stays an int
            text = "a number beyond 1e308" if isinstance(v, float) and math.isinf(v) else str(v)
            return quote(where), text if len(text) <= 24 else f"a number of {len(text)} digits"
    return None


def _figures_ok(row: dict) -> bool:
    """The compared figures a report row holds are numbers (a JSON true or "5" is none)."""
    return all(isinstance(row[k], (int, float)) and not isinstance(row[k], bool) for k in COMPARED if k in row)


def model_names(report: dict) -> set[str]:
    """The names a report's model goes by: a built-in's name; an ONNX file's stem, whether the report
    gives the file (`layers FILE`: model 'net.onnx') or its stem and `source` (`analyze FILE`)."""
    names = {str(report["model"])}
    for path in (report["model"], report.get("source")):
        if isinstance(path, str) and path.endswith(".onnx"):
            names.add(Path(path).stem)
    return names


def baseline_budget(budgets: list[Budget], rows: list[dict], baseline: dict, path: str) -> Budget:
    """The budget whose design the baseline report is of: the same model, resolution, batch and dtype.
    None matching is bad input, naming the field that differs."""
    designs = {r["entry"]: r for r in rows}  # budget[i] -> its design
    same = [i for i in designs if model_names(designs[i]) & model_names(baseline)]
    if not same:
        checked = sorted({r["model"] for r in rows})
        raise EffplanError(f"--baseline {path}: a report of model {quote(baseline['model'])}, which no budget checks "
                           f"(they check {', '.join(checked)})")
    for i in same:
        if all(designs[i][k] == baseline[k] for k in MATCHED[1:]):
            return budgets[i]
    design = designs[same[0]]
    field_ = next(k for k in MATCHED[1:] if design[k] != baseline[k])
    raise EffplanError(f"--baseline {path}: {field_} {quote(baseline[field_])} differs from the {design[field_]!r} of "
                       f"{budgets[same[0]].where}; compare against a report of the same design")


def baseline_growth(budgets: list[Budget], rows: list[dict], path: str, tolerance: float) -> list[dict]:
    """Totals and layers grown more than `tolerance` against the baseline report (see compare_baseline)."""
    from ..plan.profile import profile
    from ..plan.profile import layers_report

    baseline = read_report(path)
    budget = baseline_budget(budgets, rows, baseline, path)
    graph, _, about = budget_graphs(budget)
    dtype = next(r["dtype"] for r in rows if r["entry"] == budgets.index(budget))
    return compare_baseline(baseline, layers_report(profile(graph, None, budget.batch, dtype), "layer", about),
                            tolerance)


def compare_baseline(baseline: dict, current: dict, tolerance: float) -> list[dict]:
    """Totals that grew more than `tolerance` (a share) against a baseline report; each finding names
    the figure and the layers that grew. `growth` is null where the baseline total is 0 (no ratio)."""
    old_layers = {r.get("name"): r for r in baseline["layers"] if isinstance(r, dict)}
    findings = []
    for key in COMPARED:
        old, new = baseline["totals"].get(key), current["totals"][key]
        if not isinstance(old, (int, float)) or new <= old * (1 + tolerance):
            continue
        grown = [r["name"] for r in current["layers"]
                 if r["name"] not in old_layers and r.get(key, 0) > 0
                 or r["name"] in old_layers and r.get(key, 0) > old_layers[r["name"]].get(key, 0)]
        findings.append({"figure": key, "baseline": old, "current": new, "growth": new / old - 1 if old else None,
                         "layers": grown})
    return findings
