"""Error bands: the interval of measured / estimated time that held on the check measurements of a runtime, kind
(inference or training) and batch band, from specs/error-bands.json (written by `python benchmarks/fidelity.py
--dle --write-bands`: check rows only, never the development rows the constants were fitted on). A time t
estimated in a regime with a band [low, high] at coverage c reads "t (t x low - t x high on c of checked
measurements)"; a regime without checked measurements says so instead."""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

from ..design.spec import SPECS_DIR

BANDS_FILE = SPECS_DIR / "error-bands.json"
BATCH_BANDS = ((8, "1-8"), (63, "9-63"), (None, "64+"))  # upper bound (inclusive), name


def batch_band(batch: int) -> str:
    return next(name for top, name in BATCH_BANDS if top is None or batch <= top)


@dataclass(frozen=True)
class Band:
    low: float  # measured / estimated time, lower end
    high: float
    coverage: float  # the share of checked measurements inside
    rows: int
    regime: str

    def around(self, seconds: float) -> dict:
        return {"low_s": seconds * self.low, "high_s": seconds * self.high, "coverage": self.coverage,
                "rows": self.rows, "regime": self.regime}


@lru_cache(maxsize=None)
def _bands() -> dict:
    if not BANDS_FILE.exists():
        return {}
    data = json.loads(BANDS_FILE.read_text())
    return {(b["runtime"], b["kind"], b["batch_band"]): b for b in data["bands"]}


def band_for(runtime: str, kind: str, batch: int) -> Band | None:
    """The checked band of a regime, or None where no check measurement covers it."""
    found = _bands().get((runtime, kind, batch_band(batch)))
    if found is None:
        return None
    regime = f"{runtime} {kind}, batch {found['batch_band']}"
    return Band(found["low"], found["high"], found["coverage"], found["rows"], regime)


def describe(seconds: float, runtime: str, kind: str, batch: int, unit: float = 1e-3, suffix: str = "ms") -> dict:
    """A time with its band, for a report: {"text", "band"} (band None where nothing was checked)."""
    band = band_for(runtime, kind, batch)
    if band is None:
        return {"band": None, "text": f"{seconds / unit:.3g} {suffix} (no checked measurements for {runtime} {kind} "
                                      f"at batch {batch_band(batch)})"}
    b = band.around(seconds)
    return {"band": b, "text": f"{seconds / unit:.3g} {suffix} ({b['low_s'] / unit:.3g}-{b['high_s'] / unit:.3g} "
                               f"{suffix} on {band.coverage:.0%} of checked measurements)"}


# budget figures that are times or rates, and the kind of run each comes from
TIME_FIGURES = {"latency_s": ("inference", 1), "images_per_s": ("inference", -1), "training_step_s": ("training", 1),
                "training_images_per_s": ("training", -1), "training_hours": ("training", 1)}


def figure_band(figure: str, value: float, runtime: str | None, batch: int, show=lambda v: f"{v:.4g}") -> dict | None:
    """A budget figure's band: {"low", "high", "coverage", "text"} (a rate's band from its time's, inverted);
    {"text": "no checked measurements ..."} where none; None for figures that are not times or rates."""
    if figure not in TIME_FIGURES or runtime is None:
        return None
    kind, sense = TIME_FIGURES[figure]
    band = band_for(runtime, kind, batch)
    if band is None:
        return {"text": f"no checked measurements for {runtime} {kind} at batch {batch_band(batch)}"}
    low, high = (value * band.low, value * band.high) if sense > 0 else (value / band.high, value / band.low)
    return {"low": low, "high": high, "coverage": band.coverage, "rows": band.rows,
            "text": f"{show(low)} - {show(high)} on {band.coverage:.0%} of checked"}
