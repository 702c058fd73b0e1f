"""The standing fidelity check: effplan's images/s against measured throughput (benchmarks/data/throughput.csv).

    python benchmarks/fidelity.py [--runtime eager] [--device rtx-4090] [--layout nchw] [--rows]
    python benchmarks/fidelity.py --dle [--rows]   # DeepLearningExamples: development and check sets apart

Per (device, runtime, layout) group of rows whose device has a file in specs/hardware/: Spearman rank
correlation, median estimate/measured, median |log2(estimate/measured)| and the worst row, over the rows
with PyTorch's symmetric padding ("timm" rows) and, apart, the `tf_` rows (TensorFlow 'same' padding:
an explicit pad before each strided conv that effplan does not model). Each row is costed at its own
resolution, width and batch, at fp16, with `--runtime` = the row's runtime. Nothing here is fitted.
"""
from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
from pathlib import Path

import effplan
from effplan.design.blocks import build
from effplan.plan.hardware import builtin_device_paths, load_device
from effplan.plan.measure import spearman
from effplan.plan.roofline import roofline

DATA = Path(__file__).parent / "data" / "throughput.csv"


def estimate(row, cache={}):
    key = (row["effplan_model"], row["width_mult"], int(row["resolution"]), int(row["batch"]),
           row["device"], row["runtime"])
    if key not in cache:
        design = effplan.resolve(row["effplan_model"])
        width = float(row["width_mult"]) if row["width_mult"] else None
        design = effplan.with_overrides(design, resolution=int(row["resolution"]),
                                        width_mult=None if width is None else design.width_mult * width)
        batch = int(row["batch"])
        cache[key] = roofline(build(design, batch), load_device(row["device"]), row["precision"], batch,
                              runtime=row["runtime"]).images_per_s
    return cache[key]


def summary(rows) -> dict:
    est = [r["estimate"] for r in rows]
    meas = [float(r["images_per_s"]) for r in rows]
    ratios = [e / m for e, m in zip(est, meas)]
    worst = max(range(len(rows)), key=lambda i: abs(math.log2(ratios[i])))
    return {"rows": len(rows), "spearman": spearman(est, meas), "median_ratio": statistics.median(ratios),
            "median_abs_log2": statistics.median(abs(math.log2(r)) for r in ratios),
            "within_15pct": sum(abs(math.log2(r)) <= math.log2(1.15) for r in ratios) / len(rows),
            "worst_ratio": ratios[worst],
            "worst": f"{rows[worst]['source_model']}@{rows[worst]['resolution']}"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", action="append", help="only these runtimes (repeatable)")
    parser.add_argument("--device", action="append", help="only these devices (repeatable)")
    parser.add_argument("--layout", action="append", help="only these layouts: nchw, nhwc (repeatable)")
    parser.add_argument("--rows", action="store_true", help="print every row's estimate")
    parser.add_argument("--write-bands", action="store_true", help="with --dle: write specs/error-bands.json "
                        "from the check rows")
    parser.add_argument("--dle", action="store_true", help="NVIDIA DeepLearningExamples rows instead: development "
                        "(A100) and check (V100, T4) sets apart, training, inference by batch, 8-GPU speed-up")
    args = parser.parse_args(argv)
    if args.dle:
        import fidelity_dle as dle
        found = dle.rows()
        for row in found:
            row["estimate"] = dle.estimate(row)
        print(dle.table(found))
        if args.write_bands:
            import json
            from effplan.base.files import write_atomic
            from effplan.plan.bands import BANDS_FILE
            write_atomic(str(BANDS_FILE), json.dumps(dle.bands(found), indent=1) + "\n")
        if args.rows:
            for r in found:
                print(f"{r['set']},{r['gpu']},{r['model']},{r['precision']},{r['mode']},{r['batch']},{r['gpus']},"
                      f"{r['measured']:.0f},{r['estimate']:.0f},{r['estimate'] / r['measured']:.2f}")
        return
    devices = builtin_device_paths()
    with open(DATA, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["device"] in devices
                and (not args.runtime or r["runtime"] in args.runtime)
                and (not args.device or r["device"] in args.device)
                and (not args.layout or r["layout"] in args.layout)]
    if not rows:
        sys.exit("no rows match (rows whose device has no file in specs/hardware/ are skipped)")
    groups: dict = {}
    for row in rows:
        row["estimate"] = estimate(row)
        subset = "tf_ padding" if row["source_model"].startswith("tf_") else "timm"
        groups.setdefault((row["device"], row["runtime"], row["layout"], subset), []).append(row)
    print("| device | runtime | layout | rows | subset | Spearman | median est/meas | median abs log2 | "
          "within 15% | worst est/meas |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (device, runtime, layout, subset), members in sorted(groups.items()):
        s = summary(members)
        print(f"| {device} | {runtime} | {layout} | {s['rows']} | {subset} | {s['spearman']:.3f} | "
              f"{s['median_ratio']:.2f} | {s['median_abs_log2']:.3f} | {s['within_15pct']:.0%} | "
              f"{s['worst_ratio']:.2f} ({s['worst']}) |")
    if args.rows:
        for row in rows:
            print(f"{row['device']},{row['runtime']},{row['layout']},{row['source_model']},{row['resolution']},"
                  f"{row['batch']},{float(row['images_per_s']):.0f},{row['estimate']:.0f},"
                  f"{row['estimate'] / float(row['images_per_s']):.2f}")


if __name__ == "__main__":
    main()
