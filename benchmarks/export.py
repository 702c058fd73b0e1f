"""Full-size exports, checked and run: `effplan export MODEL --check` (onnx checker, then onnxruntime
on random input) for every built-in model at its own resolution, batch 1, with the wall time, the
process's peak RSS and the file's size. The test suite runs every model at width 0.25 and 32x32
(tests/test_onnx.py); this is where the full sizes, and their cost, are seen.

    python benchmarks/export.py [--models efficientnet-b7,efficientnetv2-l]

efficientnet-l2 writes a 1.9 GB file and needs several GB of memory: it runs only when named.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _effplan  # benchmarks/_effplan.py

SKIPPED = ("efficientnet-l2",)


def run(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS in bytes (Linux reports KiB) of one process, which must succeed."""
    start = time.perf_counter()
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = process.stderr.read()  # a full pipe would block the child
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status):
        sys.exit(f"{' '.join(cmd)} failed: {err.decode().strip()}")
    return seconds, usage.ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", help="comma-separated; default every built-in model but " + ", ".join(SKIPPED))
    args = parser.parse_args()
    effplan = _effplan.command()
    if args.models:
        models = args.models.split(",")
    else:
        listed = subprocess.run([effplan, "models", "--format", "json"], check=True, capture_output=True, text=True)
        models = [m["name"] for m in json.loads(listed.stdout) if m["name"] not in SKIPPED]
    print(f"{'model':20} {'wall s':>7} {'peak RSS MiB':>12} {'file MiB':>9}")
    with tempfile.TemporaryDirectory() as folder:
        for model in models:
            path = Path(folder) / f"{model}.onnx"
            seconds, rss = run([effplan, "export", model, "--check", "-o", str(path)])
            size = sum(p.stat().st_size for p in Path(folder).glob(f"{model}.onnx*"))
            print(f"{model:20} {seconds:7.2f} {rss / 2**20:12.0f} {size / 2**20:9.1f}")
            for p in Path(folder).glob(f"{model}.onnx*"):
                p.unlink()


if __name__ == "__main__":
    main()
