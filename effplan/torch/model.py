"""A PyTorch module standing where a built design stands: `graph(batch)` exports it with torch.export
(once, with a dynamic batch where the module allows; else once per batch asked) and imports the
program (importer.py). Weights are never read: a module on the meta device exports as it is, one with
real weights exports with fake copies torch.export makes of them. The mode planned is the one given
(train: dropout masks and BatchNorm's batch statistics in the graph), the module's own left as it was.
"""
from __future__ import annotations

import contextlib
import io

import torch

from ..base.errors import EffplanError, one_line


class TraceError(EffplanError):
    pass


def _example(module, shape: tuple[int, ...]):
    """An input on the module's device, in its floating type: meta allocates nothing."""
    first = next((t for t in (*module.parameters(), *module.buffers()) if t.is_floating_point()), None)
    device = first.device if first is not None else torch.device("meta")
    dtype = first.dtype if first is not None else torch.float32
    return torch.empty(shape, device=device, dtype=dtype)


def export(module, input_shape: tuple[int, ...], train: bool, batch: int | None, name: str):
    """The exported program of `module` in train or eval mode: batch None, with a dynamic batch
    (torch.export decides: Dim.AUTO keeps it static where the module fixes it); else at that batch."""
    from torch.export import Dim

    import logging

    was = module.training
    module.train(train)
    logging.disable(logging.CRITICAL)  # torch.export's own warnings: a refusal is effplan's one line
    try:
        x = _example(module, (2 if batch is None else batch, *input_shape))
        dynamic = ({0: Dim.AUTO},) if batch is None else None
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):  # its prints (a failed graph)
            return torch.export.export(module, (x,), dynamic_shapes=dynamic, strict=False)
    except EffplanError:
        raise
    except Exception as exc:  # a model torch.export cannot trace: its first line
        first = (str(exc).strip().splitlines() or [""])[0]
        raise TraceError(f"torch.export cannot trace {name}: {type(exc).__name__}: {one_line(first, 300)}") from None
    finally:
        logging.disable(logging.NOTSET)
        module.train(was)


class Traced:
    """A PyTorch module, exported once per mode and imported once per batch asked."""

    coefficients = "torch"
    classes = None
    depth_rounding = None
    spec = None
    phi = depth_mult = width_mult = None
    symbolic_batch = True  # any batch binds: the dynamic batch, or an export at that batch
    fixed_batch = None

    def __init__(self, module, input_shape=(3, 224, 224), *, train: bool | None = None, name: str | None = None):
        if not isinstance(module, torch.nn.Module):
            raise EffplanError(f"from_torch takes a torch.nn.Module, got {type(module).__name__}")
        self.module = module
        self.input_shape = tuple(int(d) for d in input_shape)
        if not self.input_shape or any(d < 1 for d in self.input_shape):
            raise EffplanError(f"input shape {input_shape}: expected sizes of 1 or more, without the batch")
        self.train = module.training if train is None else bool(train)
        self.name = name or type(module).__name__
        self.path = self.name  # what reports and refusals name it by
        self._program = None
        self._static: dict[int, object] = {}
        self._graphs: dict[int, object] = {}

    def __repr__(self) -> str:
        return f"Traced({self.name!r}, {self.input_shape}, {'train' if self.train else 'eval'})"

    def training_note(self) -> None:
        """Nothing to say: a module keeps its BatchNormalization (an ONNX file may have folded it)."""
        return None

    @property
    def resolution(self) -> int | None:
        return self.input_shape[-1] if len(self.input_shape) == 3 else None

    def program(self, batch: int):
        """The exported program that binds `batch`: the dynamic one where the batch stayed symbolic."""
        if self._program is None:
            self._program = export(self.module, self.input_shape, self.train, None, self.name)
        user = next(s.arg.name for s in self._program.graph_signature.input_specs if s.kind.name == "USER_INPUT")
        node = next(n for n in self._program.graph.nodes if n.name == user)
        if not isinstance(node.meta["val"].shape[0], int) or batch == node.meta["val"].shape[0]:
            return self._program
        if batch not in self._static:
            self._static[batch] = export(self.module, self.input_shape, self.train, batch, self.name)
        return self._static[batch]

    def graph(self, batch: int | None):
        batch = batch or 1
        if batch not in self._graphs:
            from .importer import to_graph

            if len(self._graphs) >= 8:
                self._graphs.pop(next(iter(self._graphs)))
            self._graphs[batch] = to_graph(self.program(batch), self.name, batch).freeze()
        return self._graphs[batch]


def from_torch(module, input_shape=(3, 224, 224), *, train: bool | None = None, name: str | None = None) -> Traced:
    """A PyTorch module as effplan's model, for analyze, memory, fit, roofline, training_step...:
    `input_shape` is one sample's (C, H, W); `train` the mode planned (default: the module's own,
    `module.training`); weights are never read."""
    return Traced(module, input_shape, train=train, name=name)
