"""EfficientNet B3-B7 and EfficientNetV2-S/M/L training time: effplan's estimate beside the EfficientNetV2
paper's, in the paper's setting, and on one modern GPU. Prints Markdown tables (docs/training.md).

    python benchmarks/training_time.py            # the paper's setting and the single-GPU tables
    python benchmarks/training_time.py --timing   # `effplan train` against `effplan roofline` on B7
    python benchmarks/training_time.py --write-readme   # put the tables into docs/training.md
    python benchmarks/training_time.py --check-readme   # exit 1 when docs/training.md's tables differ

The tables of docs/training.md are this script's output, between the markers in README_BLOCK; tests/test_readme.py
does not check them (they take about 5 s to compute, where the README test must stay cheap).

Paper setting (EfficientNetV2, arXiv:2104.00298, Sections 4-5 and Table 7): 32 TPUv3 cores = 16 chips
(two TensorCores a chip; effplan's tpu-v3 device is a chip), global batch 4096, 350 epochs of ImageNet
ILSVRC2012 (1,281,167 images), XLA, bf16 with fp32 weights, RMSProp with momentum (two state slots a
parameter, as Adam: --optimizer adam). V2 trains progressively in four stages from 128 px to 300 (S) or
380 (M, L) px (Table 6); B3-B7 train at their own resolutions.

Verified (2026-12-02): epochs 350, batch 4096, optimizer rmsprop, mixed precision, data.ibase 128 and
train.stages 4 in google/automl efficientnetv2/hparams.py and effnetv2_configs.py; Table 6's sizes
(S 128-300, M and L 128-380) as reproduced in leondgarse/keras_cv_attention_models
keras_cv_attention_models/efficientnet/README.md ("Training detail from article"). The released code
trains stage i (0-3) at int(128 + (max - 128) (i + 1) / 4) with max 300 (S) and 384 (M, L): 171, 214,
257, 300 for S, never 128; effplan's --progressive uses the paper's MIN..MAX linearly (128, 185, 242,
300). The hours of PAPER (Table 7) were not found in a searchable copy of the paper: unverified.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

import effplan
from effplan.plan.hardware import load_device
from effplan.plan.training_run import training_run

IMAGENET, EPOCHS = 1281167, 350
# Train time (hours) on 32 TPUv3 cores, EfficientNetV2 paper, Table 7 (ImageNet ILSVRC2012). The seed
# (a talk on the paper) gives only the ratios: 5-11x faster than others, 11x for V2-M against B7.
PAPER = {"efficientnet-b3": 10, "efficientnet-b4": 21, "efficientnet-b5": 43, "efficientnet-b6": 75,
         "efficientnet-b7": 139, "efficientnetv2-s": 7.1, "efficientnetv2-m": 13, "efficientnetv2-l": 24}
PROGRESSIVE = {"efficientnetv2-s": (128, 300, 4), "efficientnetv2-m": (128, 380, 4), "efficientnetv2-l": (128, 380, 4)}


def run(model, device, **kw):
    return training_run(effplan.resolve(model), load_device(device), epochs=EPOCHS, dataset_size=IMAGENET,
                        progressive=PROGRESSIVE.get(model), **kw)


def paper_table() -> str:
    lines = ["| model | train px | per-chip batch fits? | effplan hours | paper hours (Table 7, unverified) "
             "| effplan / paper |",
             "|---|---|---|---|---|---|"]
    ranking = []
    for model, hours in PAPER.items():
        r = run(model, "tpu-v3", global_batch=4096, devices=16, optimizer="adam", runtime="xla")
        sides = "→".join(str(s.resolution) for s in r.stages)
        fits = ", ".join(f"{'yes' if s.batch <= s.largest_batch else 'no'} ({s.largest_batch})" for s in r.stages)
        lines.append(f"| {model} | {sides} | {fits} | {r.hours:.1f} | {hours:g} | {r.hours / hours:.2f} |")
        ranking.append((model, r.hours, hours))
    ours = [m for m, _, _ in sorted(ranking, key=lambda x: x[1])]
    theirs = [m for m, _, _ in sorted(ranking, key=lambda x: x[2])]
    lines.append("")
    lines.append(f"- ranking, effplan: {', '.join(ours)}")
    lines.append(f"- ranking, paper: {', '.join(theirs)} ({'the same' if ours == theirs else 'differs'})")
    return "\n".join(lines)


def gpu_table(devices=("a100-80gb", "rtx-4090")) -> str:
    lines = ["| model | device | px | batch (largest that fits) | images/s | hours, 350 epochs |", "|---|---|---|---|---|---|"]
    for model in PAPER:
        for device in devices:
            r = run(model, device, runtime="eager")
            sides = "→".join(str(s.resolution) for s in r.stages)
            batches = "→".join(str(s.batch) for s in r.stages)
            speed = "→".join(f"{s.step.images_per_s:,.0f}" for s in r.stages)
            lines.append(f"| {model} | {device} | {sides} | {batches} | {speed} | {r.hours:,.0f} |")
    return "\n".join(lines)


def timing() -> str:
    def best(args):
        times = []
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "effplan", *args], check=True, capture_output=True)
            times.append(time.perf_counter() - start)
        return min(times)
    train = best(["train", "efficientnet-b7", "--device", "a100-80gb"])
    roof = best(["roofline", "efficientnet-b7", "--device", "a100-80gb"])
    return f"effplan train B7 {train:.2f} s, effplan roofline B7 {roof:.2f} s: {train / roof:.2f}x (goal < 2x)"


README = Path(__file__).resolve().parent.parent / "docs" / "training.md"
README_BLOCK = re.compile(r"(<!-- output of: python benchmarks/training_time.py -->\n)(.*?)(<!-- end output -->)", re.S)


def readme(write: bool) -> int:
    """Compare (or replace) the README's block with this script's tables: 0 when they agree (or were written)."""
    text = README.read_text()
    match = README_BLOCK.search(text)
    if match is None:
        sys.exit("docs/training.md has no '<!-- output of: python benchmarks/training_time.py -->' block")
    tables = tables_text()
    if match.group(2) == tables:
        return 0
    if write:
        from effplan.base.files import write_atomic
        write_atomic(README, text[:match.start(2)] + tables + text[match.end(2):])
        return 0
    print("docs/training.md's training-time tables differ: run python benchmarks/training_time.py --write-readme")
    return 1


def tables_text() -> str:
    return "\n".join([paper_table(), "", gpu_table(), ""])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timing", action="store_true")
    parser.add_argument("--write-readme", action="store_true")
    parser.add_argument("--check-readme", action="store_true")
    args = parser.parse_args()
    if args.timing:
        print(timing())
    elif args.write_readme or args.check_readme:
        sys.exit(readme(args.write_readme))
    else:
        print(tables_text(), end="")
