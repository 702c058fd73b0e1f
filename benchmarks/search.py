"""Designs evaluated per second by the vectorised search path beside the graph path (build and profile
each design), both computing each design's MACs, FLOPs, params, weight bytes and peak activation memory;
then the whole-process wall time of a default `effplan search`.

    python benchmarks/search.py

The vectorised path builds one template graph per width (every depth and resolution come from it) and
checks its shortcuts once per spec and process, against graphs really built over a stride period of
resolutions and at two depths. The first search of a spec pays those checks; later ones in the same
process do not. Both rates are printed; every cache is cleared before each timed search.

Goal (issue 7): >= 100,000 designs/s for the vectorised path on the 2-core development machine.
"""
import dataclasses
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import effplan
from effplan.gate import grid
from effplan.plan.profile import analyze
from effplan.design.scaling import base_design


def vectorised_rate(design, depths, widths, sides, first: bool) -> tuple[float, int]:
    """One search's evaluation of the whole grid, as `effplan search` runs it."""
    grid._STRUCTURE.clear()
    if first:
        grid._CHECKED.clear()
    start = time.perf_counter()
    g = grid.evaluate_grid(design, depths, widths, sides)
    elapsed = time.perf_counter() - start
    assert g.built.all() and g.path == "vectorised" and (g.peak_bytes > 0).all() and (g.params > 0).all()
    return g.built.size / elapsed, g.built.size


def graph_rate(design, designs: int = 200) -> float:
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(designs):
        d, w, r = rng.uniform(1, 3), rng.uniform(1, 2), int(rng.integers(128, 640))
        t = analyze(dataclasses.replace(design, depth_mult=d, width_mult=w, resolution=r)).totals
        assert t.macs > 0 and t.params > 0 and t.peak_activation_bytes > 0
    return designs / (time.perf_counter() - start)


def main() -> None:
    print(f"Python {sys.version.split()[0]}, numpy {np.__version__}, effplan {effplan.__version__}, "
          f"{os.cpu_count()} CPUs")
    print(f"{'model':16} {'grid':32} {'designs':>7} {'first search/s':>15} {'later/s':>10} {'graph path/s':>13} "
          f"{'later / graph':>14}")
    for name in ("efficientnet-b0", "mobilenet-v2", "resnet-50"):
        design = base_design(effplan.resolve(name).spec)
        grid.evaluate_grid(design, [1.0], [1.0], [224])  # imports
        depths, widths = np.arange(1, 3.01, 0.2), np.arange(1, 2.01, 0.1)
        graph = graph_rate(design)
        for label, sides in (("d 11 x w 11 x r 128..639 step 1", np.arange(128, 640)),
                             ("d 11 x w 11 x r 128..632 step 8", np.arange(128, 640, 8)),
                             ("d 21 x w 21 x r 224..672 step 8", None)):
            axes = (depths, widths, sides) if sides is not None else \
                (np.arange(1, 3.01, 0.1), np.arange(1, 2.01, 0.05), np.arange(224, 673, 8))  # the CLI default
            first, count = vectorised_rate(design, *axes, first=True)
            later = statistics.median(vectorised_rate(design, *axes, first=False)[0] for _ in range(3))
            print(f"{name:16} {label:32} {count:7,} {first:15,.0f} {later:10,.0f} {graph:13,.0f} "
                  f"{later / graph:13,.0f}x")
    cmd = [sys.executable, "-m", "effplan", "search", "efficientnet-b0", "--max-macs", "2G", "--max-inference-memory",
           "300MiB"]
    walls = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=Path(__file__).resolve().parent.parent)
        walls.append(time.perf_counter() - start)
    print(f"whole process: effplan {' '.join(cmd[3:])}: {statistics.median(walls):.2f} s (median of 3; "
          f"21 depths x 21 widths x 57 resolutions = 25,137 designs evaluated, the best checked exactly through "
          f"the graph path, the largest phi by bisection, the Pareto front)")


if __name__ == "__main__":
    main()
