"""effplan: static FLOPs, parameter and memory planning for compound-scaled CNNs.

    >>> import effplan
    >>> p = effplan.analyze(effplan.resolve("efficientnet-b0"))
    >>> p.totals.params
    5288548

Every function that takes a model takes a built-in name, a spec file, a Design, or an ONNX file's path
("model.onnx"), and returns the same report object for each: effplan.analyze("model.onnx").totals.params.
"""
from .base.version import __version__

from .plan.profile import Profile, profile  # noqa: E402
from .plan.profile import analyze as _analyze  # noqa: E402
from .design.blocks import build  # noqa: E402
from .base.errors import EffplanError  # noqa: E402
from .design.scaling import Coefficients, Design, compound, resolve, with_overrides  # noqa: E402
from .design.spec import ModelSpec, load_spec  # noqa: E402

from .plan.memory import (DEFAULT_OPTIMIZER, DEFAULT_PRECISION, inference_peak, largest_batch,  # noqa: E402
                          memory_by_batch, training_memory)
from .plan.memory import fit as _fit  # noqa: E402

# Heavier names load on first use, so `import effplan` (and `effplan table`) never imports onnx
# matplotlib or torch: name -> (module, attribute).
_LAZY = {
    "load_device": ("plan.hardware", "load_device"),
    "Device": ("plan.hardware", "Device"),
    "to_onnx": ("onnx.export", "to_onnx"),
    "analyze_onnx": ("onnx.importer", "analyze_file"),
    "from_torch": ("torch.model", "from_torch"),  # torch only when called: an optional extra
    "load_budgets": ("gate.budget", "load_budgets"),
    "Constraints": ("gate.search", "Constraints"),
    "largest_phi": ("gate.search", "largest_phi"),
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'effplan' has no attribute {name!r}")
    import importlib

    module, attribute = _LAZY[name]
    return getattr(importlib.import_module(f".{module}", __name__), attribute)


def _design(model):
    """A model as the API takes it: a name or spec file path (resolved), an ONNX file's path (opened once, as
    every command opens one), a PyTorch model argument (timm:NAME...: traced in eval mode; effplan.from_torch
    for a module, a mode or an input shape), or a Design or opened model as it is."""
    if isinstance(model, str) and model.lower().endswith(".onnx"):
        from .onnx.model import Imported

        return Imported.open(model)
    if isinstance(model, str):
        from .torch.source import is_torch_model, open_model

        return open_model(model) if is_torch_model(model) else resolve(model)  # timm:NAME: its own input size
    return model


def analyze(model, batch: int = 1, dtype: str = "fp32", strict: bool = False) -> Profile:
    """The per-layer profile (a Profile: `.totals`, `.rows`) of a design, model name or ONNX file at a batch."""
    return _analyze(_design(model), batch, dtype, strict)


def fit(model, memory, **options):
    """The largest batch (a Fit: `.batch`) of a design, model name or ONNX file within `memory` ('16GiB', or
    bytes) less `reserve` (default 10%); `options` as effplan.memory_by_batch (train=True: a training step)."""
    return _fit(_design(model), memory, **options)


def train(model, device, *, batch: int | None = None, **options):
    """A training run (a Run: `.stages`, each with its step and hours) of a design, model name or ONNX file on a
    device (a catalog name, a device file or a Device), as `effplan train` times it; `options` as
    plan.training_run.training_run (devices, epochs, dataset_size, runtime, precision, optimizer, checkpoint...)."""
    from .plan.hardware import Device, load_device
    from .plan.training_run import training_run

    found = device if isinstance(device, Device) else load_device(device)
    return training_run(_design(model), found, batch=batch, **options)


def memory(model, batch: int = 1, dtype: str = "fp32", *, train: bool = False, precision: str = DEFAULT_PRECISION,
           optimizer: str = DEFAULT_OPTIMIZER, checkpoint: str = "none"):
    """Inference memory (a Peak: `.bytes` of live activations, `.node` where) of a design or model
    name at a batch; with `train=True` a training step (a Training: `.total_bytes` and its parts),
    with the CLI's defaults (mixed precision, AdamW). Weights: `analyze(...).totals.weight_bytes`."""
    from .base.units import dtype_size

    graph = build(_design(model), batch)
    if train:
        return training_memory(graph, precision, optimizer, checkpoint)
    return inference_peak(graph, dtype_size(dtype))


def roofline(model, device, dtype: str | None = None, batch: int = 1, runtime=None):
    """Per-kernel roofline latency of a design (or model name) on a device (a catalog name, a device
    file or a Device) as a runtime runs it (a name, a runtime file or a Runtime; default: the device
    class's; "eager": nothing fused); `dtype` defaults to the device's half precision, as `effplan roofline`."""
    from .plan.hardware import Device, load_device
    from .plan.roofline import roofline as estimate

    found = device if isinstance(device, Device) else load_device(device)
    return estimate(build(_design(model), batch), found, dtype, batch, runtime)


def export(model, path: str, batch: int = 1, *, opset: int = 17, dynamic_batch: bool = False,
           fold_bn: bool = False, weights: str = "random") -> list[str]:
    """Write a design (or model name) as an ONNX file, atomically, as `effplan export` does (without
    --check); returns the files written. `effplan.to_onnx(graph, design)` gives the ModelProto."""
    from .graph.builder import fold_batch_norm
    from .onnx.export import export as export_file

    design = _design(model)
    graph = build(design, batch)
    graph = fold_batch_norm(graph) if fold_bn else graph
    return export_file(graph, design, path, opset=opset, dynamic_batch=dynamic_batch, weights=weights)


def check(budgets) -> list[dict]:
    """Every limit of a budget file (a path) or of load_budgets' list: one dict per limit with
    `value`, `limit`, `margin` and `passed`, as `effplan check --format json` lists them."""
    from .gate.budget import check as run, load_budgets

    return run(load_budgets(budgets) if isinstance(budgets, str) else budgets)


def search(model, limits: dict, *, batch: int = 1, dtype: str | None = None, device=None, top: int = 10,
           depths="1..3:0.1", widths="1..2:0.05", resolutions=None) -> list[dict]:
    """The designs of a base spec that fit `limits` ({"max_macs": "2G", "max_inference_memory":
    "300MiB"}, the keys of a budget), best (most MACs) first: the largest φ and the best of the
    depth x width x resolution grid, as `effplan search` finds them. `dtype` defaults to the device's
    (its half precision, else fp32), fp32 without a device: one rule everywhere (base/units.cost_dtype)."""
    from .gate import search as engine
    from .gate.budget import parse_limits

    designs, _, _, constraints = engine.run(engine.searchable(model) if isinstance(model, str) else model,
                                            parse_limits(limits, lambda key: key), batch=batch, dtype=dtype,
                                            device=device, top=top, depths=depths, widths=widths,
                                            resolutions=resolutions)
    return [{**d, "dtype": constraints.dtype} for d in designs]  # as `effplan search --format json`


__all__ = ["Coefficients", "Design", "EffplanError", "ModelSpec", "Profile", "analyze", "build", "check",
           "compound", "export", "fit", "inference_peak", "largest_batch", "memory_by_batch", "load_spec", "memory", "profile", "resolve", "roofline",
           "search", "train", "training_memory", "with_overrides", *_LAZY]
