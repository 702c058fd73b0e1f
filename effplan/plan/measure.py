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


def spread(times: list[float]) -> float:
    """How far the median run is above the best one (0.25: 25% slower). On a quiet machine repeated
    runs agree within a few percent; more means other work shared the cores."""
    best = min(times)
    return statistics.median(times) / best - 1 if best > 0 else 0.0


def unsteady_warnings(spreads: dict) -> list[str]:
    """A warning for each timing whose repeated runs disagree by more than UNSTEADY."""
    return [f"warning: repeated {what} runs disagree (the median is {value:.0%} above the best): the machine "
            f"looks busy, so these timings are unreliable; run again on a quiet machine"
            for what, value in spreads.items() if value > UNSTEADY]


def _best_seconds(fn, repeats: int, spreads: dict | None = None, what: str = "") -> float:
    """The best of `repeats` timed runs after a warm-up; their spread goes into `spreads[what]`."""
    fn()  # warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    if spreads is not None:
        spreads[what] = max(spreads.get(what, 0.0), spread(times))
    return min(times)


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


def _session(nodes, inputs, outputs, initializers=()):
    import onnx
    import onnxruntime as ort
    from onnx import helper

    graph = helper.make_graph(nodes, "calibrate", inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return ort.InferenceSession(onnx.shape_inference.infer_shapes(model).SerializeToString(),
                                providers=["CPUExecutionProvider"])


def _runtime_figures(spreads: dict) -> dict:
    """What onnxruntime achieves here: per-op dispatch (a chain of 64 one-element ReLUs against one)
    and depthwise-conv throughput (the vector unit's main customer), or numpy stand-ins without it."""
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        x = np.ones(1, np.float32)
        per_call = _best_seconds(lambda: [np.maximum(x, 0, out=x) for _ in range(1000)], 5, spreads, "launch") / 1000
        n = 1 << 15
        a, b, c = (np.ones(n, np.float32) for _ in range(3))

        def fma():
            for _ in range(200):
                np.multiply(a, b, out=c)
                np.add(c, a, out=c)
        return {"launch": (per_call, "numpy ufunc call on one element (onnxruntime not installed)"),
                "kind": "numpy multiply-add",
                "vector": (2 * n * 200 / _best_seconds(fma, 5, spreads, "vector"), "numpy multiply-add on 32768-element fp32 arrays "
                                                               "in cache (onnxruntime not installed)")}
    one = [helper.make_tensor_value_info("x0", TensorProto.FLOAT, [1])]

    def relu_chain(length):
        nodes = [helper.make_node("Relu", [f"x{i}"], [f"x{i + 1}"]) for i in range(length)]
        session = _session(nodes, one, [helper.make_tensor_value_info(f"x{length}", TensorProto.FLOAT, [1])])
        feed = {"x0": np.ones(1, np.float32)}
        return _best_seconds(lambda: [session.run(None, feed) for _ in range(50)], 5, spreads, "launch") / 50
    per_op = max((relu_chain(65) - relu_chain(1)) / 64, 1e-7)
    c, side = 128, 56
    weight = numpy_helper.from_array(np.random.default_rng(2).standard_normal((c, 1, 3, 3), dtype=np.float32), "w")
    conv = helper.make_node("Conv", ["x", "w"], ["y"], group=c, kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    session = _session([conv], [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, side, side])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, c, side, side])], [weight])
    feed = {"x": np.random.default_rng(3).standard_normal((1, c, side, side), dtype=np.float32)}
    seconds = _best_seconds(lambda: [session.run(None, feed) for _ in range(20)], 5, spreads, "vector") / 20
    return {"launch": (per_op, f"onnxruntime {ort.__version__}: a chain of 65 one-element ReLUs minus one, per op"),
            "kind": "depthwise conv",
            "vector": (2 * 9 * c * side * side / seconds,
                       f"onnxruntime {ort.__version__}: 3x3 depthwise conv on 1x{c}x{side}x{side} fp32, "
                       f"2*9 FLOP per output, best of 5")}


def machine_memory() -> int:
    """This machine's physical memory in bytes (8 GiB assumed where the OS does not say)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 8 << 30


def calibrate(name: str = "local-cpu", size: int = 2048, copy_bytes: int = 256 << 20) -> tuple[str, dict]:
    """Measure matrix throughput (numpy GEMM of size x size), vector throughput (a depthwise conv in
    onnxruntime), copy bandwidth (numpy, copy_bytes: far beyond any cache) and per-op overhead; return a
    device file's text and the figures. Tests pass small sizes: the defaults need 2 s and 512 MiB."""
    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    b = a.T.copy()
    spreads: dict[str, float] = {}
    gemm = 2 * size ** 3 / _best_seconds(lambda: a @ b, 5, spreads, "matrix")
    runtime = _runtime_figures(spreads)
    vector, vector_source = runtime["vector"]
    dispatch, dispatch_source = runtime["launch"]
    big = np.ones(copy_bytes // 4, np.float32)
    out = np.empty_like(big)
    bandwidth = 2 * big.nbytes / _best_seconds(lambda: np.copyto(out, big), 5, spreads, "bandwidth")
    cache, cache_source = _cache_bytes()
    memory = machine_memory()
    when = datetime.date.today().isoformat()
    cpu = platform.processor() or platform.machine()
    figures = {"matrix_fp32": gemm, "vector_fp32": vector, "bandwidth": bandwidth, "onchip": cache,
               "launch": dispatch, "memory": memory, "vector_kind": runtime["kind"], "spreads": spreads}
    text = f'''# {cpu}, {os.cpu_count()} logical cores: measured by `effplan calibrate` on {when}
name = "{name}"
description = "this machine ({cpu}, {os.cpu_count()} logical cores), measured"
class = "server-cpu"
memory_gb = {memory / (1 << 30):.3f}
bandwidth_gbs = {bandwidth / 1e9:.3f}
onchip_mb = {cache / (1 << 20):.3f}
launch_overhead_us = {dispatch * 1e6:.3f}

[matrix]
fp32 = {gemm / 1e12:.6f}

[vector]
fp32 = {vector / 1e12:.6f}

[efficiency]  # measured figures are what kernels achieve already
matrix = 1.0
vector = 1.0
bandwidth = 1.0

[sources]
description = "effplan calibrate, {when}"
memory_gb = "os.sysconf physical pages x page size"
bandwidth_gbs = "numpy copyto of a {copy_bytes >> 20} MiB fp32 array (read + write bytes), best of 5"
onchip_mb = "{cache_source}"
launch_overhead_us = "{dispatch_source}"
matrix = "numpy fp32 GEMM {size}x{size}x{size} (2*n^3 FLOP), best of 5, all threads numpy's BLAS uses"
vector = "{vector_source}"
efficiency = "1.0: the peaks above are measured, not datasheet figures"
'''
    return text, figures


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


def _per_node_medians(events: list, nodes: set[str], skip: int) -> tuple[dict[str, float], float]:
    """Each effplan node's median time per run, over the profiled runs after the first `skip`
    (a median, so one run pre-empted by another process does not move it); and the median time
    per run of profiled kernels that belong to no effplan node (layout reorders and the like)."""
    runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events
                  if e.get("cat") == "Session" and e.get("name") == "model_run")[skip:]
    starts = [start for start, _ in runs]
    per_run: list[dict[str, float]] = [{} for _ in runs]
    for event in events:
        if event.get("cat") != "Node" or not event.get("name", "").endswith("_kernel_time"):
            continue
        i = bisect.bisect_right(starts, event["ts"]) - 1
        if i < 0 or event["ts"] > runs[i][1]:
            continue  # a warm-up run
        owner = _owner(event["name"], nodes) or ""
        per_run[i][owner] = per_run[i].get(owner, 0.0) + event["dur"] * 1e-6
    if not per_run:
        return {}, 0.0
    owners = {o for run in per_run for o in run}
    medians = {o: statistics.median(run.get(o, 0.0) for run in per_run) for o in owners}
    return {o: t for o, t in medians.items() if o}, medians.get("", 0.0)


def _refuse_past_memory(graph, in_memory: bool) -> None:
    """One line, before onnxruntime or numpy would be killed: a built design is serialised in memory
    (up to protobuf's 2 GB), and the run holds the weights, its random input and the activations."""
    from ..base.resources import memory_left
    from ..base.units import human_bytes
    from ..graph.onnx_io import PROTO_LIMIT
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
    from ..graph.onnx_io import to_onnx

    if provider not in ort.get_available_providers():
        raise EffplanError(f"onnxruntime here has no {provider}; it has: {', '.join(ort.get_available_providers())}")
    _refuse_past_memory(graph, design.spec is not None)
    model = design.path if design.spec is None else to_onnx(graph, design).SerializeToString()  # a file runs itself
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
    per_node, unassigned = _per_node_medians(events, set(graph.nodes), warmup)
    rows = []
    for k in result.kernels:
        measured = sum(per_node.get(n, 0.0) for n in k.nodes)
        rows.append({"name": k.name, "op": k.op, "stage": k.stage, "block": k.block, "unit": k.unit,
                     "bound": k.bound, "estimated_s": k.time_s, "measured_s": measured,
                     "ratio": k.time_s / measured if measured else None})
    timed = [r for r in rows if r["measured_s"] > 0]
    measured_total = statistics.median(walls[warmup:])  # its spread tells a busy machine
    return {"provider": provider, "onnxruntime": ort.__version__, "runs": runs,
            "estimated_s": result.latency_s, "measured_s": measured_total,
            "ratio": result.latency_s / measured_total, "spread": spread(walls[warmup:]),
            "spearman": spearman([r["estimated_s"] for r in timed], [r["measured_s"] for r in timed])
            if len(timed) > 1 else None,
            "kernels_timed": len(timed), "unassigned_s": unassigned,
            "profiled_s": sum(per_node.values()) + unassigned, "layers": rows}
