"""The fuzzing suite (tests/test_fuzz.py), longer and freshly seeded: N generated cases per kind of
hostile input instead of CI's fixed 50, under a memory limit (address space) and a time limit, so a
case that would take gigabytes or hang fails the run instead of the machine.

    python benchmarks/fuzz.py [--examples 1000] [--memory-gb 4] [--minutes 30]

Each run draws new cases; a failure prints the case hypothesis shrank it to, to add as a test.
"""
import argparse
import os
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000, help="cases per generated test")
    parser.add_argument("--memory-gb", type=float, default=4.0, help="address space of the run")
    parser.add_argument("--minutes", type=float, default=30.0, help="wall-clock limit of the run")
    args = parser.parse_args()
    limit = int(args.memory_gb * (1 << 30))

    def bound():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    env = {**os.environ, "EFFPLAN_FUZZ_EXAMPLES": str(args.examples)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_fuzz.py", "-k", "hostile"]
    try:
        return subprocess.run(command, cwd=ROOT, env=env, preexec_fn=bound, timeout=args.minutes * 60).returncode
    except subprocess.TimeoutExpired:
        print(f"fuzz: still running after {args.minutes:g} minutes: a case hangs", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
