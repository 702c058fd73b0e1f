"""Whole-process wall time of `effplan table --phi 0..7` against a bare interpreter that imports
click, tabulate and numpy (the floor any CLI on this stack pays). Median of N runs each,
interleaved so machine noise hits both alike.

    python benchmarks/startup.py [--runs 15]

Goal (issue 2): ratio <= 2.5 and under 0.6 s on the 2-core development machine.
"""
import argparse
import statistics
import subprocess
import sys
import time

import _effplan  # benchmarks/_effplan.py


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    effplan = _effplan.command()
    commands = {
        "python -c 'import click, tabulate, numpy'": [sys.executable, "-c", "import click, tabulate, numpy"],
        "effplan table --phi 0..7": [effplan, "table", "--phi", "0..7"],
        "effplan table --phi 0..7 --format json": [effplan, "table", "--phi", "0..7", "--format", "json"],
        "effplan layers efficientnet-b7": [effplan, "layers", "efficientnet-b7"],
    }
    for cmd in commands.values():  # warm the file cache
        wall(cmd)
    times = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, cmd in commands.items():
            times[name].append(wall(cmd))
    floor = statistics.median(times[next(iter(commands))])
    print(f"median of {args.runs} runs, Python {sys.version.split()[0]}")
    print(f"{'command':45} {'median s':>9} {'vs floor':>9}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:45} {median:9.3f} {median / floor:8.2f}x")


if __name__ == "__main__":
    main()
