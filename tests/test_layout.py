"""The package's floors: data flows base -> graph -> the front-ends (design, onnx, torch: one floor,
none importing another) -> plan -> gate -> render -> cli, and no module imports one from a higher floor
or takes part in an import circle; the graph core imports no file format. Read from the source's
import statements (function-level imports included), not from what happens to be loaded."""
import ast
import functools
from pathlib import Path

import graphlib

PACKAGE = Path(__file__).resolve().parent.parent / "effplan"
FLOORS = [("base",), ("graph",), ("design", "onnx", "torch"), ("plan",), ("gate",), ("render",), ("cli",)]
FRONT_ENDS = FLOORS[2]
FORMATS = {"onnx", "torch", "google", "tomllib"}  # what only a front-end or a higher floor may read


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


def room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and any(parts[1] in floor for floor in FLOORS) else None


def layer(module: str) -> int | None:
    name = room(module)
    return next(i for i, floor in enumerate(FLOORS) if name in floor) if name else None


def test_every_module_lives_in_a_layer():
    loose = sorted(module_name(p) for p in PACKAGE.glob("*.py")
                   if module_name(p) not in ("effplan", "effplan.__main__"))
    assert loose == []


def test_no_module_imports_a_higher_layer():
    upward = [(a, b) for a, b in edges()
              if layer(a) is not None and layer(b) is not None and layer(b) > layer(a)]
    assert upward == []


def test_front_ends_never_import_each_other():
    across = [(a, b) for a, b in edges() if room(a) in FRONT_ENDS and room(b) in FRONT_ENDS and room(a) != room(b)]
    assert across == []


def third_party(path: Path) -> set[str]:
    """The top-level names of the packages outside effplan that a file imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_the_graph_core_knows_no_file_format():
    readers = {module_name(p): sorted(third_party(p) & FORMATS) for p in (PACKAGE / "graph").rglob("*.py")}
    assert {m: f for m, f in readers.items() if f} == {}


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
    assert layer("effplan.onnx.importer") == layer("effplan.design.spec") > layer("effplan.graph.ops")
    assert ("effplan.onnx.importer", "effplan.graph.ops") in edges()
    assert third_party(PACKAGE / "onnx" / "read.py") >= {"onnx"}
