"""Whole-process wall time of `effplan analyze FILE --format json` against onnx-tool 1.0.1's
profiler on the same ONNX file (EfficientNet-B0 and -B7 as `effplan export` writes them, BN
unfolded), with the MACs and params each reports. Median of N runs each, interleaved so machine
noise hits both alike; `python -c 'import effplan'` is timed too, as the floor.

    python benchmarks/analyze.py [--runs 5]

onnx-tool runs in its own virtual environment, benchmarks/.peers-venv (git-ignored), which this
script makes on first use with `pip install onnx-tool==1.0.1 'ml_dtypes<0.7'`, so it never touches
effplan's (ml_dtypes as effplan pins it: onnx imports it, and 0.7 adds half a second to either side).
The peer command does what `onnx_tool.model_profile` does (load, reorder, shape_infer, profile
with its default NoMacsOps excluded) but prints only totals instead of its per-node table;
effplan prints its full per-layer JSON report.
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

import _effplan  # benchmarks/_effplan.py

MODELS = ["efficientnet-b0", "efficientnet-b7"]
PEERS = Path(__file__).resolve().parent / ".peers-venv"
PEER_PY = PEERS / "bin" / "python"
PEER_SNIPPET = """
import json, sys, onnx_tool
g = onnx_tool.Model(sys.argv[1]).graph
g.graph_reorder_nodes()
g.shape_infer()
g.profile(exclude_ops=onnx_tool.NoMacsOps)
dense = sum(n.macs[0] for n in g.nodemap.values() if n.op_type in ("Conv", "Gemm", "MatMul"))
print(json.dumps({"macs": int(round(g.macs[0])), "dense_macs": int(round(dense)), "params": int(g.params)}))
"""


def wall(cmd: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    return time.perf_counter() - start, out


def ensure_peers() -> None:
    if not PEER_PY.exists():
        print(f"creating {PEERS} (onnx-tool 1.0.1) ...", file=sys.stderr)
        venv.create(PEERS, with_pip=True)
    if subprocess.run([PEER_PY, "-c", "import onnx_tool"], capture_output=True).returncode:
        subprocess.run([PEER_PY, "-m", "pip", "install", "-q", "onnx-tool==1.0.1", "ml_dtypes<0.7"], check=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    effplan = _effplan.command()
    ensure_peers()
    with tempfile.TemporaryDirectory() as tmp:
        commands = {"floor": [sys.executable, "-c", "import effplan"]}
        for model in MODELS:
            path = f"{tmp}/{model}.onnx"
            subprocess.run([effplan, "export", model, "-o", path], check=True, stdout=subprocess.DEVNULL)
            commands[model, "effplan"] = [effplan, "analyze", path, "--format", "json"]
            commands[model, "onnx-tool"] = [str(PEER_PY), "-c", PEER_SNIPPET, path]
        outputs = {key: wall(cmd)[1] for key, cmd in commands.items()}  # warm the file cache
        times = {key: [] for key in commands}
        for _ in range(args.runs):
            for key, cmd in commands.items():
                times[key].append(wall(cmd)[0])
    median = {key: statistics.median(values) for key, values in times.items()}
    print(f"median of {args.runs} runs, Python {sys.version.split()[0]}, onnx-tool 1.0.1 in {PEERS.name}")
    print(f"floor: python -c 'import effplan' {median['floor']:.3f} s")
    print(f"{'model':16} {'effplan s':>9} {'onnx-tool s':>11} {'ratio':>6} {'effplan MACs':>15} "
          f"{'onnx-tool MACs':>15} {'(Conv+Gemm)':>15} {'effplan params':>14} {'(+BN buffers)':>13} "
          f"{'onnx-tool params':>16}")
    for model in MODELS:
        ours = json.loads(outputs[model, "effplan"])["totals"]
        peer = json.loads(outputs[model, "onnx-tool"].splitlines()[-1])
        t_ours, t_peer = median[model, "effplan"], median[model, "onnx-tool"]
        print(f"{model:16} {t_ours:9.3f} {t_peer:11.3f} {t_peer / t_ours:5.2f}x {ours['macs']:15,} "
              f"{peer['macs']:15,} {peer['dense_macs']:15,} {ours['params']:14,} {ours['buffers']:13,} "
              f"{peer['params']:16,}")
    print("MACs: effplan counts Conv/Gemm/MatMul multiply-accumulates only; onnx-tool also counts\n"
          "BatchNormalization, Sigmoid, Mul, Add and pooling, and one add per output of a biased\n"
          "Conv/Gemm (so its Conv+Gemm column exceeds effplan's by those bias adds).\n"
          "Params: onnx-tool counts every initializer, BN running mean/var included (effplan's buffers).")


if __name__ == "__main__":
    main()
