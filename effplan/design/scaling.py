"""Compound scaling: from a baseline spec and phi (or a published coefficient row) to a design.

d = alpha^phi multiplies every stage's repeats, w = beta^phi every channel count (stem and
head too), r = gamma^phi the input side. Rounding follows the official EfficientNet code.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import lru_cache

from ..base.errors import EffplanError, did_you_mean, quote
from ..base.schema import Where
from .spec import (SPECS_DIR, ModelSpec, Rounding, builtin_spec_paths, from_table, load_spec, looks_like_path,
                   read_toml, shown)

MAX_PHI = 16.0  # well past L2 (~phi 9); beyond it the input side passes 2,000 px
MAX_RESOLUTION = 16384
MAX_BLOCKS = 5000  # blocks in one design, after depth scaling
MAX_MULTIPLIER = 64.0  # depth or width: past this a design is a typo, not a network
DEPTH_ROUNDINGS = ("ceil", "round")


@dataclass(frozen=True)
class Coefficients:
    alpha: float
    beta: float
    gamma: float

    @property
    def flops_factor(self) -> float:
        """alpha * beta^2 * gamma^2: the promised growth of FLOPS per unit of phi."""
        return self.alpha * self.beta**2 * self.gamma**2


@dataclass(frozen=True)
class Published:
    """A published member of a family: hand-rounded coefficients, not the formula."""

    spec: str
    width: float
    depth: float
    resolution: int
    dropout: float
    phi: float | None = None


@dataclass(frozen=True)
class Design:
    """A concrete network: a spec plus the multipliers and resolution it is built at."""

    spec: ModelSpec
    name: str
    phi: float | None
    depth_mult: float
    width_mult: float
    resolution: int
    dropout: float
    classes: int
    depth_rounding: str = "ceil"
    coefficients: str = "base"  # base | formula | published | custom (a multiplier or resolution set by hand)


def round_channels(channels: int, width: float, rounding: Rounding) -> int:
    """c*w to a multiple of the divisor, at least min_channels, never more than 10% down."""
    exact = channels * width
    divisor = rounding.divisor
    rounded = max(rounding.min_channels, int(exact + divisor / 2) // divisor * divisor)
    if rounded < rounding.limit * exact:
        rounded += divisor
    return int(rounded)


def round_repeats(repeats: int, depth: float, mode: str = "ceil") -> int:
    """ceil(d * repeats) as the official code does (float product, no epsilon), or half-up rounding."""
    if mode == "ceil":
        return int(math.ceil(depth * repeats))
    return max(1, int(math.floor(depth * repeats + 0.5)))


def scaled_resolution(base: int, gamma: float, phi: float) -> int:
    """gamma^phi * base, rounded half up to a whole pixel."""
    return int(math.floor(base * gamma**phi + 0.5))


@lru_cache(maxsize=1)
def scaling_table() -> tuple[Coefficients, dict[str, Published]]:
    path = SPECS_DIR / "scaling.toml"
    table = read_toml(path)
    compound = {k: v for k, v in table.get("compound", {}).items() if k != "source"}
    coeffs = from_table(Coefficients, compound, Where(shown(path), "compound"))
    published = {name: from_table(Published, row, Where(shown(path), f"published.{name}"))
                 for name, row in table.get("published", {}).items()}
    return coeffs, published


def default_coefficients() -> Coefficients:
    return scaling_table()[0]


def model_names() -> list[str]:
    """Every name `resolve` accepts: the spec files and the published members."""
    return sorted(set(builtin_spec_paths()) | set(scaling_table()[1]))


@lru_cache(maxsize=None)
def _builtin_spec(name: str) -> ModelSpec:
    return load_spec(builtin_spec_paths()[name])


def resolve(name: str) -> Design:
    """A built-in spec name, a published name (efficientnet-b4) or a spec file path."""
    if looks_like_path(name):
        return base_design(load_spec(name))
    key = name.strip().lower()
    published = scaling_table()[1]
    if key in published:
        row = published[key]
        spec = _builtin_spec(row.spec)
        return Design(spec=spec, name=key, phi=row.phi, depth_mult=row.depth, width_mult=row.width,
                      resolution=row.resolution, dropout=row.dropout, classes=spec.classifier.classes,
                      coefficients="published")
    if key in builtin_spec_paths():
        return base_design(_builtin_spec(key))
    raise EffplanError(f"unknown model {quote(name)}{did_you_mean(key, model_names())}; "
                       f"'effplan models' lists them, or pass a spec file path")


def base_design(spec: ModelSpec) -> Design:
    return Design(spec=spec, name=spec.name, phi=0.0, depth_mult=1.0, width_mult=1.0,
                  resolution=spec.resolution, dropout=spec.classifier.dropout,
                  classes=spec.classifier.classes)


def compound(design: Design, phi: float, coeffs: Coefficients | None = None) -> Design:
    """The formula design at phi: d = alpha^phi, w = beta^phi, r = gamma^phi times the baseline."""
    if design.coefficients == "published" and design.name != design.spec.name:
        raise EffplanError(f"--phi scales a baseline spec, and '{design.name}' is a published design "
                           f"with its own coefficients; use '{design.spec.name}' with --phi instead")
    check_phi(phi)
    c = coeffs or default_coefficients()
    return dataclasses.replace(
        design, phi=float(phi), depth_mult=c.alpha**phi, width_mult=c.beta**phi,
        resolution=scaled_resolution(design.spec.resolution, c.gamma, phi), coefficients="formula")


def check_design(design: Design) -> None:
    """Refuse designs too large to be meant (they would take minutes and gigabytes to build)."""
    for label, value in (("depth", design.depth_mult), ("width", design.width_mult)):
        if not (0 < value <= MAX_MULTIPLIER):
            raise EffplanError(f"{design.name}: {label} multiplier {value:.4g} is outside (0, {MAX_MULTIPLIER:g}]")
    if not 1 <= design.resolution <= MAX_RESOLUTION:
        raise EffplanError(f"{design.name}: resolution {design.resolution} is outside 1..{MAX_RESOLUTION}")
    spec = design.spec
    blocks = sum(round_repeats(s.repeats, design.depth_mult, design.depth_rounding) for s in spec.stages) \
        + sum(s.repeats for s in (*spec.stem, *spec.head))  # stem and head rows are blocks too
    if blocks > MAX_BLOCKS:
        raise EffplanError(f"{design.name}: {blocks} blocks after depth scaling (stem, stages and head); "
                           f"at most {MAX_BLOCKS}")


def check_phi(phi: float) -> None:
    if not math.isfinite(phi) or phi < 0 or phi > MAX_PHI:
        raise EffplanError(f"phi must be between 0 and {MAX_PHI:g}, got {phi:g}")


SCALE_DIMENSIONS = ("depth", "width", "resolution")


def with_overrides(design: Design, *, resolution: int | None = None, classes: int | None = None,
                   depth_rounding: str | None = None, width_mult: float | None = None,
                   depth_mult: float | None = None, scale: dict[str, float] | None = None) -> Design:
    """Set multipliers, resolution or classes outright, then scale single dimensions by a factor
    (the paper's Table 3: depth, width or resolution alone). A design whose depth, width or
    resolution moves is no longer the one its phi or published name describes: it becomes custom."""
    original = design
    changes = {}
    for label, value, key in (("width", width_mult, "width_mult"), ("depth", depth_mult, "depth_mult")):
        if value is not None:
            if not (math.isfinite(value) and 0 < value <= MAX_MULTIPLIER):
                raise EffplanError(f"--{label}-mult must be in (0, {MAX_MULTIPLIER:g}], got {value:g}")
            changes[key] = value
    if resolution is not None:
        if not 1 <= resolution <= MAX_RESOLUTION:
            raise EffplanError(f"resolution must be between 1 and {MAX_RESOLUTION}, got {resolution}")
        changes["resolution"] = resolution
    if classes is not None:
        if classes < 1:
            raise EffplanError(f"classes must be at least 1, got {classes}")
        changes["classes"] = classes
    if depth_rounding is not None:
        if depth_rounding not in DEPTH_ROUNDINGS:
            raise EffplanError(f"depth rounding must be one of {', '.join(DEPTH_ROUNDINGS)}")
        changes["depth_rounding"] = depth_rounding
    design = dataclasses.replace(design, **changes)
    for dim, factor in (scale or {}).items():
        if dim not in SCALE_DIMENSIONS:
            raise EffplanError(f"--scale {dim}: unknown dimension{did_you_mean(dim, SCALE_DIMENSIONS)}; "
                               f"use depth, width or resolution")
        if not (math.isfinite(factor) and 0 < factor <= MAX_MULTIPLIER):
            raise EffplanError(f"--scale {dim}={factor:g}: the factor must be in (0, {MAX_MULTIPLIER:g}]")
        if dim == "resolution":
            design = with_overrides(design, resolution=int(math.floor(design.resolution * factor + 0.5)))
        else:
            key = f"{dim}_mult"
            design = dataclasses.replace(design, **{key: getattr(design, key) * factor})
    shape = lambda d: (d.depth_mult, d.width_mult, d.resolution)  # noqa: E731
    if shape(design) != shape(original):
        design = dataclasses.replace(design, phi=None, coefficients="custom")
    return design
