"""Your own model, timed: whole-process wall time, as ratios, medians of interleaved runs.

1. `effplan analyze FILE --format json` of each fixture (tests/fixtures/*.onnx: the files PyTorch's
   exporters wrote, listed in exported.json, and the hand-built ones scripts/make_fixtures.py writes)
   against onnx-tool 1.0.1's profile of the same file (the peer command and its virtual environment as
   benchmarks/analyze.py makes them), both given the same named dimensions (exported.json's `dims`).
2. `effplan roofline` and `effplan memory --train` of an EfficientNet-B7 file (`effplan export
   efficientnet-b7 --dynamic-batch`, weights included) against the same command on the built-in name.

    python benchmarks/own_model.py [--runs 3] [--batch 8]
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import _effplan  # benchmarks/_effplan.py
from analyze import PEER_PY, ensure_peers, wall  # the same peer, set up the same way

# benchmarks/analyze.py's peer command, with each symbolic dimension given its value from argv[2] (JSON),
# else 1 (effplan's default batch): onnx-tool refuses a symbolic shape unless handed an input of that shape
PEER_SNIPPET = """
import json, sys, numpy, onnx, onnx_tool
m = onnx_tool.Model(sys.argv[1])
dims = json.loads(sys.argv[2])
g = m.graph
inputs = {v.name: numpy.zeros([d.dim_value or dims.get(d.dim_param, 1) for d in v.type.tensor_type.shape.dim],
                              numpy.float32)
          for v in m.mproto.graph.input if v.name in g.input}
g.graph_reorder_nodes()
g.shape_infer(inputs)
g.profile(exclude_ops=onnx_tool.NoMacsOps)
dense = sum(n.macs[0] for n in g.nodemap.values() if n.op_type in ("Conv", "Gemm", "MatMul"))
print(json.dumps({"macs": int(round(g.macs[0])), "dense_macs": int(round(dense)), "params": int(g.params)}))
"""

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"


def medians(commands: dict, runs: int) -> tuple[dict, dict]:
    """Median wall time of each command (None where it fails), runs interleaved; and its last stdout."""
    times, outputs = {key: [] for key in commands}, {}
    for round_ in range(runs + 1):  # the first round warms the file cache and is not counted
        for key, cmd in commands.items():
            if times[key] is None:
                continue
            try:
                seconds, outputs[key] = wall(cmd)
            except subprocess.CalledProcessError:
                times[key] = None
                continue
            if round_:
                times[key].append(seconds)
    return {key: statistics.median(v) if v else None for key, v in times.items()}, outputs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    effplan = _effplan.command()
    ensure_peers()

    recorded = json.loads((FIXTURES / "exported.json").read_text())["files"]
    files = {p.name: recorded.get(p.name, {}).get("dims", {}) for p in sorted(FIXTURES.glob("*.onnx"))}
    commands = {}
    for name, dims in files.items():
        path = str(FIXTURES / name)
        commands[name, "effplan"] = [effplan, "analyze", path, "--format", "json",
                                     *(f"--dim={k}={v}" for k, v in dims.items())]
        commands[name, "onnx-tool"] = [str(PEER_PY), "-c", PEER_SNIPPET, path, json.dumps(dims)]
    median, outputs = medians(commands, args.runs)
    print(f"median of {args.runs} runs, Python {sys.version.split()[0]}, onnx-tool 1.0.1")
    print(f"{'fixture':30} {'effplan s':>9} {'onnx-tool s':>11} {'effplan faster by':>17} "
          f"{'effplan MACs':>12} {'onnx-tool MACs':>14}")
    for name in files:
        ours, peer = median[name, "effplan"], median[name, "onnx-tool"]
        cells = [f"{t:.3f}" if t else "fails" for t in (ours, peer)]
        ratio = f"{peer / ours:.2f}x" if ours and peer else "-"
        macs = f"{json.loads(outputs[name, 'effplan'])['totals']['macs']:,}" if ours else "-"
        peer_macs = f"{json.loads(outputs[name, 'onnx-tool'].splitlines()[-1])['dense_macs']:,}" if peer else "-"
        print(f"{name:30} {cells[0]:>9} {cells[1]:>11} {ratio:>17} {macs:>12} {peer_macs:>14}")

    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/b7.onnx"
        subprocess.run([effplan, "export", "efficientnet-b7", "--dynamic-batch", "-o", path], check=True,
                       stdout=subprocess.DEVNULL)
        size = Path(path).stat().st_size
        commands = {}
        for what, extra in (("roofline", ["--device", "a100-80gb"]), ("memory --train", ["--train"])):
            for model in ("efficientnet-b7", path):
                commands[what, model] = [effplan, *what.split(" ")[:1], model, "--batch", str(args.batch),
                                         "--format", "json", *extra]
        median, _ = medians(commands, args.runs)
    print(f"\nEfficientNet-B7 exported with weights ({size / 2**20:.0f} MiB), --batch {args.batch}")
    print(f"{'command':16} {'built-in s':>10} {'file s':>8} {'file / built-in':>15}")
    for what in ("roofline", "memory --train"):
        built, imported = median[what, "efficientnet-b7"], median[what, path]
        print(f"{what:16} {built:10.3f} {imported:8.3f} {imported / built:14.2f}x")


if __name__ == "__main__":
    main()
