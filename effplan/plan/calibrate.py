"""Efficiencies fitted in the open: `effplan calibrate --from FILE` fits a few named efficiency figures of a device
(its [efficiency]: matrix, vector, bandwidth, and kernel classes such as depthwise_wgrad) to measured throughput by
least squares on log(estimate / measured), reports the k-fold cross-validated error, and writes a device file
whose [efficiency] records what it was fitted on.

Measurements (one row each) come from timm's benchmark.py CSV (model, infer_samples_per_sec / train_samples_per_sec,
infer_batch_size / train_batch_size, infer_img_size / train_img_size) or a plain CSV with a header:
  model        an effplan model name or a spec/ONNX file           (required)
  batch        per-device batch                                      (required)
  images_per_s images/s over all devices; or ms: milliseconds a step (one of the two)
  resolution   input side in px (default: the model's)
  precision    fp32, tf32, fp16, bf16, amp (= fp16 autocast) or mixed (default amp)
  mode         inference or training (default inference)
  gpus         data-parallel devices (default 1)
  runtime      an effplan runtime (default: the device class's for the mode)
  optimizer    training: sgd, momentum, adam or adamw (default adamw)
Other columns (source, note...) are kept as documentation.

How a figure moves an estimate: each kernel's compute time scales with 1 / (its unit's efficiency x its class's
factor), its memory time with 1 / (bandwidth efficiency x its class's factor); the kernels are computed once at the
device's present figures and rescaled (a kernel's compute is taken as all on its main unit, exact for eager's one op
a kernel). `host` (HOST) scales the host's time instead, its launches and its fixed time per step alike: the
device's [host] speed is refitted (how fast the measured host runs the runtime's per-op work relative to
runtime.REFERENCE_HOST). The all-reduce's exposed time does not move.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..base.errors import EffplanError, did_you_mean, quote
from .hardware import EFFICIENCY_KEYS, Device

TIMM = {"inference": ("infer_samples_per_sec", "infer_batch_size", "infer_img_size"),
        "training": ("train_samples_per_sec", "train_batch_size", "train_img_size")}
PRECISION = {"amp": ("fp16", "mixed"), "mixed": ("fp16", "mixed"), "fp16": ("fp16", "fp16"),
             "bf16": ("bf16", "bf16"), "fp32": ("fp32", "fp32"), "tf32": ("tf32", "tf32")}  # inference dtype, training
MAX_PARAMETERS = 6
FOLDS = 5
HOST = "host"  # the fit name of the host's speed (not an efficiency): its time is divided by it
HOST_BOUNDS = (0.05, 20.0)  # the host's speed relative to the present figure


class CalibrationError(EffplanError):
    pass


@dataclass(frozen=True)
class Measurement:
    row: int  # line in the file
    model: str
    batch: int
    images_per_s: float
    resolution: int | None = None
    precision: str = "amp"
    mode: str = "inference"
    gpus: int = 1
    runtime: str | None = None
    optimizer: str | None = None


def _number(text, kind, where: str, name: str):
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise CalibrationError(f"{where}: {name} {quote(text)} is not a number") from None
    if not value > 0 or (isinstance(value, float) and not math.isfinite(value)):
        raise CalibrationError(f"{where}: {name} must be positive, got {quote(text)}")
    return value


def read_measurements(path: str) -> list[Measurement]:
    """The rows of a timm benchmark.py CSV or a plain CSV (module docstring); a bad row is a one-line error naming it."""
    try:
        with open(path, newline="") as fh:
            lines = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CalibrationError(f"cannot read {path}: {exc}") from None
    if not lines:
        raise CalibrationError(f"{path}: no measurements (expected a CSV with a header row)")
    header = set(lines[0])
    mode = next((m for m, cols in TIMM.items() if cols[0] in header), None)
    out = []
    for i, row in enumerate(lines, start=2):
        where = f"{path} row {i}"
        if None in row or None in row.values():
            raise CalibrationError(f"{where}: {'too many' if None in row else 'too few'} fields for the header")
        if mode is not None:  # timm: model names with '_' where effplan's have '-'
            rate, batch, side = TIMM[mode]
            out.append(Measurement(i, row["model"].replace("_", "-"), _number(row.get(batch), int, where, batch),
                                   _number(row.get(rate), float, where, rate),
                                   _number(row[side], int, where, side) if row.get(side) else None, "amp", mode))
            continue
        if "model" not in header or "batch" not in header or not {"images_per_s", "ms"} & header:
            raise CalibrationError(f"{path}: expected timm's benchmark.py columns or model, batch and images_per_s "
                                   f"(or ms); got {', '.join(sorted(header))}")
        batch = _number(row["batch"], int, where, "batch")
        gpus = _number(row.get("gpus") or 1, int, where, "gpus")
        if row.get("images_per_s"):
            rate = _number(row["images_per_s"], float, where, "images_per_s")
        else:
            rate = batch * gpus / (_number(row.get("ms"), float, where, "ms") / 1e3)
        precision = (row.get("precision") or "amp").lower()
        if precision not in PRECISION:
            raise CalibrationError(f"{where}: precision {quote(precision)}{did_you_mean(precision, PRECISION)}; "
                                   f"known: {', '.join(PRECISION)}")
        kind = (row.get("mode") or "inference").lower()
        if kind not in TIMM:
            raise CalibrationError(f"{where}: mode {quote(kind)}: expected inference or training")
        side = _number(row["resolution"], int, where, "resolution") if row.get("resolution") else None
        out.append(Measurement(i, row["model"], batch, rate, side, precision, kind, gpus, row.get("runtime") or None,
                               row.get("optimizer") or None))
    return out


@dataclass(frozen=True)
class Case:
    """A measurement with its kernels at the device's present figures, as arrays."""
    measurement: Measurement
    compute: np.ndarray
    memory: np.ndarray
    host: np.ndarray
    unit: np.ndarray  # object array of unit names
    kind: np.ndarray  # object array of kernel classes
    fixed: float
    serial: bool
    runtime: str = ""  # the runtime it was costed under
    communication_s: float = 0.0  # the all-reduce's exposed part at the present figures (held fixed)


def case_of(m: Measurement, device: Device, resolve) -> Case:
    """Cost one measurement (resolve: a model name -> a design, as effplan.resolve)."""
    from ..design.blocks import build
    from ..design.scaling import with_overrides
    from .roofline import roofline
    from .training import training_step

    try:
        design = resolve(m.model)
        if m.resolution:
            design = with_overrides(design, resolution=m.resolution)
    except EffplanError as exc:
        raise CalibrationError(f"row {m.row}: {exc}") from None
    graph = build(design, m.batch)
    dtype, precision = PRECISION[m.precision]
    if m.mode == "inference":
        result = roofline(graph, device, dtype, m.batch, runtime=m.runtime)
        kernels, comm, ran = result.kernels, None, result.runtime.name
    else:
        extra = {"optimizer": m.optimizer} if m.optimizer else {}
        try:
            step = training_step(graph, device, runtime=m.runtime, precision=precision, devices=m.gpus, **extra)
        except EffplanError as exc:
            raise CalibrationError(f"row {m.row}: {exc}") from None
        kernels = [*step.forward, *step.recompute, *step.backward, *step.update]
        comm = step.communication_s
        ran = step.runtime.name
    arrays = {name: np.array([getattr(k, name) for k in kernels], dtype=float)
              for name in ("compute_s", "memory_s", "overhead_s")}
    case = Case(m, arrays["compute_s"], arrays["memory_s"], arrays["overhead_s"],
                np.array([k.unit for k in kernels], dtype=object), np.array([k.kind for k in kernels], dtype=object),
                float(kernels[0].fixed_s),
                kernels[0].overlap != "async", ran)
    return replace(case, communication_s=comm) if comm else case


def predict(case: Case, scale: dict) -> float:
    """Images/s of a case with each named figure multiplied by scale[name] (1 where absent)."""
    def factor(names):
        return np.array([scale.get(n, 1.0) for n in names]) if len(scale) else 1.0
    cls = factor(case.kind)
    device = np.maximum(case.compute / (factor(case.unit) * cls), case.memory / (scale.get("bandwidth", 1.0) * cls))
    speed = scale.get(HOST, 1.0)
    host = case.host / speed
    if case.serial:
        total = float(np.sum(device + host))
    else:  # one stream, the host ahead: the end is the latest launch plus all device work after it
        launched = np.cumsum(host)
        after = np.cumsum(device[::-1])[::-1]
        total = float(np.max(launched + after))
    total += case.fixed / speed + case.communication_s
    m = case.measurement
    return m.batch * m.gpus / total


def residuals(cases, names, theta) -> np.ndarray:
    scale = dict(zip(names, np.exp(theta)))
    return np.array([math.log(predict(c, scale) / c.measurement.images_per_s) for c in cases])


def least_squares(cases, names, start, bounds, iterations: int = 40) -> np.ndarray:
    """Levenberg-Marquardt on log multipliers, each kept within its bounds (log scale)."""
    theta, damping = np.array(start, dtype=float), 1e-3
    low, high = np.array([b[0] for b in bounds]), np.array([b[1] for b in bounds])
    r = residuals(cases, names, theta)
    for _ in range(iterations):
        jac = np.empty((len(r), len(theta)))
        for j in range(len(theta)):
            step = np.zeros_like(theta)
            step[j] = 1e-4
            jac[:, j] = (residuals(cases, names, theta + step) - r) / 1e-4
        while True:
            a = jac.T @ jac
            move = np.linalg.solve(a + damping * np.diag(np.diag(a) + 1e-12), -jac.T @ r)
            trial = np.clip(theta + move, low, high)
            r_trial = residuals(cases, names, trial)
            if r_trial @ r_trial < r @ r:
                theta, r, damping = trial, r_trial, max(damping / 3, 1e-9)
                break
            damping *= 4
            if damping > 1e8:
                return theta
        if np.max(np.abs(move)) < 1e-6:
            break
    return theta


@dataclass(frozen=True)
class Fit:
    values: dict  # name -> fitted efficiency
    runtimes: tuple  # the runtimes the measurements ran under (kernel-class factors describe their kernels)
    rows: int
    train_error: tuple[float, float]  # median and worst |estimate/measured| as a ratio >= 1, on the rows fitted
    cv_error: tuple[float, float]  # the same, each row predicted by a fit without its fold
    folds: int


def _ratios(r: np.ndarray) -> tuple[float, float]:
    a = np.abs(r)
    return float(math.exp(np.median(a))), float(math.exp(np.max(a)))


def check_names(names: list[str]) -> None:
    """The figures a fit may name: 1 to MAX_PARAMETERS different EFFICIENCY_KEYS or HOST."""
    known = [*EFFICIENCY_KEYS, HOST]
    for name in names:
        if name not in known:
            raise CalibrationError(f"unknown efficiency {quote(name)}{did_you_mean(name, known)}; "
                                   f"known: {', '.join(known)}")
    if not names or len(names) > MAX_PARAMETERS or len(set(names)) != len(names):
        raise CalibrationError(f"--fit: name 1 to {MAX_PARAMETERS} different efficiencies, got {len(names)}")


def fit(cases: list[Case], device: Device, names: list[str], folds: int = FOLDS) -> Fit:
    """Fit `names` (EFFICIENCY_KEYS) to the cases; k-fold cross-validated error with folds of every k-th row."""
    check_names(names)
    need = 2 * len(names) + 2
    if len(cases) < need:
        raise CalibrationError(f"{len(cases)} measurements cannot fit {len(names)} efficiencies with cross-validation; "
                               f"give at least {need} (2 a figure, and 2 more)")
    present = [1.0 if n == HOST else device.efficiency.get(n, 1.0) for n in names]
    bounds = [tuple(math.log(b) for b in HOST_BOUNDS) if n == HOST else
              (math.log(1e-3 / p), math.log(EFFICIENCY_KEYS[n][1] / p)) for n, p in zip(names, present)]
    theta = least_squares(cases, names, np.zeros(len(names)), bounds)
    k = min(folds, len(cases))
    held = np.empty(len(cases))
    for fold in range(k):
        train = [c for i, c in enumerate(cases) if i % k != fold]
        test = [i for i in range(len(cases)) if i % k == fold]
        t = least_squares(train, names, theta, bounds)
        held[test] = residuals([cases[i] for i in test], names, t)
    values = {n: float(p * math.exp(t)) for n, p, t in zip(names, present, theta)}
    runtimes = tuple(sorted({c.runtime for c in cases}))
    return Fit(values, runtimes, len(cases), _ratios(residuals(cases, names, theta)), _ratios(held), k)


def device_text(device: Device, result: Fit, source: str, name: str) -> str:
    """The device's file with `name`, its [efficiency] refitted (what was fitted on and the cross-validated error
    recorded in it) and its efficiency source saying so; a fitted host speed (relative to the present one) becomes
    its [host] speed; every other line as it was."""
    import re

    text = Path(device.path).read_text()
    speed = result.values.get(HOST)
    figures = {**device.efficiency, **{k: v for k, v in result.values.items() if k != HOST}}
    on = (f"{source}: {result.rows} measurements, least squares on log(estimate / measured) of "
          f"{', '.join(result.values)}; the rest as in {Path(device.path).name}")
    cv = (f"{result.folds}-fold cross-validated estimate/measured: median {result.cv_error[0]:.3f}x, worst "
          f"{result.cv_error[1]:.3f}x (on the rows fitted: {result.train_error[0]:.3f}x, {result.train_error[1]:.3f}x)")
    classes = any(k not in ("matrix", "vector", "bandwidth") for k in figures)
    runtimes = "runtimes = [" + ", ".join(_string(r) for r in result.runtimes) + "]\n" if classes else ""
    table = "[efficiency]\n" + "".join(f"{k} = {v:.4g}\n" for k, v in figures.items()) + runtimes + \
        f"fitted_on = {_string(on)}\ncv_error = {_string(cv)}\n\n"
    text, found = re.subn(r"(?ms)^\[efficiency\]\n.*?(?=^\[)", lambda _: table, text, count=1)
    if not found:
        raise CalibrationError(f"{device.path}: no [efficiency] table to refit")
    text = re.sub(r'(?m)^name = ".*"$', lambda _: f"name = {_string(name)}", text, count=1)
    if speed is not None:
        text = _host_text(text, device, speed, f"effplan calibrate --from: {on}; {cv}")
    return re.sub(r"(?m)^efficiency = .*$", lambda _: f"efficiency = {_string('effplan calibrate --from: ' + on + '; ' + cv)}",
                  text, count=1)


def _string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _host_text(text: str, device: Device, speed: float, why: str) -> str:
    """`text` with its [host] table (and sources.host) saying the fitted speed."""
    import re

    cpu = device.host.get("cpu", "the measured host")
    table = f"[host]\ncpu = {_string(cpu)}\nspeed = {device.host.get('speed', 1.0) * speed:.4g}\n\n"
    text, found = re.subn(r"(?ms)^\[host\][^\n]*\n.*?(?=^\[)", lambda _: table, text, count=1)
    if not found:
        text = re.sub(r"(?m)^\[sources\]", lambda _: table + "[sources]", text, count=1)
    line = f"host = {_string('fitted: ' + why)}"
    text, found = re.subn(r"(?m)^host = .*$", lambda _: line, text, count=1)
    return text if found else re.sub(r"(?m)^\[sources\].*$", lambda m: m.group(0) + "\n" + line, text, count=1)
