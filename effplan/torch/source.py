"""A model argument that names a PyTorch model: `timm:NAME`, `torchvision:NAME` or `PACKAGE.MODULE:CALLABLE`
(a callable returning an nn.Module). The module is built on the meta device (no weights allocated, nothing
downloaded: pretrained weights are never asked for), and opened once per process and mode. torch is imported
here only once such an argument is given, so effplan without the extra never imports it.
"""
from __future__ import annotations

import difflib
import importlib
import os
import re
import sys

from ..base.errors import EffplanError, quote

EXTRA = "pip install 'effplan[torch]'"
ARGUMENT = re.compile(r"^([A-Za-z_][\w.]*):([A-Za-z_][\w.\-]*)$")
SOURCES = ("timm", "torchvision")


class SourceError(EffplanError):
    pass


def is_torch_model(name: str) -> bool:
    """Whether a model argument names a PyTorch model (SOURCE:NAME), not a built-in design or a file."""
    return bool(ARGUMENT.match(name)) and not name.lower().endswith(".onnx")


def parse_input_shape(text: str | None) -> tuple[int, ...] | None:
    """--input-shape C,H,W: one sample's shape, without the batch."""
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    if not all(p.isdigit() and 1 <= int(p) <= 1 << 20 for p in parts):
        raise SourceError(f"--input-shape {quote(text)}: expected sizes such as 3,224,224 (one sample, no batch)")
    return tuple(int(p) for p in parts)


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _package(name: str, argument: str):
    try:
        return importlib.import_module(name)
    except ImportError:
        raise SourceError(f"{argument} needs {name}, which is not installed (pip install {name})") from None


def _build(argument: str):
    """(module on the meta device, the input shape the model states or None)."""
    torch = _torch()
    if torch is None:
        raise SourceError(f"{argument} is a PyTorch model: effplan reads it with torch, an optional extra "
                          f"({EXTRA})")
    source, _, name = argument.partition(":")
    if source == "timm":
        timm = _package("timm", argument)
        known = timm.list_models()
        if name not in known and name.split(".")[0] not in known:
            near = difflib.get_close_matches(name, known, n=1)
            raise SourceError(f"timm has no model {quote(name)}" + (f"; did you mean {near[0]}?" if near else ""))
        with torch.device("meta"):
            module = timm.create_model(name, pretrained=False)
        config = getattr(module, "pretrained_cfg", None) or {}
        return module, tuple(config["input_size"]) if config.get("input_size") else None
    if source == "torchvision":
        models = _package("torchvision", argument).models
        known = models.list_models()
        if name not in known:
            near = difflib.get_close_matches(name, known, n=1)
            raise SourceError(f"torchvision has no model {quote(name)}" + (f"; did you mean {near[0]}?" if near else ""))
        with torch.device("meta"):
            module = models.get_model(name, weights=None)
        return module, _torchvision_size(models, name)
    return _callable(torch, source, name, argument)


def _torchvision_size(models, name: str):
    """The crop its default weights are evaluated at (torchvision's builders state no input size)."""
    try:
        transforms = models.get_model_weights(name).DEFAULT.transforms()
        crop = transforms.crop_size
    except Exception:  # weights without an image transform (video, optical flow): --input-shape says
        return None
    side = crop[0] if isinstance(crop, (list, tuple)) else crop
    return (3, side, side) if isinstance(side, int) else None


def _callable(torch, module_name: str, attribute: str, argument: str):
    if os.getcwd() not in sys.path:  # a module beside the user, as `python -m` finds it
        sys.path.append(os.getcwd())
    try:
        found = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.split(".")[0] == exc.name.split(".")[0] and "." not in module_name:
            near = difflib.get_close_matches(module_name, SOURCES, n=1)
            raise SourceError(f"{argument}: unknown model source {quote(module_name)}: expected timm:NAME, "
                              f"torchvision:NAME or PACKAGE.MODULE:CALLABLE (no module named {quote(module_name)})"
                              + (f"; did you mean {near[0]}:{attribute}?" if near else "")) from None
        raise SourceError(f"{argument}: cannot import {module_name}: {exc}") from None
    except Exception as exc:
        raise SourceError(f"{argument}: importing {module_name} raised {type(exc).__name__}: {_first(exc)}") from None
    target = found
    for part in attribute.split("."):
        if not hasattr(target, part):
            names = [n for n in dir(found) if not n.startswith("_")]
            near = difflib.get_close_matches(part, names, n=1)
            raise SourceError(f"{argument}: {module_name} has no {quote(attribute)}"
                              + (f"; did you mean {near[0]}?" if near else ""))
        target = getattr(target, part)
    if isinstance(target, torch.nn.Module):
        module = target
    elif callable(target):
        try:
            with torch.device("meta"):
                module = target()
        except Exception as exc:
            raise SourceError(f"{argument} raised {type(exc).__name__}: {_first(exc)}") from None
    else:
        raise SourceError(f"{argument} is a {type(target).__name__}, not a callable returning a torch.nn.Module")
    if not isinstance(module, torch.nn.Module):
        raise SourceError(f"{argument} returned a {type(module).__name__}, not a torch.nn.Module")
    config = getattr(module, "pretrained_cfg", None) or getattr(module, "default_cfg", None) or {}
    return module, tuple(config["input_size"]) if isinstance(config, dict) and config.get("input_size") else None


def _first(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:300]


_OPENED: dict[tuple, object] = {}


def open_model(argument: str, input_shape: tuple[int, ...] | None = None, train: bool = False):
    """The model object (model.Traced) of a PyTorch model argument, opened once per process, shape and mode."""
    key = (argument, input_shape, train)
    if key not in _OPENED:
        module, stated = _build(argument)
        shape = input_shape or stated
        if shape is None:
            raise SourceError(f"{argument} does not state its input size: give one sample's shape with "
                              f"--input-shape C,H,W (e.g. 3,224,224)")
        from .model import Traced

        _OPENED[key] = Traced(module, shape, train=train, name=argument)
    return _OPENED[key]
