import json
from pathlib import Path

import pytest

from effplan.cli import main

GOLDEN = json.loads((Path(__file__).parent / "golden" / "published.json").read_text())


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
