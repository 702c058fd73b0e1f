"""Quantities as users write them: '16GiB', '2.5G', '400M', '12ms', '10%'."""
from __future__ import annotations

import math
import re

from .errors import EffplanError, did_you_mean, quote

MAX_DIM = 2**40  # the largest size a user may bind to a batch or dimension: products stay within int64
MAX_QUANTITY = 1e30  # bytes, counts or seconds past this are typos or hostile; they would overflow later

_NUMBER = re.compile(r"^\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-zµ%]*)\s*$")

# Bytes: SI with B (GB = gb = 10^9), binary with iB or a bare letter of either case (g = G = GiB, as docker
# and java read 16g). No bare number: is 12 twelve bytes or twelve GiB? The user says. Case is free
# (GIB, gib, Gb): `byte_unit` reads a unit by its letters; this table names the forms shown in errors.
BYTE_UNITS = {"B": 1,
              **{f"{p}B": 1000 ** i for i, p in enumerate("kMGTP", start=1)},
              **{f"{p}B": 1000 ** i for i, p in enumerate("KMGTP", start=1)},
              **{f"{p}iB": 1024 ** i for i, p in enumerate("KMGTP", start=1)},
              **{f"{p}i": 1024 ** i for i, p in enumerate("KMGTP", start=1)},
              **{p: 1024 ** i for i, p in enumerate("KMGTP", start=1)},
              **{p: 1024 ** i for i, p in enumerate("kmgtp", start=1)}}
COUNT_UNITS = {"": 1, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}
TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
# The number formats effplan knows (--dtype, device peaks, budgets), with their bytes a value.
# tf32: fp32 storage, tf32 matrix math.
DTYPES = {"fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2, "int8": 1}
DEFAULT_DTYPE = "fp32"  # without a device


def cost_dtype(dtype: str | None, device=None) -> str:
    """The one rule for the precision a design is costed at, in every command and the API: the one asked;
    else, on a device, the precision inference runs at there (its half precision, else fp32:
    `Device.preferred_dtype`); else fp32. A budget or a search without a dtype follows it too. `device` may
    be a list: one device decides for the whole report; with several, each device's own figures (latency,
    fit) are at its own precision and the figures of no device (memory, bytes) at fp32."""
    if dtype:
        return dtype
    if isinstance(device, (list, tuple)):
        device = device[0] if len(device) == 1 else None
    return device.preferred_dtype if device is not None else DEFAULT_DTYPE


def dtype_origin(asked: str | None, device=None) -> str:
    """Why a report is at its precision, for its header: '(asked)', '(the device's default ...)'."""
    if asked:
        return "as asked"
    if isinstance(device, (list, tuple)):
        if len(device) > 1:
            return "each device at its default, its half precision, else fp32; the rest fp32; --dtype changes it"
        device = device[0] if device else None
    if device is not None:
        return f"{device.name}'s default: its half precision, else fp32; --dtype changes it"
    return "the default without a device; --dtype changes it"


def _split(text, what: str, units: dict) -> tuple[float, str]:
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value, unit = (float(text) if abs(text) < 1e300 else math.inf), ""  # float(10**400) overflows
    else:
        match = _NUMBER.match(str(text))
        if not match:
            raise EffplanError(f"{what}: {quote(str(text))} is not a number with a unit (e.g. {example(units)})")
        value, unit = float(match.group(1)), match.group(2)
    if unit not in units:
        raise EffplanError(f"{what}: {quote(str(text))}: unknown unit {quote(unit)}{did_you_mean(unit, units)}; "
                           f"known: {', '.join(u for u in units if u)}")
    if not math.isfinite(value) or value < 0:
        raise EffplanError(f"{what}: {quote(str(text))} must be a finite number >= 0")
    if value * units[unit] > MAX_QUANTITY:  # 1e308P would overflow to inf, and int(inf) fails
        raise EffplanError(f"{what}: {quote(str(text))} is above {MAX_QUANTITY:g}; not a real quantity")
    return value, unit


def dtype_size(dtype: str) -> int:
    """The bytes of one value of a dtype; an unknown one is refused with the known ones."""
    if dtype not in DTYPES:
        raise EffplanError(f"unknown dtype '{dtype}'{did_you_mean(dtype, DTYPES)}; known: {', '.join(DTYPES)}")
    return DTYPES[dtype]


def example(units: dict) -> str:
    return {id(BYTE_UNITS): "16GiB", id(COUNT_UNITS): "2.5G", id(TIME_UNITS): "12ms"}.get(id(units), "")


def byte_unit(unit: str) -> str:
    """A byte unit in its table form, whatever its case: gb -> GB, GIB -> GiB, Ki -> Ki; g stays g (= GiB)."""
    if unit in BYTE_UNITS or len(unit) < 2:
        return unit
    prefix, rest = unit[0], unit[1:].lower()
    return {"b": prefix.upper().replace("K", "k") + "B", "ib": prefix.upper() + "iB", "i": prefix.upper() + "i"}.get(
        rest, unit)


def parse_bytes(text, what: str = "memory") -> int:
    match = _NUMBER.match(str(text))
    if isinstance(text, (int, float)) and not isinstance(text, bool) or match and not match.group(2):
        raise EffplanError(f"{what}: '{text}': a bare number is ambiguous; give a unit: {text}GiB (2^30), "
                           f"{text}GB (10^9), {text}g (= GiB) or {text}B")
    if match:
        text = match.group(1) + byte_unit(match.group(2))
    value, unit = _split(text, what, BYTE_UNITS)
    return int(value * BYTE_UNITS[unit])


GiB = 1 << 30


def size_note(text, devices: dict[str, int] | None = None) -> str | None:
    """A decimal size within 10% of a catalog device's memory (`devices`: name -> bytes) or of a power-of-two
    GiB figure was most likely meant as that: '24GB = 22.35 GiB; a "24 GB" GPU has 24 GiB: write 24GiB'.
    None for a binary size, or one near neither."""
    match = _NUMBER.match(str(text))
    unit = byte_unit(match.group(2)) if match else ""
    if unit not in BYTE_UNITS or BYTE_UNITS[unit] % 1024 == 0 or BYTE_UNITS[unit] < 1000 ** 3:
        return None
    size = parse_bytes(text)
    figures: dict[int, list] = {1 << k: [] for k in range(30, 51)}
    for name, memory in (devices or {}).items():
        figures.setdefault(memory, []).append(name)
    near = min(figures, key=lambda v: abs(size - v) / v)
    if abs(size - near) / near > 0.10:
        return None
    gib = f"{near / GiB:g}"
    names = f" ({', '.join(sorted(figures[near])[:3])})" if figures[near] else ""
    return f'{text} = {size / GiB:.2f} GiB; a "{gib} GB" GPU{names} has {gib} GiB: write {gib}GiB'


def parse_count(text, what: str = "value") -> float:
    value, unit = _split(text, what, COUNT_UNITS)
    return value * COUNT_UNITS[unit]


def parse_seconds(text, what: str = "time") -> float:
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        raise EffplanError(f"{what}: {text}: give a unit, e.g. '{text}ms'")
    value, unit = _split(text, what, TIME_UNITS)
    return value * TIME_UNITS[unit]


def _percent(text: str, what: str) -> tuple[float, bool]:
    """(the number, whether it was written with a % sign)."""
    percent = text.endswith("%")
    try:
        value = float(text[:-1] if percent else text)
    except ValueError:
        raise EffplanError(f"{what}: '{text}' is not a share (e.g. 5% or 0.05)") from None
    if not math.isfinite(value) or value < 0:
        raise EffplanError(f"{what}: '{text}' must be a finite share >= 0")
    return value, percent


def parse_share(text, what: str) -> float:
    """A share as '5%' or as a number in [0, 1]: a bare 5 is refused rather than read as 500%."""
    value, percent = _percent(str(text).strip(), what)
    if not percent and value > 1:
        raise EffplanError(f"{what}: '{text}': a bare number is a share in [0, 1]; write {value:g}% for a percentage")
    return value / 100 if percent else value


def parse_reserve(text: str, capacity: int) -> int:
    """'10%' of the capacity, or an amount of memory."""
    text = str(text).strip()
    if text.endswith("%"):
        share, _ = _percent(text, "--reserve")
        if share >= 100:
            raise EffplanError(f"--reserve '{text}' must be between 0% and 100%")
        return int(capacity * share / 100)
    match = _NUMBER.match(text)
    if match and not match.group(2):
        raise EffplanError(f"--reserve '{text}': a bare number is ambiguous; write a share ({text}%) or an amount "
                           f"({text}GiB, {text}GB, {text}g)")
    return parse_bytes(text, "--reserve")


def human_bytes(n: float) -> str:
    """Binary units for memory: 1.50 GiB."""
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{int(n)} B"



def si_bytes(n: float) -> str:
    """Decimal units, for a figure beside a limit written in them: 21.32 MB."""
    for unit, size in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{int(n)} B"


def bytes_as_written(value: float, written) -> tuple[str, str] | None:
    """(value, limit) as text for a byte limit: the limit as written, the value in the same system
    ('4MB' beside 21.32 MB, not 3.81 MiB; '1GiB' beside 29.52 MiB); None when no text was written."""
    match = _NUMBER.match(written) if isinstance(written, str) else None
    unit = byte_unit(match.group(2)) if match else ""
    if unit not in BYTE_UNITS:
        return None
    decimal = BYTE_UNITS[unit] % 1024 != 0
    return (si_bytes if decimal else human_bytes)(value), f"{match.group(1)}{unit}"


class RangeError(ValueError):
    """A range of `parse_range` with a bad step ("step"), no values ("empty") or more than the limit
    ("count"); a ValueError, so a caller with one message for all bad input catches it with the rest."""

    def __init__(self, reason: str, part: str, count: float = 0):
        super().__init__(f"{reason}: {part}")
        self.reason, self.part, self.count = reason, part, count


def parse_range(text: str, *, default_step: float, limit: float, mixed: bool = False) -> list[float]:
    """Numbers as `--phi` and the search grids take them: 'a', 'a,b,c' or 'lo..hi[:step]' (both ends
    included; `default_step` when no step is written). With `mixed`, a list may hold ranges
    ('0,2..4:0.5'); without, a range is the whole text. A range's values are rounded to 10 decimals,
    so 0..1:0.1 ends at exactly 1. Raises ValueError for what is not numbers (non-finite bounds
    included), RangeError for a bad step, an empty range, or a range over `limit` values."""
    values: list[float] = []
    for part in text.split(",") if mixed else [text]:
        part = part.strip() if mixed else part
        if ".." not in part:
            values += [float(x) for x in part.split(",")]
            continue
        span, _, step_text = part.partition(":")
        lo, hi = (float(x) for x in span.split(".."))
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(part)
        step = float(step_text) if step_text else default_step
        if not (step > 0 and math.isfinite(step)):
            raise RangeError("step", part)
        span_steps = (hi - lo) / step  # inf for a step like 1e-320: too many values, never floored
        count = math.floor(span_steps + 1e-9) + 1 if math.isfinite(span_steps) else 0 if hi < lo else math.inf
        if count > limit:
            raise RangeError("count", part, count)
        if count < 1:
            raise RangeError("empty", part)
        values += [round(lo + i * step, 10) for i in range(count)]
    return values
