"""Output keeps everything where it is kept: a file (-o), a pipe, any stdout that is not a terminal gets
every column; only a terminal narrower than the table hides columns, named by their headers. Help wraps to
the terminal, lists every command's whole summary, and names no source file."""
import os
import subprocess
import sys

import pytest

from effplan.cli import cli
from effplan.render.report import TABLE_COLUMNS

EVERY_HEADER = [h for h, _, _ in TABLE_COLUMNS]


def header_line(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("model"))


def test_a_file_gets_every_column_even_from_a_narrow_terminal(effplan, monkeypatch, tmp_path):
    monkeypatch.setattr("effplan.render.tables.stdout_is_terminal", lambda: True)
    monkeypatch.setenv("COLUMNS", "80")
    assert "hidden" in effplan("table", "--phi", "0..7").out  # the terminal hides some
    out = tmp_path / "t.txt"
    assert effplan("table", "--phi", "0..7", "-o", str(out)).code == 0
    text = out.read_text()
    assert all(h in header_line(text) for h in EVERY_HEADER) and "hidden" not in text
    assert all(len(line) > 80 for line in text.splitlines() if line.startswith("# effplan"))  # header kept whole


def test_a_pipe_gets_every_column(tmp_path):
    env = {**os.environ, "COLUMNS": "80"}
    run = subprocess.run([sys.executable, "-m", "effplan", "table", "--phi", "0..7"], capture_output=True,
                         text=True, env=env, check=True)  # stdout is a pipe, as in `effplan table | cat`
    assert all(h in header_line(run.stdout) for h in EVERY_HEADER) and "hidden" not in run.stdout
    assert len(run.stdout.splitlines()) == 1 + 2 + 8  # the header line unwrapped, the table's head, 8 rows


def test_models_descriptions_are_whole_in_a_pipe(effplan):
    out = effplan("models").out
    assert "…" not in out


@pytest.mark.parametrize("width", [60, 200])
def test_help_wraps_to_the_terminal_and_summaries_are_whole(width):
    env = {**os.environ, "COLUMNS": str(width)}
    run = subprocess.run([sys.executable, "-m", "effplan", "--help"], capture_output=True, text=True, env=env,
                         check=True)
    assert max(len(line) for line in run.stdout.splitlines()) <= width
    listed = " ".join(run.stdout.split("Commands:")[1].split())
    for name, command in cli.commands.items():
        first = " ".join(command.help.split("\n\n")[0].split())
        assert first in listed, name  # whole, never cut with "..."
    if width == 200:
        assert any(len(line) > 100 for line in run.stdout.splitlines())


def test_no_source_paths_in_help(effplan):
    for name in cli.commands:
        text = effplan(name, "--help").out
        assert ".py" not in text and "DEFAULT_" not in text, name
