"""The effplan command the benchmarks time: the one installed beside the interpreter running them."""
import sys
from pathlib import Path


def command() -> str:
    path = Path(sys.executable).with_name("effplan")
    if not path.exists():
        sys.exit(f"no {path}: run the benchmark with the python of an environment where effplan is installed "
                 f"(pip install '.[run]')")
    return str(path)
