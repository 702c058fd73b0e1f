"""Search: the largest design that fits, by φ and over a (depth, width, resolution) grid: the user's
grids, the accuracy model, constraints, the exact checks, the Pareto front, the largest φ and the
coefficient grid. Evaluating a whole grid at once is gate/grid.py.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from ..base.errors import EffplanError, did_you_mean, quote
from ..base.units import RangeError, cost_dtype, parse_range
from .grid import design_at, evaluate, evaluate_grid

MAX_GRID = 1_000_000  # designs in one search: a few arrays of this size stay well within memory


# ---- user input: grids, accuracy points, the objective ----

def grid(text: str, what: str, integer: bool = False) -> np.ndarray:
    """'1..3:0.25' (both ends included), '1,1.5,2' or '1.2'; `what` names the option in errors."""
    try:
        values = np.array(parse_range(text, default_step=8.0 if integer else 0.1, limit=100_000))
    except RangeError as exc:
        if exc.reason != "count":
            raise EffplanError(f"{what} {quote(text)}: expected a range lo..hi[:step] or a list a,b,c") from None
        raise EffplanError(f"{what} {quote(text)} gives {exc.count:.0f} values; at most 100000") from None
    except ValueError:
        raise EffplanError(f"{what} {quote(text)}: expected a range lo..hi[:step] or a list a,b,c") from None
    if not np.all(np.isfinite(values)) or values.min() <= 0:
        raise EffplanError(f"{what} {quote(text)}: values must be positive")
    fractions = values[values != np.round(values)] if integer else []
    if len(fractions):
        raise EffplanError(f"{what} {quote(text)}: resolutions are whole pixels, got {fractions[0]:g}")
    return values.astype(np.int64) if integer else values


def check_grid(design, depths, widths, resolutions) -> None:
    """Refuse a grid with values no design can have (exit 2), before evaluating any of it."""
    from ..design.scaling import MAX_MULTIPLIER, MAX_RESOLUTION, check_design

    for what, values, lo, hi in (("--depth", depths, 0, MAX_MULTIPLIER), ("--width", widths, 0, MAX_MULTIPLIER),
                                 ("--resolution", resolutions, 1, MAX_RESOLUTION)):
        outside = [v for v in values if not lo <= v <= hi or v == 0]
        if outside:
            raise EffplanError(f"{what}: {outside[0]:g} is outside {'(0' if lo == 0 else f'[{lo}'}, {hi:g}]")
    count = len(depths) * len(widths) * len(resolutions)
    if count > MAX_GRID:
        raise EffplanError(f"the grid has {count:,} designs (depths x widths x resolutions); at most {MAX_GRID:,}: "
                           f"use coarser steps")
    try:
        check_design(design_at(design, max(depths), max(widths), max(resolutions)))
    except EffplanError as exc:
        raise EffplanError(f"--depth {max(depths):g}: {exc}") from None


def searchable(model: str):
    """The base design a search scales: a spec name or file. A published name (efficientnet-b4) is
    refused: its hand-picked d, w, r are one grid point of its base spec, not a base of their own."""
    from ..onnx.model import is_file_model
    from ..design.scaling import base_design, resolve

    if is_file_model(model):
        raise EffplanError(f"{model} is an ONNX file: search scales a spec's depth, width and resolution, which a "
                           f"file fixes; search the spec it came from, or check the file against a budget")
    found = resolve(model)
    if found.coefficients == "published" and found.name != found.spec.name:
        raise EffplanError(f"'{found.name}' is a published design ({found.spec.name} at depth {found.depth_mult:g}, "
                           f"width {found.width_mult:g}, {found.resolution} px); search its base spec: effplan search "
                           f"{found.spec.name} (with --depth, --width, --resolution around those values)")
    return base_design(found.spec)


POINT_KEYS = ("macs", "top1")


def accuracy_model(path: str):
    """A user's accuracy estimate: [[point]] tables of macs and top1 (percent), interpolated in log
    MACs, held at the end values beyond them."""
    from ..design.spec import read_table_list
    from ..base.units import parse_count

    points = read_table_list(path, "point", "points are [[point]] tables")
    if len(points) < 2:
        raise EffplanError(f"{path}: expected at least two [[point]] tables with macs and top1")
    pairs = []
    for i, point in enumerate(points):
        where = f"{path}: point[{i}]"
        for key in point:
            if key not in POINT_KEYS:
                raise EffplanError(f"{where}: unknown key {quote(key)}{did_you_mean(key, POINT_KEYS)}")
        missing = [k for k in POINT_KEYS if k not in point]
        if missing:
            raise EffplanError(f"{where}: missing key '{missing[0]}' (macs such as '0.39G', top1 a percentage)")
        macs, top1 = parse_count(point["macs"], f"{where}.macs"), point["top1"]
        if macs <= 0:
            raise EffplanError(f"{where}.macs: must be more than 0")
        if isinstance(top1, bool) or not isinstance(top1, (int, float)) or not 0 <= top1 <= 100:
            raise EffplanError(f"{where}.top1: expected a percentage in [0, 100], got {quote(top1)}")
        pairs.append((math.log(macs), float(top1)))
    pairs.sort()
    if any(a[0] == b[0] for a, b in zip(pairs, pairs[1:])):
        raise EffplanError(f"{path}: two points with the same macs")
    xs, ys = np.array([x for x, _ in pairs]), np.array([y for _, y in pairs])
    return lambda macs: np.interp(np.log(np.maximum(macs, 1)), xs, ys)


TRAIN_OBJECTIVE = "train-throughput"
TIMED = 100  # designs the train-throughput objective times by default: a step costs ~0.03-0.1 s each


def objective(kind: str, limits: dict, accuracy_file: str | None = None, w: float = -0.07):
    """The score designs are ranked by (higher is better), a function of a MACs array: the MACs
    themselves, or MnasNet's ACC x (MACs / T)^w with T = max_macs and ACC from the user's points.
    None for train-throughput: training images/s is no function of MACs, so grid_search times designs."""
    if kind in ("macs", TRAIN_OBJECTIVE):
        if accuracy_file:
            raise EffplanError("--accuracy applies with --objective mnas")
        return (lambda macs: np.asarray(macs, dtype=float)) if kind == "macs" else None
    if not accuracy_file or "max_macs" not in limits:
        raise EffplanError("--objective mnas needs --accuracy FILE and --max-macs (the target T)")
    if not (math.isfinite(w) and -1 <= w <= 1):
        raise EffplanError(f"--mnas-w must be a number in [-1, 1] (MnasNet uses -0.07), got {w:g}")
    accuracy, target = accuracy_model(accuracy_file), limits["max_macs"]
    return lambda macs: accuracy(macs) * (np.asarray(macs, dtype=float) / target) ** w


# ---- constraints, exact checks and the searches ----

class NoFit(EffplanError):
    """No design meets the constraints (exit 1: a result, not bad input)."""

    exit_code = 1


@dataclass(frozen=True)
class Constraints:
    limits: dict  # budget keys (max_macs, ...) -> numbers
    batch: int = 1
    dtype: str = "fp32"
    device: object = None  # hardware.Device
    precision: str = "mixed"
    optimizer: str = "adamw"
    time_steps: bool = False  # every exact check times a training step (the train-throughput objective)

    def satisfied(self, figures: dict, screen: bool = False):
        """Whether figures (numbers, or arrays of many designs) meet every limit; `screen`: only the limits
        whose figure the grid has (training time is checked exactly, design by design)."""
        from .budget import LIMITS
        ok = True
        for key, limit in self.limits.items():
            if screen and LIMITS[key].figure not in figures:
                continue
            value = figures[LIMITS[key].figure]
            ok = ok & (value <= limit if LIMITS[key].upper else value >= limit)
        return ok

    def wanted(self) -> set:
        from .budget import LIMITS
        return {LIMITS[k].figure for k in self.limits} | ({"latency_s", "images_per_s"} if self.device else set())


def exact(design, constraints: Constraints) -> dict:
    """Every constrained figure of one design, through the graph path."""
    from ..design.blocks import build
    from .budget import figures

    graph = build(design, constraints.batch)
    out = figures(graph, constraints.batch, constraints.dtype, constraints.device, constraints.precision,
                  constraints.optimizer, None, constraints.wanted())
    if constraints.time_steps or TRAINING_STEP & set(constraints.limits):  # a step at the search's batch, one device
        from ..plan.training import training_step
        device = constraints.device
        step = training_step(graph, device, runtime=device.runtime or None,
                             precision=constraints.precision, optimizer=constraints.optimizer)
        out.update(training_step_s=step.time_s, training_images_per_s=step.images_per_s)
    return out


TRAINING_STEP = frozenset({"max_training_step_time", "min_training_throughput"})


PARETO = (("macs", +1), ("inference_bytes", -1), ("latency_s", -1))  # +1: more is better


def grid_search(design, depths, widths, resolutions, constraints: Constraints, score, top: int = 10,
                progress=None, timed: int = TIMED) -> tuple[list[dict], dict]:
    """The best designs of a (depth, width, resolution) grid: every design evaluated vectorised and
    screened against every constraint, ranked by `score` (a function of a MACs array), then checked
    exactly through the graph path until `top` pass. With `score` None (train-throughput) the `timed`
    screened-in designs with the most MACs are all checked exactly and timed, and ranked by training
    images/s per device. Returns (ranked designs, possibly none; statistics, with the Pareto front of every
    feasible design). A grid none of which builds is an error."""
    training = (constraints.precision, constraints.optimizer) if "max_training_memory" in constraints.limits else None
    g = evaluate_grid(design, depths, widths, resolutions, constraints.batch, constraints.dtype, constraints.device,
                      training, progress)
    if not g.built.any():
        reason = g.skipped.most_common(1)[0][0]
        raise EffplanError(f"none of the grid's {g.built.size:,} designs can be built or planned: {reason}")
    values = g.figures(constraints.batch)
    ok = g.built & constraints.satisfied(values, screen=True)

    def describe(flat: int) -> dict:
        i, j, k = np.unravel_index(flat, g.built.shape)
        return {"search": "grid", "phi": None, "depth_mult": float(g.depths[i]), "width_mult": float(g.widths[j]),
                "resolution": int(g.resolutions[k]), **{key: v[i, j, k].item() for key, v in values.items()}}

    built = np.flatnonzero(g.built)
    stats = {"evaluated": len(built), "skipped": sum(g.skipped.values()), "skipped_reasons": dict(g.skipped),
             "path": g.path,
             "smallest": describe(built[np.argmin(g.macs.ravel()[built])])}
    feasible = np.flatnonzero(ok)
    keys = [(k, sign) for k, sign in PARETO if k in values]
    points = np.stack([values[k].ravel()[feasible] * sign for k, sign in keys], axis=1)
    stats["front"] = [describe(feasible[i]) for i in _front(points)]
    stats["fitting"] = {k: values[k].ravel()[feasible] for k in ("macs", "inference_bytes")}  # for the plot
    macs = g.macs.ravel()[feasible].astype(float)
    scores = macs if score is None else np.asarray(score(macs), dtype=float)  # None: time the most MACs first
    i, j, k = np.unravel_index(feasible, g.built.shape)
    ranking = feasible[np.lexsort((g.widths[j], g.depths[i], g.resolutions[k], -scores))]  # ties: smallest r, d, w
    score_of = dict(zip(feasible.tolist(), scores.tolist()))
    ranked, tried, seen = [], 0, set()
    for flat in (ranking[:timed] if score is None else ranking[:50 * top]):
        if score is not None and len(ranked) >= top:
            break
        tried += 1
        found = describe(flat)
        figures = exact(design_at(design, found["depth_mult"], found["width_mult"], found["resolution"]), constraints)
        same = (found["resolution"], figures["macs"], figures["params"], figures["inference_bytes"])  # depths alike
        if constraints.satisfied(figures) and same not in seen:
            seen.add(same)
            value = figures["training_images_per_s"] if score is None else score_of[flat]
            ranked.append({**found, "score": value, **_public(figures)})
    if score is None:  # stable: equal throughputs keep the most MACs first
        ranked = sorted(ranked, key=lambda d: -d["score"])[:top]
    stats.update(screened_in=len(feasible), checked_exactly=tried, timed=tried if score is None else None,
                 timed_limit=timed if score is None else None,
                 unscreened=[k for k in constraints.limits if k in TRAINING_STEP])  # checked exactly only
    if stats["unscreened"]:  # the smallest's training step too, for the message when nothing fits
        small = stats["smallest"]
        stats["smallest"] = {**small, **_public(exact(design_at(design, small["depth_mult"], small["width_mult"],
                                                                small["resolution"]), constraints))}
    return ranked, stats


def _front(points: np.ndarray) -> list[int]:
    """Rows of `points` (2 or 3 columns, larger is better in each) that no other row beats, best first;
    of equal rows, the first. Taken in decreasing order, a row is beaten exactly when an earlier kept
    row is at least as large in the last two columns: a staircase of those pairs (y ascending, z then
    descending) answers that by bisection."""
    from bisect import bisect_left

    if not len(points):
        return []
    unique, first = np.unique(points, axis=0, return_index=True)
    if unique.shape[1] == 2:
        unique = np.column_stack([unique, np.zeros(len(unique))])
    order = np.lexsort(unique.T[::-1])[::-1]
    ys: list[float] = []
    zs: list[float] = []
    kept = []
    for i in order.tolist():
        y, z = unique[i, 1], unique[i, 2]
        at = bisect_left(ys, y)
        if at < len(ys) and zs[at] >= z:
            continue  # the staircase step with the least y >= this y has the most z among them
        kept.append(i)
        end = at + 1 if at < len(ys) and ys[at] == y else at
        begin = end
        while begin > 0 and zs[begin - 1] <= z:
            begin -= 1
        ys[begin:end], zs[begin:end] = [y], [z]
    return first[kept].tolist()


def pareto(designs: list[dict]) -> list[dict]:
    """The designs no other beats on every key of PARETO they all have."""
    keys = [(k, sign) for k, sign in PARETO if designs and all(k in d for d in designs)]
    points = np.array([[d[k] * sign for k, sign in keys] for d in designs], dtype=float).reshape(len(designs), -1)
    return [designs[i] for i in _front(points)] if keys else list(designs)


def on_front(design: dict, front: list[dict]) -> bool:
    """No design of the front beats it (so none of all the designs does)."""
    keys = [(k, sign) for k, sign in PARETO if k in design and all(k in f for f in front)]
    return not any(all(f[k] * s >= design[k] * s for k, s in keys) and any(f[k] * s > design[k] * s for k, s in keys)
                   for f in front)


def _public(figures: dict) -> dict:
    return {k: v for k, v in figures.items() if k != "unknown_ops"}


def no_fit_message(constraints: Constraints, stats: dict) -> str:
    from .budget import LIMITS
    wanted = ", ".join(f"{k} {LIMITS[k].show(v)}" for k, v in constraints.limits.items())
    smallest = stats["smallest"]
    shown = ", ".join(f"{LIMITS[k].figure} {LIMITS[k].show(smallest[LIMITS[k].figure])}"
                      for k in constraints.limits if LIMITS[k].figure in smallest)
    return (f"no design fits ({wanted}); the smallest searched, depth {smallest['depth_mult']:g}, width "
            f"{smallest['width_mult']:g}, {smallest['resolution']}px, has {shown}" + skipped_note(stats))


def skipped_note(stats: dict) -> str:
    if not stats["skipped"]:
        return ""
    reason = max(stats["skipped_reasons"], key=stats["skipped_reasons"].get)
    count = stats["skipped"]
    return f" ({count:,} grid design{'s' if count != 1 else ''} could not be built or planned, e.g. {reason})"


def largest_phi(design, constraints: Constraints, coefficients=None, tolerance: float = 0.01):
    """The largest φ (to `tolerance`) whose compound-scaled design meets every constraint, by doubling
    then bisection (every figure grows with φ); None when even φ = 0 does not fit."""
    from ..design.scaling import compound

    cache: dict[float, dict | None] = {}

    def fits(phi: float):
        if phi not in cache:
            try:
                candidate = compound(design, phi, coefficients)
                f = exact(candidate, constraints)
                cache[phi] = {"design": candidate, **f} if constraints.satisfied(f) else None
            except EffplanError:
                cache[phi] = None  # beyond the design limits: does not fit
        return cache[phi]

    if not fits(0.0):
        return None
    lo, hi = 0.0, 1.0
    while fits(hi) and hi < 16:
        lo, hi = hi, min(hi * 2, 16.0)
    if fits(hi):
        lo = hi
    while hi - lo > tolerance:
        mid = round((lo + hi) / 2, 6)
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    best = dict(fits(lo))
    d = best.pop("design")
    return {"search": "phi", "phi": lo, "depth_mult": d.depth_mult, "width_mult": d.width_mult,
            "resolution": d.resolution, **_public(best)}


def coefficient_grid(design, tolerance: float = 0.1, step: float = 0.05, progress=None) -> list[dict]:
    """The paper's step 1: α, β, γ >= 1 on a grid with |α·β²·γ² − 2| <= tolerance, each with the real
    MACs ratio of φ = 1 after rounding (the γ of one α, β share a graph, so they run vectorised)."""
    from ..design.scaling import Coefficients, compound

    values = np.round(np.arange(1.0, 2.0 + 1e-9, step), 6)
    base = evaluate(design, [design.resolution]).macs[0, 0, 0]
    rows = []
    pairs = [(a, b) for a in values for b in values]
    for a, b in (progress(pairs) if progress else pairs):
        gammas = [g for g in values if abs(a * b * b * g * g - 2) <= tolerance]
        if not gammas:
            continue
        scaled = [compound(design, 1.0, Coefficients(alpha=float(a), beta=float(b), gamma=float(g)))
                  for g in gammas]
        f = evaluate(scaled[0], [s.resolution for s in scaled])
        for g, s, macs in zip(gammas, scaled, f.macs[0, 0]):
            rows.append({"alpha": float(a), "beta": float(b), "gamma": float(g),
                         "flops_factor": float(a * b * b * g * g), "depth_mult": s.depth_mult,
                         "width_mult": s.width_mult, "resolution": s.resolution, "macs": int(macs),
                         "macs_ratio": float(macs / base)})
    rows.sort(key=lambda r: (abs(r["macs_ratio"] - 2), r["alpha"], r["beta"], r["gamma"]))
    return rows


def run(design, limits: dict, *, batch: int = 1, dtype: str | None = None, device=None, runtime=None, precision: str = "mixed",
        optimizer: str = "adamw", depths="1..3:0.1", widths="1..2:0.05", resolutions=None, top: int = 10,
        objective_kind: str = "macs", accuracy_file: str | None = None, mnas_w: float = -0.07, progress=None,
        timed: int | None = None):
    """`effplan search`: the largest φ and the best grid designs of a base design within `limits`
    (budget keys -> numbers). Returns (designs best first, each marked `pareto`; the Pareto front;
    the grid statistics; the constraints). Nothing fitting is NoFit (exit 1). `objective_kind`
    train-throughput times `timed` designs (default TIMED), the most MACs first; see grid_search."""
    from ..plan.hardware import Device, load_device

    if isinstance(device, str):
        device = load_device(device)
    elif device is not None and not isinstance(device, Device):
        raise EffplanError(f"device: expected a name, a file or a Device, got {device!r}")
    if runtime is not None:  # bound to the device, so every latency of the search is this runtime's
        from ..plan.runtime import load_runtime
        if device is None:
            raise EffplanError("runtime needs a device")
        device = dataclasses.replace(device, runtime=load_runtime(runtime).path or runtime)
    if not limits:
        raise EffplanError("give at least one constraint: max_macs, max_params, max_inference_memory, ...")
    per_image = [k for k in limits if k.endswith("_per_image")]
    if per_image:
        raise EffplanError(f"{per_image[0]}: search bounds the whole batch; give {per_image[0][:-10]} (the same "
                           f"at batch 1)")
    if device is None and {"max_latency", "min_throughput", *TRAINING_STEP} & set(limits):
        raise EffplanError("max_latency, min_throughput and the training-time limits need a device")
    ranks_training = objective_kind == TRAIN_OBJECTIVE
    if device is None and ranks_training:
        raise EffplanError(f"--objective {TRAIN_OBJECTIVE} ranks by training images/s on a device: give --device")
    if timed is not None and not (ranks_training and timed >= 1):
        raise EffplanError(f"--timed (at least 1) applies with --objective {TRAIN_OBJECTIVE}")
    if "max_training_hours" in limits:
        raise EffplanError("max_training_hours: search bounds one training step (max_training_step_time, "
                           "min_training_throughput); check a run's hours with a budget or effplan train")
    if (ranks_training or TRAINING_STEP & set(limits)) and device.runtime:
        from ..plan.runtime import training_runtime
        training_runtime(device.runtime)
    constraints = Constraints(limits, batch, cost_dtype(dtype, device), device, precision, optimizer, time_steps=ranks_training)
    score = objective(objective_kind, limits, accuracy_file, mnas_w)
    depths, widths = grid(depths, "--depth"), grid(widths, "--width")
    sides = (grid(resolutions, "--resolution", integer=True) if resolutions
             else np.arange(design.resolution, 3 * design.resolution + 1, 8))
    check_grid(design, depths, widths, sides)
    ranked, stats = grid_search(design, depths, widths, sides, constraints, score, top, progress,
                                TIMED if timed is None else timed)
    phi = largest_phi(design, constraints)
    if phi:
        phi["score"] = phi["training_images_per_s"] if score is None else float(score(np.array([phi["macs"]]))[0])
    designs = sorted(ranked + ([phi] if phi else []), key=lambda d: -d["score"])
    for d in designs:  # JSON rows name the objective and, ranked by training, how many designs were timed
        d["objective"] = objective_kind
        if ranks_training:
            d.update(timed=stats["timed"], timed_of=stats["screened_in"])
    if not designs:
        raise NoFit(no_fit_message(constraints, stats))
    front = pareto(stats["front"] + ([phi] if phi else []))  # the grid's front already beats the rest
    for d in designs:
        d["pareto"] = on_front(d, front)
    return designs, front, stats, constraints
