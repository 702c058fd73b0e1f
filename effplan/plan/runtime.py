"""Runtimes: how an inference engine turns the graph into kernels, one TOML file per runtime under
specs/runtimes/ (schema and sources: specs/runtimes/README.md). A runtime says which ops fuse into
one kernel, which always run alone, what a kernel launch costs and whether matrix work is padded to
the device's tiles; plan/roofline.py groups and times the kernels by it."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ..base.errors import EffplanError, did_you_mean, quote
from ..base.schema import (EMPTY, REQUIRED, Either, Flag, Free, Map, Names, Number, Rows, Table, Text, Where, read_toml,
                           validate)
from ..design.spec import SPECS_DIR, looks_like_path, shown
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
OPTIMIZER_LAUNCHES = ("single", "fused", "foreach", "for-loop")


def _table(keys: dict, **kw) -> Table:
    """A runtime table: its keys, and the free text any of them may carry."""
    return Table({"source": Free(), "note": Free(), **keys}, **kw)


def _epilogue_known():
    return set(OPS) | set(FUSION_CLASSES) | set(UNITS)


# A runtime file: each table's keys with their types and defaults. [about] is documentation only (free form, never
# read), kept apart so no key there looks like a setting; `moved` keys once sat among the settings, but nothing reads
# them: refused there, so that editing `autocast = "bf16"` cannot look like it changes an estimate.
RUNTIME = _table({
    "runtime": _table({"name": Text(nonempty=True), "description": Text(),
                       "device_classes": Names(CLASSES), "sources": Names()},
                      moved={"engine": "[about] engine"}),
    "launch": _table({"overhead_s": Either((Number(lo=0, hi=1), Text(choices=("device",))), expect=(
                          'seconds from 0 to 1, or "device" (the device file\'s launch_overhead_us)')),
                      "overlap": Text(choices=OVERLAPS),
                      "source": Text(expect="the launch overhead's source")}),
    "kernels": _table({"single_kernel": Rows(Table({"name": Text(), "ops": Names(OPS, default=REQUIRED),
                                                    "match": Text(choices=MATCHES), "source": Free()}), default=()),
                       "standalone": Names(OPS), "views": Names(OPS),
                       "conv_bias": Text(choices=CONV_BIAS, default="folded"), "conv_bias_source": Free()}),
    "fusion": _table({"enabled": Flag(default=False), "anchors": Names(lambda: {*OPS, ANCHOR}),
                      "epilogue": Names(_epilogue_known), "epilogue_kernel": Text(choices=EPILOGUE_KERNELS, default="same"),
                      "max_adds": Number(whole=True, lo=0, hi=8, default=1),
                      "pointwise_chains": Flag(default=False), "reductions_fuse_producer": Flag(default=False),
                      "consumer_fusion": Flag(default=False)},
                     moved={"not_fused": "[about] not_fused"}),
    "layout": _table({"reorders": Text(choices=REORDERS, default="none")}, default=EMPTY),
    "matrix": _table({"tile_padding": Flag(default=False), "tile_source": Free()}, default=EMPTY),
    "training": _table({"trains": Flag(default=False), "allreduce": Text(choices=ALLREDUCE, default="after-backward"),
                        # seconds a data-parallel step pays beyond the all-reduce (the processes meet every step),
                        # on the reference host; with its source
                        "data_parallel_step_s": Number(lo=0, hi=10, default=0.0),
                        "data_parallel_source": Text(default="", expect="the data-parallel step figure's source"),
                        "source": Text(default="", expect="whether it trains, and how its all-reduce overlaps "
                                                          "backward: a source")}, default=EMPTY),
    # [host] (optional): what the host pays beyond each kernel's launch ([launch] overhead_s: a Python call, the
    # dispatcher and cudaLaunchKernel per kernel)
    "host": _table({
        # seconds per step outside any kernel: the Python loop, the synchronisation that ends the step, a CUDA
        # graph's or compiled program's launch
        "step_s": Number(lo=0, hi=1, default=0.0),
        # seconds per backward kernel: the autograd engine's C++ dispatch and launch (default: [launch] overhead_s)
        "backward_op_s": Number(lo=0, hi=1, default=None),
        # at half precision every weighted conv/GEMM casts its fp32 weight first (torch.autocast), every step
        "weight_casts": Flag(default=False),
        # how the update is launched: one compiled kernel, fused, foreach or a per-parameter loop (plan/training.py)
        "optimizer_launch": Text(choices=OPTIMIZER_LAUNCHES, default="single"),
        "source": Text(default="", expect="the host figures' source")}, default=EMPTY),
    "about": Map(Free(), default=None),
}, moved={"squeeze_excite": "[about.squeeze_excite]", "precision": "[about.precision]"})


# The host the runtimes' host figures ([launch] overhead_s, [host]) hold on: eager's were fitted on a DGX A100. A
# device file's [host] speed says how fast its host runs the same work (plan/hardware.py).
REFERENCE_HOST = "2x AMD EPYC 7742 (DGX A100)"


class RuntimeSpecError(EffplanError):
    pass


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
    data_parallel_step_s: float = 0.0  # [training] data_parallel_step_s
    host_step_s: float = 0.0  # [host] step_s: serial, once a step
    backward_op_s: float | None = None  # [host] backward_op_s; None: the launch overhead
    weight_casts: bool = False  # [host] weight_casts
    optimizer_launch: str = "single"  # [host] optimizer_launch
    attention: bool = False  # [kernels] single_kernel "attention": a recognised attention runs as one fused kernel
    sources: tuple[str, ...] = ()
    path: str = field(default="", compare=False)

    def host_scale(self, device) -> float:
        """How much longer the host takes beside `device` than on REFERENCE_HOST, where the runtimes' host figures
        hold: 1 / the device's [host] speed (1 where it names no host)."""
        return 1.0 / device.host.get("speed", 1.0)

    def overhead(self, device) -> float:
        if self.overhead_s is None:
            return device.launch_overhead_s  # the device file's own launch figure: no host to rescale
        return self.overhead_s * self.host_scale(device)

    def backward_overhead(self, device) -> float:
        if self.backward_op_s is None:
            return self.overhead(device)
        return self.backward_op_s * self.host_scale(device)

    def data_parallel_overhead(self, device) -> float:
        """What a data-parallel step pays beyond its all-reduce beside `device`'s host ([training])."""
        return self.data_parallel_step_s * self.host_scale(device)

    def step_overhead(self, device) -> float:
        """The host's time per step outside any kernel ([host] step_s) on `device`'s host."""
        return self.host_step_s * self.host_scale(device)

    def host_note(self, device) -> str:
        """One line: which host the host figures assume."""
        if self.overhead_s is None and not self.host_step_s:
            return f"host: {device.name}'s launch overhead"
        cpu, speed = device.host.get("cpu"), device.host.get("speed")
        if cpu is None:
            return f"host: not named in the device file: {self.name}'s per-op host figures as on {REFERENCE_HOST}"
        if speed is None:
            return (f"host: {cpu}, its speed not known: {self.name}'s per-op host figures as on {REFERENCE_HOST} "
                    f"(a slower host pays more; effplan calibrate --fit host finds its speed)")
        return (f"host: {cpu}, {speed:g}x as fast as {REFERENCE_HOST} where {self.name}'s per-op host figures hold"
                if speed != 1.0 else f"host: {cpu}, where {self.name}'s per-op host figures hold")

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


def runtime_from_table(table: dict, where: str, stem: str | None = None) -> Runtime:
    """Validate a runtime table; errors name the file and key."""
    v = validate(RUNTIME, table, where, RuntimeSpecError)
    head, launch, kernels, fusion, training = (v[k] for k in ("runtime", "launch", "kernels", "fusion", "training"))
    at = Where(where)
    if stem is not None and head["name"] != stem:
        raise RuntimeSpecError(f"{at / 'runtime' / 'name'}: {quote(head['name'])} must equal the file name {quote(stem)}")
    if not head["sources"]:
        raise RuntimeSpecError(f"{at / 'runtime' / 'sources'}: every runtime needs its sources")
    for i, s in enumerate(kernels["single_kernel"]):
        if s["match"] == "mul-of-input" and (s["name"] != "swish" or s["ops"] != ("Sigmoid", "Mul")):
            raise RuntimeSpecError(f"{at / 'kernels' / 'single_kernel' / i}: match 'mul-of-input' is the swish unit: "
                                   f"name \"swish\", ops [\"Sigmoid\", \"Mul\"]")
        if s["name"] == "attention" and (s["ops"] != ("Attention",) or s["match"] != "single"):
            raise RuntimeSpecError(f"{at / 'kernels' / 'single_kernel' / i}: the attention unit is ops [\"Attention\"], "
                                   f"match \"single\" (an attention the exporter wrote out is recognised on import)")
    for a in fusion["anchors"]:
        if a != ANCHOR and OPS[a].fusion != ANCHOR:
            raise RuntimeSpecError(f"{at / 'fusion' / 'anchors'}: {a} is not an anchor op (a conv or matrix product)")
    if table.get("training") and not isinstance(table["training"].get("source"), str):
        raise RuntimeSpecError(f"{at / 'training' / 'source'}: whether it trains, and how its all-reduce overlaps "
                               f"backward, need a source")
    if training["data_parallel_step_s"] and not training["data_parallel_source"]:
        raise RuntimeSpecError(f"{at / 'training' / 'data_parallel_source'}: the data-parallel step figure needs its "
                               f"source")
    if table.get("host") and not v["host"]["source"]:
        raise RuntimeSpecError(f"{at / 'host' / 'source'}: the host figures need their source")
    overhead, host = launch["overhead_s"], v["host"]
    return Runtime(
        name=head["name"], description=head["description"], device_classes=head["device_classes"],
        overhead_s=None if overhead == "device" else float(overhead), overlap=launch["overlap"],
        swish=any(s["name"] == "swish" for s in kernels["single_kernel"]),
        standalone=frozenset(kernels["standalone"]), views=frozenset(kernels["views"]), conv_bias=kernels["conv_bias"],
        fusion=fusion["enabled"], anchors=frozenset(fusion["anchors"]), epilogue=frozenset(fusion["epilogue"]),
        epilogue_kernel=fusion["epilogue_kernel"], max_adds=fusion["max_adds"],
        pointwise_chains=fusion["pointwise_chains"], reductions_fuse_producer=fusion["reductions_fuse_producer"],
        consumer_fusion=fusion["consumer_fusion"], tile_padding=v["matrix"]["tile_padding"],
        reorders=v["layout"]["reorders"], trains=training["trains"], allreduce=training["allreduce"],
        training_source=training["source"] or "", data_parallel_step_s=float(training["data_parallel_step_s"]),
        sources=head["sources"], host_step_s=float(host["step_s"]),
        backward_op_s=None if host["backward_op_s"] is None else float(host["backward_op_s"]),
        weight_casts=host["weight_casts"], optimizer_launch=host["optimizer_launch"],
        attention=any(s["name"] == "attention" for s in kernels["single_kernel"]))


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
