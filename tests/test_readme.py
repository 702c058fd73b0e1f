"""The README is a front door: short, its links resolve, and the tables it and the docs/ pages show are
effplan's own output (a change that moves a figure must update them: python scripts/readme_tables.py)."""
import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "readme_tables.py"
# pages other branches of this round write (they exist once merged): a link to them may not resolve yet
WRITTEN_ELSEWHERE = {"docs/robustness.md", "docs/time-model.md", "docs/training-own-models.md", "docs/pytorch.md",
                     "docs/architecture.md"}
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _tables():
    spec = importlib.util.spec_from_file_location("readme_tables", SCRIPT)
    tables = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tables)
    return tables


def test_generated_tables_match_effplan():
    tables = _tables()
    found = []
    for page in tables.PAGES:
        text = page.read_text()
        _, changed = tables.render(text)
        assert not changed, f"{page.name} is out of date in {changed}: run python scripts/readme_tables.py"
        found += [m.group(2) for m in tables.BLOCK.finditer(text)]
    assert sorted(found) == sorted(tables.BLOCKS)  # every block is on exactly one page


def test_readme_is_a_front_door():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    first_block = text.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    assert first_block[0].endswith("effplan table --phi 0..7")  # the two set-up commands come first
    assert first_block[1].endswith("-m pytest") and "-c constraints.txt" in first_block[1]
    assert first_block[1] in (ROOT / ".ci" / "run").read_text()  # CI runs the README's test command, as written


def test_links_resolve():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    missing = []
    for page in pages:
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = (page.parent / target.split("#")[0]).resolve()
            relative = path.relative_to(ROOT).as_posix()
            if not path.exists() and relative not in WRITTEN_ELSEWHERE:
                missing.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not missing
    readme_links = {(ROOT / t.split("#")[0]).resolve().relative_to(ROOT).as_posix()
                    for t in LINK.findall((ROOT / "README.md").read_text()) if t.startswith("docs/")}
    assert readme_links >= {p.relative_to(ROOT).as_posix() for p in pages[1:]} | WRITTEN_ELSEWHERE  # every page linked
