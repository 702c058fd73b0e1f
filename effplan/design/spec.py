"""Model specs: TOML data loaded into frozen dataclasses (their fields are the declaration
base/schema.py checks files against).

A spec says what a network is at its baseline: stem layers, stages of repeated blocks, head
layers and a classifier; scaling.py says how big to make it. Every key is checked: an unknown
key, a missing one or a wrong type is an error naming the file, the key and what was expected.
Each block kind declares its own arguments (blocks.py); a stage row is validated against them.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..base.errors import did_you_mean, quote
from ..base.schema import (Custom, DataError, Rows, Table, Where, bounded, choice, declared, schema_of,
                           validate)
from ..base import schema

SPECS_DIR = Path(__file__).resolve().parents[1] / "specs"  # effplan/specs once installed
if not (SPECS_DIR / "models").is_dir():  # running from a source tree without installing
    SPECS_DIR = Path(__file__).resolve().parents[2] / "specs"

# Bounds a real network stays far inside; a spec beyond them is a typo or hostile.
MAX_CHANNELS = 1 << 20
MAX_KERNEL = 64
MAX_REPEATS = 1000
ACTIVATIONS = ("swish", "relu", "relu6", "hswish", "none")
# Other names for the same functions (PyTorch's, Keras's), read in any case and stored as the canonical name.
ACTIVATION_ALIASES = {"silu": "swish", "hardswish": "hswish", "hard_swish": "hswish", "h_swish": "hswish",
                      "hard-swish": "hswish", "relu_6": "relu6"}


class SpecError(DataError):
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
    channels_by_width: tuple[tuple[float, int], ...] = declared(Custom(lambda t, w: _channels_by_width(t, w), default=()))
    args: object = field(default=None, metadata={"internal": True})


STAGES = Rows(Custom(lambda table, where: stage_from_table(table, where), expect="a table"), default=())


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
    stem: tuple[Stage, ...] = declared(STAGES)
    stages: tuple[Stage, ...] = declared(STAGES)
    head: tuple[Stage, ...] = declared(STAGES)
    classifier: Classifier = None
    family: str = ""
    in_channels: int = bounded(1, MAX_CHANNELS, default=3)
    activation: str = choice(*ACTIVATIONS, aliases=ACTIVATION_ALIASES)
    norm: str = choice("bn", "none")  # "none": convs carry a bias instead (SqueezeNet)
    bn_epsilon: float = bounded(0.0, 1.0, default=1e-5)
    rounding: Rounding = field(default_factory=Rounding)
    recipe: Recipe = field(default_factory=Recipe)
    path: str = field(default="", metadata={"internal": True})


def from_table(cls, table: dict, where: Where | str):
    """Build dataclass `cls` from a TOML table, checking keys, types, bounds and choices."""
    return validate(schema_of(cls), table, where, SpecError)


def stage_from_table(table, where: Where) -> Stage:
    """A stage row: the common keys and the block kind's own arguments, checked as one table."""
    if not isinstance(table, dict):
        raise SpecError(f"{where}: expected a table, got {quote(table)}")
    kind = table.get("block")
    if not isinstance(kind, str) or kind not in BLOCKS:  # a list or table is no name (nor hashable)
        raise SpecError(f"{where / 'block'}: unknown block kind {quote(kind)}{did_you_mean(str(kind), BLOCKS)}; "
                        f"known: {', '.join(BLOCKS)}")
    values = _row_schema(kind).check(table, where)
    args = BLOCKS[kind].args(**{k: values.pop(k) for k in list(values) if k not in _STAGE_KEYS})
    stage = Stage(**values, args=args)
    if stage.width_min > stage.width_max:
        raise SpecError(f"{where / 'width_min'}: {stage.width_min} is above width_max {stage.width_max}")
    return stage


_STAGE_KEYS = frozenset(f.name for f in dataclasses.fields(Stage))


@functools.cache
def _row_schema(kind: str) -> Table:
    """A stage row's keys: the block kind's arguments, then Stage's (which win a clash)."""
    args = schema_of(BLOCKS[kind].args)
    return dataclasses.replace(args.extended(**schema_of(Stage).keys), build=None)


def _channels_by_width(table, where: Where) -> tuple[tuple[float, int], ...]:
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
    return schema.read_toml(path, SpecError)


def read_table_list(path: str | Path, key: str, hint: str) -> list[dict]:
    return schema.read_table_list(path, key, hint, SpecError)


def load_spec(path: str | Path) -> ModelSpec:
    path = Path(path)
    where = Where(shown(path))
    spec = from_table(ModelSpec, read_toml(path), where)
    if not spec.stages:
        raise SpecError(f"{where / 'stages'}: expected at least one stage")
    if spec.classifier is None:
        raise SpecError(f"{where}: missing key 'classifier' (a table)")
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
