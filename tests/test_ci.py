"""CI is reproducible: constraints.txt pins, exactly and on a dated line, everything the test extra and the
core install; .ci/run says what it supports and why a browser is missing instead of hiding apt's output."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower().replace("_", "-")


def test_constraints_pin_every_dependency_exactly():
    text = (ROOT / "constraints.txt").read_text()
    assert re.search(r"^# Last updated: \d{4}-\d\d-\d\d", text, re.M)
    pins = dict(line.split("==") for line in text.splitlines() if line and not line.startswith("#"))
    assert all(re.fullmatch(r"[\w.]+", v) for v in pins.values())  # exact versions, no URLs, no ranges
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]}
    assert wanted <= {_name(n) for n in pins}
    if "torch" in pins:  # the CPU wheel: a version with a local label (+cpu) or a looser spec may pull CUDA
        assert pins["torch"] == "2.13.0"


def test_tabulate_bounded_where_it_is_fast():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (spec,) = [r for r in project["dependencies"] if _name(r) == "tabulate"]
    assert "<0.10" in spec


def test_ci_script_names_its_systems_and_shows_apt():
    text = (ROOT / ".ci" / "run").read_text()
    assert "Supported systems:" in text.split("set -euo", 1)[0]
    assert ">/dev/null 2>&1 && install" not in text and "apt-get install -y -qq" not in text
    assert "-c constraints.txt" in text


def test_pytest_q_is_not_silenced():  # addopts "-q" made `pytest -q` a -qq run that printed no summary
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "-q" not in options.get("addopts", "").split()
