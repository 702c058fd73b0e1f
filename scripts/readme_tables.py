"""Regenerate (or check) the tables of README.md and docs/*.md from effplan itself.

Each generated block sits between `<!-- generated: NAME -->` and `<!-- end generated -->` in one of
those pages; NAME is a function below that returns the block's markdown.

    python scripts/readme_tables.py           # rewrite the pages in place
    python scripts/readme_tables.py --check   # exit 1 and name the blocks that drifted

tests/test_readme.py runs the check, so a change that moves a published figure fails CI until
the pages say the same.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]  # where generated blocks may live
BLOCK = re.compile(r"(<!-- generated: ([\w-]+) -->\n)(.*?)(<!-- end generated -->)", re.S)
B0_TO_B7 = [f"efficientnet-b{i}" for i in range(8)]


def effplan(*args: str) -> str:
    """The CLI's stdout, run in this process."""
    from effplan.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            main(list(args))
        except SystemExit as exc:
            if exc.code:
                raise RuntimeError(f"effplan {' '.join(args)} exited {exc.code}") from None
    return out.getvalue()


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]) + "\n"


# ---- the blocks ----

def phi_table() -> str:
    return effplan("table", "--phi", "0..7", "--format", "markdown").split("\n\n", 1)[1]


def phi_table_round() -> str:
    return effplan("table", "--phi", "0..7", "--depth-rounding", "round", "--format", "markdown").split("\n\n", 1)[1]


def published() -> str:
    names = B0_TO_B7 + ["efficientnet-b8", "efficientnet-l2"]
    return effplan("table", *names, "--format", "markdown").split("\n\n", 1)[1]


def all_models() -> str:
    names = [m["name"] for m in json.loads(effplan("models", "--format", "json"))]
    return effplan("table", *names, "--format", "markdown",
                   "--columns", "model,res,layers,params,macs,flops,peak_activation_bytes").split("\n\n", 1)[1]


# The EfficientNet paper's Table 3 (MobileNets, ResNet-50) and Table 7 (B0), in billions of multiply-adds.
TABLE3 = [  # network, label, paper figure, effplan arguments, (d, w, r) shown
    ("MobileNetV1", "baseline", "0.6B", ["mobilenet-v1"]),
    ("MobileNetV1", "width w=2", "2.2B", ["mobilenet-v1", "--scale", "width=2"]),
    ("MobileNetV1", "resolution r=2", "2.2B", ["mobilenet-v1", "--scale", "resolution=2"]),
    ("MobileNetV1", "compound", "2.3B", ["mobilenet-v1", "--depth-mult", "1.4", "--width-mult", "1.2",
                                         "--resolution", "291"]),
    ("MobileNetV2", "baseline", "0.3B", ["mobilenet-v2"]),
    ("MobileNetV2", "depth d=4", "1.2B", ["mobilenet-v2", "--scale", "depth=4"]),
    ("MobileNetV2", "width w=2", "1.1B", ["mobilenet-v2", "--scale", "width=2"]),
    ("MobileNetV2", "resolution r=2", "1.2B", ["mobilenet-v2", "--scale", "resolution=2"]),
    ("ResNet-50", "baseline", "4.1B", ["resnet-50"]),
    ("ResNet-50", "depth d=4", "16.2B", ["resnet-50", "--scale", "depth=4"]),
    ("ResNet-50", "width w=2", "14.7B", ["resnet-50", "--scale", "width=2"]),
    ("ResNet-50", "resolution r=2", "16.4B", ["resnet-50", "--scale", "resolution=2"]),
    ("EfficientNet-B0", "depth d=4", "1.8B", ["efficientnet-b0", "--scale", "depth=4"]),
    ("EfficientNet-B0", "width w=2", "1.8B", ["efficientnet-b0", "--scale", "width=2"]),
    ("EfficientNet-B0", "resolution r=2", "1.9B", ["efficientnet-b0", "--scale", "resolution=2"]),
    ("EfficientNet-B0", "compound", "1.8B", ["efficientnet-b0", "--depth-mult", "1.4", "--width-mult", "1.2",
                                             "--resolution", "291"]),
]


def table3() -> str:
    rows = []
    for network, label, paper, args in TABLE3:
        (r,) = json.loads(effplan("table", *args, "--format", "json"))
        rows.append([network, label, paper, f"{r['macs'] / 1e9:.3f} G",
                     f"{r['depth_mult']:g}, {r['width_mult']:g}, {r['resolution']}"])
    return markdown_table(["network", "scaling", "paper (Table 3 / Table 7)", "effplan", "d, w, r used"], rows)


def memory_b0_b7() -> str:
    rows = []
    for name in B0_TO_B7:
        mem = json.loads(effplan("memory", name, "--format", "json"))
        fits = [json.loads(effplan("fit", name, "--device", device, "--train", "--precision", "mixed",
                                   "--optimizer", "adamw", "--format", "json"))[0]["batch"]
                for device in ("t4", "a100-80gb")]
        rows.append([name, mem["resolution"], f"{mem['inference_peak_bytes'] / 2**20:.1f} MiB",
                     f"{mem['weight_bytes'] / 2**20:.1f} MiB", *fits])
    return markdown_table(["model", "res", "inference peak, batch 1 (fp32)", "weights",
                           "largest training batch, 16 GiB (T4)", "80 GiB (A100)"], rows)


OBSERVATION_DEVICES = ["v100", "t4", "a100-80gb", "h100-sxm", "l4", "tpu-v4", "tpu-v5e", "jetson-agx-orin"]


def _kernels(model: str, device: str, runtime: str) -> list[dict]:
    return json.loads(effplan("roofline", model, "--device", device, "--runtime", runtime, "--batch", "8",
                              "--format", "json"))


def v2_observation() -> str:
    rows = []
    for device, runtime in [(d, r) for d in OBSERVATION_DEVICES
                            for r in (("xla",) if "tpu" in d else ("eager", "compiled", "fused"))]:
        b4, v2s = _kernels("efficientnet-b4", device, runtime), _kernels("efficientnetv2-s", device, runtime)
        early = lambda report, pick: [k for k in report["layers"]  # noqa: E731
                                      if k["stage"] in (1, 2, 3) and k["op"].startswith("Conv") and pick(k)]
        depthwise = early(b4, lambda k: k["unit"] == "vector")
        fused = early(v2s, lambda k: k["unit"] == "matrix")
        per_mac = lambda ks: sum(k["time_s"] for k in ks) / sum(k["macs"] for k in ks) * 1e12  # noqa: E731
        bounds = sorted({k["bound"] for k in depthwise})
        unit = " (VPU)" if bounds == ["compute"] and "tpu" in device else ""
        rows.append([device, runtime, b4["dtype"], "/".join(bounds) + unit, f"{per_mac(depthwise):.3f}",
                     f"{per_mac(fused):.4f}", f"{per_mac(depthwise) / per_mac(fused):.0f}x"])
    return markdown_table(["device", "runtime", "dtype", "B4 depthwise: bound", "ps per MAC", "V2-S Fused-MBConv: ps per MAC",
                           "ratio"], rows)


RANKED = B0_TO_B7 + ["efficientnetv2-s", "efficientnetv2-m", "efficientnetv2-l", "resnet-50"]
SHORT = {f"efficientnet-b{i}": f"b{i}" for i in range(8)} | {
    "efficientnetv2-s": "v2-s", "efficientnetv2-m": "v2-m", "efficientnetv2-l": "v2-l"}


def ranking() -> str:
    rows = []
    for device in ("t4", "a100-80gb", "h100-sxm", "tpu-v4", "xeon-e5-2690"):
        dtype = json.loads(effplan("roofline", "resnet-50", "--device", device, "--format", "json"))["dtype"]
        table = json.loads(effplan("table", *RANKED, "--device", device, "--dtype", dtype, "--batch", "8",
                                   "--sort", "latency_s", "--format", "json"))
        rows.append([f"{device} ({dtype}, {table[0]['runtime']})", ", ".join(f"{SHORT.get(r['model'], r['model'])} {r['latency_s'] * 1e3:.2f}"
                                                      for r in table)])
    return markdown_table(["device", "fastest to slowest (ms, batch 8)"], rows)


def tools_disagree() -> str:
    ops = {r["op"]: r for r in json.loads(effplan("layers", "efficientnet-b0", "--by", "op", "--format", "json"))["layers"]}
    total = json.loads(effplan("layers", "efficientnet-b0", "--format", "json"))["totals"]
    macs = total["macs"]
    bn_elements = ops["BatchNormalization"]["output_bytes"] // 4
    elementwise = total["flops"] - 2 * macs  # bias adds and every non-conv op, by the table above
    one_each = sum(r["output_bytes"] // 4 for op, r in ops.items() if op not in ("Conv", "Gemm", "Flatten", "Dropout"))
    bias = sum(r["flops"] - 2 * r["macs"] for op, r in ops.items() if op in ("Conv", "Gemm"))
    g = lambda v: f"{v / 1e9:.3f} G"  # noqa: E731
    rows = [
        ["Conv + Gemm multiply-accumulates: effplan `macs`, the paper's \"0.39B FLOPS\", torchvision's 0.386 GFLOPS",
         g(macs)],
        [f"… plus BatchNormalization, 1 per element ({bn_elements / 1e6:.1f} M elements)", g(macs + bn_elements)],
        ["… plus every activation, SE multiply, residual add, pooling output and bias, 1 per element "
         "(about what thop reports: 0.40 G)", g(macs + one_each + bias)],
        ["2 × MACs (a multiply and an add each), convs and Gemm only", g(2 * macs)],
        ["effplan `flops`: 2·MACs plus the elementwise table above", g(2 * macs + elementwise)],
        ["onnx-tool 1.0.1 \"MACs\" of the exported graph (counts BN, Sigmoid, Mul, Add and pooling as MACs "
         "too; `benchmarks/analyze.py`)", "0.803 G"],
    ]
    return markdown_table(["what is counted", "B0 at 224"], rows)


BLOCKS = {f.__name__.replace("_", "-"): f for f in (phi_table, phi_table_round, published, all_models, table3,
                                                  memory_b0_b7, v2_observation, ranking, tools_disagree)}


def render(text: str, names: set[str] | None = None) -> tuple[str, list[str]]:
    """A page with its generated blocks redone (only `names`, if given), and the names that changed."""
    changed = []

    def redo(match):
        name = match.group(2)
        if name not in BLOCKS:
            raise SystemExit(f"unknown generated block '{name}'")
        if names is not None and name not in names:
            return match.group(0)
        body = BLOCKS[name]()
        if body != match.group(3):
            changed.append(name)
        return match.group(1) + body + match.group(4)
    return BLOCK.sub(redo, text), changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="report drift instead of rewriting")
    parser.add_argument("blocks", nargs="*", help="only these blocks (default: all)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from effplan.base.files import write_atomic
    drifted = []
    for page in PAGES:
        text = page.read_text()
        new, changed = render(text, set(args.blocks) or None)
        drifted += [f"{page.relative_to(ROOT)}: {name}" for name in changed]
        if changed and not args.check:
            write_atomic(page, new)
    if args.check and drifted:
        sys.exit(f"out of date: {', '.join(drifted)} (run python scripts/readme_tables.py)")
    if not args.check:
        print(f"{len(drifted)} block(s) rewritten: {', '.join(drifted) or 'none'}")


if __name__ == "__main__":
    main()
