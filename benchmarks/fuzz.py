"""The fuzzing suites, longer and freshly seeded, under a memory limit (address space) and a time limit,
so a case that would take gigabytes or hang fails the run instead of the machine.

    python benchmarks/fuzz.py [--examples 1000] [--memory-gb 4] [--minutes 30]
    python benchmarks/fuzz.py --wire 10000 [--seed S]

The first runs tests/test_fuzz.py's hostile-input tests with N generated cases each instead of CI's
fixed 50; a failure prints the case hypothesis shrank it to, to add as a test. `--wire N` runs
tests/test_wire_differential.py's check on N freshly mutated ONNX files (effplan's reader against
onnx.load) and counts the outcomes; any disagreement or crash fails the run and prints the file's bytes.
"""
import argparse
import collections
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def wire(count: int, seed: int) -> int:
    sys.path.insert(0, str(ROOT / "tests"))
    import test_wire_differential as differential

    rng, outcomes, failures = random.Random(seed), collections.Counter(), []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(count):
            data = differential.mutate(rng)
            try:
                outcomes[differential.check(data, folder)] += 1
            except Exception as exc:  # noqa: BLE001 - an assertion (a disagreement) or a crash: both count
                outcomes["FAILED"] += 1
                failures.append(f"{data.hex()}  {type(exc).__name__}: {str(exc)[:300]}")
    seconds = time.perf_counter() - start
    print(f"seed {seed}: {count:,} mutated files in {seconds:.1f} s")
    for outcome in ("refused by both", "read alike", "refused for what it says", "FAILED"):
        print(f"  {outcome:26} {outcomes[outcome]:7,}")
    print("\n".join(failures[:10]))
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000, help="cases per generated test")
    parser.add_argument("--memory-gb", type=float, default=4.0, help="address space of the run")
    parser.add_argument("--minutes", type=float, default=30.0, help="wall-clock limit of the run")
    parser.add_argument("--wire", type=int, default=0, metavar="N", help="N mutated ONNX files, differentially")
    parser.add_argument("--seed", type=int, default=None, help="--wire's seed (default: a fresh one)")
    args = parser.parse_args()
    limit = int(args.memory_gb * (1 << 30))

    def bound():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    if args.wire:
        bound()
        return wire(args.wire, args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little"))
    env = {**os.environ, "EFFPLAN_FUZZ_EXAMPLES": str(args.examples)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_fuzz.py", "-k", "hostile"]
    try:
        return subprocess.run(command, cwd=ROOT, env=env, preexec_fn=bound, timeout=args.minutes * 60).returncode
    except subprocess.TimeoutExpired:
        print(f"fuzz: still running after {args.minutes:g} minutes: a case hangs", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
