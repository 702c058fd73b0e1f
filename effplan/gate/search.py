"""Search: the largest design that fits, by φ and over a (depth, width, resolution) grid.

The vectorised path evaluates a whole grid with the registry's cost functions, never a copy of
their formulas, each run once per group of same-topology widths:
- resolution: with 'same' padding every spatial side is ceil(r / the stride so far), so one graph
  gives every resolution's shapes, their spatial entries numpy arrays;
- width: graphs of one topology (a graph per width) stack their channel counts as a second axis;
- depth: a deepening stage row of n blocks is its first block and n - 1 identical repeats, so one
  template graph with every such row built twice (its first block, one repeat) serves every depth:
  the repeat's costs count n - 1 times, and its live sets join the peak when n >= 2.
Each shortcut is checked once per spec against graphs really built (a whole stride period of
resolutions; two depths); where one does not hold, designs are built depth by depth or one by one.
Figures are float64 sums, exact below 2^53 (checked): a design beyond is skipped and reported.
"""
from __future__ import annotations

import dataclasses
import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from ..base.units import dtype_size
from ..graph.ops import COSTS, weight_counts
from ..base.errors import EffplanError, did_you_mean, quote

EXACT = 2.0 ** 53  # float64 holds every integer below this
MAX_GRID = 1_000_000  # designs in one search: a few arrays of this size stay well within memory
MAX_ONE_BY_ONE = 2_000  # designs built one by one (sides that do not follow the strides): about 10 s
_CHECKED: dict = {}  # (shortcut, spec, ...) -> whether it holds, checked once per process
_STRUCTURE: dict = {}  # topology -> (strides, schedule); widths change shapes, not these


@dataclass
class Grid:
    """Figures of every design of a grid, arrays indexed [depth, width, resolution]; zero where
    `built` is False (the graph path refuses the design, or it is too large to plan exactly),
    `skipped` counting the designs left out by reason."""
    depths: np.ndarray
    widths: np.ndarray
    resolutions: np.ndarray
    macs: np.ndarray
    flops: np.ndarray
    params: np.ndarray
    weight_bytes: np.ndarray
    peak_bytes: np.ndarray  # activations
    latency_s: np.ndarray | None  # roofline, when a device is given
    training_bytes: np.ndarray | None  # one training step, when asked
    built: np.ndarray
    skipped: Counter
    path: str  # how: vectorised (the depth template, or a graph per depth), or one by one

    @property
    def inference_bytes(self) -> np.ndarray:
        return self.peak_bytes + self.weight_bytes

    def figures(self, batch: int) -> dict:
        """The arrays budgets bound, by figure name (see budget.LIMITS)."""
        out = {"macs": self.macs, "flops": self.flops, "params": self.params, "weight_bytes": self.weight_bytes,
               "inference_bytes": self.inference_bytes}
        if self.latency_s is not None:
            out["latency_s"] = self.latency_s
            out["images_per_s"] = np.divide(batch, self.latency_s, out=np.zeros_like(self.latency_s),
                                            where=self.latency_s > 0)
        if self.training_bytes is not None:
            out["training_bytes"] = self.training_bytes
        return out


# ---- shapes as arrays ----

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


def _topology(graph) -> tuple:
    return tuple((name, node["op"], node["inputs"], node["attrs"].get("strides"), len(node["weights"]))
                 for name, node in graph.nodes(data=True))


def _structure(graph):
    """What every graph of one topology shares: each tensor's stride, the schedule (the node order,
    and which tensors are live at the start and while each node runs, as a 0/1 matrix) and the tensors."""
    from ..plan.memory import live_steps

    key = _topology(graph)
    if key not in _STRUCTURE:
        if len(_STRUCTURE) > 256:
            _STRUCTURE.clear()
        order, start, steps = live_steps(graph)
        tensors = list(graph.graph["tensors"])
        index = {t: i for i, t in enumerate(tensors)}
        live = np.zeros((len(steps) + 1, len(tensors)))
        for i, names in enumerate([start, *steps]):
            live[i, [index[t] for t in names]] = 1
        _STRUCTURE[key] = (_strides(graph), order, live, tensors)
    return _STRUCTURE[key]


def _template_holds(graph, stride, other) -> bool:
    """Do the templated shapes equal those of the graph really built at another resolution?"""
    r = other.graph["tensors"][other.graph["inputs"][0]][-1]
    mine, theirs = graph.graph["tensors"], other.graph["tensors"]
    return mine.keys() == theirs.keys() and all(
        tuple(int(x) for x in _shape(mine[t], stride[t], np.int64(r))) == theirs[t] for t in mine)


def _stacked(values: list):
    """One dimension across graphs: an int where all agree, else a (graphs, 1) float array."""
    first = values[0]
    return first if all(v == first for v in values) else np.array(values, dtype=float).reshape(-1, 1)


# ---- the template over depths ----

def _deepening(spec) -> list[int]:
    """Indices (from 1, as node stages) of the stage rows that depth scaling repeats."""
    from ..design.blocks import BLOCKS
    return [i for i, row in enumerate(spec.stages, start=1) if BLOCKS[row.block].deepens]


def _template(design):
    """The design with every deepening stage row built twice: its first block and one repeat."""
    deep = set(_deepening(design.spec))
    stages = tuple(dataclasses.replace(row, repeats=2) if i in deep else row
                   for i, row in enumerate(design.spec.stages, start=1))
    return dataclasses.replace(design, spec=dataclasses.replace(design.spec, stages=stages), depth_mult=1.0,
                               depth_rounding="ceil")


def _repeat_counts(design, depths) -> np.ndarray:
    """(depths, 1 + deepening rows): 1 for the nodes every depth has once, then each deepening row's
    blocks beyond its first."""
    from ..design.scaling import round_repeats

    rows = [design.spec.stages[i - 1].repeats for i in _deepening(design.spec)]
    return np.array([[1] + [round_repeats(r, float(d), design.depth_rounding) - 1 for r in rows] for d in depths],
                    dtype=float)


def _classes(graph, spec, deep: bool) -> dict[str, int]:
    """Node -> its column of the repeat counts: a deepening row's repeat, or 0 (counted once)."""
    column = {stage: k for k, stage in enumerate(_deepening(spec), start=1)} if deep else {}
    return {n: column.get(a["stage"], 0) if a["block"] else 0 for n, a in graph.nodes(data=True)}


# ---- the joint pass ----

def _joint(graphs, sides, counts, classes, dtype, device, training) -> dict:
    """Figures of same-topology graphs (one per width) at every side and every row of `counts`
    (one per depth): each registry cost function runs once, on shapes whose channel entries are
    (widths, 1) arrays and spatial entries (1, sides) arrays; a node of class k counts counts[:, k]
    times. Arrays are float64, [depth, width, side] ([depth, width] for params and weight bytes)."""
    size = dtype_size(dtype)
    graph, n, kinds = graphs[0], len(graphs), counts.shape[1]
    stride, order, live, names = _structure(graph)
    strides = sorted({s for s in stride.values() if s})
    side_of = {s: (-(-sides // s)).astype(float).reshape(1, -1) for s in strides}
    all_tensors = [g.graph["tensors"] for g in graphs]
    shapes = {t: _shape(tuple(_stacked([tensors[t][j] for tensors in all_tensors]) for j in range(len(shape))),
                        stride[t], side_of) for t, shape in graph.graph["tensors"].items()}
    work = np.zeros((2, kinds, n, len(sides)))  # macs, flops
    weights = np.zeros((kinds, n))  # params and buffers, in elements
    params = np.zeros((kinds, n))
    for name in graph.nodes:
        node, k = graph.nodes[name], classes[name]
        for j, g in enumerate(graphs):
            trainable, buffers = weight_counts(g.nodes[name]["weights"])
            weights[k, j] += trainable + buffers
            params[k, j] += trainable
        fn = COSTS.get(node["op"])
        if fn is not None:
            shape_of = {w.role: tuple(_stacked([g.nodes[name]["weights"][i].shape[j] for g in graphs])
                                      for j in range(len(w.shape))) for i, w in enumerate(node["weights"])}
            macs, flops = fn(node["attrs"], [shapes[t] for t in node["inputs"]], shapes[node["outputs"][0]], shape_of)
            work[0, k] += macs
            work[1, k] += flops
    total = np.einsum("dk,xknr->xdnr", counts, work)
    step_class = np.array([0] + [classes[name] for name in order])  # the start, then each node's step
    peak = _peak(live, step_class, counts, [(stride[t], shapes[t]) for t in names], side_of, (n, len(sides)))
    out = {"macs": total[0], "flops": total[1], "params": counts @ params, "weight_bytes": counts @ weights * size,
           "peak_bytes": peak * size}
    if device is not None or training is not None:  # these read each graph's own weights
        own_sides = {s: side_of[s][0] for s in strides}
        owns = [{t: _shape(s, stride[t], own_sides) for t, s in g.graph["tensors"].items()} for g in graphs]
        if device is not None:
            from ..plan.roofline import kernels
            time = np.zeros((kinds, n, len(sides)))
            for j, (g, own) in enumerate(zip(graphs, owns)):
                for kernel in kernels(g, device, dtype, shapes=own):
                    time[classes[kernel.name], j] += kernel.time_s
            out["latency_s"] = np.einsum("dk,knr->dnr", counts, time)
        if training is not None:  # one depth per pass (see evaluate_grid)
            from ..plan.memory import training_memory
            out["training_bytes"] = np.array([[training_memory(g, *training, shapes=own).total_bytes
                                               for g, own in zip(graphs, owns)]], dtype=float)
    return out


def _peak(live, step_class, counts, tensors, side_of, shape) -> np.ndarray:
    """Peak live elements [depth, width, side] of `tensors` ((stride, shape) each). A tensor's size is
    its other dimensions times the square of its side, so every step's live total is the 0/1 live matrix
    times per-tensor sizes (BLAS, exact below 2^53); a depth's peak takes a repeat's steps only where it
    has one (counts[:, k] > 0)."""
    (n, sides), depths = shape, len(counts)
    timeline = np.zeros((n, len(live), sides))
    for s in {s for s, _ in tensors}:
        members = [i for i, (stride, _) in enumerate(tensors) if stride == s]
        sizes = [math.prod(tensors[i][1][:-2] if s else tensors[i][1]) for i in members]
        per_width = np.stack([np.broadcast_to(np.asarray(v, dtype=float).reshape(-1), (n,)) for v in sizes])
        timeline += (live[:, members] @ per_width).T[:, :, None] * (side_of[s][0] ** 2 if s else 1)
    most = np.zeros((counts.shape[1], n, sides))
    for k in np.unique(step_class):
        most[k] = timeline[:, step_class == k].max(axis=1)
    peak = np.broadcast_to(most[0], (depths, n, sides)).copy()
    for k in range(1, counts.shape[1]):
        peak = np.maximum(peak, np.where(counts[:, k, None, None] > 0, most[k], 0))
    return peak


# ---- the checks of the shortcuts, once per spec ----

def _check(key, test) -> bool:
    if key not in _CHECKED:
        try:
            _CHECKED[key] = bool(test())
        except EffplanError:
            _CHECKED[key] = False
    return _CHECKED[key]


def _sides_follow_strides(design) -> bool:
    """Output sides follow ceil(r / stride) for every r when they do for a whole period of r modulo
    the largest stride (padding and ceil-mode rounding depend on r only through that remainder)."""
    from ..design.blocks import build

    def test():
        template = _template(dataclasses.replace(design, width_mult=1.0, resolution=design.spec.resolution))
        graph = build(template)
        stride = _structure(graph)[0]
        period = max(s for s in stride.values() if s)
        return all(_template_holds(graph, stride, build(dataclasses.replace(template, resolution=r)))
                   for r in range(template.resolution + 1, template.resolution + period))
    return _check(("sides", design.spec), test)


def _smallest_side(design) -> tuple[int, str]:
    """The smallest resolution the network builds at, and why one pixel less does not: sides only
    shrink with r, so bisection, with graphs really built."""
    from ..design.blocks import build

    key = ("smallest", design.spec)
    if key not in _CHECKED:
        template = _template(dataclasses.replace(design, width_mult=1.0))
        low, high, reason = 0, design.spec.resolution, ""  # `high` builds; 0 is no resolution
        while high - low > 1:
            mid = (low + high) // 2
            try:
                build(dataclasses.replace(template, resolution=mid))
                high = mid
            except EffplanError as exc:
                low, reason = mid, str(exc)
        _CHECKED[key] = (high, reason)
    return _CHECKED[key]


def _repeats_hold(design, dtype, device) -> bool:
    """Does the template give every depth exactly? Checked against graphs really built at depths 1
    and 3 (every deepening row then has one block, or three)."""
    from ..plan.profile import analyze
    from ..plan.roofline import roofline

    def test():
        base = dataclasses.replace(design, width_mult=1.0, resolution=_smallest_side(design)[0])  # the cheapest
        got = _evaluate(base, [1.0, 3.0], [1.0], np.array([base.resolution]), 1, dtype, device, None, deep=True)
        for i, depth in enumerate((1.0, 3.0)):
            p = analyze(dataclasses.replace(base, depth_mult=depth), 1, dtype)
            t = p.totals
            want = (t.macs, t.flops, t.params, t.weight_bytes, t.peak_activation_bytes)
            if tuple(int(got[0][k][i, 0, 0]) for k in ("macs", "flops", "params", "weight_bytes", "peak_bytes")) \
                    != want or not got[1][i, 0, 0]:
                return False
            if device is not None and not math.isclose(got[0]["latency_s"][i, 0, 0],
                                                        roofline(p.graph, device, dtype).latency_s, rel_tol=1e-9):
                return False
        return True
    return _check(("repeats", design.spec, design.depth_rounding, device and (device.name, device.runtime), dtype),
                  test)


# ---- evaluation ----

FIGURES = ("macs", "flops", "params", "weight_bytes", "peak_bytes", "latency_s", "training_bytes")


def _evaluate(design, depths, widths, sides, batch, dtype, device, training, deep, progress=None):
    """({figure: float array [depth, width, side]}, built mask, skipped reasons) on the vectorised
    path: the template over depths when `deep`, else a graph per depth."""
    from ..design.blocks import build

    shape = (len(depths), len(widths), len(sides))
    out = {k: np.zeros(shape) for k in FIGURES}
    built, skipped = np.zeros(shape, dtype=bool), Counter()
    plans = [(np.arange(len(depths)), _repeat_counts(design, depths), _template(design))] if deep else \
        [(np.array([i]), np.ones((1, 1)), dataclasses.replace(design, depth_mult=float(d)))
         for i, d in enumerate(depths)]
    tasks = [(p, j) for p in range(len(plans)) for j in range(len(widths))]
    graphs: dict = {}
    top = int(sides.max())
    for p, j in (progress(tasks) if progress else tasks):
        try:
            graphs[p, j] = build(dataclasses.replace(plans[p][2], width_mult=float(widths[j]), resolution=top), batch)
        except EffplanError as exc:  # a width too narrow for a layer, say: those designs only
            skipped[str(exc)] += len(plans[p][0]) * len(sides)
    for p, (rows, counts, _) in enumerate(plans):
        by_topology: dict = {}
        for j in range(len(widths)):
            if (p, j) in graphs:
                by_topology.setdefault(_topology(graphs[p, j]), []).append(j)
        for members in by_topology.values():
            group = [graphs[p, j] for j in members]
            figures = _joint(group, sides, counts, _classes(group[0], design.spec, deep), dtype, device, training)
            index = np.ix_(rows, members, np.arange(len(sides)))
            for k, value in figures.items():
                out[k][index] = value if value.ndim == 3 else value[:, :, None]
            built[index] = True
    return out, built, skipped


def _one_by_one(design, depths, widths, sides, batch, dtype, device, training, progress=None):
    """The graph path for every design: where sides do not follow the strides (valid padding)."""
    from ..plan.profile import analyze
    from ..plan.memory import training_memory
    from ..plan.roofline import roofline

    shape = (len(depths), len(widths), len(sides))
    if math.prod(shape) > MAX_ONE_BY_ONE:  # each takes milliseconds: 25,000 of them would run for minutes
        raise EffplanError(f"{design.name}: its sides do not follow its strides, so each design is built in turn, "
                           f"and the grid holds {math.prod(shape):,}; at most {MAX_ONE_BY_ONE:,}: narrow --depth, "
                           f"--width or --resolution (e.g. --resolution 224..288:16)")
    out = {k: np.zeros(shape) for k in FIGURES}
    built, skipped = np.zeros(shape, dtype=bool), Counter()
    cells = list(np.ndindex(shape))
    for i, j, k in (progress(cells) if progress else cells):
        try:
            p = analyze(design_at(design, depths[i], widths[j], sides[k]), batch, dtype)
        except EffplanError as exc:
            skipped[str(exc)] += 1
            continue
        t = p.totals
        for key, value in (("macs", t.macs), ("flops", t.flops), ("params", t.params),
                           ("weight_bytes", t.weight_bytes), ("peak_bytes", t.peak_activation_bytes)):
            out[key][i, j, k] = value
        if device is not None:
            out["latency_s"][i, j, k] = roofline(p.graph, device, dtype, batch).latency_s
        if training is not None:
            out["training_bytes"][i, j, k] = training_memory(p.graph, *training).total_bytes
        built[i, j, k] = True
    return out, built, skipped


def evaluate_grid(design, depths, widths, resolutions, batch: int = 1, dtype: str = "fp32", device=None,
                  training=None, progress=None) -> Grid:
    """MACs, FLOPs, params, weight bytes and peak activation bytes of every (depth, width, resolution)
    of a grid; with a device its roofline latency, with training = (precision, optimizer) a training
    step's memory (a graph per depth then: training memory is not a sum over repeats)."""
    depths, widths = np.asarray(depths, dtype=float).reshape(-1), np.asarray(widths, dtype=float).reshape(-1)
    sides = np.asarray(resolutions, dtype=np.int64).reshape(-1)
    dtype_size(dtype)
    if not _sides_follow_strides(design):
        out, built, skipped = _one_by_one(design, depths, widths, sides, batch, dtype, device, training, progress)
        path = "one by one through the graph path (its sides do not follow the strides)"
    else:
        low, reason = _smallest_side(design)
        usable = sides >= low
        # with a device, a graph per depth: the roofline's on-chip rule looks at each kernel's neighbours,
        # which a repeated block's template does not have (the last repeat meets the next stage)
        deep = training is None and device is None and _repeats_hold(design, dtype, device)
        path = "vectorised" + ("" if deep else ", a graph per depth")
        out = {k: np.zeros((len(depths), len(widths), len(sides))) for k in FIGURES}
        built, skipped = np.zeros(out["macs"].shape, dtype=bool), Counter()
        if (~usable).any():
            skipped[f"below {low} px: {reason}"] = len(depths) * len(widths) * int((~usable).sum())
        if usable.any():
            part, part_built, skipped_too = _evaluate(design, depths, widths, sides[usable], batch, dtype, device,
                                                      training, deep, progress)
            for k in FIGURES:
                out[k][:, :, usable] = part[k]
            built[:, :, usable] = part_built
            skipped.update(skipped_too)
    exact = [k for k in FIGURES if k != "latency_s"]
    beyond = built & np.any([out[k] >= EXACT for k in exact], axis=0)
    if beyond.any():
        skipped[f"a figure beyond 2^53 (about {EXACT:.2g}): too large to plan exactly"] += int(beyond.sum())
        built &= ~beyond
    ints = {k: np.where(built, out[k], 0).astype(np.int64) for k in exact}
    return Grid(depths, widths, sides, ints["macs"], ints["flops"], ints["params"], ints["weight_bytes"],
                ints["peak_bytes"], np.where(built, out["latency_s"], 0) if device is not None else None,
                ints["training_bytes"] if training is not None else None, built, skipped, path)


def evaluate(design, resolutions, batch: int = 1, dtype: str = "fp32", device=None, training=None) -> Grid:
    """`evaluate_grid` of one depth and width; an error, with the reason, when a resolution does not build."""
    grid = evaluate_grid(design, [design.depth_mult], [design.width_mult], resolutions, batch, dtype, device,
                         training)
    if not grid.built.all():
        raise EffplanError(f"{design.name}: {next(iter(grid.skipped))}")
    return grid


# ---- user input: grids, accuracy points, the objective ----

def grid(text: str, what: str, integer: bool = False) -> np.ndarray:
    """'1..3:0.25' (both ends included), '1,1.5,2' or '1.2'; `what` names the option in errors."""
    try:
        if ".." in text:
            span, _, step_text = text.partition(":")
            lo, hi = (float(x) for x in span.split(".."))
            step = float(step_text) if step_text else (8.0 if integer else 0.1)
            if not (step > 0 and all(map(math.isfinite, (lo, hi, step))) and lo <= hi):
                raise ValueError
            span_steps = (hi - lo) / step  # inf for a step like 1e-320: too many values, never floored
            count = math.floor(span_steps + 1e-9) + 1 if math.isfinite(span_steps) else math.inf
            if count > 100_000:
                raise EffplanError(f"{what} {quote(text)} gives {count:.0f} values; at most 100000")
            values = np.round(lo + step * np.arange(count), 10)
        else:
            values = np.array([float(x) for x in text.split(",")])
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
    from ..design.imported import is_file_model
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


def objective(kind: str, limits: dict, accuracy_file: str | None = None, w: float = -0.07):
    """The score designs are ranked by (higher is better), a function of a MACs array: the MACs
    themselves, or MnasNet's ACC x (MACs / T)^w with T = max_macs and ACC from the user's points."""
    if kind == "macs":
        if accuracy_file:
            raise EffplanError("--accuracy applies with --objective mnas")
        return lambda macs: np.asarray(macs, dtype=float)
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
    if TRAINING_STEP & set(constraints.limits):  # a step at the search's batch on one device
        from ..plan.training import training_step
        device = constraints.device
        step = training_step(graph, device, runtime=device.runtime or None,
                             precision=constraints.precision, optimizer=constraints.optimizer)
        out.update(training_step_s=step.time_s, training_images_per_s=step.images_per_s)
    return out


TRAINING_STEP = frozenset({"max_training_step_time", "min_training_throughput"})


def design_at(design, depth: float, width: float, resolution: int):
    return dataclasses.replace(design, depth_mult=float(depth), width_mult=float(width), resolution=int(resolution),
                               phi=None, coefficients="search")


PARETO = (("macs", +1), ("inference_bytes", -1), ("latency_s", -1))  # +1: more is better


def grid_search(design, depths, widths, resolutions, constraints: Constraints, score, top: int = 10,
                progress=None) -> tuple[list[dict], dict]:
    """The best designs of a (depth, width, resolution) grid: every design evaluated vectorised and
    screened against every constraint, ranked by `score` (a function of a MACs array), then checked
    exactly through the graph path until `top` pass. Returns (ranked designs, possibly none;
    statistics, with the Pareto front of every feasible design). A grid none of which builds is an error."""
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
    scores = np.asarray(score(g.macs.ravel()[feasible]), dtype=float)
    i, j, k = np.unravel_index(feasible, g.built.shape)
    ranking = feasible[np.lexsort((g.widths[j], g.depths[i], g.resolutions[k], -scores))]  # ties: smallest r, d, w
    score_of = dict(zip(feasible.tolist(), scores.tolist()))
    ranked, tried, seen = [], 0, set()
    for flat in ranking[:50 * top]:
        if len(ranked) >= top:
            break
        tried += 1
        found = describe(flat)
        figures = exact(design_at(design, found["depth_mult"], found["width_mult"], found["resolution"]), constraints)
        same = (found["resolution"], figures["macs"], figures["params"], figures["inference_bytes"])  # depths alike
        if constraints.satisfied(figures) and same not in seen:
            seen.add(same)
            ranked.append({**found, "score": score_of[flat], **_public(figures)})
    stats.update(screened_in=len(feasible), checked_exactly=tried,
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


def run(design, limits: dict, *, batch: int = 1, dtype: str = "fp32", device=None, runtime=None, precision: str = "mixed",
        optimizer: str = "adamw", depths="1..3:0.1", widths="1..2:0.05", resolutions=None, top: int = 10,
        objective_kind: str = "macs", accuracy_file: str | None = None, mnas_w: float = -0.07, progress=None):
    """`effplan search`: the largest φ and the best grid designs of a base design within `limits`
    (budget keys -> numbers). Returns (designs best first, each marked `pareto`; the Pareto front;
    the grid statistics; the constraints). Nothing fitting is NoFit (exit 1)."""
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
    if "max_training_hours" in limits:
        raise EffplanError("max_training_hours: search bounds one training step (max_training_step_time, "
                           "min_training_throughput); check a run's hours with a budget or effplan train")
    if TRAINING_STEP & set(limits) and device.runtime:
        from ..plan.runtime import training_runtime
        training_runtime(device.runtime)
    constraints = Constraints(limits, batch, dtype, device, precision, optimizer)
    score = objective(objective_kind, limits, accuracy_file, mnas_w)
    depths, widths = grid(depths, "--depth"), grid(widths, "--width")
    sides = (grid(resolutions, "--resolution", integer=True) if resolutions
             else np.arange(design.resolution, 3 * design.resolution + 1, 8))
    check_grid(design, depths, widths, sides)
    ranked, stats = grid_search(design, depths, widths, sides, constraints, score, top, progress)
    phi = largest_phi(design, constraints)
    if phi:
        phi["score"] = float(score(np.array([phi["macs"]]))[0])
    designs = sorted(ranked + ([phi] if phi else []), key=lambda d: -d["score"])
    if not designs:
        raise NoFit(no_fit_message(constraints, stats))
    front = pareto(stats["front"] + ([phi] if phi else []))  # the grid's front already beats the rest
    for d in designs:
        d["pareto"] = on_front(d, front)
    return designs, front, stats, constraints
