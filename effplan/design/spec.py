"""Model specs: TOML data loaded into frozen dataclasses.

A spec says what a network is at its baseline: stem layers, stages of repeated blocks, head
layers and a classifier; scaling.py says how big to make it. Every key is checked: an unknown
key, a missing one or a wrong type is an error naming the file, the key and what was expected.
Each block kind declares its own arguments (blocks.py); a stage row is validated against them.
"""
from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from typing import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..base.errors import EffplanError, did_you_mean, quote

SPECS_DIR = Path(__file__).resolve().parents[1] / "specs"  # effplan/specs once installed
if not (SPECS_DIR / "models").is_dir():  # running from a source tree without installing
    SPECS_DIR = Path(__file__).resolve().parents[2] / "specs"

# Bounds a real network stays far inside; a spec beyond them is a typo or hostile.
MAX_CHANNELS = 1 << 20
MAX_KERNEL = 64
MAX_REPEATS = 1000
MAX_ROWS = 1000  # rows of stem, stages or head: real networks have a few dozen
MAX_SPEC_BYTES = 1 << 20
ACTIVATIONS = ("swish", "relu", "relu6", "hswish", "none")
# Other names for the same functions (PyTorch's, Keras's), read in any case and stored as the canonical name.
ACTIVATION_ALIASES = {"silu": "swish", "hardswish": "hswish", "hard_swish": "hswish", "h_swish": "hswish",
                      "hard-swish": "hswish", "relu_6": "relu6"}


class SpecError(EffplanError):
    pass


@dataclass(frozen=True)
class BlockKind:
    """A block kind a stage row may name: its arguments (checked on load), its builder (blocks.py)."""

    args: type
    build: Callable
    deepens: bool  # depth scaling repeats it; a pooling row between stages stays single


BLOCKS: dict[str, BlockKind] = {}


def block(name: str, args: type, deepens: bool = True):
    def register(fn):
        if name in BLOCKS:
            raise ValueError(f"block kind {name} registered twice")
        BLOCKS[name] = BlockKind(args, fn, deepens)
        return fn
    return register


def bounded(lo=None, hi=None, default=dataclasses.MISSING):
    """A field checked on load against [lo, hi], optionally with a default."""
    return field(default=default, metadata={"min": lo, "max": hi})


def choice(*options: str, default: str | None = None, aliases: dict | None = None):
    return field(default=options[0] if default is None else default,
                 metadata={"choices": options, "aliases": {**{o: o for o in options}, **(aliases or {})}})


@dataclass(frozen=True)
class Rounding:
    """Channel rounding of the official EfficientNet code: to a multiple of `divisor`,
    at least `min_channels`, and never more than (1 - limit) below the exact product."""

    divisor: int = bounded(1, 1024, default=8)
    min_channels: int = bounded(1, MAX_CHANNELS, default=8)
    limit: float = bounded(0.0, 1.0, default=0.9)


@dataclass(frozen=True)
class Stage:
    """One row: `repeats` blocks of kind `block` giving `channels`; the first takes `stride`.

    `width_min` and `width_max` clamp the width multiplier for this row (MobileNetV2 never narrows
    its last conv below 1280; torchvision's MnasNet keeps it at 1280 at every width).
    `channels_by_width` gives the channels a reference implementation picks by hand at listed
    width multipliers (ShuffleNet v1's stem: 12, 24, 24, 48 at 0.5x...2x); other widths round.
    `args` holds the block kind's own arguments, validated by its dataclass.
    """

    block: str
    channels: int = bounded(0, MAX_CHANNELS, default=0)
    repeats: int = bounded(1, MAX_REPEATS, default=1)
    stride: int = bounded(1, MAX_KERNEL, default=1)
    width_min: float = bounded(0.0, 64.0, default=0.0)
    width_max: float = bounded(0.0, 64.0, default=64.0)
    channels_by_width: tuple[tuple[float, int], ...] = field(default=(), metadata={"internal": True})
    args: object = field(default=None, metadata={"internal": True})


@dataclass(frozen=True)
class Classifier:
    """Global average pooling, then `fc` (dropout, fully connected) or `conv` (SqueezeNet:
    dropout and a 1x1 conv with ReLU before the pooling)."""

    kind: str = choice("fc", "conv")
    classes: int = bounded(1, MAX_CHANNELS, default=1000)
    dropout: float = bounded(0.0, 1.0, default=0.0)
    bias: bool = True  # the fully connected layer's bias (Megvii's ShuffleNet v1 has none)


@dataclass(frozen=True)
class Recipe:
    """The training recipe the model's authors published, where the spec records one: `effplan train`'s
    default epochs."""

    epochs: int | None = bounded(1, 1 << 20, default=None)
    source: str = ""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    source: str
    resolution: int = bounded(1, 16384)
    stem: tuple[Stage, ...] = ()
    stages: tuple[Stage, ...] = ()
    head: tuple[Stage, ...] = ()
    classifier: Classifier = None
    family: str = ""
    in_channels: int = bounded(1, MAX_CHANNELS, default=3)
    activation: str = choice(*ACTIVATIONS, aliases=ACTIVATION_ALIASES)
    norm: str = choice("bn", "none")  # "none": convs carry a bias instead (SqueezeNet)
    bn_epsilon: float = bounded(0.0, 1.0, default=1e-5)
    rounding: Rounding = field(default_factory=Rounding)
    recipe: Recipe = field(default_factory=Recipe)
    path: str = field(default="", metadata={"internal": True})


def _type_name(tp) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        tp, getattr(tp, "__name__", str(tp)))


def _key(where: str, name: str) -> str:
    """'file.toml: stages[2]' + 'kernel' -> 'file.toml: stages[2].kernel'."""
    return f"{where}{name}" if where.endswith(": ") else f"{where}.{name}"


def _convert(value, tp, where: str):
    """Check one TOML value against a field's type; nested tables become dataclasses."""
    if tp is Stage:
        return stage_from_table(value, where)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise SpecError(f"{where}: expected a table, got {quote(value)}")
        return from_table(tp, value, where)
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):  # X | None: absent keys take the default
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
        origin = typing.get_origin(tp)
    if origin is tuple:  # tuple[X, ...]
        (item, _) = typing.get_args(tp)
        if not isinstance(value, list):
            raise SpecError(f"{where}: expected an array, got {quote(value)}")
        if len(value) > MAX_ROWS:
            raise SpecError(f"{where}: {len(value)} rows; at most {MAX_ROWS}")
        return tuple(_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, tp) or (isinstance(value, bool) and tp is not bool):
        raise SpecError(f"{where}: expected {_type_name(tp)}, got {quote(value)}")
    if tp is float and not math.isfinite(value):
        raise SpecError(f"{where}: expected a finite number, got {quote(value)}")
    return value


def from_table(cls, table: dict, where: str, extra_keys=()):
    """Build dataclass `cls` from a TOML table, checking keys, types, bounds and choices."""
    if not isinstance(table, dict):
        raise SpecError(f"{where}: expected a table, got {quote(table)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    for key in table:
        if key not in fields:
            known = list(fields) + list(extra_keys)
            raise SpecError(f"{where.rstrip(': ')}: unknown key {quote(key)}{did_you_mean(key, known)}")
    kwargs = {}
    for name, f in fields.items():
        if name not in table:
            if f.default is not dataclasses.MISSING:
                kwargs[name] = f.default
                continue
            if dataclasses.is_dataclass(hints[name]):  # a nested table of defaults
                kwargs[name] = from_table(hints[name], {}, _key(where, name))
                continue
            raise SpecError(f"{where.rstrip(': ')}: missing key '{name}' ({_type_name(hints[name])})")
        value = _convert(table[name], hints[name], _key(where, name))
        lo, hi = f.metadata.get("min"), f.metadata.get("max")
        if lo is not None and value < lo or hi is not None and value > hi:
            bound = f">= {lo}" if hi is None else f"between {lo} and {hi}"
            raise SpecError(f"{_key(where, name)}: expected a value {bound}, got {quote(value)}")
        options = f.metadata.get("choices")
        if options and isinstance(value, str):
            value = f.metadata["aliases"].get(value.lower(), value)
        if options and value not in options:
            raise SpecError(f"{_key(where, name)}: expected one of {', '.join(options)}, got {quote(value)}"
                            f"{did_you_mean(value, options)}")
        kwargs[name] = value
    return cls(**kwargs)


def stage_from_table(table, where: str) -> Stage:
    """A stage row: the common keys, then the rest checked against the block kind's arguments."""
    if not isinstance(table, dict):
        raise SpecError(f"{where}: expected a table, got {quote(table)}")
    kind = table.get("block")
    if not isinstance(kind, str) or kind not in BLOCKS:  # a list or table is no name (nor hashable)
        raise SpecError(f"{_key(where, 'block')}: unknown block kind {quote(kind)}{did_you_mean(str(kind), BLOCKS)}; "
                        f"known: {', '.join(BLOCKS)}")
    common = {f.name for f in dataclasses.fields(Stage)}
    args_cls = BLOCKS[kind].args
    args = from_table(args_cls, {k: v for k, v in table.items() if k not in common}, where,
                      extra_keys=common - {"args"})
    stage = from_table(Stage, {k: v for k, v in table.items() if k in common and k != "channels_by_width"},
                       where, extra_keys=[f.name for f in dataclasses.fields(args_cls)] + ["channels_by_width"])
    by_width = _channels_by_width(table.get("channels_by_width", {}), _key(where, "channels_by_width"))
    if stage.width_min > stage.width_max:
        raise SpecError(f"{_key(where, 'width_min')}: {stage.width_min} is above width_max {stage.width_max}")
    return dataclasses.replace(stage, args=args, channels_by_width=by_width)


def _channels_by_width(table, where: str) -> tuple[tuple[float, int], ...]:
    """{ "0.5" = 12, "2.0" = 48 } -> ((0.5, 12), (2.0, 48))."""
    if not isinstance(table, dict):
        raise SpecError(f"{where}: expected a table of width multiplier = channels, e.g. {{ \"0.5\" = 12 }}")
    pairs = []
    for key, channels in table.items():
        try:
            width = float(key)
        except ValueError:
            raise SpecError(f"{where}: key {quote(key)} is not a width multiplier") from None
        if not (math.isfinite(width) and 0 < width <= 64):
            raise SpecError(f"{where}: width multiplier {quote(key)} must be in (0, 64]")
        if not isinstance(channels, int) or isinstance(channels, bool) or not 1 <= channels <= MAX_CHANNELS:
            raise SpecError(f"{where}.{key.strip()}: expected a channel count between 1 and {MAX_CHANNELS}, "
                            f"got {quote(channels)}")
        pairs.append((width, channels))
    return tuple(sorted(pairs))


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


def read_table_list(path: str | Path, key: str, hint: str) -> list[dict]:
    """The [[key]] tables of a TOML file ([] when there are none); any other top-level key is an error."""
    table = read_toml(Path(path))
    for name in table:
        if name != key:
            raise SpecError(f"{path}: unknown key {quote(name)}{did_you_mean(name, [key])}; {hint}")
    entries = table.get(key, [])
    if not isinstance(entries, list):
        raise SpecError(f"{path}: {key}: expected [[{key}]] tables, got {quote(entries)}")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise SpecError(f"{path}: {key}[{i}]: expected a table, got {quote(entry)}")
    return entries


def load_spec(path: str | Path) -> ModelSpec:
    path = Path(path)
    where = f"{shown(path)}: "
    spec = from_table(ModelSpec, read_toml(path), where)
    if not spec.stages:
        raise SpecError(f"{where}stages: expected at least one stage")
    if spec.classifier is None:
        raise SpecError(f"{where.rstrip(': ')}: missing key 'classifier' (a table)")
    return dataclasses.replace(spec, path=str(path))


def builtin_spec_paths() -> dict[str, Path]:
    return {p.stem: p for p in sorted((SPECS_DIR / "models").glob("*.toml"))}


def shown(path) -> str:
    """How messages name a file: a built-in one by its name ('t4 (built-in)'; `effplan show t4`
    prints it), not by a path deep inside site-packages; any other as given."""
    path = Path(path)
    try:
        path.resolve().relative_to(SPECS_DIR)
    except (ValueError, OSError):
        return str(path)
    return f"{path.stem} (built-in)"


def looks_like_path(name: str) -> bool:
    return name.endswith(".toml") or "/" in name or "\\" in name
