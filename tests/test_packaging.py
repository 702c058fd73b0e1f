"""What `pip install .` ships: every data file under specs/ must be in the wheel, or commands that
read it work from a checkout (where tests run) and fail once installed."""
import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_spec_file_is_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"]["effplan.specs"] == "specs"
    patterns = config["package-data"]["effplan.specs"]
    files = [p.relative_to(ROOT / "specs").as_posix() for p in (ROOT / "specs").rglob("*.toml")]
    # setuptools globs are relative to the package folder and '*' does not cross '/'
    missing = [f for f in files if not any(fnmatch.fnmatch(f, pat) and f.count("/") == pat.count("/")
                                           for pat in patterns)]
    assert len(files) > 40 and missing == []


def test_the_html_reports_script_and_styles_are_package_data():
    """render/html.py reads report.js and report.css from its package at render time."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    shipped = config["package-data"]["effplan.render"]
    assert sorted(shipped) == ["report.css", "report.js"]
    assert all((ROOT / "effplan" / "render" / name).is_file() for name in shipped)
    assert sorted(p.name for p in (ROOT / "effplan" / "render").iterdir() if not p.name.endswith((".py", ".pyc"))
                  and p.is_file()) == sorted(shipped)  # no other data file there that would not ship


def test_every_subpackage_is_listed():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "effplan").rglob("__init__.py")}
    assert found <= listed
