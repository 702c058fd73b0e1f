"""What reading ONNX with protobuf costs (docs/robustness.md, section 1).

1. In one process, after imports, best of N: the skim and protobuf's parse of what it leaves
   (`read._parse`), the whole read (`importer.read_file`: checks and plain objects too), and
   `onnx.load` of the whole file, on the fixtures and on exported EfficientNet-B0 and B7 with weights.
2. `import onnx` in a fresh interpreter that has numpy already (median CPU time of N).
3. With `--before TREE` (an effplan source tree, e.g. `git archive <commit> effplan specs | tar -x -C
   TREE`): whole-process CPU time of `analyze` and `roofline` on the same files, that tree against this
   one, interleaved (median of N).

    python benchmarks/reader.py [--runs 5] [--before TREE]
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _effplan  # benchmarks/_effplan.py

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ["tf_same_opset17.onnx", "timm_vit_opset17.onnx"]


def best(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


def child_cpu(cmd: list[str], env=None) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                   cwd=tempfile.gettempdir())  # not the checkout: its effplan would come first on sys.path
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--before", default=None, help="an effplan source tree to compare whole processes with")
    args = parser.parse_args()
    import onnx

    from effplan.onnx import importer, read

    effplan = _effplan.command()
    with tempfile.TemporaryDirectory() as tmp:
        files = {name: str(ROOT / "tests" / "fixtures" / name) for name in FIXTURES}
        for model in ("efficientnet-b0", "efficientnet-b7"):
            files[f"{model} with weights"] = f"{tmp}/{model}.onnx"
            subprocess.run([effplan, "export", model, "--dynamic-batch", "-o", files[f"{model} with weights"]], check=True,
                           stdout=subprocess.DEVNULL)
        print(f"in-process ms, best of {args.runs}")
        print("| file | skim + protobuf | read_file (checks, objects) | onnx.load of the whole file |")
        print("|---|---|---|---|")
        for name, path in files.items():
            skim = best(lambda: read._parse(Path(path), path, 1), args.runs)
            whole = best(lambda: importer.read_file(path), args.runs)
            theirs = best(lambda: onnx.load(path, load_external_data=False), args.runs)
            print(f"| {name} | {skim:.2f} | {whole:.2f} | {theirs:.2f} |")

        code = "import numpy, time; t = time.process_time(); import onnx; print(time.process_time() - t)"
        costs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
                 for _ in range(args.runs)]
        print(f"\nimport onnx (numpy loaded): median {statistics.median(costs) * 1e3:.0f} ms of CPU")

        if args.before:
            run = "import sys; from effplan.cli import main; sys.argv[0] = 'effplan'; main()"
            cases = {f"analyze {name}": ["analyze", path, "--format", "json"] for name, path in files.items()
                     if "b7" not in name}
            cases["roofline efficientnet-b7 with weights"] = ["roofline", files["efficientnet-b7 with weights"],
                                                             "--batch", "8", "--device", "a100-80gb"]
            trees = {"before": os.path.abspath(args.before), "now": str(ROOT)}
            times = {(case, tree): [] for case in cases for tree in trees}
            for round_ in range(args.runs + 1):  # the first round warms caches
                for case, cmd in cases.items():
                    for tree, root in trees.items():
                        cpu = child_cpu([sys.executable, "-c", run, *cmd], {**os.environ, "PYTHONPATH": root})
                        if round_:
                            times[case, tree].append(cpu)
            print(f"\nwhole process, median CPU time (user + system) of {args.runs} interleaved runs")
            print("| command | before | now | difference |")
            print("|---|---|---|---|")
            for case in cases:
                before, now = (statistics.median(times[case, tree]) * 1e3 for tree in trees)
                print(f"| {case} | {before:.0f} ms | {now:.0f} ms | {now - before:+.0f} ms |")


if __name__ == "__main__":
    main()
