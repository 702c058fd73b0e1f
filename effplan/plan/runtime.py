"""Runtimes: how an inference engine turns the graph into kernels, one TOML file per runtime under
specs/runtimes/ (schema and sources: specs/runtimes/README.md). A runtime says which ops fuse into
one kernel, which always run alone, what a kernel launch costs and whether matrix work is padded to
the device's tiles; plan/roofline.py groups and times the kernels by it."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ..base.errors import EffplanError, did_you_mean, quote
from ..design.spec import SPECS_DIR, looks_like_path, read_toml, shown
from ..graph.ops import ANCHOR, FUSION_CLASSES, OPS
from .hardware import CLASSES

# the runtime each device class gets unless --runtime says otherwise (README, "Runtimes")
DEFAULT_RUNTIME = {"datacenter-gpu": "fused", "edge-gpu": "fused", "desktop-gpu": "eager", "tpu": "xla",
                   "mobile-npu": "fused", "mobile-cpu": "onnxruntime-cpu", "server-cpu": "onnxruntime-cpu"}
# the runtime each device class trains under unless --runtime says otherwise (README, "Training time"): PyTorch
# eager on GPUs and NPUs, XLA on TPUs, PyTorch eager on a CPU (eager-cpu: its device's per-op overhead, serial)
DEFAULT_TRAINING_RUNTIME = {"datacenter-gpu": "eager", "edge-gpu": "eager", "desktop-gpu": "eager", "tpu": "xla",
                            "mobile-npu": "eager", "mobile-cpu": "eager-cpu", "server-cpu": "eager-cpu"}
# op chains the graph writes as several ops that a runtime may run as one kernel (match 'mul-of-input':
# Sigmoid(x) * x). GELU written as five ops is always one kernel (every runtime here has a GELU op).
UNITS = {"swish": "activation", "gelu": "activation"}
MATCHES = ("mul-of-input", "single", "chain")
OVERLAPS = ("async", "serial")
EPILOGUE_KERNELS = ("same", "separate", "none")
CONV_BIAS = ("separate", "epilogue", "folded")
# layout changes a runtime inserts: only nchwc (onnxruntime CPU's blocked layout) is costed, by roofline.py;
# cudnn-internal (transposes inside cuDNN calls) is documented, not modelled
REORDERS = ("none", "cudnn-internal", "nchwc")
# how data parallelism's gradient all-reduce meets backward: bucketed (DDP: buckets all-reduced while earlier layers'
# backward runs) or after-backward (one cross-replica sum once backward ends: not overlapped)
ALLREDUCE = ("bucketed", "after-backward")
DOCS = {"source", "note"}  # free text any table may carry
ABOUT = "about"  # [about]: documentation only (free form, never read), kept apart so no key there looks like a setting
TABLES = {
    "runtime": {"name", "description", "device_classes", "sources"},
    "launch": {"overhead_s", "overlap"},
    "kernels": {"single_kernel", "standalone", "views", "conv_bias", "conv_bias_source"},
    "fusion": {"enabled", "anchors", "epilogue", "epilogue_kernel", "max_adds", "pointwise_chains",
               "reductions_fuse_producer", "consumer_fusion"},
    "layout": {"reorders"},
    "matrix": {"tile_padding", "tile_source"},
    "training": {"trains", "allreduce"},
}
REQUIRED = ("runtime", "launch", "kernels", "fusion")
# Keys that once sat among the settings but that nothing reads: refused there, so that editing
# `autocast = "bf16"` cannot look like it changes an estimate.
DOCUMENTATION_ONLY = {"squeeze_excite": "[about.squeeze_excite]", "precision": "[about.precision]",
                      "runtime.engine": "[about] engine", "fusion.not_fused": "[about] not_fused"}


class RuntimeSpecError(EffplanError):
    pass


# [host] (optional): what the host pays beyond each kernel's launch ([launch] overhead_s, the per-kernel cost of a
# Python call, the dispatcher and cudaLaunchKernel). Declared apart, one row a key: (type, lower, upper, meaning).
HOST_KEYS = {
    "step_s": (float, 0.0, 1.0, "seconds the host spends per step outside any kernel (the Python loop, the "
                                "synchronisation that ends the step, a CUDA graph's or compiled program's launch)"),
    "backward_op_s": (float, 0.0, 1.0, "seconds per backward kernel: the autograd engine's C++ dispatch and launch "
                                       "(default: [launch] overhead_s)"),
    "weight_casts": (bool, None, None, "at half precision every weighted conv/GEMM casts its fp32 weight first "
                                       "(torch.autocast): one kernel and one host op each, every step"),
    "optimizer_launch": (str, None, None, "how the update is launched (plan/training.py OPTIMIZER_LAUNCHES): single "
                                          "(one compiled kernel), fused, foreach or for-loop"),
}
OPTIMIZER_LAUNCH_CHOICES = ("single", "fused", "foreach", "for-loop")

TABLES["host"] = set(HOST_KEYS)  # the generic key check; types and bounds: host_from_table


def host_from_table(table, where: str) -> dict:
    """The [host] table's keys, checked against HOST_KEYS; {} when absent. Needs a source when present."""
    if not table:
        return {}
    if not isinstance(table, dict):
        raise RuntimeSpecError(f"{where}: [host] must be a table")
    found = {}
    for key, value in table.items():
        if key in DOCS:
            continue
        if key not in HOST_KEYS:
            raise RuntimeSpecError(f"{where}: [host] unknown key {quote(key)}{did_you_mean(key, set(HOST_KEYS) | DOCS)}")
        kind, low, high, meaning = HOST_KEYS[key]
        if kind is str:
            if value not in OPTIMIZER_LAUNCH_CHOICES:
                raise RuntimeSpecError(f"{where}: host.{key}: expected one of {', '.join(OPTIMIZER_LAUNCH_CHOICES)}, "
                                       f"got {quote(value)}")
        elif kind is bool:
            if not isinstance(value, bool):
                raise RuntimeSpecError(f"{where}: host.{key}: expected true or false, got {quote(value)}")
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise RuntimeSpecError(f"{where}: host.{key}: expected seconds from {low:g} to {high:g} ({meaning}), "
                                   f"got {quote(value)}")
        found[key] = kind(value)
    if not isinstance(table.get("source"), str):
        raise RuntimeSpecError(f"{where}: host.source: the host figures need their source")
    return found


@dataclass(frozen=True)
class Runtime:
    name: str
    description: str
    device_classes: tuple[str, ...]
    overhead_s: float | None  # None: the device file's launch_overhead_us
    overlap: str  # async: a kernel costs max(device time, overhead); serial: device time + overhead
    swish: bool  # Sigmoid(x) * x runs as one kernel
    standalone: frozenset  # op types never fused with another op
    views: frozenset  # op types that run no kernel
    conv_bias: str
    fusion: bool
    anchors: frozenset  # op types, or "anchor": every op of that fusion class in the op table
    epilogue: frozenset  # op types, fusion classes and unit names an anchor's kernel absorbs
    epilogue_kernel: str  # same: inside the anchor's kernel; separate: one generated kernel after it
    max_adds: int
    pointwise_chains: bool
    reductions_fuse_producer: bool
    consumer_fusion: bool
    tile_padding: bool
    reorders: str = "none"
    trains: bool = False  # [training]: whether effplan train may time a step under it
    allreduce: str = "after-backward"  # [training]: one of ALLREDUCE
    training_source: str = ""
    host_step_s: float = 0.0  # [host] step_s: serial, once a step
    backward_op_s: float | None = None  # [host] backward_op_s; None: the launch overhead
    weight_casts: bool = False  # [host] weight_casts
    optimizer_launch: str = "single"  # [host] optimizer_launch
    sources: tuple[str, ...] = ()
    path: str = field(default="", compare=False)

    def overhead(self, device) -> float:
        return device.launch_overhead_s if self.overhead_s is None else self.overhead_s

    def backward_overhead(self, device) -> float:
        return self.overhead(device) if self.backward_op_s is None else self.backward_op_s

    def anchors_at(self, op: str) -> bool:
        return op in self.anchors or (ANCHOR in self.anchors and op in OPS and OPS[op].fusion == ANCHOR)

    def absorbs(self, kind: str) -> bool:
        """Whether an anchor's epilogue takes an op type (or unit: swish, gelu)."""
        cls = UNITS.get(kind) or (OPS[kind].fusion if kind in OPS else None)
        return kind in self.epilogue or cls in self.epilogue

    def as_dict(self) -> dict:
        return {"name": self.name, "description": self.description, "device_classes": list(self.device_classes),
                "launch_overhead_s": self.overhead_s, "launch_overlap": self.overlap,
                "fusion": self.fusion, "epilogue_kernel": self.epilogue_kernel, "tile_padding": self.tile_padding,
                "trains": self.trains, "allreduce": self.allreduce if self.trains else None,
                "host_step_s": self.host_step_s, "backward_op_s": self.backward_op_s, "weight_casts": self.weight_casts,
                "path": self.path}


def _strings(value, where: str, known=None) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RuntimeSpecError(f"{where}: expected a list of strings")
    for v in value:
        if known is not None and v not in known:
            raise RuntimeSpecError(f"{where}: unknown {quote(v)}{did_you_mean(v, known)}")
    return tuple(value)


def _choice(table: dict, key: str, choices, where: str, default=None):
    value = table.get(key, default)
    if value not in choices:
        raise RuntimeSpecError(f"{where}.{key}: expected one of {', '.join(map(str, choices))}, got {quote(value)}")
    return value


def _flag(table: dict, key: str, where: str, default: bool = False) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise RuntimeSpecError(f"{where}.{key}: expected true or false, got {quote(value)}")
    return value


def runtime_from_table(table: dict, where: str, stem: str | None = None) -> Runtime:
    """Validate a runtime table; errors name the file and key."""
    if not isinstance(table, dict):
        raise RuntimeSpecError(f"{where}: expected a table")
    for key in table:
        if key in DOCUMENTATION_ONLY:
            raise RuntimeSpecError(f"{where}: [{key}] is documentation only (nothing reads it): "
                                   f"write it as {DOCUMENTATION_ONLY[key]}")
        if key not in TABLES and key not in DOCS and key != ABOUT:
            raise RuntimeSpecError(f"{where}: unknown table {quote(key)}{did_you_mean(key, TABLES)}")
    if not isinstance(table.get(ABOUT, {}), dict):
        raise RuntimeSpecError(f"{where}: [{ABOUT}] must be a table")
    for key in REQUIRED:
        if not isinstance(table.get(key), dict):
            raise RuntimeSpecError(f"{where}: missing table [{key}]")
    for name, keys in TABLES.items():
        part = table.get(name, {})
        if not isinstance(part, dict):
            raise RuntimeSpecError(f"{where}: [{name}] must be a table")
        for key in part:
            if f"{name}.{key}" in DOCUMENTATION_ONLY:
                raise RuntimeSpecError(f"{where}: [{name}] {key} is documentation only (nothing reads it): "
                                       f"write it as {DOCUMENTATION_ONLY[f'{name}.{key}']}")
            if key not in keys and key not in DOCS:
                raise RuntimeSpecError(f"{where}: [{name}] unknown key {quote(key)}{did_you_mean(key, keys | DOCS)}")
    head, launch, kernels, fusion = (table[k] for k in REQUIRED)
    at = lambda t: f"{where}: {t}"  # noqa: E731
    name = head.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RuntimeSpecError(f"{at('runtime.name')}: expected a non-empty string")
    if stem is not None and name != stem:
        raise RuntimeSpecError(f"{at('runtime.name')}: {quote(name)} must equal the file name {quote(stem)}")
    if not isinstance(head.get("description"), str):
        raise RuntimeSpecError(f"{at('runtime.description')}: expected a string")
    classes = _strings(head.get("device_classes", []), at("runtime.device_classes"), CLASSES)
    sources = _strings(head.get("sources", []), at("runtime.sources"))
    if not sources:
        raise RuntimeSpecError(f"{at('runtime.sources')}: every runtime needs its sources")
    overhead = launch.get("overhead_s")
    if overhead != "device" and (isinstance(overhead, bool) or not isinstance(overhead, (int, float))
                                 or not 0 <= overhead <= 1):
        raise RuntimeSpecError(f"{at('launch.overhead_s')}: expected seconds from 0 to 1, or \"device\" (the "
                            f"device file's launch_overhead_us), got {quote(overhead)}")
    if not isinstance(launch.get("source"), str):
        raise RuntimeSpecError(f"{at('launch.source')}: the launch overhead needs its source")
    singles = kernels.get("single_kernel", [])
    if not isinstance(singles, list) or not all(isinstance(s, dict) for s in singles):
        raise RuntimeSpecError(f"{at('kernels.single_kernel')}: expected a list of tables")
    for i, s in enumerate(singles):
        w = at(f"kernels.single_kernel[{i}]")
        for key in s:
            if key not in {"name", "ops", "match", "source"}:
                raise RuntimeSpecError(f"{w}: unknown key {quote(key)}")
        if not isinstance(s.get("name"), str):
            raise RuntimeSpecError(f"{w}.name: expected a string")
        _strings(s.get("ops"), f"{w}.ops", OPS)
        _choice(s, "match", MATCHES, w)
        if s["match"] == "mul-of-input" and (s["name"] != "swish" or s["ops"] != ["Sigmoid", "Mul"]):
            raise RuntimeSpecError(f"{w}: match 'mul-of-input' is the swish unit: name \"swish\", "
                                f"ops [\"Sigmoid\", \"Mul\"]")
    known_ops = set(OPS)
    standalone = _strings(kernels.get("standalone", []), at("kernels.standalone"), known_ops)
    views = _strings(kernels.get("views", []), at("kernels.views"), known_ops)
    epilogue_known = known_ops | set(FUSION_CLASSES) | set(UNITS)
    anchors = _strings(fusion.get("anchors", []), at("fusion.anchors"), known_ops | {ANCHOR})
    for a in anchors:
        if a != ANCHOR and OPS[a].fusion != ANCHOR:
            raise RuntimeSpecError(f"{at('fusion.anchors')}: {a} is not an anchor op (a conv or matrix product)")
    training = table.get("training", {})
    if training and not isinstance(training.get("source"), str):
        raise RuntimeSpecError(f"{at('training.source')}: whether it trains, and how its all-reduce overlaps "
                               f"backward, need a source")
    max_adds = fusion.get("max_adds", 1)
    if isinstance(max_adds, bool) or not isinstance(max_adds, int) or not 0 <= max_adds <= 8:
        raise RuntimeSpecError(f"{at('fusion.max_adds')}: expected an integer from 0 to 8, got {quote(max_adds)}")
    host = host_from_table(table.get("host", {}), where)
    return Runtime(
        name=name, description=head["description"], device_classes=classes,
        overhead_s=None if overhead == "device" else float(overhead),
        overlap=_choice(launch, "overlap", OVERLAPS, at("launch")),
        swish=any(s["name"] == "swish" for s in singles),
        standalone=frozenset(standalone), views=frozenset(views),
        conv_bias=_choice(kernels, "conv_bias", CONV_BIAS, at("kernels"), "folded"),
        fusion=_flag(fusion, "enabled", at("fusion")), anchors=frozenset(anchors),
        epilogue=frozenset(_strings(fusion.get("epilogue", []), at("fusion.epilogue"), epilogue_known)),
        epilogue_kernel=_choice(fusion, "epilogue_kernel", EPILOGUE_KERNELS, at("fusion"), "same"),
        max_adds=max_adds, pointwise_chains=_flag(fusion, "pointwise_chains", at("fusion")),
        reductions_fuse_producer=_flag(fusion, "reductions_fuse_producer", at("fusion")),
        consumer_fusion=_flag(fusion, "consumer_fusion", at("fusion")),
        tile_padding=_flag(table.get("matrix", {}), "tile_padding", at("matrix")),
        reorders=_choice(table.get("layout", {}), "reorders", REORDERS, at("layout"), "none"),
        trains=_flag(training, "trains", at("training")),
        allreduce=_choice(training, "allreduce", ALLREDUCE, at("training"), "after-backward"),
        training_source=training.get("source", ""), sources=sources, host_step_s=host.get("step_s", 0.0),
        backward_op_s=host.get("backward_op_s"), weight_casts=host.get("weight_casts", False),
        optimizer_launch=host.get("optimizer_launch", "single"))


def builtin_runtime_paths() -> dict[str, Path]:
    return {p.stem: p for p in sorted((SPECS_DIR / "runtimes").glob("*.toml"))}


@lru_cache(maxsize=None)
def _load(path: str, builtin: bool) -> Runtime:
    table = read_toml(Path(path))
    runtime = runtime_from_table(table, shown(path), Path(path).stem if builtin else None)
    return Runtime(**{**runtime.__dict__, "path": path})


def load_runtime(name: str) -> Runtime:
    """A catalog name (eager) or the path of a runtime file."""
    if isinstance(name, Runtime):
        return name
    if looks_like_path(name):
        return _load(str(name), False)
    paths = builtin_runtime_paths()
    key = str(name).strip().lower()
    if key not in paths:
        raise RuntimeSpecError(f"unknown runtime {quote(name)}{did_you_mean(key, paths)}; "
                            f"'effplan runtimes' lists them, or pass a runtime file path")
    return _load(str(paths[key]), True)


def runtime_for(device, runtime: str | Runtime | None = None) -> Runtime:
    """The runtime asked for, or the device class's default."""
    if runtime is None:
        runtime = device.runtime or DEFAULT_RUNTIME[device.kind]
    return load_runtime(runtime)


def training_runtime(runtime: str | Runtime) -> Runtime:
    """A runtime (name, file or Runtime) a training step may run under: refused when its file says it runs
    inference only ([training] trains)."""
    rt = load_runtime(runtime)
    if not rt.trains:
        trainers = [n for n in builtin_runtime_paths() if load_runtime(n).trains]
        why = rt.training_source or "no [training] table in its file"
        raise RuntimeSpecError(f"runtime {quote(rt.name)} runs inference only ({why}); training runtimes: "
                               f"{', '.join(trainers)}, or a runtime file with [training] trains = true")
    return rt


def training_runtime_for(device, runtime: str | Runtime | None = None) -> Runtime:
    """The runtime a training step runs under: the one asked for, or the device class's training default."""
    return training_runtime(runtime if runtime is not None else DEFAULT_TRAINING_RUNTIME[device.kind])
