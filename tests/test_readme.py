"""The README's tables are effplan's own output: a change that moves a figure must update them
(python scripts/readme_tables.py)."""
import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "readme_tables.py"


def test_readme_tables_match_effplan():
    spec = importlib.util.spec_from_file_location("readme_tables", SCRIPT)
    tables = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tables)
    text = tables.README.read_text()
    _, changed = tables.render(text)
    assert not changed, f"README.md is out of date in {changed}: run python scripts/readme_tables.py"
    assert len(tables.BLOCK.findall(text)) == len(tables.BLOCKS)  # every block is in the README
