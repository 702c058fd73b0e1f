"""The device catalog: one TOML file per device under specs/hardware/, every figure with its source."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ..base.errors import EffplanError, did_you_mean, quote
from ..base.schema import EMPTY, Map, Names, Number, Table, Text, read_toml, validate
from ..base.units import DTYPES
from ..design.spec import SPECS_DIR, looks_like_path, shown

CLASSES = ("datacenter-gpu", "desktop-gpu", "edge-gpu", "tpu", "mobile-npu", "mobile-cpu", "server-cpu")
UNITS = ("matrix", "vector")
FIGURES = ("memory_gb", "bandwidth_gbs", "onchip_mb", "launch_overhead_us")
# int8 models run their elementwise work (BN, activations, adds) on the vector unit; where it has no
# int8 rate, runtimes do that work in half precision (else fp32), as TensorRT does on a T4.
VECTOR_FALLBACK = {"int8": ("fp16", "bf16", "fp32"), "tf32": ("fp32",)}  # tf32 is a matrix-unit format
SOURCED = ("description", *FIGURES, "matrix", "vector", "efficiency")
OPTIONAL = {"matrix_tile", "interconnect", "nchwc_block", "host"}  # keys a device file may leave out; when present, sourced
# [interconnect], GB/s (10^9 B/s) per device, as datasheets give them: nvlink and pcie the total over both
# directions (NVLink over all its links), ici one way over one link (a TPU ring runs along one torus axis).
INTERCONNECT = ("nvlink_gbs", "pcie_gbs", "ici_link_gbs", "allreduce_busbw_gbs", "allreduce_latency_us")
# allreduce_busbw_gbs: the bus bandwidth NCCL's all-reduce reaches in a node of these devices (nccl-tests busbw,
# GB/s); allreduce_latency_us: its time per call for small messages (microseconds, not GB/s)
# [efficiency]: matrix, vector and bandwidth (shares of peak) are required; a kernel class (KERNEL_CLASSES) may
# have its own factor on top of them (default 1: a depthwise weight-gradient kernel that reaches 0.3 of what a
# generic kernel on its unit and bandwidth reaches is depthwise_wgrad = 0.3). Name -> (lower, upper): the bounds
# the device schema (SHARE, CLASS_FACTOR) and `effplan calibrate` both use.
KERNEL_CLASSES = ("conv", "conv_dgrad", "conv_wgrad", "depthwise", "depthwise_dgrad", "depthwise_wgrad", "grouped",
                  "grouped_dgrad", "grouped_wgrad", "gemm", "elementwise")
EFFICIENCY_KEYS = {"matrix": (0.0, 1.0), "vector": (0.0, 1.0), "bandwidth": (0.0, 1.0),
                   **{k: (0.0, 4.0) for k in KERNEL_CLASSES}}
FIT_NOTES = ("fitted_on", "cv_error")  # strings `effplan calibrate --from` writes beside the figures it fitted
# [efficiency] runtimes = ["eager"]: the runtimes whose kernels the kernel-class factors describe (they were fitted
# under them); under any other runtime the classes count 1. Absent: every runtime.
CLASS_RUNTIMES = "runtimes"


class DeviceError(EffplanError):
    pass


@dataclass(frozen=True)
class Device:
    name: str
    description: str
    kind: str  # one of CLASSES
    memory_bytes: int
    bandwidth: float  # bytes/s, peak
    onchip_bytes: int
    launch_overhead_s: float
    matrix: dict  # precision -> peak FLOP/s
    vector: dict
    efficiency: dict  # matrix, vector, bandwidth: achievable share of peak
    sources: dict
    matrix_tile: dict = field(default_factory=dict)  # precision -> (m, n, k): a GEMM dim d costs ceil(d/p)*p
    interconnect: dict = field(default_factory=dict)  # INTERCONNECT key -> bytes/s (see INTERCONNECT)
    nchwc_block: int = 0  # a CPU's onnxruntime NCHWc channel block (MLAS: 8 on AVX2, 16 on AVX-512); 0: none
    fit: dict = field(default_factory=dict)  # FIT_NOTES found in [efficiency]
    host: dict = field(default_factory=dict)  # [host]: cpu, speed (relative to runtime.REFERENCE_HOST), input_rate
    path: str = ""
    runtime: str = ""  # not in the file: a runtime a caller binds to the device (search); "" = the class default

    def compute(self, unit: str, dtype: str) -> float:
        """Achievable FLOP/s of a unit at a precision (the vector unit: at `vector_precision`)."""
        if unit == "vector":
            dtype = self.vector_precision(dtype)
        peaks = getattr(self, unit)
        if dtype not in peaks:
            have = ", ".join(peaks) or "none"
            raise DeviceError(f"device {self.name} has no {unit}-unit peak for {dtype} in "
                              f"{shown(self.path) if self.path else 'its file'} "
                              f"(it has: {have})")
        return peaks[dtype] * self.efficiency[unit]

    def vector_precision(self, dtype: str) -> str:
        """The precision the vector unit runs `dtype`'s elementwise work at."""
        if dtype in self.vector:
            return dtype
        return next((p for p in VECTOR_FALLBACK.get(dtype, ()) if p in self.vector), dtype)

    @property
    def half_dtype(self) -> str | None:
        """The device's half precision, where its matrix unit has one: fp16 (GPUs, NPUs), else bf16 (TPUs)."""
        return next((d for d in ("fp16", "bf16") if d in self.matrix), None)

    @property
    def preferred_dtype(self) -> str:
        """The precision inference runs at here: its half precision, else fp32."""
        return self.half_dtype or ("fp32" if "fp32" in self.matrix else next(iter(self.matrix), "fp32"))

    @property
    def achievable_bandwidth(self) -> float:
        return self.bandwidth * self.efficiency["bandwidth"]

    def class_efficiency(self, kind: str, runtime: str | None = None) -> float:
        """A kernel class's factor on top of its unit's and the bandwidth's efficiency under `runtime` (1 where
        not given, or where the file names the runtimes its factors describe and this is not one of them)."""
        runtimes = self.fit.get(CLASS_RUNTIMES)
        if runtimes is not None and runtime is not None and runtime not in runtimes:
            return 1.0
        return self.efficiency.get(kind, 1.0)

    def as_dict(self) -> dict:
        return {"name": self.name, "description": self.description, "class": self.kind,
                "memory_bytes": self.memory_bytes, "bandwidth_bytes_per_s": self.bandwidth,
                "onchip_bytes": self.onchip_bytes, "launch_overhead_s": self.launch_overhead_s,
                "matrix_flops_per_s": self.matrix, "vector_flops_per_s": self.vector,
                "efficiency": self.efficiency, "matrix_tile": {p: list(t) for p, t in self.matrix_tile.items()},
                "interconnect_bytes_per_s": self.interconnect, "nchwc_block": self.nchwc_block,
                "host": self.host, "sources": self.sources}


MAX_FIGURE = 1e9  # in each file's unit (GB, GB/s, MB, us, TFLOPS): a million times today's largest devices


def figure(scale: float, to=None, **kw) -> Number:
    """A positive figure up to MAX_FIGURE in the file's unit, times `scale` (memory_gb = 1e308 would overflow)."""
    return Number(positive=True, lo=0, hi=MAX_FIGURE, scale=scale, to=to,
                  expect=f"a positive number up to {MAX_FIGURE:g}", **kw)


PEAKS = Map(figure(1e12), known=tuple(DTYPES), noun="precision", nonempty=True,
            expect="a table of peak TFLOPS per precision")
SHARE = Number(positive=True, lo=0, hi=EFFICIENCY_KEYS["matrix"][1],
               expect="a share of peak, more than 0 and at most 1")
TILE = Number(whole=True, lo=1, hi=4096)
CLASS_FACTOR = Number(positive=True, lo=0, hi=EFFICIENCY_KEYS["conv"][1], default=None,
                      expect="a factor more than 0 and at most 4")
# A device file: each key's type, unit and bounds. Device's field for each is named in device_from_table.
DEVICE = Table({
    "name": Text(), "description": Text(), "class": Text(choices=CLASSES),
    "memory_gb": figure(1 << 30, int), "bandwidth_gbs": figure(1e9), "onchip_mb": figure(1 << 20, int),
    "launch_overhead_us": figure(1e-6),
    "matrix": PEAKS, "vector": PEAKS,
    # [efficiency]: shares of peak, optional kernel-class factors on top (KERNEL_CLASSES), and what a fit records
    "efficiency": Table({"matrix": SHARE, "vector": SHARE, "bandwidth": SHARE,
                         **{k: CLASS_FACTOR for k in KERNEL_CLASSES},
                         **{k: Text(default=None) for k in FIT_NOTES}, CLASS_RUNTIMES: Names(default=None)}),
    "sources": Map(Text(nonempty=True, expect="its source (a non-empty string)")),
    # optional: [matrix_tile] fp16 = { m = 8, n = 8, k = 8 }: the padding granularity of matrix work per precision
    "matrix_tile": Map(Table({"m": TILE, "n": TILE, "k": TILE}, build=lambda m, n, k: (m, n, k)), known=tuple(DTYPES),
                       noun="precision", default={}),
    # optional: [interconnect] GB/s figures (see INTERCONNECT)
    "interconnect": Table({k: figure(1e-6 if k == "allreduce_latency_us" else 1e9, default=None)
                           for k in INTERCONNECT}, default=EMPTY,
                          build=lambda **kw: {k: v for k, v in kw.items() if v is not None}),
    "nchwc_block": Number(whole=True, choices=(0, 4, 8, 16, 32), default=0,
                          expect="8 (AVX2), 16 (AVX-512), 4, 32 or 0 (no blocked layout)"),
    # optional: [host] the CPU that runs the framework beside this device (the system it is measured in), its
    # speed at the runtimes' per-op host work relative to runtime.REFERENCE_HOST (2 = twice as fast): runtimes pay
    # their host figures divided by it (Runtime.host_scale); and its input pipeline's rate, which caps throughput
    "host": Table({"cpu": Text(default=None), "speed": Number(positive=True, lo=0, hi=100, default=None),
                   # images/s its input pipeline delivers (to all devices of a data-parallel run together), where known
                   "input_rate": Number(positive=True, lo=0, hi=1e9, default=None)},
                  default=EMPTY, build=lambda **kw: {k: v for k, v in kw.items() if v is not None}),
})


def device_from_table(table: dict, where: str) -> Device:
    """Validate a device table; errors name the file and key."""
    v = validate(DEVICE, table, where, DeviceError)
    for key in (*SOURCED, *(k for k in OPTIONAL if k in table)):
        if key not in v["sources"]:
            raise DeviceError(f"{where}: sources.{key}: every figure needs its source (a non-empty string)")
    if "host" in table and "cpu" not in v["host"]:
        raise DeviceError(f"{where}: host: name its cpu (and its speed relative to the reference host, where known)")
    notes = (*FIT_NOTES, CLASS_RUNTIMES)
    efficiency = {k: x for k, x in v["efficiency"].items() if k not in notes and x is not None}
    fit = {k: v["efficiency"][k] for k in notes if v["efficiency"][k] is not None}
    return Device(
        name=v["name"], description=v["description"], kind=v["class"], memory_bytes=v["memory_gb"],
        bandwidth=v["bandwidth_gbs"], onchip_bytes=v["onchip_mb"], launch_overhead_s=v["launch_overhead_us"],
        matrix=v["matrix"], vector=v["vector"], efficiency=efficiency, fit=fit, sources=v["sources"],
        matrix_tile=v["matrix_tile"], interconnect=v["interconnect"], nchwc_block=v["nchwc_block"],
        host=v["host"])


def builtin_device_paths() -> dict[str, Path]:
    return {p.stem: p for p in sorted((SPECS_DIR / "hardware").glob("*.toml"))}


@lru_cache(maxsize=None)
def _load(path: str) -> Device:
    table = read_toml(Path(path))
    device = device_from_table(table, shown(path))
    return Device(**{**device.__dict__, "path": path})


def load_device(name: str) -> Device:
    """A catalog name (a100-80gb) or the path of a device file."""
    if looks_like_path(name):
        return _load(str(name))
    paths = builtin_device_paths()
    key = name.strip().lower()
    if key not in paths:
        raise DeviceError(f"unknown device {quote(name)}{did_you_mean(key, paths)}; "
                          f"'effplan devices' lists them, or pass a device file path")
    return _load(str(paths[key]))
