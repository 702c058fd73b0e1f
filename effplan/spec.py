"""Model specs: TOML data loaded into frozen dataclasses.

A spec says what a network is at its baseline (stem, stages of repeated blocks, head,
classifier); scaling.py says how big to make it. Every key is checked: an unknown key,
a missing one or a wrong type is an error naming the file, the key and what was expected.
"""
from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from .errors import EffplanError, did_you_mean

SPECS_DIR = Path(__file__).resolve().parent / "specs"
if not (SPECS_DIR / "models").is_dir():  # running from a source tree without installing
    SPECS_DIR = Path(__file__).resolve().parent.parent / "specs"

# Bounds a real network stays far inside; a spec beyond them is a typo or hostile.
MAX_CHANNELS = 1 << 20
MAX_KERNEL = 64
MAX_REPEATS = 1000
MAX_SPEC_BYTES = 1 << 20
ACTIVATIONS = ("swish", "relu", "relu6", "hswish", "none")


class SpecError(EffplanError):
    pass


def positive(**bounds):
    """Field metadata: a lower (and optional upper) bound checked on load."""
    return field(metadata={"min": bounds.get("min", 1), "max": bounds.get("max")})


@dataclass(frozen=True)
class Rounding:
    """Channel rounding of the official EfficientNet code: to a multiple of `divisor`,
    at least `min_channels`, and never more than (1 - limit) below the exact product."""

    divisor: int = positive(min=1, max=1024)
    min_channels: int = positive(min=1, max=MAX_CHANNELS)
    limit: float = positive(min=0.0, max=1.0)


@dataclass(frozen=True)
class Stem:
    channels: int = positive(min=1, max=MAX_CHANNELS)
    kernel: int = positive(min=1, max=MAX_KERNEL)
    stride: int = positive(min=1, max=MAX_KERNEL)


@dataclass(frozen=True)
class Stage:
    """One row of a stage table: `repeats` blocks of kind `block`; the first takes `stride`."""

    block: str
    repeats: int = positive(min=1, max=MAX_REPEATS)
    stride: int = positive(min=1, max=MAX_KERNEL)
    channels: int = positive(min=1, max=MAX_CHANNELS)
    kernel: int = positive(min=1, max=MAX_KERNEL)
    expand: float = positive(min=1.0, max=64.0)
    se: float = positive(min=0.0, max=1.0)


@dataclass(frozen=True)
class Head:
    channels: int = positive(min=1, max=MAX_CHANNELS)
    kernel: int = positive(min=1, max=MAX_KERNEL)


@dataclass(frozen=True)
class Classifier:
    classes: int = positive(min=1, max=MAX_CHANNELS)
    dropout: float = positive(min=0.0, max=1.0)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    source: str
    family: str
    resolution: int = positive(min=1, max=16384)
    in_channels: int = positive(min=1, max=MAX_CHANNELS)
    activation: str
    rounding: Rounding
    stem: Stem
    stages: tuple[Stage, ...]
    head: Head
    classifier: Classifier
    path: str = field(default="", metadata={"internal": True})


# Defaults a spec may leave out.
DEFAULTS = {
    Rounding: {"divisor": 8, "min_channels": 8, "limit": 0.9},
    Stem: {"kernel": 3, "stride": 2},
    Stage: {"kernel": 3, "expand": 1.0, "se": 0.0},
    Head: {"kernel": 1},
    Classifier: {"classes": 1000, "dropout": 0.0},
    ModelSpec: {"family": "", "in_channels": 3, "activation": "swish", "rounding": {}},
}
KNOWN_BLOCKS = ("mbconv",)


def _type_name(tp) -> str:
    return {int: "an integer", float: "a number", str: "a string"}.get(tp, getattr(tp, "__name__", str(tp)))


def _convert(value, tp, where: str):
    """Check one TOML value against a field's type; nested tables become dataclasses."""
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise SpecError(f"{where}: expected a table, got {value!r}")
        return from_table(tp, value, where)
    origin = typing.get_origin(tp)
    if origin is tuple:  # tuple[X, ...]: an array of tables
        (item, _) = typing.get_args(tp)
        if not isinstance(value, list) or not value:
            raise SpecError(f"{where}: expected a non-empty array of tables")
        return tuple(_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (types.UnionType, typing.Union):  # X | None: absent keys take the default
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, tp) or isinstance(value, bool):
        raise SpecError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    if tp is float and not math.isfinite(value):
        raise SpecError(f"{where}: expected a finite number, got {value!r}")
    return value


def _key(where: str, name: str) -> str:
    """'file.toml: stages[2]' + 'kernel' -> 'file.toml: stages[2].kernel'."""
    return f"{where}{name}" if where.endswith(": ") else f"{where}.{name}"


def from_table(cls, table: dict, where: str):
    """Build dataclass `cls` from a TOML table, checking keys, types and bounds."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    for key in table:
        if key not in fields:
            raise SpecError(f"{where.rstrip(': ')}: unknown key '{key}'{did_you_mean(key, fields)}")
    values = {**DEFAULTS.get(cls, {}), **table}
    kwargs = {}
    for name, f in fields.items():
        if name not in values and f.default is not dataclasses.MISSING:
            kwargs[name] = f.default
            continue
        if name not in values:
            raise SpecError(f"{where.rstrip(': ')}: missing key '{name}' ({_type_name(hints[name])})")
        value = _convert(values[name], hints[name], _key(where, name))
        lo, hi = f.metadata.get("min"), f.metadata.get("max")
        if lo is not None and value < lo or hi is not None and value > hi:
            bound = f">= {lo}" if hi is None else f"between {lo} and {hi}"
            raise SpecError(f"{_key(where, name)}: expected a value {bound}, got {value!r}")
        kwargs[name] = value
    return cls(**kwargs)


def read_toml(path: Path) -> dict:
    """Parse a TOML file; any failure is a one-line SpecError naming the file."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_SPEC_BYTES + 1)
        if len(data) > MAX_SPEC_BYTES:
            raise SpecError(f"{path}: larger than {MAX_SPEC_BYTES} bytes; not a spec file")
        return tomllib.loads(data.decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise SpecError(f"{path}: nested too deeply to be a spec file") from None
    except UnicodeDecodeError:
        raise SpecError(f"{path}: not a text file") from None
    except IsADirectoryError:
        raise SpecError(f"{path}: is a directory, expected a .toml spec file") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read: {exc.strerror}") from None


def load_spec(path: str | Path) -> ModelSpec:
    path = Path(path)
    table = read_toml(path)
    where = f"{path}: "
    spec = from_table(ModelSpec, table, where)
    if spec.activation not in ACTIVATIONS:
        raise SpecError(f"{where}activation: expected one of {', '.join(ACTIVATIONS)}, got {spec.activation!r}")
    for i, stage in enumerate(spec.stages):
        if stage.block not in KNOWN_BLOCKS:
            raise SpecError(f"{where}stages[{i}].block: unknown block kind {stage.block!r}"
                            f"{did_you_mean(stage.block, KNOWN_BLOCKS)}; known: {', '.join(KNOWN_BLOCKS)}")
    return dataclasses.replace(spec, path=str(path))


def builtin_spec_paths() -> dict[str, Path]:
    return {p.stem: p for p in sorted((SPECS_DIR / "models").glob("*.toml"))}


def looks_like_path(name: str) -> bool:
    return name.endswith(".toml") or "/" in name or "\\" in name
