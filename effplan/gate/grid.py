"""The vectorised grid evaluation of the search (gate/search.py): figures of every design of a
(depth, width, resolution) grid at once.

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

from ..base.errors import EffplanError
from ..base.units import dtype_size
from ..graph.ops import COSTS, weight_counts

EXACT = 2.0 ** 53  # float64 holds every integer below this
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


def design_at(design, depth: float, width: float, resolution: int):
    return dataclasses.replace(design, depth_mult=float(depth), width_mult=float(width), resolution=int(resolution),
                               phi=None, coefficients="search")
