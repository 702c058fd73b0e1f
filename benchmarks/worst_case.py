"""The worst accepted input per command, timed: wall time, CPU time and peak memory (max RSS) of each
command run as its own process at the limits effplan accepts (and one file just past a limit, which must
be refused quickly). Issue 22's bound: every accepted input finishes under 60 s and 2 GiB.

    python benchmarks/worst_case.py [--only NAME]

The inputs: a 99,999-node chain (a file holds at most 100,000 nodes), graphs of ops side by side just
within the memory planner's bounds, and a 10^6-node file, written here; the exported
EfficientNet-B7 with its weights (267 MB); `report` at its 100 designs (x 2 devices) and 200 design-device pairs, and `table` at
its 200 designs, all at the largest phi; `search --timed` at its 100.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import _effplan  # benchmarks/_effplan.py


def chain(path: str, nodes: int) -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", [f"t{i}"], [f"t{i + 1}"]) for i in range(nodes)], "chain",
                              [helper.make_tensor_value_info("t0", TensorProto.FLOAT, [1, 8])],
                              [helper.make_tensor_value_info(f"t{nodes}", TensorProto.FLOAT, [1, 8])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def wide(path: str, branches: int) -> None:
    """`branches` ops side by side (each reads the input; one Sum joins them): every step keeps them live."""
    import onnx
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Relu", ["x"], [f"r{i}"]) for i in range(branches)]
    nodes.append(helper.make_node("Sum", [f"r{i}" for i in range(branches)], ["y"]))
    graph = helper.make_graph(nodes, "wide", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def measured(cmd: list[str]) -> tuple[int, float, float, int]:
    """(exit code, wall s, CPU s, peak RSS bytes) of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    return os.waitstatus_to_exitcode(status), wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default=None, help="run the cases whose name contains this")
    parser.add_argument("--write", nargs=3, metavar=("KIND", "PATH", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write:  # in a process of its own: a child forked from a large parent starts with the parent's max RSS
        kind, path, n = args.write
        return {"chain": chain, "wide": wide}[kind](path, int(n))

    def write(kind: str, path: str, n: int) -> None:
        subprocess.run([sys.executable, __file__, "--write", kind, path, str(n)], check=True)

    effplan = _effplan.command()
    devices = ["a100-80gb", "h100-sxm", "t4", "l4", "rtx-4090", "jetson-agx-orin", "a100-40gb", "h200"]
    with tempfile.TemporaryDirectory() as tmp:
        cases = {
            "analyze, 99,999-node chain": ["analyze", f"{tmp}/chain.onnx", "-o", f"{tmp}/out"],
            "memory --train, 99,999-node chain": ["memory", f"{tmp}/chain.onnx", "--train", "-o", f"{tmp}/out"],
            "roofline, 99,999-node chain": ["roofline", f"{tmp}/chain.onnx", "--device", "t4", "-o", f"{tmp}/out"],
            "analyze, 10^6-node file (refused)": ["analyze", f"{tmp}/million.onnx"],
            "memory, 1,990 ops side by side": ["memory", f"{tmp}/wide.onnx", "-o", f"{tmp}/out"],
            "analyze, 7,000 ops side by side": ["analyze", f"{tmp}/wide7k.onnx", "-o", f"{tmp}/out"],
            "roofline, EfficientNet-B7 file with weights": ["roofline", f"{tmp}/b7.onnx", "--batch", "8", "--device",
                                                            "a100-80gb", "-o", f"{tmp}/out"],
            "report, 100 designs at phi 15-16 x 2 devices": ["report", "--phi", "15.01..16:0.01",
                                                *(f"--device={d}" for d in devices[:2]), "-o", f"{tmp}/out.html"],
            "report, 25 designs at phi 15.76-16 x 8 devices": ["report", "--phi", "15.76..16:0.01",
                                                              *(f"--device={d}" for d in devices), "-o", f"{tmp}/o.html"],
            "search --timed 100": ["search", "efficientnet-b0", "--objective", "train-throughput", "--device", "t4",
                                   "--max-training-memory", "16GiB", "--batch", "8", "--timed", "100",
                                   "-o", f"{tmp}/out"],
            "table, 200 designs at phi 14-16": ["table", "--phi", "14.01..16:0.01", "-o", f"{tmp}/out"],
        }
        cases = {k: v for k, v in cases.items() if not args.only or args.only in k}
        if any("chain" in k for k in cases):
            write("chain", f"{tmp}/chain.onnx", 99_999)
        if any("side by side" in k for k in cases):
            write("wide", f"{tmp}/wide.onnx", 1_990)  # its memory-aware order weighs just under 2,000,000 chains
            write("wide", f"{tmp}/wide7k.onnx", 7_000)  # its timeline holds just under 25,000,000 live tensors
        if any("10^6" in k for k in cases):
            write("chain", f"{tmp}/million.onnx", 1_000_000)
        if any("B7" in k for k in cases):
            subprocess.run([effplan, "export", "efficientnet-b7", "--dynamic-batch", "-o", f"{tmp}/b7.onnx"],
                           check=True, stdout=subprocess.DEVNULL)
        print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
        print("| command | exit | wall s | CPU s | peak RSS MiB |")
        print("|---|---|---|---|---|")
        for name, cmd in cases.items():
            code, wall, cpu, rss = measured([effplan, *cmd])
            print(f"| {name} | {code} | {wall:.1f} | {cpu:.1f} | {rss / 2**20:.0f} |", flush=True)


if __name__ == "__main__":
    main()
