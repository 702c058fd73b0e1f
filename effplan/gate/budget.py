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

from ..base.errors import EffplanError, did_you_mean, quote
from ..base.files import reads
from ..plan.memory import DEFAULT_OPTIMIZER, DEFAULT_PRECISION, OPTIMIZER_SLOTS, PRECISIONS
from ..base.units import DTYPES, bytes_as_written, human_bytes, parse_bytes, parse_count, parse_seconds


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
DESIGN_KEYS = {"model", "name", "phi", "resolution", "batch", "dtype", "device", "runtime", "optimizer", "precision",
               "train_batch", "width_mult", "depth_mult", "devices", *RUN_KEYS}
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
    dtype: str = "fp32"
    device: str | None = None
    runtime: str | None = None  # plan/runtime.py: a name or file; None: the device class's default
    optimizer: str = DEFAULT_OPTIMIZER
    precision: str = DEFAULT_PRECISION
    train_batch: int | None = None
    devices: int = 1  # data parallel, for the training-time limits
    epochs: int | None = None  # the run max_training_hours bounds
    dataset_size: int = IMAGENET
    progressive: tuple | None = None  # (min side, max side, stages), plan/training_run.parse_progressive
    folder: Path = field(default=Path("."), compare=False)
    where: str = "budget"  # the file and entry, for errors: budgets.toml: budget[2]
    written: dict = field(default_factory=dict, compare=False)  # limit key -> the text the file gave


def parse_limits(table: dict, label) -> dict:
    """{key: number} for the limit keys of a table; negative or non-numeric values are errors naming
    `label(key)` (a budget file's entry and key, or a command-line option)."""
    limits = {}
    for key, value in table.items():
        if key not in LIMITS:
            continue
        if isinstance(value, bool):
            raise EffplanError(f"{label(key)}: expected a number with a unit, got {value!r}")
        limits[key] = LIMITS[key].parse(value, label(key))
        if limits[key] <= 0:
            raise EffplanError(f"{label(key)}: {value!r}: a limit must be more than 0")
    return limits


def _number(table, key, where, kind, lo, hi):
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise EffplanError(f"{where}.{key}: expected {'an integer' if kind is int else 'a number'}, got {value!r}")
    if not lo <= value <= hi or (isinstance(value, float) and not math.isfinite(value)):
        raise EffplanError(f"{where}.{key}: {value!r} is out of range [{lo}, {hi}]")
    return kind(value)


def load_budgets(path: str) -> list[Budget]:
    """Every [[budget]] of a file, validated; errors name the file, the entry and the key
    (budgets.toml: budget[2].max_macs: ...)."""
    from ..design.spec import read_table_list

    entries = read_table_list(path, "budget", "budgets are [[budget]] tables")
    if not entries:
        raise EffplanError(f"{path}: no budgets: add at least one [[budget]] table with a model and limits")
    if len(entries) > MAX_BUDGETS:
        raise EffplanError(f"{path}: {len(entries)} budgets; at most {MAX_BUDGETS} in one file")
    budgets = []
    for i, entry in enumerate(entries):
        where = f"{path}: budget[{i}]"
        for key in entry:
            if key not in LIMITS and key not in DESIGN_KEYS:
                raise EffplanError(f"{where}: unknown key {quote(key)}{did_you_mean(key, [*LIMITS, *DESIGN_KEYS])}")
        if not isinstance(entry.get("model"), str) or not entry["model"].strip():
            raise EffplanError(f"{where}: missing key 'model' (a built-in name, a spec file or an .onnx file)")
        if entry["model"].endswith(".onnx"):
            shaped = [k for k in SHAPED_KEYS if k in entry]
            if shaped:
                raise EffplanError(f"{where}.{shaped[0]}: an ONNX model fixes its own design; {shaped[0]} applies "
                                   f"to built-in names and spec files (batch, dtype and device apply to both)")
        limits = parse_limits(entry, lambda key: f"{where}.{key}")
        if not limits:
            raise EffplanError(f"{where}: no limits; give at least one of {', '.join(LIMITS)}")
        for key in ("dtype", "device", "runtime", "optimizer", "precision", "name"):
            if key in entry and not isinstance(entry[key], str):
                raise EffplanError(f"{where}.{key}: expected a string, got {entry[key]!r}")
        for key, known in (("dtype", DTYPES), ("optimizer", OPTIMIZER_SLOTS), ("precision", PRECISIONS)):
            if key in entry and entry[key] not in known:
                raise EffplanError(f"{where}.{key}: unknown {key} {quote(entry[key])}{did_you_mean(entry[key], known)}; "
                                   f"known: {', '.join(known)}")
        needs_device = [k for k in limits if LIMITS[k].needs == "device"]
        if needs_device and not entry.get("device"):
            raise EffplanError(f"{where}.{needs_device[0]}: needs a device (device = \"t4\", say)")
        if "runtime" in entry and not entry.get("device"):
            raise EffplanError(f"{where}.runtime: needs a device (device = \"t4\", say)")
        _check_training_time(entry, limits, where)
        if "max_latency" in limits and "min_throughput" in limits:
            batch = entry.get("batch", 1)
            if isinstance(batch, int) and batch / limits["max_latency"] < limits["min_throughput"]:
                most = batch / limits["max_latency"]
                raise EffplanError(f"{where}: contradictory limits: within max_latency at batch {batch} the "
                                   f"throughput is at most {most:,.1f}/s, below min_throughput")
        budgets.append(Budget(
            name=entry.get("name") or entry["model"], model=entry["model"], limits=limits,
            written={k: entry[k] for k in limits},
            phi=_number(entry, "phi", where, float, 0, 16),
            resolution=_number(entry, "resolution", where, int, 8, 16384),
            width_mult=_number(entry, "width_mult", where, float, 0.01, 64),
            depth_mult=_number(entry, "depth_mult", where, float, 0.01, 64),
            batch=_number(entry, "batch", where, int, 1, MAX_BATCH) or 1, dtype=entry.get("dtype", "fp32"),
            device=entry.get("device"), runtime=entry.get("runtime"),
            optimizer=entry.get("optimizer", DEFAULT_OPTIMIZER),
            precision=entry.get("precision", DEFAULT_PRECISION),
            train_batch=_number(entry, "train_batch", where, int, 1, MAX_BATCH),
            devices=_number(entry, "devices", where, int, 1, 1 << 20) or 1,
            epochs=_number(entry, "epochs", where, int, 1, 1 << 20),
            dataset_size=_number(entry, "dataset_size", where, int, 1, 1 << 40) or IMAGENET,
            progressive=_progressive(entry, where),
            folder=Path(path).resolve().parent, where=where))
    for budget in budgets:  # every entry's model and device found before any is evaluated
        _named(budget, lambda: _resolve(budget))
    return budgets


def _check_training_time(entry: dict, limits: dict, where: str) -> None:
    """The run keys go with the training-time limits: epochs with max_training_hours (which needs it),
    devices with any of them; a training-time limit needs a runtime that trains."""
    timed = [k for k in limits if k in TRAINING_TIME]
    if "max_training_hours" in limits and "epochs" not in entry:
        raise EffplanError(f"{where}.max_training_hours: needs epochs (epochs = 350, say; dataset_size defaults to "
                           f"ImageNet's {IMAGENET:,} images)")
    for key in RUN_KEYS:
        if key in entry and "max_training_hours" not in limits:
            raise EffplanError(f"{where}.{key}: applies with max_training_hours")
    if "devices" in entry and not timed:
        raise EffplanError(f"{where}.devices: applies with the training-time limits "
                           f"({', '.join(sorted(TRAINING_TIME))})")
    if "max_training_step_time" in limits and "min_training_throughput" in limits:
        images = entry.get("train_batch", entry.get("batch", 1)) * entry.get("devices", 1)
        if isinstance(images, int) and images / limits["max_training_step_time"] < limits["min_training_throughput"]:
            raise EffplanError(f"{where}: contradictory limits: within max_training_step_time, {images} images a step "
                               f"train at most {images / limits['max_training_step_time']:,.1f}/s, below "
                               f"min_training_throughput")
    if timed and isinstance(entry.get("runtime"), str):
        from ..plan.runtime import training_runtime
        try:
            training_runtime(entry["runtime"])
        except EffplanError as exc:
            raise EffplanError(f"{where}.runtime: {exc}") from None


def _progressive(entry: dict, where: str):
    if "progressive" not in entry:
        return None
    from ..plan.training_run import parse_progressive
    if not isinstance(entry["progressive"], str):
        raise EffplanError(f"{where}.progressive: expected a string MIN:MAX:STAGES, e.g. \"128:300:4\"")
    try:
        return parse_progressive(entry["progressive"])
    except EffplanError as exc:
        raise EffplanError(f"{where}.{str(exc).removeprefix('--')}") from None


def _resolve(budget: Budget):
    """(the budget's design, or the path of its ONNX file; its device or None), checked without
    building a graph, so a bad late entry is reported before minutes of evaluating earlier ones."""
    from ..design.scaling import check_design, compound, resolve, with_overrides
    from ..plan.hardware import load_device

    device = load_device(budget.device) if budget.device else None
    if budget.devices > 1:
        from ..plan.training import device_link
        if device_link(device) is None:
            raise EffplanError(f"devices = {budget.devices}: device {device.name} has no [interconnect] figure in its "
                               f"file for the gradient all-reduce")
    if budget.runtime is not None:
        from ..plan.runtime import load_runtime
        load_runtime(_runtime_path(budget))
    model = budget.model
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
    graph = build(design, budget.batch)
    train = build(design, budget.train_batch) if budget.train_batch else None
    return graph, train, {"model": design.name, "phi": design.phi, "resolution": design.resolution}


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
    from ..plan.hardware import load_device
    from ..plan.runtime import runtime_for

    rows = []
    for i, budget in enumerate(budgets):
        graph, train, about = _named(budget, lambda: budget_graphs(budget))
        wanted = {LIMITS[k].figure for k in budget.limits}
        device = _named(budget, lambda: load_device(budget.device)) if budget.device else None
        values = figures(graph, budget.batch, budget.dtype, device, budget.precision, budget.optimizer, train, wanted,
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
                         "dtype": budget.dtype, "device": budget.device,
                         "runtime": runtime_for(device, _runtime_path(budget)).name if device else None,
                         "limit_key": key, "figure": spec.figure,
                         "value": value, "limit": limit, "margin": margin, "passed": margin >= 0,
                         **dict(zip(("value_text", "limit_text"),
                                    (spec.parse is parse_bytes and bytes_as_written(value, budget.written.get(key)))
                                    or (spec.show(value), spec.show(limit)))),
                         "unknown_ops": values["unknown_ops"]})
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


def baseline_budget(budgets: list[Budget], rows: list[dict], baseline: dict, path: str) -> Budget:
    """The budget whose design the baseline report is of: the same model, resolution, batch and dtype.
    None matching is bad input, naming the field that differs."""
    designs = {r["entry"]: r for r in rows}  # budget[i] -> its design
    same = [i for i in designs if designs[i]["model"] == baseline["model"]]
    if not same:
        checked = sorted({r["model"] for r in rows})
        raise EffplanError(f"--baseline {path}: a report of model {quote(baseline['model'])}, which no budget checks "
                           f"(they check {', '.join(checked)})")
    for i in same:
        if all(designs[i][k] == baseline[k] for k in MATCHED):
            return budgets[i]
    design = designs[same[0]]
    field_ = next(k for k in MATCHED if design[k] != baseline[k])
    raise EffplanError(f"--baseline {path}: {field_} {quote(baseline[field_])} differs from the {design[field_]!r} of "
                       f"{budgets[same[0]].where}; compare against a report of the same design")


def baseline_growth(budgets: list[Budget], rows: list[dict], path: str, tolerance: float) -> list[dict]:
    """Totals and layers grown more than `tolerance` against the baseline report (see compare_baseline)."""
    from ..plan.profile import profile
    from ..plan.profile import layers_report

    baseline = read_report(path)
    budget = baseline_budget(budgets, rows, baseline, path)
    graph, _, about = budget_graphs(budget)
    return compare_baseline(baseline, layers_report(profile(graph, None, budget.batch, budget.dtype), "layer", about),
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
