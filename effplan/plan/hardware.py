"""The device catalog: one TOML file per device under specs/hardware/, every figure with its source."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ..base.errors import EffplanError, did_you_mean, quote
from ..base.units import DTYPES
from ..design.spec import SPECS_DIR, looks_like_path, read_toml, shown

CLASSES = ("datacenter-gpu", "desktop-gpu", "edge-gpu", "tpu", "mobile-npu", "mobile-cpu", "server-cpu")
UNITS = ("matrix", "vector")
FIGURES = ("memory_gb", "bandwidth_gbs", "onchip_mb", "launch_overhead_us")
# int8 models run their elementwise work (BN, activations, adds) on the vector unit; where it has no
# int8 rate, runtimes do that work in half precision (else fp32), as TensorRT does on a T4.
VECTOR_FALLBACK = {"int8": ("fp16", "bf16", "fp32"), "tf32": ("fp32",)}  # tf32 is a matrix-unit format
SOURCED = ("description", *FIGURES, "matrix", "vector", "efficiency")
OPTIONAL = {"matrix_tile", "interconnect", "nchwc_block"}  # keys a device file may leave out; when present, sourced
# [interconnect], GB/s (10^9 B/s) per device, as datasheets give them: nvlink and pcie the total over both
# directions (NVLink over all its links), ici one way over one link (a TPU ring runs along one torus axis).
INTERCONNECT = ("nvlink_gbs", "pcie_gbs", "ici_link_gbs", "allreduce_busbw_gbs", "allreduce_latency_us")
# allreduce_busbw_gbs: the bus bandwidth NCCL's all-reduce reaches in a node of these devices (nccl-tests busbw,
# GB/s); allreduce_latency_us: its time per call for small messages (microseconds, not GB/s)
# [efficiency]: matrix, vector and bandwidth (shares of peak) are required; a kernel class (KERNEL_CLASSES) may
# have its own factor on top of them (default 1: a depthwise weight-gradient kernel that reaches 0.3 of what a
# generic kernel on its unit and bandwidth reaches is depthwise_wgrad = 0.3). Declared apart, one row a key, so
# the shared validator can take them in: name -> (lower, upper).
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
                "sources": self.sources}


MAX_FIGURE = 1e9  # in each file's unit (GB, GB/s, MB, us, TFLOPS): a million times today's largest devices


def _positive(value, where: str) -> float:
    """A positive figure up to MAX_FIGURE: memory_gb = 1e308 would overflow to infinity in bytes."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_FIGURE:
        raise DeviceError(f"{where}: expected a positive number up to {MAX_FIGURE:g}, got {quote(value)}")
    return float(value)


def device_from_table(table: dict, where: str) -> Device:
    """Validate a device table; errors name the file and key."""
    known = {"name", "description", "class", *FIGURES, *UNITS, "efficiency", "sources"}
    for key in table:
        if key not in known | OPTIONAL:
            raise DeviceError(f"{where}: unknown key {quote(key)}{did_you_mean(key, known | OPTIONAL)}")
    for key in known:
        if key not in table:
            raise DeviceError(f"{where}: missing key '{key}'")
    if table["class"] not in CLASSES:
        raise DeviceError(f"{where}: class {quote(table['class'])} is not one of {', '.join(CLASSES)}")
    sources = table["sources"]
    if not isinstance(sources, dict):
        raise DeviceError(f"{where}: sources: expected a table")
    for key in (*SOURCED, *(k for k in OPTIONAL if k in table)):
        if not isinstance(sources.get(key), str) or not sources[key].strip():
            raise DeviceError(f"{where}: sources.{key}: every figure needs its source (a non-empty string)")
    peaks = {}
    for unit in UNITS:
        if not isinstance(table[unit], dict) or not table[unit]:
            raise DeviceError(f"{where}: {unit}: expected a table of peak TFLOPS per precision")
        for precision, value in table[unit].items():
            if precision not in DTYPES:
                raise DeviceError(f"{where}: {unit}.{quote(precision)}: unknown precision"
                                  f"{did_you_mean(precision, DTYPES)}; known: {', '.join(DTYPES)}")
        peaks[unit] = {p: _positive(v, f"{where}: {unit}.{p}") * 1e12 for p, v in table[unit].items()}
    efficiency, fit = _efficiency(table["efficiency"], f"{where}: efficiency")
    return Device(
        name=str(table["name"]), description=str(table["description"]), kind=table["class"],
        memory_bytes=int(_positive(table["memory_gb"], f"{where}: memory_gb") * (1 << 30)),
        bandwidth=_positive(table["bandwidth_gbs"], f"{where}: bandwidth_gbs") * 1e9,
        onchip_bytes=int(_positive(table["onchip_mb"], f"{where}: onchip_mb") * (1 << 20)),
        launch_overhead_s=_positive(table["launch_overhead_us"], f"{where}: launch_overhead_us") * 1e-6,
        matrix=peaks["matrix"], vector=peaks["vector"],
        efficiency=efficiency, fit=fit, sources=dict(sources),
        matrix_tile=_tiles(table.get("matrix_tile", {}), f"{where}: matrix_tile"),
        interconnect=_interconnect(table.get("interconnect", {}), f"{where}: interconnect"),
        nchwc_block=_block(table.get("nchwc_block", 0), f"{where}: nchwc_block"))


def _efficiency(table, where: str) -> tuple[dict, dict]:
    """[efficiency]: EFFICIENCY_KEYS within their bounds (matrix, vector, bandwidth required), FIT_NOTES strings."""
    if not isinstance(table, dict) or not {"matrix", "vector", "bandwidth"} <= set(table):
        raise DeviceError(f"{where}: expected matrix, vector and bandwidth (and optionally kernel classes: "
                          f"{', '.join(KERNEL_CLASSES)})")
    figures, fit = {}, {}
    for key, value in table.items():
        if key == CLASS_RUNTIMES:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise DeviceError(f"{where}.{key}: expected a list of runtime names")
            fit[key] = tuple(value)
            continue
        if key in FIT_NOTES:
            if not isinstance(value, str):
                raise DeviceError(f"{where}.{key}: expected a string")
            fit[key] = value
            continue
        if key not in EFFICIENCY_KEYS:
            raise DeviceError(f"{where}: unknown key {quote(key)}"
                              f"{did_you_mean(key, [*EFFICIENCY_KEYS, *FIT_NOTES, CLASS_RUNTIMES])}")
        low, high = EFFICIENCY_KEYS[key]
        if not low < _positive(value, f"{where}.{key}") <= high:
            raise DeviceError(f"{where}.{key}: expected more than {low:g} and at most {high:g}"
                              f"{' (a share of peak)' if high == 1 else ''}, got {value}")
        figures[key] = float(value)
    return figures, fit


def _block(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in (0, 4, 8, 16, 32):
        raise DeviceError(f"{where}: expected 8 (AVX2), 16 (AVX-512), 4, 32 or 0 (no blocked layout), got {quote(value)}")
    return value


def _interconnect(table, where: str) -> dict:
    """[interconnect] nvlink_gbs = 600.0, pcie_gbs = 64.0 (GB/s): INTERCONNECT key -> bytes/s."""
    if not isinstance(table, dict):
        raise DeviceError(f"{where}: expected a table of GB/s figures ({', '.join(INTERCONNECT)})")
    for key in table:
        if key not in INTERCONNECT:
            raise DeviceError(f"{where}: unknown key {quote(key)}{did_you_mean(key, INTERCONNECT)}; "
                              f"known: {', '.join(INTERCONNECT)}")
    return {k: _positive(v, f"{where}.{k}") * (1e-6 if k == "allreduce_latency_us" else 1e9) for k, v in table.items()}


def _tiles(table, where: str) -> dict:
    """[matrix_tile] fp16 = { m = 8, n = 8, k = 8 }: the padding granularity of matrix-unit work per precision."""
    if not isinstance(table, dict):
        raise DeviceError(f"{where}: expected a table of {{ m, n, k }} per precision")
    tiles = {}
    for precision, tile in table.items():
        if precision not in DTYPES:
            raise DeviceError(f"{where}.{quote(precision)}: unknown precision{did_you_mean(precision, DTYPES)}")
        if not isinstance(tile, dict) or set(tile) != {"m", "n", "k"} or not all(
                isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 4096 for v in tile.values()):
            raise DeviceError(f"{where}.{precision}: expected {{ m = ..., n = ..., k = ... }}, integers from 1 to 4096")
        tiles[precision] = (tile["m"], tile["n"], tile["k"])
    return tiles


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
