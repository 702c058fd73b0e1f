import atexit
import gc
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings

from effplan.design.blocks import Net
from effplan.cli import main
from effplan.graph.builder import GraphBuilder

GOLDEN = json.loads((Path(__file__).parent / "golden" / "published.json").read_text())
SPECS = Path(__file__).resolve().parent.parent / "specs" / "models"
SWISH = Net(act="swish", bn=True, bn_epsilon=1e-3, width=lambda c: c)
RELU = Net(act="relu", bn=True, bn_epsilon=1e-5, width=lambda c: c)

# The suite is deterministic: each property runs the same examples every run (seeded from the test),
# with no example database and no per-example deadline (a busy CI machine is no failure).
# `python benchmarks/fuzz.py` is where fresh random searches run.
settings.register_profile("fixed", derandomize=True, database=None, deadline=None)
settings.load_profile("fixed")

# The suite builds thousands of graphs: millions of small objects, almost none in reference cycles.
# At CPython's default threshold (a collection every 700 allocations) the collector rescans the
# large heap of loaded libraries so often that it took more than half of each build's time (6.5 s of
# collection in test_onnx, test_properties and test_models together; 1.0 s at this threshold, with
# the same peak memory).
gc.set_threshold(50_000, 10, 10)

# Tests run `effplan` as real processes too (the CI workflow, the pre-commit hook, exit codes). Where
# PYTHONDONTWRITEBYTECODE is set, each of them compiled every effplan module again (~13 s of a run):
# they share compiled bytecode in a folder of this run's own, outside the checkout.
_BYTECODE = tempfile.mkdtemp(prefix="effplan-tests-pyc-")
atexit.register(shutil.rmtree, _BYTECODE, True)
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
os.environ["PYTHONPYCACHEPREFIX"] = _BYTECODE


def graph_of(input_shape, body):
    """A small graph: body(builder, input tensor) adds ops in stage 1, block 0."""
    b = GraphBuilder("t", input_shape)
    b.at(1, 0)
    return b.finish(body(b, "input"))


def spec_variant(tmp_path, model: str, *replacements) -> Path:
    """A copy of a built-in spec with text replaced (each pair must occur), as a user's file."""
    text = (SPECS / f"{model}.toml").read_text()
    for old, new in zip(replacements[::2], replacements[1::2]):
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / f"custom-{model}.toml"
    path.write_text(text)
    return path


class Run:
    def __init__(self, code, out, err):
        self.code, self.out, self.err = code, out, err

    def json(self):
        return json.loads(self.out)


@pytest.fixture
def effplan(capsys):
    """Run the CLI in-process: effplan("table", "--phi", "1") -> Run(code, stdout, stderr)."""
    def run(*args):
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code or 0
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)
    return run
