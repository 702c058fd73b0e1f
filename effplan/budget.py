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

from .errors import EffplanError, did_you_mean
from .units import human_bytes, parse_bytes, parse_count, parse_seconds


@dataclass(frozen=True)
class Limit:
    figure: str  # the key of `figures()` it bounds
    parse: object  # text -> number
    upper: bool  # max_ (True) or min_ (False)
    show: object  # number -> text
    needs: str = ""  # what the figure needs: "device" or "training"


def _count(v):
    return f"{v / 1e9:.3f}G" if v >= 1e9 else f"{v / 1e6:.3f}M" if v >= 1e6 else f"{v:,.0f}"


LIMITS = {
    "max_macs": Limit("macs", lambda v: parse_count(v, "max_macs"), True, _count),
    "max_flops": Limit("flops", lambda v: parse_count(v, "max_flops"), True, _count),
    "max_params": Limit("params", lambda v: parse_count(v, "max_params"), True, _count),
    "max_weight_bytes": Limit("weight_bytes", lambda v: parse_bytes(v, "max_weight_bytes"), True, human_bytes),
    "max_inference_memory": Limit("inference_bytes", lambda v: parse_bytes(v, "max_inference_memory"), True,
                                  human_bytes),
    "max_training_memory": Limit("training_bytes", lambda v: parse_bytes(v, "max_training_memory"), True,
                                 human_bytes, "training"),
    "max_latency": Limit("latency_s", lambda v: parse_seconds(v, "max_latency"), True,
                         lambda v: f"{v * 1e3:.3f} ms", "device"),
    "min_throughput": Limit("images_per_s", lambda v: parse_count(v, "min_throughput"), False,
                            lambda v: f"{v:,.1f}/s", "device"),
}
DESIGN_KEYS = {"model", "name", "phi", "resolution", "batch", "dtype", "device", "optimizer", "precision",
               "train_batch", "width_mult", "depth_mult"}


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
    optimizer: str = "adamw"
    precision: str = "mixed"
    train_batch: int | None = None
    folder: Path = field(default=Path("."), compare=False)


def parse_limits(table: dict, where: str) -> dict:
    """{key: number} for the limit keys of a table; negative or non-numeric values are errors."""
    limits = {}
    for key, value in table.items():
        if key not in LIMITS:
            continue
        if isinstance(value, bool):
            raise EffplanError(f"{where}: {key}: expected a number with a unit, got {value!r}")
        limits[key] = LIMITS[key].parse(value)
        if limits[key] <= 0:
            raise EffplanError(f"{where}: {key} = {value!r}: a limit must be more than 0")
    return limits


def _number(table, key, where, kind, lo, hi):
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise EffplanError(f"{where}: {key}: expected {'an integer' if kind is int else 'a number'}, got {value!r}")
    if not lo <= value <= hi or (isinstance(value, float) and not math.isfinite(value)):
        raise EffplanError(f"{where}: {key} = {value!r} is out of range [{lo}, {hi}]")
    return kind(value)


def load_budgets(path: str) -> list[Budget]:
    """Every [[budget]] of a file, validated; errors name the file, the entry and the key."""
    from .spec import read_toml

    table = read_toml(Path(path))
    for key in table:
        if key != "budget":
            raise EffplanError(f"{path}: unknown key '{key}'{did_you_mean(key, ['budget'])}; "
                               f"budgets are [[budget]] tables")
    entries = table.get("budget")
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise EffplanError(f"{path}: no budgets: add at least one [[budget]] table with a model and limits")
    budgets = []
    for i, entry in enumerate(entries):
        where = f"{path}: budget[{i}]"
        for key in entry:
            if key not in LIMITS and key not in DESIGN_KEYS:
                raise EffplanError(f"{where}: unknown key '{key}'{did_you_mean(key, [*LIMITS, *DESIGN_KEYS])}")
        if not isinstance(entry.get("model"), str) or not entry["model"].strip():
            raise EffplanError(f"{where}: missing key 'model' (a built-in name, a spec file or an .onnx file)")
        limits = parse_limits(entry, where)
        if not limits:
            raise EffplanError(f"{where}: no limits; give at least one of {', '.join(LIMITS)}")
        for key in ("dtype", "device", "optimizer", "precision", "name"):
            if key in entry and not isinstance(entry[key], str):
                raise EffplanError(f"{where}: {key}: expected a string, got {entry[key]!r}")
        needs_device = [k for k in limits if LIMITS[k].needs == "device"]
        if needs_device and not entry.get("device"):
            raise EffplanError(f"{where}: {needs_device[0]} needs a device (device = \"t4\", say)")
        if "max_latency" in limits and "min_throughput" in limits:
            batch = entry.get("batch", 1)
            if isinstance(batch, int) and batch / limits["max_latency"] < limits["min_throughput"]:
                raise EffplanError(f"{where}: contradictory limits: within max_latency at batch {batch} the "
                                   f"throughput is at most {batch / limits['max_latency']:,.1f}/s, below min_throughput")
        budgets.append(Budget(
            name=entry.get("name") or entry["model"], model=entry["model"], limits=limits,
            phi=_number(entry, "phi", where, float, 0, 16), resolution=_number(entry, "resolution", where, int, 8, 16384),
            width_mult=_number(entry, "width_mult", where, float, 0.01, 64),
            depth_mult=_number(entry, "depth_mult", where, float, 0.01, 64),
            batch=_number(entry, "batch", where, int, 1, 1 << 20) or 1, dtype=entry.get("dtype", "fp32"),
            device=entry.get("device"), optimizer=entry.get("optimizer", "adamw"),
            precision=entry.get("precision", "mixed"),
            train_batch=_number(entry, "train_batch", where, int, 1, 1 << 20),
            folder=Path(path).resolve().parent))
    return budgets


def figures(graph, batch: int, dtype: str, device=None, precision="mixed", optimizer="adamw",
            train_graph=None, wanted=()) -> dict:
    """Every figure a budget can bound, of one graph (the training ones only when wanted)."""
    from .analysis import profile
    from .memory import training_memory

    p = profile(graph, None, batch, dtype)
    t = p.totals
    out = {"macs": t.macs, "flops": t.flops, "params": t.params, "weight_bytes": t.weight_bytes,
           "inference_bytes": t.weight_bytes + t.peak_activation_bytes, "unknown_ops": p.unknown_ops}
    if "training_bytes" in wanted:
        out["training_bytes"] = training_memory(train_graph or graph, precision, optimizer).total_bytes
    if device is not None and {"latency_s", "images_per_s"} & set(wanted):
        from .roofline import roofline
        result = roofline(graph, device, dtype, batch)
        out.update(latency_s=result.latency_s, images_per_s=result.images_per_s)
    return out


def budget_graphs(budget: Budget):
    """(graph at the budget's batch, graph at its training batch or None, a description)."""
    from .blocks import build
    from .scaling import compound, resolve, with_overrides

    model = budget.model
    if model.endswith(".onnx"):
        from .onnx_io import analyze_file
        path = model if Path(model).is_absolute() else str(budget.folder / model)
        graph, _, _ = analyze_file(path, budget.batch)
        train = analyze_file(path, budget.train_batch)[0] if budget.train_batch else None
        return graph, train, {"model": Path(model).stem, "source": path}
    if model.endswith(".toml") and not Path(model).is_absolute():
        model = str(budget.folder / model)
    design = resolve(model)
    if budget.phi is not None:
        design = compound(design, budget.phi)
    design = with_overrides(design, resolution=budget.resolution, width_mult=budget.width_mult,
                            depth_mult=budget.depth_mult)
    graph = build(design, budget.batch)
    train = build(design, budget.train_batch) if budget.train_batch else None
    return graph, train, {"model": design.name, "phi": design.phi, "resolution": design.resolution}


def check(budgets: list[Budget]) -> list[dict]:
    """One row per limit: value, limit, margin (share of the limit left; negative when over), pass."""
    from .hardware import load_device

    rows = []
    for budget in budgets:
        graph, train, about = budget_graphs(budget)
        wanted = {LIMITS[k].figure for k in budget.limits}
        device = load_device(budget.device) if budget.device else None
        values = figures(graph, budget.batch, budget.dtype, device, budget.precision, budget.optimizer, train, wanted)
        for key, limit in budget.limits.items():
            spec = LIMITS[key]
            value = values[spec.figure]
            margin = (limit - value) / limit if spec.upper else (value - limit) / limit
            rows.append({"budget": budget.name, **about, "batch": budget.batch, "dtype": budget.dtype,
                         "device": budget.device, "limit_key": key, "figure": spec.figure, "value": value,
                         "limit": limit, "margin": margin, "passed": margin >= 0,
                         "value_text": spec.show(value), "limit_text": spec.show(limit),
                         "unknown_ops": values["unknown_ops"]})
    return rows


COMPARED = ("params", "macs", "flops", "weight_bytes", "peak_activation_bytes")


def compare_baseline(baseline_path: str, current: dict, tolerance: float) -> list[dict]:
    """Totals and layers that grew more than `tolerance` (a share) against a saved `effplan layers
    --format json` report; each finding names the figure and the layers that grew."""
    import json

    try:
        baseline = json.loads(Path(baseline_path).read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise EffplanError(f"--baseline {baseline_path}: cannot read: {getattr(exc, 'strerror', exc)}") from None
    except ValueError:
        raise EffplanError(f"--baseline {baseline_path}: not JSON; save one with effplan layers --format json") from None
    if not isinstance(baseline, dict) or not isinstance(baseline.get("totals"), dict) \
            or not isinstance(baseline.get("layers"), list):
        raise EffplanError(f"--baseline {baseline_path}: not an `effplan layers --format json` report")
    old_layers = {r.get("name"): r for r in baseline["layers"] if isinstance(r, dict)}
    findings = []
    for key in COMPARED:
        old, new = baseline["totals"].get(key), current["totals"][key]
        if not isinstance(old, (int, float)) or new <= old * (1 + tolerance):
            continue
        grown = [r["name"] for r in current["layers"]
                 if r["name"] not in old_layers and r.get(key, 0) > 0
                 or r["name"] in old_layers and r.get(key, 0) > old_layers[r["name"]].get(key, 0)]
        findings.append({"figure": key, "baseline": old, "current": new, "growth": new / old - 1 if old else math.inf,
                         "layers": grown})
    return findings
