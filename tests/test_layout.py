"""The package's layers: data flows base -> graph -> design -> plan -> gate -> render -> cli, and no
module imports one from a higher layer or takes part in an import circle. Read from the source's
import statements (function-level imports included), not from what happens to be loaded."""
import ast
import functools
from pathlib import Path

import networkx as nx

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


def graph() -> nx.DiGraph:
    return _graph().copy()  # a test may change its copy


@functools.cache  # the sources do not change during a run: parsed once for the three tests
def _graph() -> nx.DiGraph:
    g = nx.DiGraph()
    for path in PACKAGE.rglob("*.py"):
        for target in imports(path) - {module_name(path)}:  # `from . import x` in an __init__
            g.add_edge(module_name(path), target)
    return g


def layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def test_every_module_lives_in_a_layer():
    loose = sorted(module_name(p) for p in PACKAGE.glob("*.py")
                   if module_name(p) not in ("effplan", "effplan.__main__"))
    assert loose == []


def test_no_module_imports_a_higher_layer():
    upward = [(a, b) for a, b in graph().edges
              if layer(a) is not None and layer(b) is not None and layer(b) > layer(a)]
    assert upward == []


def test_no_import_circles():
    g = graph()
    # a package's __init__ importing its own modules is how a package exposes them, not a circle
    g.remove_edges_from([(a, b) for a, b in list(g.edges) if b.startswith(a + ".")])
    assert list(nx.simple_cycles(g)) == []


def test_the_layering_test_sees_imports():
    """The check above is only worth something if it finds the edges it should."""
    g = graph()
    assert ("effplan.design.blocks", "effplan.graph.builder") in g.edges
    assert ("effplan.cli.gate", "effplan.gate.search") in g.edges  # a function-level `from ..gate import search`
    assert layer("effplan.render.report") > layer("effplan.plan.roofline") > layer("effplan.design.spec")
