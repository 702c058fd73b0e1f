"""The calibration loop: measure this machine into a device file, and time a model in onnxruntime
beside its roofline estimate, kernel by kernel."""
from __future__ import annotations

import bisect
import datetime
import json
import math
import os
import platform
import statistics
import tempfile
import time

import numpy as np

from ..base.errors import EffplanError


UNSTEADY = 0.2  # repeated runs whose median is this far above the best: the machine was busy
BUSY_LOAD = 0.5  # a 1-minute load average above this before timing: other work holds part of a core


def spread(times: list[float]) -> float:
    """How far the median run is above the best one (0.25: 25% slower). On a quiet machine repeated
    runs agree within a few percent; more means other work shared the cores."""
    best = min(times)
    return statistics.median(times) / best - 1 if best > 0 else 0.0


def unsteady_warnings(spreads: dict) -> list[str]:
    """A warning for each timing whose repeated runs disagree by more than UNSTEADY."""
    return [f"repeated {what} runs disagree (the median is {value:.0%} above the best): the machine "
            f"looks busy, so these timings are unreliable; run again on a quiet machine"
            for what, value in spreads.items() if value > UNSTEADY]


def load_warnings(load: float | None = None) -> list[str]:
    """A warning when the 1-minute load average, read before timing, shows other work on the cores:
    the timings use every core (numpy's BLAS, onnxruntime's thread pool), so any other runnable
    process slows them, and a calibration taken then under-rates the machine."""
    if load is None:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if load <= BUSY_LOAD:
        return []
    return [f"the load average is {load:.2f} on {os.cpu_count()} cores before timing: other work is "
            f"running, so these timings are slowed and unsteady; run again on a quiet machine"]


def _over_rounds(rounds: list[dict], spreads: dict) -> dict:
    """Each figure's best round (figures are seconds or seconds per unit: other work only ever adds
    to them, so the least is the machine's own), its spread over the rounds into `spreads`."""
    figures = {}
    for key in rounds[0]:
        values = [r[key] for r in rounds]
        figures[key] = min(values)
        spreads[key] = spread(values)
    return figures


def _windows(steps: dict, windows: int, runs: int, spreads: dict) -> dict:
    """Each step's figures over `windows` rounds (see _over_rounds), every round timing every step once
    (best of `runs` after a warm-up), so that a burst of other work lands on one round of each, not on
    every run of one. A step returns a dict of figures (seconds, or anything larger-is-slower) from
    one timed run."""
    rounds: dict[str, list[dict]] = {name: [] for name in steps}
    for name, step in steps.items():
        step()  # warm up: first-run allocation, thread-pool start, weight prepacking
    for _ in range(windows):
        for name, step in steps.items():
            results = [step() for _ in range(runs)]
            rounds[name].append({k: min(r[k] for r in results) for k in results[0]})
    return {key: value for found in rounds.values() if found[0] for key, value in _over_rounds(found, spreads).items()}


def _timed(fn):
    def step():
        start = time.perf_counter()
        fn()
        return {"seconds": time.perf_counter() - start}
    return step


def _cache_bytes() -> tuple[int, str]:
    """The largest CPU cache Linux reports, or a stated default."""
    best = 0
    for index in range(8):
        path = f"/sys/devices/system/cpu/cpu0/cache/index{index}/size"
        try:
            text = open(path).read().strip()
        except OSError:
            continue
        scale = {"K": 1 << 10, "M": 1 << 20}.get(text[-1], 1)
        best = max(best, int(text.rstrip("KM")) * scale)
    return (best, "read from /sys/devices/system/cpu/cpu0/cache") if best else (8 << 20, "not reported; 8 MiB assumed")


PROBE_SIDE = 56


def probe_graph(side: int = PROBE_SIDE):
    """The calibration network: each op class as onnxruntime runs it inside a network (the conv
    after a conv reads NCHWc, no layout reorder around it): three dense convs (1x1 32->64, 3x3 64->64,
    1x1 64->128, each + ReLU), three 3x3 depthwise convs on 128 channels (+ ReLU), an SE block (pool,
    1x1 reduce to 32 + Swish, 1x1 expand + Sigmoid: kernels on 1x1 maps that do next to no work, so
    their time is what a kernel costs to run at all; the scale Mul) and a 1x1 projection to 32."""
    from types import SimpleNamespace

    from ..design.blocks import activation, conv, squeeze_excite
    from ..graph.builder import GraphBuilder

    b = GraphBuilder("calibration", (1, 32, side, side))
    b.at("dense", 0)
    x = "input"
    for layer, channels, kernel in (("c1", 64, 1), ("c2", 64, 3), ("c3", 128, 1)):
        x = activation(b, conv(b, x, channels, kernel, 1, layer), "relu", layer)
    b.at("depthwise", 0)
    for i in range(3):
        x = activation(b, conv(b, x, 128, 3, 1, f"dw{i}", group=128), "relu", f"dw{i}")
    b.at("se", 0)
    x = squeeze_excite(b, x, 32, SimpleNamespace(act="swish"))
    b.at("project", 0)
    return b.finish(conv(b, x, 32, 1, 1, "project"))


def _per_run(events: list, nodes: set[str]) -> list[tuple[dict[str, float], float, int]]:
    """Per profiled run, in order: each effplan node's kernel time ("" for kernels that belong to no
    node: layout reorders and the like), the run's whole time in onnxruntime (kernels and the
    executor's work between them) and its number of kernels."""
    runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events
                  if e.get("cat") == "Session" and e.get("name") == "model_run")
    starts = [start for start, _ in runs]
    per_run: list[dict[str, float]] = [{} for _ in runs]
    counts = [0] * len(runs)
    for event in events:
        if event.get("cat") != "Node" or not event.get("name", "").endswith("_kernel_time"):
            continue
        i = bisect.bisect_right(starts, event["ts"]) - 1
        if i < 0 or event["ts"] > runs[i][1]:
            continue
        owner = _owner(event["name"], nodes) or ""
        per_run[i][owner] = per_run[i].get(owner, 0.0) + event["dur"] * 1e-6
        counts[i] += 1
    return [(run, (end - start) * 1e-6, count) for run, (start, end), count in zip(per_run, runs, counts)]


PROBE_RUNS = 3  # profiled runs of the calibration network per timed step (each takes about 2 ms)


def _probe_figures(runs: list, graph) -> dict:
    """Profiled runs of the calibration network (one round) -> seconds per dense-conv FLOP and per
    depthwise FLOP (kernel time beyond a kernel's fixed cost), a kernel's fixed cost (the median
    SE-gate kernel, on a 1x1 map) and the executor's time between kernels. Each kernel's best run:
    on a busy machine one kernel of a run waits a scheduler slice (15 ms) for a thread the pool forks
    to, so the best whole run is rarely clean where each kernel's best is."""
    from ..graph.ops import node_cost

    best = {n: min(run.get(n, 0.0) for run, _, _ in runs) for n in graph.nodes}
    between = min(max(duration - sum(run.values()), 0.0) / max(count, 1) for run, duration, count in runs)
    # onnxruntime names the fused expand conv + Sigmoid after the gate, a fused conv + ReLU after the ReLU
    tiny = statistics.median(best[n] for n in ("se.0.se.reduce", "se.0.se.swish", "se.0.se.gate"))
    found = {"kernel": tiny, "between": between}
    # memory-bound: the SE pool and scale Mul read (and write) 128x56x56 fp32, beyond their fixed cost
    moved = sum(4 * math.prod(graph.graph["tensors"][t]) for n in ("se.0.se.pool", "se.0.se.scale")
                for t in (*graph.nodes[n]["inputs"], *graph.nodes[n]["outputs"]))
    found["memory"] = max(best["se.0.se.pool"] + best["se.0.se.scale"] - 2 * tiny, 1e-9) / moved
    for key in ("dense", "depthwise"):
        convs = [n for n in graph.nodes if n.startswith(key + ".") and graph.nodes[n]["op"] == "Conv"]
        work = sum(best[n] for n in graph.nodes if n.startswith(key + ".")) - tiny * len(convs)
        found[key] = max(work, 1e-9) / sum(node_cost(graph, n, 4).flops for n in convs)
    return found


def _runtime_steps(folder: str):
    """The steps calibrate times for onnxruntime, and a function of (windows, runs, spreads) that
    turns them into figures: each op class timed inside the calibration network (probe_graph), every
    run profiled; numpy stand-ins where onnxruntime is not installed."""
    try:
        import onnxruntime as ort
    except ImportError:
        x = np.ones(1, np.float32)
        n = 1 << 15
        a, b, c = (np.ones(n, np.float32) for _ in range(3))

        def fma():
            for _ in range(200):
                np.multiply(a, b, out=c)
                np.add(c, a, out=c)
        steps = {"launch": lambda: {"launch": _timed(lambda: [np.maximum(x, 0, out=x) for _ in range(1000)])()
                                    ["seconds"] / 1000},
                 "vector": lambda: {"vector": _timed(fma)()["seconds"]}}

        def finish(found, windows, runs, spreads):
            return {"launch": (found["launch"], "numpy ufunc call on one element (onnxruntime not installed)"),
                    "kind": "numpy multiply-add", "dense": None, "bandwidth": None,
                    "vector": (2 * n * 200 / found["vector"], "numpy multiply-add on 32768-element fp32 arrays "
                                                              "in cache (onnxruntime not installed)")}
        return steps, finish
    from ..onnx.export import to_onnx

    graph = probe_graph()
    options = ort.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = os.path.join(folder, "probe")
    session = ort.InferenceSession(to_onnx(graph).SerializeToString(), options, providers=["CPUExecutionProvider"])
    feed = {"input": np.random.default_rng(3).standard_normal(graph.graph["tensors"]["input"], dtype=np.float32)}

    def finish(found, windows, runs, spreads):
        with open(session.end_profiling()) as fh:
            profiled = _per_run(json.load(fh), set(graph.nodes))[PROBE_RUNS:]  # after the warm-up step
        per = runs * PROBE_RUNS
        figures = _over_rounds([_probe_figures(profiled[i * per:(i + 1) * per], graph) for i in range(windows)],
                               spreads)
        where = (f"onnxruntime {ort.__version__}, inside effplan's calibration network (plan/measure.py "
                 f"probe_graph, {PROBE_SIDE}x{PROBE_SIDE}): best of {windows} rounds, each kernel's best of {runs * PROBE_RUNS} runs")
        return {"launch": (figures["kernel"] + figures["between"],
                           f"{where}: the median SE-gate kernel on a 1x1 map ({figures['kernel'] * 1e6:.2f} us) + the "
                           f"executor's time between kernels ({figures['between'] * 1e6:.2f} us)"),
                "kind": "depthwise conv in a network", "dense": (1 / figures["dense"], f"{where}: three dense convs"),
                "bandwidth": (1 / figures["memory"], f"{where}: the SE pool and scale Mul on 128x56x56 (read + write "
                                                    f"bytes), time beyond a kernel's fixed cost"),
                "vector": (1 / figures["depthwise"], f"{where}: three 3x3 depthwise convs on 128 channels, 2*9 FLOP "
                                                     f"per output, time beyond a kernel's fixed cost")}
    def probe():
        for _ in range(PROBE_RUNS):
            session.run(None, feed)  # profiled: finish reads every run back from the profile
        return {}
    return {"probe": probe}, finish


def machine_memory() -> int:
    """This machine's physical memory in bytes (8 GiB assumed where the OS does not say)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 8 << 30


def calibrate(name: str = "local-cpu", size: int = 1024, copy_bytes: int = 256 << 20,
              windows: int = 5) -> tuple[str, dict]:
    """Measure this machine into a device file: the matrix unit's peak (numpy GEMM of size x size)
    and onnxruntime's share of it in dense convs (its efficiency); the vector unit (depthwise convs),
    the bandwidth memory-bound kernels reach and a kernel's fixed cost, all inside the calibration
    network (probe_graph); a numpy copy of copy_bytes through DRAM for comparison; each the median of
    `windows` rounds, with its spread, every round timing every figure once. Return the file's text
    and the figures. Tests pass small sizes: the defaults need about 3 s and 512 MiB."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0  # before our own work raises it
    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    b = a.T.copy()
    big = np.ones(copy_bytes // 4, np.float32)
    out = np.empty_like(big)
    spreads: dict[str, float] = {}
    runs = 2
    with tempfile.TemporaryDirectory() as folder:
        runtime_steps, finish = _runtime_steps(folder)
        found = _windows({"matrix": lambda: {"matrix": _timed(lambda: a @ b)()["seconds"]},
                          "copy": lambda: {"copy": _timed(lambda: np.copyto(out, big))()["seconds"]},
                          **runtime_steps}, windows, runs, spreads)
        runtime = finish(found, windows, runs, spreads)
    gemm = 2 * size ** 3 / found["matrix"]
    copy = 2 * big.nbytes / found["copy"]
    # kernels in a network move tensors a few MB large, mostly through the caches: far faster than a
    # copy through DRAM, which stays the figure only without onnxruntime
    bandwidth, bandwidth_source = runtime["bandwidth"] or (copy, "")
    bandwidth_source = (f"{bandwidth_source}; a numpy copyto of a {copy_bytes >> 20} MiB fp32 array through DRAM "
                        f"(read + write bytes, {windows} rounds, each best of 2) gives {copy / 1e9:.1f} GB/s").lstrip("; ")
    vector, vector_source = runtime["vector"]
    dispatch, dispatch_source = runtime["launch"]
    # the matrix unit's peak is the faster of numpy's GEMM and onnxruntime's dense convs (a GEMM timed
    # in a burst of other work can come out slower), and the efficiency the convs' share of it, so that
    # peak x efficiency is what onnxruntime's convs achieve
    gemm = max(gemm, runtime["dense"][0]) if runtime["dense"] else gemm
    matrix_efficiency = runtime["dense"][0] / gemm if runtime["dense"] else 1.0
    efficiency_source = (f"matrix: dense convs in onnxruntime ({runtime['dense'][0] / 1e9:.1f} GFLOP/s, "
                         f"{runtime['dense'][1]}) over the numpy GEMM peak" if runtime["dense"]
                         else "matrix 1.0: onnxruntime not installed, the numpy GEMM is the rate")
    cache, cache_source = _cache_bytes()
    memory = machine_memory()
    block, block_source = nchwc_block()
    when = datetime.date.today().isoformat()
    cpu = platform.processor() or platform.machine()
    rounds = f"best of {windows} rounds"
    spread_note = ", ".join(f"{k} {v:.0%}" for k, v in spreads.items())
    figures = {"matrix_fp32": gemm, "vector_fp32": vector, "bandwidth": bandwidth, "onchip": cache,
               "launch": dispatch, "memory": memory, "vector_kind": runtime["kind"], "spreads": spreads,
               "matrix_efficiency": matrix_efficiency, "load": load, "nchwc_block": block, "copy_bandwidth": copy}
    block_line = f"nchwc_block = {block}\n" if block else ""
    block_sourced = f'nchwc_block = "{block_source}"\n' if block else ""
    text = f'''# {cpu}, {os.cpu_count()} logical cores: measured by `effplan calibrate` on {when}
# spread over the rounds (median over best - 1; above {UNSTEADY:.0%}: a busy machine): {spread_note};
# 1-minute load average before timing: {load:.2f}
name = "{name}"
description = "this machine ({cpu}, {os.cpu_count()} logical cores), measured"
class = "server-cpu"
memory_gb = {memory / (1 << 30):.3f}
bandwidth_gbs = {bandwidth / 1e9:.3f}
onchip_mb = {cache / (1 << 20):.3f}
launch_overhead_us = {dispatch * 1e6:.3f}
{block_line}
[matrix]
fp32 = {gemm / 1e12:.6f}

[vector]
fp32 = {vector / 1e12:.6f}

[efficiency]  # matrix: the share of the GEMM peak onnxruntime's convs reach; the rest are measured as runs
matrix = {matrix_efficiency:.4f}
vector = 1.0
bandwidth = 1.0

[sources]
description = "effplan calibrate, {when}"
memory_gb = "os.sysconf physical pages x page size"
bandwidth_gbs = "{bandwidth_source}"
onchip_mb = "{cache_source}"
launch_overhead_us = "{dispatch_source}"
matrix = "the faster of numpy fp32 GEMM {size}x{size}x{size} (2*n^3 FLOP, {rounds}, each best of 2, all threads numpy's BLAS uses) and onnxruntime's dense convs"
vector = "{vector_source}"
efficiency = "{efficiency_source}; vector and bandwidth 1.0: measured as they run"
{block_sourced}'''
    return text, figures


def nchwc_block() -> tuple[int, str]:
    """onnxruntime's NCHWc channel block on this CPU: MLAS picks 16 floats where AVX-512F is present,
    8 with AVX2, and no blocked layout otherwise (onnxruntime/core/mlas/lib/platform.cpp)."""
    try:
        flags = next((line.split(":", 1)[1].split() for line in open("/proc/cpuinfo") if line.startswith("flags")), [])
    except OSError:
        return 0, ""
    where = "/proc/cpuinfo flags; MLAS (onnxruntime/core/mlas/lib/platform.cpp): 16 with AVX-512F, 8 with AVX2"
    return (16, where) if "avx512f" in flags else (8, where) if "avx2" in flags else (0, where)


# ---- measure: the model in onnxruntime beside its estimate ----

def _ranks(values: list[float]) -> np.ndarray:
    """Ranks from 1, ties sharing their mean rank."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    sorted_values = np.asarray(values)[order]
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and sorted_values[j + 1] == sorted_values[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rank correlation: the Pearson correlation of the ranks."""
    if len(a) != len(b) or len(a) < 2:
        raise ValueError("spearman needs two lists of the same length, at least 2")
    ra, rb = _ranks(a), _ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = float(np.sqrt((ra ** 2).sum() * (rb ** 2).sum()))
    return float((ra * rb).sum() / denominator) if denominator else 0.0


def _owner(measured_name: str, nodes: set[str]) -> str | None:
    """The effplan node an onnxruntime profile entry belongs to: runtimes keep the name of the node
    they fused into (e.g. 'stage1.block0.dw.bn_nchwc', 'stem.0.swish/QuickGeluFusion/')."""
    base = measured_name.removesuffix("_kernel_time")
    best = None
    for end in range(len(base), 0, -1):
        if base[:end] in nodes and (end == len(base) or not base[end].isalnum()):
            best = base[:end]
            break
    return best


def _per_node_times(events: list, nodes: set[str], skip: int) -> dict:
    """Over the profiled runs after the first `skip`: each effplan node's median time per run (a
    median, so one run pre-empted by another process does not move it) and its best; the median
    time per run of kernels that belong to no effplan node ("", layout reorders and the like); each
    run's time as onnxruntime's profile gives it (kernels and the executor between them); and the best
    total: every kernel's best run and the executor's least time, what a quiet machine would show
    (other work only ever adds time, and on a busy machine few runs escape it whole)."""
    runs = _per_run(events, nodes)[skip:]
    owners = {o for run, _, _ in runs for o in run}
    best = {o: min(run.get(o, 0.0) for run, _, _ in runs) for o in owners}
    return {"median": {o: statistics.median(run.get(o, 0.0) for run, _, _ in runs) for o in owners},
            "best": best, "durations": [duration for _, duration, _ in runs],
            "best_total": sum(best.values()) + min((max(d - sum(run.values()), 0.0) for run, d, _ in runs), default=0)}


def _refuse_past_memory(graph, in_memory: bool) -> None:
    """One line, before onnxruntime or numpy would be killed: a built design is serialised in memory
    (up to protobuf's 2 GB), and the run holds the weights, its random input and the activations."""
    from ..base.resources import memory_left
    from ..base.units import human_bytes
    from ..onnx.export import PROTO_LIMIT
    from .profile import profile

    t = profile(graph).totals
    if in_memory and t.weight_bytes > PROTO_LIMIT:
        raise EffplanError(f"measure runs a built design of up to 2 GB of weights, and this one has "
                           f"{human_bytes(t.weight_bytes)}; export it and measure the file")
    inputs = sum(4 * math.prod(graph.graph["tensors"][i]) for i in graph.graph["inputs"])
    need = 3 * t.weight_bytes + 2 * inputs + t.peak_activation_bytes
    left = memory_left()
    if left is not None and need > left:
        raise EffplanError(f"measure needs about {human_bytes(need)} of memory (weights, input and activations); "
                           f"{human_bytes(left)} is left")


def measure(graph, design, result, runs: int = 20, provider: str = "CPUExecutionProvider") -> dict:
    """Run the graph in onnxruntime with profiling; per-kernel measured time beside the estimate."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise EffplanError("measure needs onnxruntime: pip install 'effplan[run]'") from None
    from ..onnx.export import to_onnx

    if provider not in ort.get_available_providers():
        raise EffplanError(f"onnxruntime here has no {provider}; it has: {', '.join(ort.get_available_providers())}")
    built = design is None or design.spec is not None  # None: a graph of effplan's own (the calibration network)
    _refuse_past_memory(graph, built)
    model = to_onnx(graph, design).SerializeToString() if built else design.path  # a file runs itself
    with tempfile.TemporaryDirectory() as folder:
        options = ort.SessionOptions()
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(folder, "profile")
        session = ort.InferenceSession(model, options, providers=[provider])
        rng, kinds = np.random.default_rng(0), {i.name: i.type for i in session.get_inputs()}
        feed = {t: rng.standard_normal(graph.graph["tensors"][t]).astype(
                    np.float16 if kinds.get(t) == "tensor(float16)" else np.float32) for t in graph.graph["inputs"]}
        warmup = 3
        walls = []
        for i in range(warmup + runs):
            start = time.perf_counter()
            session.run(None, feed)
            walls.append(time.perf_counter() - start)
        with open(session.end_profiling()) as fh:
            events = json.load(fh)
    times = _per_node_times(events, set(graph.nodes), warmup)
    per_node, durations, best = times["median"], times["durations"], times["best_total"]
    unassigned = per_node.pop("", 0.0)
    reorder_events = [e for e in events if e.get("cat") == "Node" and e.get("args", {}).get("op_name", "")
                      in ("ReorderInput", "ReorderOutput")]
    modelled = [k for k in result.kernels if k.op in ("ReorderInput", "ReorderOutput")]
    rows = []
    for k in result.kernels:
        measured = sum(per_node.get(n, 0.0) for n in k.nodes)
        rows.append({"name": k.name, "op": k.op, "stage": k.stage, "block": k.block, "unit": k.unit,
                     "bound": k.bound, "estimated_s": k.time_s, "measured_s": measured,
                     "best_s": sum(times["best"].get(n, 0.0) for n in k.nodes),
                     "ratio": k.time_s / measured if measured else None})
    timed = [r for r in rows if r["measured_s"] > 0]
    # the total from the same profiled runs as the per-kernel times (each run's time inside onnxruntime),
    # so the two compare like with like; the caller's wall clock adds session.run's own overhead
    measured_total = statistics.median(durations) if durations else statistics.median(walls[warmup:])
    return {"provider": provider, "onnxruntime": ort.__version__, "runs": runs,
            "estimated_s": result.latency_s, "measured_s": measured_total, "wall_s": statistics.median(walls[warmup:]),
            "ratio": result.latency_s / measured_total, "spread": spread(durations or walls[warmup:]),
            "best_s": best, "ratio_best": result.latency_s / best if best else None,
            # onnxruntime's layout reorders map to no effplan node: their time is the unassigned time
            "reorders": {"modelled": len(modelled), "estimated_s": sum(k.time_s for k in modelled),
                         "measured": len(reorder_events) // (warmup + runs), "measured_s": unassigned},
            "spearman": spearman([r["estimated_s"] for r in timed], [r["measured_s"] for r in timed])
            if len(timed) > 1 else None,
            "spearman_best": spearman([r["estimated_s"] for r in timed], [r["best_s"] for r in timed])
            if len(timed) > 1 else None,
            "kernels_timed": len(timed), "unassigned_s": unassigned,
            "profiled_s": sum(per_node.values()) + unassigned, "layers": rows}
