"""The eager runtime's host figures ([launch] overhead_s per op and [host] step_s), fitted on the development set
only: the A100-80GB inference rows at batch 1-8 of benchmarks/data/dle_pytorch_convnets.csv, where throughput is
flat in the batch (host-bound). Least squares on log(estimate / measured) over a grid; leave-one-(model,
precision)-out cross-validated error. Prints the figures specs/runtimes/eager.toml records.

    python benchmarks/fit_host.py
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

import fidelity_dle as dle
from effplan.plan.hardware import load_device
from effplan.plan.roofline import kernels
from effplan.plan.runtime import load_runtime

PER_OP = np.arange(15e-6, 40e-6, 0.25e-6)
PER_STEP = np.arange(0.0, 2e-3, 0.05e-3)


def stream(device_s: np.ndarray, per_op: float, per_step: float) -> float:
    """roofline.sequence's async stream: the end is the latest launch plus all device work after it."""
    return float(np.max(np.cumsum(np.full(len(device_s), per_op)) + np.cumsum(device_s[::-1])[::-1])) + per_step


def main() -> None:
    bare = dataclasses.replace(load_runtime("eager"), overhead_s=0.0, host_step_s=0.0)
    cases = []
    for row in dle.rows():
        if row["set"] != "development" or row["mode"] != "inference" or int(row["batch"]) > 8:
            continue
        batch = int(row["batch"])
        graph = dle._graph(row["model"], int(row["resolution"]), batch)
        ks = kernels(graph, load_device(dle.DEVICES[row["gpu"]]), dle.INFERENCE_DTYPE[row["precision"]], bare)
        cases.append(((row["model"], row["precision"]), np.array([float(k.device_s) for k in ks]),
                      batch / row["measured"]))

    def errors(pair, chosen):
        return [math.log(stream(d, *pair) / seconds) for _, d, seconds in chosen]

    def fit(chosen):
        return min(((h, s) for h in PER_OP for s in PER_STEP), key=lambda p: sum(e * e for e in errors(p, chosen)))
    best = fit(cases)
    held = []
    for group in sorted({g for g, _, _ in cases}):
        pair = fit([c for c in cases if c[0] != group])
        held += [abs(e) for e in errors(pair, [c for c in cases if c[0] == group])]
    print(f"{len(cases)} rows: overhead_s = {best[0]:.3g}, step_s = {best[1]:.3g}; leave-one-(model, precision)-out "
          f"estimate/measured median {math.exp(np.median(held)):.3f}x, worst {math.exp(max(held)):.3f}x")


if __name__ == "__main__":
    main()
