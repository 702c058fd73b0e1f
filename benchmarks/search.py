"""Designs evaluated per second: the vectorised search path (a graph per depth and width, every cost
function run once per depth over numpy arrays of widths x resolutions) beside the graph path (build and profile
each design), both computing each design's MACs, params and peak activation memory; plus the
whole-process wall time of a default `effplan search`.

    python benchmarks/search.py

Goal (issue 7): >= 100,000 designs/s for the vectorised path on the 2-core development machine.
"""
import dataclasses
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

import effplan
from effplan.analysis import analyze
from effplan.scaling import base_design
from effplan.search import design_at, evaluate, evaluate_widths


def vectorised_rate(design, depths, widths, sides) -> tuple[float, int]:
    """As the search runs it: one call per depth, all widths and resolutions at once."""
    start = time.perf_counter()
    count = 0
    for d in depths:
        for f in evaluate_widths(design_at(design, d, widths[0], sides[0]), widths, sides):
            count += len(f.macs)
            assert f.peak_bytes.shape == f.macs.shape and f.params > 0
    return count / (time.perf_counter() - start), count


def graph_rate(design, designs: int = 200) -> float:
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(designs):
        d, w, r = rng.uniform(1, 3), rng.uniform(1, 2), int(rng.integers(128, 640))
        t = analyze(dataclasses.replace(design, depth_mult=d, width_mult=w, resolution=r)).totals
        assert t.macs > 0 and t.params > 0 and t.peak_activation_bytes > 0
    return designs / (time.perf_counter() - start)


def main() -> None:
    print(f"Python {sys.version.split()[0]}, numpy {np.__version__}, effplan {effplan.__version__}")
    print(f"{'model':18} {'grid':34} {'designs':>8} {'vectorised/s':>13} {'graph path/s':>13} {'speed-up':>9}")
    for name in ("efficientnet-b0", "mobilenet-v2", "resnet-50"):
        design = base_design(effplan.resolve(name).spec)
        evaluate(design, [224])  # import and cache warm-up
        depths, widths = np.arange(1, 3.01, 0.2), np.arange(1, 2.01, 0.1)
        graph = graph_rate(design)
        for label, sides in (("d 11 x w 11 x r 128..639 step 1", np.arange(128, 640)),
                             ("d 11 x w 11 x r 128..632 step 8", np.arange(128, 640, 8))):
            rate, count = vectorised_rate(design, depths, widths, sides)
            print(f"{name:18} {label:34} {count:8,} {rate:13,.0f} {graph:13,.0f} {rate / graph:8.0f}x")
    effplan_cli = shutil.which("effplan")
    if effplan_cli:
        cmd = [effplan_cli, "search", "efficientnet-b0", "--max-macs", "2G", "--max-inference-memory", "300MiB"]
        walls = []
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            walls.append(time.perf_counter() - start)
        print(f"whole process: {' '.join(cmd[1:])}: {statistics.median(walls):.2f} s (median of 3; "
              f"21 depths x 21 widths x 57 resolutions = 25,137 designs screened, the top checked exactly, "
              f"largest phi by bisection)")


if __name__ == "__main__":
    main()
