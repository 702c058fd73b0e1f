"""The calibration loop on this machine: `effplan calibrate`, then `effplan measure` for
efficientnet-b0, mobilenet-v2 and resnet-50 at batch 1 and 8 (224 px, fp32, onnxruntime CPU):
estimated against measured total latency, and the Spearman rank correlation of per-kernel times.

    python benchmarks/measure.py [--runs 20]

Goal (issue 6): every total within a factor of 2, every Spearman >= 0.7. A benchmark, not a test:
timings depend on the machine and its load.
"""
import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import _effplan  # benchmarks/_effplan.py


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    effplan = _effplan.command()
    with tempfile.TemporaryDirectory() as folder:
        device = str(Path(folder) / "local-cpu.toml")
        print(subprocess.run([effplan, "calibrate", "-o", device], check=True, capture_output=True,
                             text=True).stdout.strip())
        print(f"{'model':16} {'batch':>5} {'estimate ms':>12} {'measured ms':>12} {'est/meas':>9} {'Spearman':>9} "
              f"{'kernels':>8}")
        for model in ("efficientnet-b0", "mobilenet-v2", "resnet-50"):
            for batch in (1, 8):
                out = subprocess.run([effplan, "measure", model, "--device", device, "--batch", str(batch),
                                      "--runs", str(args.runs), "--format", "json"],
                                     check=True, capture_output=True, text=True).stdout
                r = json.loads(out)
                print(f"{model:16} {batch:5} {r['estimated_s'] * 1e3:12.2f} {r['measured_s'] * 1e3:12.2f} "
                      f"{r['ratio']:9.2f} {r['spearman']:9.2f} {r['kernels_timed']:8}")


if __name__ == "__main__":
    main()
