"""Search: the largest design that fits, by φ and over a (depth, width, resolution) grid.

The vectorised path: at one depth and width the graph's ops, channels, weights and schedule do not
change with resolution; only spatial sides do, and with 'same' padding every side is
ceil(r / the stride so far). So the graph is built once per (depth, width) and every cost function
of the registry runs once on shapes whose spatial entries are numpy arrays over all resolutions.
The template is checked against a graph really built at a second resolution; where it does not
hold (a 'valid'-padded stem, say) the designs are built one by one instead.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from .costs import COSTS, dtype_size
from .errors import EffplanError
from .memory import live_steps

SUMMED = ("macs", "flops")
_HOLDS: dict = {}  # spec -> does the template hold at every resolution


@dataclass
class Figures:
    """Figures of designs at one depth and width over many resolutions (arrays, one entry each)."""
    resolutions: np.ndarray
    macs: np.ndarray
    flops: np.ndarray
    params: int
    weight_bytes: int
    peak_bytes: np.ndarray  # activations
    latency_s: np.ndarray | None = None  # roofline, when a device is given
    training_bytes: np.ndarray | None = None  # one training step, when asked

    @property
    def inference_bytes(self) -> np.ndarray:
        return self.peak_bytes + self.weight_bytes


def _strides(graph) -> dict[str, int | None]:
    """Each tensor's total stride from the input, or None where its sides no longer follow the input's."""
    tensors = graph.graph["tensors"]
    stride: dict[str, int | None] = {t: 1 for t in graph.graph["inputs"]}
    for name in graph.nodes:
        node = graph.nodes[name]
        out = node["outputs"][0]
        source = next((stride[t] for t in node["inputs"] if stride.get(t)), None)
        if source is None or len(tensors[out]) < 4 or node["op"] in ("GlobalAveragePool", "ReduceMean"):
            stride[out] = None
        elif node["op"] in ("Conv", "MaxPool", "AveragePool"):
            stride[out] = source * node["attrs"]["strides"][0]
        else:
            stride[out] = source
    return stride


def _shape(shape: tuple, stride: int | None, sides):
    """The shape with its last two entries replaced by ceil(r / stride) for every resolution r
    (`sides`: the resolutions, or {stride: its sides} computed once)."""
    if stride is None:
        return shape
    side = sides[stride] if isinstance(sides, dict) else -(-sides // stride)
    return (*shape[:-2], side, side)


_STRUCTURE: dict = {}  # topology -> (strides, schedule); widths change shapes, not these


def _topology(graph) -> tuple:
    return tuple((name, node["op"], node["inputs"], node["attrs"].get("strides"), len(node["weights"]))
                 for name, node in graph.nodes(data=True))


def _structure(graph):
    """(stride of every tensor, live_steps) of a graph, shared by every graph of the same topology."""
    key = _topology(graph)
    if key not in _STRUCTURE:
        if len(_STRUCTURE) > 256:
            _STRUCTURE.clear()
        _STRUCTURE[key] = (_strides(graph), live_steps(graph))
    return _STRUCTURE[key]


def _template_holds(graph, stride, other) -> bool:
    """Do the templated shapes equal those of the graph really built at another resolution?"""
    r = other.graph["tensors"][other.graph["inputs"][0]][-1]
    mine, theirs = graph.graph["tensors"], other.graph["tensors"]
    return mine.keys() == theirs.keys() and all(
        tuple(int(x) for x in _shape(mine[t], stride[t], np.int64(r))) == theirs[t] for t in mine)


def _template_holds_everywhere(graph, design, batch) -> bool:
    """Output sides follow ceil(r / stride) for every r when they do for a whole period of r modulo
    the largest stride (padding and ceil-mode rounding depend on r only through that remainder)."""
    from .blocks import build

    stride = _structure(graph)[0]
    base = graph.graph["tensors"][graph.graph["inputs"][0]][-1]
    period = max(s for s in stride.values() if s)
    for r in range(base - 1, base - period, -1):
        try:
            other = build(dataclasses.replace(design, resolution=r), batch)
        except EffplanError:
            return False
        if not _template_holds(graph, stride, other):
            return False
    return True


def evaluate(design, resolutions, batch: int = 1, dtype: str = "fp32", device=None, training=None) -> Figures:
    """MACs, FLOPs, params, weight bytes and peak activation bytes of a design at many resolutions;
    with a device its roofline latency, with training = (precision, optimizer) a training step's memory."""
    return evaluate_widths(design, [design.width_mult], resolutions, batch, dtype, device, training)[0]


def evaluate_widths(design, widths, resolutions, batch: int = 1, dtype: str = "fp32", device=None,
                    training=None) -> list[Figures]:
    """`evaluate` for one depth at many widths: graphs of the same topology share one pass of the cost
    functions, their channel counts stacked as a second array axis (widths x resolutions)."""
    from .blocks import build

    sides = np.asarray(resolutions, dtype=np.int64)
    base = max(int(sides.max()), 32)
    graphs = [build(dataclasses.replace(design, width_mult=float(w), resolution=base), batch) for w in widths]
    if design.spec not in _HOLDS:
        _HOLDS[design.spec] = _template_holds_everywhere(graphs[0], dataclasses.replace(
            design, width_mult=float(widths[0])), batch)
    key = design.spec
    if not _HOLDS[key]:
        return [_one_by_one(dataclasses.replace(design, width_mult=float(w)), sides, batch, dtype, device, training)
                for w in widths]
    by_topology: dict = {}
    for i, graph in enumerate(graphs):
        by_topology.setdefault(_topology(graph), []).append(i)
    results: list = [None] * len(graphs)
    for members in by_topology.values():
        for i, figures in zip(members, _joint([graphs[i] for i in members], sides, dtype, device, training)):
            results[i] = figures
    return results


def _stacked(values: list, count: int):
    """One dimension across graphs: an int where all agree, else a (graphs, 1) array."""
    first = values[0]
    return first if all(v == first for v in values) else np.array(values, dtype=np.int64).reshape(count, 1)


def _joint(graphs, sides, dtype, device, training) -> list[Figures]:
    """Figures of same-topology graphs (one per width) over all resolutions, in one pass."""
    size = dtype_size(dtype)
    count, graph = len(graphs), graphs[0]
    stride, (_, start, steps) = _structure(graph)
    strides = sorted({s for s in stride.values() if s})
    side_of = {s: (-(-sides // s)).reshape(1, -1) for s in strides}
    all_tensors = [g.graph["tensors"] for g in graphs]
    shapes = {}
    for t, shape in graph.graph["tensors"].items():
        dims = tuple(_stacked([tensors[t][j] for tensors in all_tensors], count) for j in range(len(shape)))
        shapes[t] = _shape(dims, stride[t], side_of)
    totals = {k: np.zeros((count, len(sides)), dtype=np.int64) for k in SUMMED}
    for name in graph.nodes:
        node = graph.nodes[name]
        fn = COSTS.get(node["op"])
        if fn is None:
            continue
        weights = {w.role: tuple(_stacked([g.nodes[name]["weights"][k].shape[j] for g in graphs], count)
                                 for j in range(len(w.shape))) for k, w in enumerate(node["weights"])}
        macs, flops = fn(node["attrs"], [shapes[t] for t in node["inputs"]], shapes[node["outputs"][0]], weights)
        totals["macs"] += macs
        totals["flops"] += flops
    # Peak: the schedule's live sets are fixed. A tensor's size is (its other dimensions) x side^2 of its
    # stride, so each step's total is a small matrix (steps x strides, per graph) times the sides squared.
    column = {s: i for i, s in enumerate(strides)}
    per_side = np.zeros((len(steps) + 1, len(strides), count), dtype=np.int64)
    fixed = np.zeros((len(steps) + 1, count), dtype=np.int64)
    for i, live in enumerate([start, *steps]):
        for t in live:
            if stride[t]:
                per_side[i, column[stride[t]]] += [math.prod(tensors[t][:-2]) for tensors in all_tensors]
            else:
                fixed[i] += [math.prod(tensors[t]) for tensors in all_tensors]
    squares = np.concatenate([side_of[s] ** 2 for s in strides]) if strides else np.zeros((0, len(sides)), np.int64)
    # float64 matmul (BLAS) is exact for integers below 2^53, checked below
    timeline = per_side.transpose(2, 0, 1).astype(np.float64) @ squares.astype(np.float64) + fixed.T[:, :, None]
    most = timeline.max(axis=1)
    if most.size and most.max() >= 2.0 ** 53:
        raise EffplanError("activation sizes beyond 2^53 elements: too large to plan exactly")
    peak = most.astype(np.int64) * size
    results = []
    for k, g in enumerate(graphs):
        params = sum(w.size for _, n in g.nodes(data=True) for w in n["weights"] if w.trainable)
        buffers = sum(w.size for _, n in g.nodes(data=True) for w in n["weights"] if not w.trainable)
        latency = train = None
        if device is not None or training is not None:  # these read each graph's own weights
            own = {t: _shape(s, stride[t], {st: side_of[st][0] for st in strides})
                   for t, s in g.graph["tensors"].items()}
            if device is not None:
                from .roofline import kernels
                latency = sum((kr.time_s for kr in kernels(g, device, dtype, shapes=own)), np.zeros(len(sides)))
            if training is not None:
                from .memory import training_memory
                train = training_memory(g, *training, shapes=own).total_bytes
        results.append(Figures(sides, totals["macs"][k], totals["flops"][k], params, (params + buffers) * size,
                               peak[k], latency, train))
    return results


def _one_by_one(design, sides, batch, dtype, device=None, training=None) -> Figures:
    """The graph path for every resolution: the fallback where the template does not hold."""
    from .analysis import analyze
    from .memory import training_memory
    from .roofline import roofline

    profiles = [analyze(dataclasses.replace(design, resolution=int(r)), batch, dtype) for r in sides]
    t0 = profiles[0].totals
    latency = np.array([roofline(p.graph, device, dtype, batch).latency_s for p in profiles]) if device else None
    train = np.array([training_memory(p.graph, *training).total_bytes for p in profiles]) if training else None
    return Figures(sides, np.array([p.totals.macs for p in profiles]), np.array([p.totals.flops for p in profiles]),
                   t0.params, t0.weight_bytes, np.array([p.totals.peak_activation_bytes for p in profiles]),
                   latency, train)


def grid(text: str, what: str, integer: bool = False) -> np.ndarray:
    """'1..3:0.25' (both ends included), '1,1.5,2' or '1.2'."""
    try:
        if ".." in text:
            span, _, step_text = text.partition(":")
            lo, hi = (float(x) for x in span.split(".."))
            step = float(step_text) if step_text else (8.0 if integer else 0.1)
            if not (step > 0 and math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
                raise ValueError
            count = math.floor((hi - lo) / step + 1e-9) + 1
            if count > 100_000:
                raise EffplanError(f"--{what} '{text}' gives {count} values; at most 100000")
            values = np.round(lo + step * np.arange(count), 10)
        else:
            values = np.array([float(x) for x in text.split(",")])
    except ValueError:
        raise EffplanError(f"--{what} '{text}': expected a range lo..hi[:step] or a list a,b,c") from None
    if not np.all(np.isfinite(values)) or values.min() <= 0:
        raise EffplanError(f"--{what} '{text}': values must be positive")
    return values.astype(np.int64) if integer else values


def accuracy_model(path: str):
    """A user's accuracy estimate: [[point]] tables of macs and top1, interpolated in log MACs."""
    from .spec import read_toml
    from .units import parse_count

    points = read_toml(__import__("pathlib").Path(path)).get("point")
    if not isinstance(points, list) or len(points) < 2:
        raise EffplanError(f"{path}: expected at least two [[point]] tables with macs and top1")
    try:
        pairs = sorted((math.log(parse_count(p["macs"], "macs")), float(p["top1"])) for p in points)
    except (KeyError, TypeError, ValueError):
        raise EffplanError(f"{path}: every [[point]] needs macs (e.g. '0.39G') and top1 (a number)") from None
    xs, ys = np.array([x for x, _ in pairs]), np.array([y for _, y in pairs])
    return lambda macs: np.interp(np.log(np.maximum(macs, 1)), xs, ys)


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

    def satisfied(self, figures: dict) -> bool:
        from .budget import LIMITS
        return all(figures[LIMITS[k].figure] <= v if LIMITS[k].upper else figures[LIMITS[k].figure] >= v
                   for k, v in self.limits.items())

    def wanted(self) -> set:
        from .budget import LIMITS
        return {LIMITS[k].figure for k in self.limits} | ({"latency_s", "images_per_s"} if self.device else set())


def exact(design, constraints: Constraints) -> dict:
    """Every constrained figure of one design, through the graph path."""
    from .blocks import build
    from .budget import figures

    graph = build(design, constraints.batch)
    return figures(graph, constraints.batch, constraints.dtype, constraints.device, constraints.precision,
                   constraints.optimizer, None, constraints.wanted())


def design_at(design, depth: float, width: float, resolution: int):
    return dataclasses.replace(design, depth_mult=float(depth), width_mult=float(width), resolution=int(resolution),
                               phi=None, coefficients="search")


def grid_search(design, depths, widths, resolutions, constraints: Constraints, score, top: int = 10,
                progress=None) -> tuple[list[dict], dict]:
    """The best designs of a (depth, width, resolution) grid: every constraint screened vectorised,
    ranked by `score` (a function of a MACs array), then checked exactly through the graph path
    until `top` pass. Returns (ranked designs, statistics)."""
    from .budget import LIMITS

    training = (constraints.precision, constraints.optimizer) if "max_training_memory" in constraints.limits else None
    kept, smallest, evaluated = [], None, 0
    for d in (progress(list(depths)) if progress else depths):
        try:
            per_width = evaluate_widths(design_at(design, d, widths[0], resolutions[0]), widths, resolutions,
                                        constraints.batch, constraints.dtype, constraints.device, training)
        except EffplanError:
            per_width = []
            for w in widths:  # some widths may be buildable where others are not
                try:
                    per_width.append(evaluate(design_at(design, d, w, resolutions[0]), resolutions,
                                              constraints.batch, constraints.dtype, constraints.device, training))
                except EffplanError:
                    per_width.append(None)
        for w, f in zip(widths, per_width):
            if f is None:
                continue
            evaluated += len(resolutions)
            values = {"macs": f.macs, "flops": f.flops, "params": np.full(len(resolutions), f.params),
                      "weight_bytes": np.full(len(resolutions), f.weight_bytes), "inference_bytes": f.inference_bytes}
            if f.latency_s is not None:
                values.update(latency_s=f.latency_s, images_per_s=constraints.batch / f.latency_s)
            if f.training_bytes is not None:
                values["training_bytes"] = f.training_bytes
            ok = np.ones(len(resolutions), dtype=bool)
            for key, limit in constraints.limits.items():
                ok &= values[LIMITS[key].figure] <= limit if LIMITS[key].upper else values[LIMITS[key].figure] >= limit
            i = int(np.argmin(f.macs))
            if smallest is None or f.macs[i] < smallest["macs"]:
                smallest = {"depth_mult": float(d), "width_mult": float(w), "resolution": int(resolutions[i]),
                            **{k: v[i].item() for k, v in values.items()}}
            scores = score(f.macs)
            kept += [(float(scores[j]), float(d), float(w), int(resolutions[j])) for j in np.flatnonzero(ok)]
    stats = {"evaluated": evaluated, "screened_in": len(kept), "smallest": smallest}
    kept.sort(key=lambda c: (-c[0], c[3], c[1], c[2]))  # ties: the smallest resolution, depth, width
    ranked, tried, seen = [], 0, set()
    for s, d, w, r in kept:
        if len(ranked) >= top or tried >= 50 * top:
            break
        tried += 1
        figures = exact(design_at(design, d, w, r), constraints)
        same = (r, figures["macs"], figures["params"], figures["inference_bytes"])  # depths that round alike
        if constraints.satisfied(figures) and same not in seen:
            seen.add(same)
            ranked.append({"search": "grid", "phi": None, "depth_mult": d, "width_mult": w, "resolution": r,
                           "score": s, **_public(figures)})
    stats["checked_exactly"] = tried
    if not ranked:
        raise NoFit(_no_fit_message(constraints, smallest))
    return ranked, stats


def _public(figures: dict) -> dict:
    return {k: v for k, v in figures.items() if k != "unknown_ops"}


def _no_fit_message(constraints: Constraints, smallest: dict | None) -> str:
    from .budget import LIMITS
    wanted = ", ".join(f"{k} {LIMITS[k].show(v)}" for k, v in constraints.limits.items())
    if not smallest:
        return f"no design fits ({wanted}): none of the grid could be built"
    shown = ", ".join(f"{LIMITS[k].figure} {LIMITS[k].show(smallest[LIMITS[k].figure])}"
                      for k in constraints.limits if LIMITS[k].figure in smallest)
    return (f"no design fits ({wanted}); the smallest searched, depth {smallest['depth_mult']:g}, width "
            f"{smallest['width_mult']:g}, {smallest['resolution']}px, has {shown or 'figures beyond them'}")


def largest_phi(design, constraints: Constraints, coefficients=None, tolerance: float = 0.01):
    """The largest φ (to `tolerance`) whose compound-scaled design meets every constraint, by doubling
    then bisection (every figure grows with φ); None when even φ = 0 does not fit."""
    from .scaling import compound

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
    best = fits(lo)
    d = best.pop("design")
    return {"search": "phi", "phi": lo, "depth_mult": d.depth_mult, "width_mult": d.width_mult,
            "resolution": d.resolution, **_public(best)}


def pareto(designs: list[dict], keys=(("macs", +1), ("inference_bytes", -1), ("latency_s", -1))) -> list[dict]:
    """The designs no other beats on every key (+1: more is better, -1: less is better)."""
    keys = [(k, sign) for k, sign in keys if all(k in d for d in designs)]

    def beats(a, b):
        return all(a[k] * s >= b[k] * s for k, s in keys) and any(a[k] * s > b[k] * s for k, s in keys)
    return [d for d in designs if not any(beats(o, d) for o in designs if o is not d)]


def coefficient_grid(design, tolerance: float = 0.1, step: float = 0.05, progress=None) -> list[dict]:
    """The paper's step 1: α, β, γ >= 1 on a grid with |α·β²·γ² − 2| <= tolerance, each with the real
    MACs ratio of φ = 1 after rounding (the γ of one α, β share a graph, so they run vectorised)."""
    from .scaling import Coefficients, compound

    values = np.round(np.arange(1.0, 2.0 + 1e-9, step), 6)
    base = evaluate(design, [design.resolution]).macs[0]
    rows = []
    pairs = [(a, b) for a in values for b in values]
    for a, b in (progress(pairs) if progress else pairs):
        gammas = [g for g in values if abs(a * b * b * g * g - 2) <= tolerance]
        if not gammas:
            continue
        scaled = [compound(design, 1.0, Coefficients(alpha=float(a), beta=float(b), gamma=float(g)))
                  for g in gammas]
        f = evaluate(scaled[0], [s.resolution for s in scaled])
        for g, s, macs in zip(gammas, scaled, f.macs):
            rows.append({"alpha": float(a), "beta": float(b), "gamma": float(g),
                         "flops_factor": float(a * b * b * g * g), "depth_mult": s.depth_mult,
                         "width_mult": s.width_mult, "resolution": s.resolution, "macs": int(macs),
                         "macs_ratio": float(macs / base)})
    rows.sort(key=lambda r: (abs(r["macs_ratio"] - 2), r["alpha"], r["beta"], r["gamma"]))
    return rows
