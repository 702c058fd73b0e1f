"""The effplan command the benchmarks time: the one installed beside the interpreter running them."""
import os
import sys
import tempfile
from pathlib import Path


def command() -> str:
    path = Path(sys.executable).with_name("effplan")
    if not path.exists():
        sys.exit(f"no {path}: run the benchmark with the python of an environment where effplan is installed "
                 f"(pip install '.[run]')")
    cache_bytecode()
    return str(path)


def cache_bytecode() -> None:
    """Let the timed processes cache their bytecode, as an installed package has it (pip compiles what it
    installs): under PYTHONDONTWRITEBYTECODE an editable effplan compiles its sources again in every run
    (0.07 s on the 2-core machine) while a peer's site-packages come compiled. The cache goes to a folder
    of its own, not into the source tree; each benchmark's untimed first run fills it."""
    if os.environ.pop("PYTHONDONTWRITEBYTECODE", None):
        os.environ.setdefault("PYTHONPYCACHEPREFIX", str(Path(tempfile.gettempdir()) / "effplan-bench-pycache"))
