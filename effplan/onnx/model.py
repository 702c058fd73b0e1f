"""A network from an ONNX file, standing where a built design stands: every command that takes a
model takes a file through this one import path (onnx.importer.from_onnx), and `build(imported, batch)`
returns its graph at that batch. A file fixes its own widths, depth and input size, so it has no φ,
multipliers or spec to rescale; only a symbolic batch is bound.
"""
from __future__ import annotations

import math
from pathlib import Path

from ..base.errors import EffplanError
from ..base.files import reads

SUFFIX = ".onnx"


def is_file_model(name: str) -> bool:
    return name.lower().endswith(SUFFIX)


class Imported:
    """An ONNX file, parsed once; its graph is imported once per batch asked."""

    coefficients = "file"
    classes = None
    depth_rounding = None
    spec = None

    def __init__(self, path: str, name: str | None = None, dims: dict[str, int] | None = None):
        from .importer import read_file

        self.path = str(path)
        self.dims = dict(dims or {})  # --dim NAME=VALUE: the file's other symbolic dimensions
        self.model = read_file(self.path)
        self.meta = dict(self.model.metadata)
        self.name = name or Path(self.path).name  # the file, not the model it says it holds: two files differ
        self._graphs: dict[int | None, object] = {}

    def __repr__(self) -> str:
        return f"Imported({self.path!r})"

    @property
    def phi(self) -> float | None:
        return meta_number(self.meta, "phi")

    @property
    def depth_mult(self) -> float | None:
        return meta_number(self.meta, "depth_mult")

    @property
    def width_mult(self) -> float | None:
        return meta_number(self.meta, "width_mult")

    @property
    def resolution(self) -> int | None:
        from .importer import resolution
        return resolution(self._any_graph())

    @property
    def symbolic_batch(self) -> bool:
        """Whether the first data input's leading dimension is symbolic (bound by --batch)."""
        first = self._any_graph().graph["inputs"]
        for value in self.model.inputs:
            if first and value.name == first[0]:
                dims = value.dims or ()
                return len(dims) >= 2 and not (isinstance(dims[0], int) and dims[0] > 0)
        return False

    @property
    def fixed_batch(self) -> int | None:
        """The first data input's leading dimension where the file fixes it (read from the file, not
        imported), else None."""
        weights = {t.name for t in self.model.initializers}
        value = next((v for v in self.model.inputs if v.name not in weights), None)
        dims = (value.dims or ()) if value is not None else ()
        return dims[0] if len(dims) >= 2 and isinstance(dims[0], int) and dims[0] > 0 else None

    @classmethod
    def open(cls, path: str, dims: dict[str, int] | None = None) -> "Imported":
        """The file parsed once per process (the batch callback and the command both ask for it), parsed
        again when it changed on disk."""
        reads(path)  # each command that opens it, parsed or cached: no output of it may replace the file
        stat = Path(path).stat() if Path(path).is_file() else None
        key = (str(path), stat and (stat.st_mtime_ns, stat.st_size), tuple(sorted((dims or {}).items())))
        if key not in _OPENED:
            if len(_OPENED) >= 8:  # a command opens a few files: keep the latest few
                _OPENED.pop(next(iter(_OPENED)))
            _OPENED[key] = cls(path, dims=dims)
        return _OPENED[key]

    def _any_graph(self):
        """A graph at any batch already imported (what does not depend on the batch), else at the file's."""
        return next(iter(self._graphs.values())) if self._graphs else self.graph(None)

    def graph(self, batch: int | None):
        """The file's graph with its symbolic batch bound to `batch` (None: the file's own batch, or 1)."""
        if batch not in self._graphs:
            from .importer import import_file

            graph, self.model = import_file(self.model, self.path, batch, self.dims)
            graph.graph["name"] = self.name
            self._graphs[batch] = graph
        return self._graphs[batch]


_OPENED: dict[tuple, Imported] = {}


def meta_number(meta: dict, key: str) -> float | None:
    """A figure from a file's metadata (phi, depth_mult, width_mult as export writes them); text that is no
    finite number (a hand-edited "abc", "nan", "1e999") is none: reports never hold NaN or Infinity."""
    try:
        value = float(meta.get(key) or "nan")
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def refuse_rescaling(path: str, given: list[str]) -> None:
    """One line for options that rescale a built design, given with a file."""
    if given:
        raise EffplanError(f"{given[0]} rescales a built design; {path} is an ONNX file, which fixes its own widths, "
                           f"depth and input size (export it again at the size you want; --batch binds a symbolic "
                           f"batch)")
