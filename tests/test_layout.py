"""The package's layers: data flows base -> graph -> design -> plan -> gate -> render -> cli, and no
module imports one from a higher layer or takes part in an import circle. Read from the source's
import statements (function-level imports included), not from what happens to be loaded."""
import ast
import functools
from pathlib import Path

import graphlib

PACKAGE = Path(__file__).resolve().parent.parent / "effplan"
LAYERS = ["base", "graph", "design", "plan", "gate", "render", "cli"]


def module_name(path: Path) -> str:
    parts = ("effplan",) + path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every effplan module this file imports, as dotted names."""
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("effplan")}
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            target = ".".join(base + (node.module.split(".") if node.module else []))
            if target.startswith("effplan"):
                found.add(target)
                # `from . import blocks` names a module, not an attribute
                found |= {f"{target}.{a.name}" for a in node.names
                          if (PACKAGE.parent / Path(*f"{target}.{a.name}".split("."))).with_suffix(".py").exists()
                          or (PACKAGE.parent / Path(*f"{target}.{a.name}".split("."))).is_dir()}
    return found


@functools.cache  # the sources do not change during a run: parsed once for the three tests
def edges() -> frozenset[tuple[str, str]]:
    """(importer, imported) for every import in the package."""
    return frozenset((module_name(path), target) for path in PACKAGE.rglob("*.py")
                     for target in imports(path) - {module_name(path)})  # `from . import x` in an __init__


def layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def test_every_module_lives_in_a_layer():
    loose = sorted(module_name(p) for p in PACKAGE.glob("*.py")
                   if module_name(p) not in ("effplan", "effplan.__main__"))
    assert loose == []


def test_no_module_imports_a_higher_layer():
    upward = [(a, b) for a, b in edges()
              if layer(a) is not None and layer(b) is not None and layer(b) > layer(a)]
    assert upward == []


def circle(pairs) -> list[str] | None:
    """A circle among the (importer, imported) pairs, or None."""
    imported: dict[str, set[str]] = {}
    for a, b in pairs:
        imported.setdefault(a, set()).add(b)
    try:
        graphlib.TopologicalSorter(imported).prepare()
    except graphlib.CycleError as exc:
        return exc.args[1]
    return None


def test_no_import_circles():
    # a package's __init__ importing its own modules is how a package exposes them, not a circle
    assert circle((a, b) for a, b in edges() if not b.startswith(a + ".")) is None


def test_the_circle_check_finds_circles():
    assert circle([("a", "b"), ("b", "c")]) is None
    assert set(circle([("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")])) == {"a", "b", "c"}


def test_the_layering_test_sees_imports():
    """The check above is only worth something if it finds the edges it should."""
    assert ("effplan.design.blocks", "effplan.graph.builder") in edges()
    assert ("effplan.cli.gate", "effplan.gate.search") in edges()  # a function-level `from ..gate import search`
    assert layer("effplan.render.report") > layer("effplan.plan.roofline") > layer("effplan.design.spec")
