"""The eager runtime's [training] data_parallel_step_s, fitted on the development set only: the A100-80GB 1- and
8-GPU training pairs of benchmarks/data/dle_pytorch_convnets.csv (EfficientNet-B0/B4, ResNet-50; TF32 and AMP).
Each pair's measured 8-GPU speed-up (8-GPU images/s over 1-GPU) against effplan's, so that the 1-GPU step's own
error cancels; least squares on log(estimate / measured) over a grid of the per-step figure; leave-one-pair-out
cross-validated error. Prints the figure and, for the record, the check pairs (V100) at it: never used to choose it.

    python benchmarks/fit_data_parallel.py
"""
from __future__ import annotations

import dataclasses
import math
import statistics

import fidelity_dle as dle
from effplan.plan.hardware import load_device
from effplan.plan.runtime import load_runtime
from effplan.plan.training import training_step

GRID = [i * 1e-4 for i in range(600)]  # 0 to 60 ms


def pairs() -> list[tuple]:
    """(name, set, one-GPU step s, eight-GPU step s without the per-step figure, measured speed-up)."""
    bare = dataclasses.replace(load_runtime("eager"), data_parallel_step_s=0.0)
    found: dict = {}
    for r in dle.rows():
        if r["mode"] == "training" and r["gpus"] in ("1", "8") and not r["suspect"]:
            found.setdefault((r["model"], r["gpu"], r["precision"]), {})[r["gpus"]] = r
    out = []
    for (model, gpu, precision), p in sorted(found.items()):
        if len(p) < 2:
            continue
        graph = dle._graph(model, int(p["1"]["resolution"]), dle.TRAINING_BATCH[(gpu, precision)][model])
        step = training_step(graph, load_device(dle.DEVICES[gpu]), runtime=bare, devices=8,
                             precision=dle.TRAINING_PRECISION[precision], optimizer=dle.OPTIMIZER[model])
        out.append((f"{model} {gpu} {precision}", p["1"]["set"], step.device_time_s - step.communication_s,
                    step.device_time_s, p["8"]["measured"] / p["1"]["measured"]))
    return out


def errors(c: float, members) -> list[float]:
    return [math.log(8 * one / (eight + c) / measured) for _, _, one, eight, measured in members]


def fit(members) -> float:
    return min(GRID, key=lambda c: sum(e * e for e in errors(c, members)))


def main() -> None:
    found = pairs()
    development = [p for p in found if p[1] == "development"]
    c = fit(development)
    held = [abs(errors(fit(development[:i] + development[i + 1:]), [development[i]])[0]) for i in range(len(development))]
    print(f"data_parallel_step_s = {c:.4g}  ({len(development)} development pairs; leave-one-pair-out "
          f"cross-validated speed-up estimate/measured: median {math.exp(statistics.median(held)):.3f}x, "
          f"worst {math.exp(max(held)):.3f}x)")
    print("| set | pair | measured speed-up | effplan at 0 | effplan fitted | fitted / measured |")
    print("|---|---|---|---|---|---|")
    for name, which, one, eight, measured in found:
        print(f"| {which} | {name} | {measured:.2f} | {8 * one / eight:.2f} | {8 * one / (eight + c):.2f} | "
              f"{8 * one / (eight + c) / measured:.2f} |")


if __name__ == "__main__":
    main()
