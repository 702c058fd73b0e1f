"""The calibration loop on this machine: `effplan calibrate`'s figures, then estimate against
onnxruntime (CPU, fp32, profiled) for the networks the figures were derived on and for networks
they were not, at batch 1 and 8 (224 px for the judged networks):

    python benchmarks/measure.py [--runs 20]

Derivation subset: effplan's calibration network (plan/measure.py probe_graph: dense convs,
depthwise convs, an SE block), whose kernels give the matrix efficiency, the depthwise rate and the
per-kernel cost. Judged: efficientnet-b0, mobilenet-v2, resnet-50, never used to derive a figure.
Each row: estimate, the median profiled run (what this machine gave while it ran, load and all) and
the best (each kernel's best run: what a quiet machine gives), their ratios, the spread of the runs,
the per-kernel Spearman, and the layout reorders modelled against those onnxruntime ran. A
benchmark, not a test: timings depend on the machine and its load (printed first).
"""
import argparse
import os
import sys
import tomllib

from effplan.cli.options import designs_from
from effplan.design.blocks import build
from effplan.plan.hardware import device_from_table
from effplan.plan.measure import calibrate, measure, probe_graph
from effplan.plan.roofline import roofline


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    text, figures = calibrate()
    device = device_from_table(tomllib.loads(text), "calibration")
    print(f"calibrated: GEMM {figures['matrix_fp32'] / 1e9:.1f} GFLOP/s x efficiency {figures['matrix_efficiency']:.2f}"
          f" (onnxruntime's dense convs), depthwise {figures['vector_fp32'] / 1e9:.1f} GFLOP/s, "
          f"{figures['bandwidth'] / 1e9:.1f} GB/s in memory-bound kernels (a DRAM copy {figures['copy_bandwidth'] / 1e9:.1f}), "
          f"{figures['launch'] * 1e6:.2f} µs per kernel, NCHWc block "
          f"{figures['nchwc_block']}; spread over rounds: "
          + ", ".join(f"{k} {v:.0%}" for k, v in figures["spreads"].items()))
    print(f"{'set':8} {'model':16} {'batch':>5} {'est ms':>8} {'median ms':>9} {'est/med':>7} {'best ms':>8} "
          f"{'est/best':>8} {'spread':>6} {'Spearman':>8} {'(best)':>6} {'reorders est/run':>16}")
    rows = [("derive", "calibration", 1)] + [("judge", m, b) for m in ("efficientnet-b0", "mobilenet-v2", "resnet-50")
                                             for b in (1, 8)]
    for group, model, batch in rows:
        if model == "calibration":
            graph, design = probe_graph(), None
        else:
            (pair,) = designs_from([model], None, None, None, None, "ceil", None, None, None, (), None)
            design = pair[0]
            graph = build(design, batch)
        r = measure(graph, design, roofline(graph, device, "fp32", batch), args.runs)
        print(f"{group:8} {model:16} {batch:5} {r['estimated_s'] * 1e3:8.2f} {r['measured_s'] * 1e3:9.2f} "
              f"{r['ratio']:7.2f} {r['best_s'] * 1e3:8.2f} {r['ratio_best']:8.2f} {r['spread']:6.0%} "
              f"{r['spearman']:8.2f} {r['spearman_best']:6.2f} {r['reorders']['modelled']:>9}/{r['reorders']['measured']}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
