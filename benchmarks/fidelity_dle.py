"""effplan against NVIDIA DeepLearningExamples' PyTorch ConvNets figures (benchmarks/data/dle_pytorch_convnets.csv):
the development set (A100 rows: constants may be fitted on them) and the check set (V100 and T4 rows: reported,
never tuned on) apart. Used by benchmarks/fidelity.py (--dle) and by the fits recorded in specs/.

Each row is costed as NVIDIA ran it (data/DLE_README.md): PyTorch eager, AMP = autocast fp16 (mixed precision
training), TF32 and FP32 as named; inference at the row's batch, training at the per-GPU batch of the DLE
configs.yml for that platform and precision; ResNet-50 trains with SGD and momentum, EfficientNet with RMSprop
(two state slots a parameter, costed as effplan's adam). Rows of models effplan does not build (ResNeXt,
SE-ResNeXt, the wide-SE EfficientNets) are skipped. Multi-GPU training: one DGX (8 GPUs) over its NVLink; 16-64
GPUs over HDR InfiniBand, 8 x 200 Gb/s a DGX A100 = 25 GB/s per GPU.
"""
from __future__ import annotations

import csv
import math
import statistics
from pathlib import Path

import effplan
from effplan.design.blocks import build
from effplan.plan.hardware import load_device
from effplan.plan.measure import spearman
from effplan.plan.roofline import roofline
from effplan.plan.parallel import Link
from effplan.plan.training import training_step

DATA = Path(__file__).parent / "data" / "dle_pytorch_convnets.csv"
DEVICES = {"a100-80gb": "a100-80gb", "v100-16gb": "v100", "v100-32gb": "v100", "t4": "t4"}
DEVELOPMENT = ("a100-80gb",)
INFERENCE_DTYPE = {"amp": "fp16", "tf32": "tf32", "fp32": "fp32"}
TRAINING_PRECISION = {"amp": "mixed", "tf32": "tf32", "fp32": "fp32"}
# per-GPU training batch, DLE configs.yml (commit in data/DLE_README.md): (gpu, precision) -> model -> batch
TRAINING_BATCH = {
    ("a100-80gb", "amp"): {"resnet-50": 256, "efficientnet-b0": 256, "efficientnet-b4": 128},
    ("a100-80gb", "tf32"): {"resnet-50": 256, "efficientnet-b0": 256, "efficientnet-b4": 64},
    ("v100-16gb", "amp"): {"resnet-50": 256, "efficientnet-b0": 128, "efficientnet-b4": 32},
    ("v100-16gb", "fp32"): {"resnet-50": 112, "efficientnet-b0": 64, "efficientnet-b4": 16},
    ("v100-32gb", "amp"): {"resnet-50": 256, "efficientnet-b0": 256, "efficientnet-b4": 64},
    ("v100-32gb", "fp32"): {"resnet-50": 112, "efficientnet-b0": 128, "efficientnet-b4": 32},
}
OPTIMIZER = {"resnet-50": "momentum", "efficientnet-b0": "adam", "efficientnet-b4": "adam"}
NETWORK = Link(25e9, "network", "HDR InfiniBand: 8 x 200 Gb/s per DGX A100, one port a GPU")
_graphs: dict = {}


def _graph(model: str, resolution: int, batch: int):
    key = (model, resolution, batch)
    if key not in _graphs:
        _graphs[key] = build(effplan.with_overrides(effplan.resolve(model), resolution=resolution), batch)
    return _graphs[key]


def rows(path: Path = DATA) -> list[dict]:
    """The rows effplan can cost, each with its set (development or check) and `suspect` (inconsistent()) added."""
    out = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            if row["model"] not in OPTIMIZER:
                continue
            row["set"] = "development" if row["gpu"] in DEVELOPMENT else "check"
            row["measured"] = float(row["images_per_s"])
            out.append(row)
    for row in out:
        row["suspect"] = inconsistent(row, out)
    return out


def inconsistent(row: dict, table: list[dict]) -> str:
    """Why the source table contradicts itself at this row ("" where it does not), decided on the measurements
    alone, never on effplan's estimate: a 1-GPU training row that its own 8-GPU row outruns by more than 8x (data
    parallelism cannot scale past linear; the 8-GPU figure is the one consistent with the device's other table)."""
    if row["mode"] != "training" or row["gpus"] != "1":
        return ""
    for other in table:
        if (other["mode"], other["gpus"]) == ("training", "8") and all(
                other[k] == row[k] for k in ("model", "gpu", "precision")):
            if other["measured"] > 8 * row["measured"]:
                return f"its 8-GPU row runs {other['measured'] / row['measured']:.1f}x faster"
    return ""


def regime(row) -> str:
    if row["mode"] == "training":
        return "training"
    batch = int(row["batch"])
    return "inference b>=64" if batch >= 64 else "inference b1-8" if batch <= 8 else "inference b16-32"


def estimate(row, **overrides) -> float:
    """effplan's images/s for a row (all GPUs together); `overrides` go to roofline / training_step."""
    device = overrides.pop("device", None) or load_device(DEVICES[row["gpu"]])
    resolution = int(row["resolution"])
    if row["mode"] == "inference":
        batch = int(row["batch"])
        return roofline(_graph(row["model"], resolution, batch), device, INFERENCE_DTYPE[row["precision"]], batch,
                        runtime=overrides.pop("runtime", "eager")).images_per_s
    batch = TRAINING_BATCH[(row["gpu"], row["precision"])][row["model"]]
    gpus = int(row["gpus"])
    link = NETWORK if gpus > 8 else None
    step = training_step(_graph(row["model"], resolution, batch), device, runtime=overrides.pop("runtime", "eager"),
                         precision=TRAINING_PRECISION[row["precision"]], optimizer=OPTIMIZER[row["model"]],
                         devices=gpus, link=link)
    return step.images_per_s * gpus


def summary(members: list[dict]) -> dict:
    ratios = [r["estimate"] / r["measured"] for r in members]
    worst = max(range(len(ratios)), key=lambda i: abs(math.log(ratios[i])))
    return {"rows": len(members),
            "spearman": spearman([r["estimate"] for r in members], [r["measured"] for r in members])
            if len(members) > 2 else float("nan"),
            "median": math.exp(statistics.median(abs(math.log(x)) for x in ratios)),
            "median_ratio": statistics.median(ratios), "worst": ratios[worst],
            "worst_row": f"{members[worst]['model']} {members[worst]['gpu']} {members[worst]['precision']} "
                         f"{members[worst]['mode']} b{members[worst]['batch'] or '-'} x{members[worst]['gpus']}"}


def speedups(members: list[dict]) -> list[tuple[str, float, float]]:
    """(row, measured, estimated) 8-GPU speed-up over 1 GPU, for each training pair in `members` (not suspect)."""
    one = {(r["model"], r["gpu"], r["precision"]): r for r in members
           if r["mode"] == "training" and r["gpus"] == "1" and not r["suspect"]}
    out = []
    for r in members:
        key = (r["model"], r["gpu"], r["precision"])
        if r["mode"] == "training" and r["gpus"] == "8" and key in one:
            out.append((" ".join(key), r["measured"] / one[key]["measured"], r["estimate"] / one[key]["estimate"]))
    return out


def table(all_rows: list[dict]) -> str:
    """Markdown: per set and regime, the rows, Spearman, median and worst estimate/measured speed."""
    lines = ["| set | regime | rows | Spearman | median ratio (symmetric) | median est/meas | worst est/meas |",
             "|---|---|---|---|---|---|---|"]
    for which in ("development", "check"):
        for kind in ("training", "inference b>=64", "inference b16-32", "inference b1-8"):
            members = [r for r in all_rows if r["set"] == which and regime(r) == kind and not r["suspect"]]
            if not members:
                continue
            s = summary(members)
            lines.append(f"| {which} | {kind} | {s['rows']} | {s['spearman']:.3f} | {s['median']:.2f}x | "
                         f"{s['median_ratio']:.2f} | {s['worst']:.2f} ({s['worst_row']}) |")
    lines += ["", "| set | 8-GPU speed-up (model, GPU, precision) | measured | effplan | effplan / measured |",
              "|---|---|---|---|---|"]
    for which in ("development", "check"):
        for name, measured, estimated in speedups([r for r in all_rows if r["set"] == which]):
            lines.append(f"| {which} | {name} | {measured:.2f} | {estimated:.2f} | {estimated / measured:.2f} |")
    left = [r for r in all_rows if r["suspect"]]
    if left:
        lines += ["", "Left out of the figures above (the source table contradicts itself; inconsistent()):", ""]
        lines += [f"- {r['model']} {r['gpu']} {r['precision']} {r['mode']} x{r['gpus']}: measured {r['measured']:g} "
                  f"images/s, effplan {r['estimate']:.0f} ({r['estimate'] / r['measured']:.2f}x): {r['suspect']}"
                  for r in left]
    return "\n".join(lines)


def write_plain(path: Path, which: str = "development") -> int:
    """The `which` set's rows in `effplan calibrate --from`'s plain CSV (one host: 16-64 GPU rows left out)."""
    found = [r for r in rows() if r["set"] == which and int(r["gpus"]) <= 8 and not r["suspect"]]
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["model", "batch", "images_per_s", "resolution", "precision", "mode", "gpus", "runtime",
                      "optimizer", "source"])
        for r in found:
            batch = r["batch"] or TRAINING_BATCH[(r["gpu"], r["precision"])][r["model"]]
            out.writerow([r["model"], batch, r["images_per_s"], r["resolution"], r["precision"], r["mode"], r["gpus"],
                          "eager", OPTIMIZER[r["model"]] if r["mode"] == "training" else "",
                          f"NVIDIA/DeepLearningExamples {r['source']}@{r['commit'][:12]}"])
    return len(found)


if __name__ == "__main__":
    import sys
    print(write_plain(Path(sys.argv[1]) if len(sys.argv) > 1 else DATA.with_name("dle_a100_development.csv")),
          "rows written")


def bands(all_rows: list[dict], coverage: float = 0.8) -> dict:
    """specs/error-bands.json: per (runtime, kind, batch band) the interval of measured / estimated time (= the
    estimate's speed over the measured) that holds `coverage` of the check rows (central, by percentiles)."""
    import numpy as np

    from effplan.plan.bands import batch_band

    groups: dict = {}
    for r in all_rows:
        if r["set"] != "check" or r["suspect"]:
            continue
        batch = int(r["batch"]) if r["batch"] else TRAINING_BATCH[(r["gpu"], r["precision"])][r["model"]]
        groups.setdefault(("eager", r["mode"], batch_band(batch)), []).append(r["estimate"] / r["measured"])
    tail = (1 - coverage) / 2 * 100
    out = [{"runtime": rt, "kind": kind, "batch_band": band, "rows": len(ratios), "coverage": coverage,
            "low": float(np.percentile(ratios, tail)), "high": float(np.percentile(ratios, 100 - tail))}
           for (rt, kind, band), ratios in sorted(groups.items())]
    return {"source": "python benchmarks/fidelity.py --dle --write-bands: the check rows (V100, T4) of "
                      "benchmarks/data/dle_pytorch_convnets.csv, costed under eager; low and high are measured / "
                      "estimated time at the central percentiles holding `coverage` of the rows", "bands": out}
