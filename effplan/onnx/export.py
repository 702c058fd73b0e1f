"""ONNX export: serialisation of effplan's graph.

Export writes deterministic weights (seeded per tensor name), so the same command gives the
same bytes and a runtime does real arithmetic. Each node's place (stage, block, layer) travels
in its doc_string, so an exported graph imports back to the same rows (onnx/importer.py).
"""
from __future__ import annotations

import json
import math
import os
import zlib
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..base.files import atomic_file
from ..base.resources import disk_free, memory_left
from ..base.units import human_bytes
from ..base.version import __version__
from ..graph.builder import Weight
from .common import OnnxError, tensor_bytes

DEFAULT_OPSET = 17
PROTO_LIMIT = 2**31 - 2**24  # protobuf's 2 GB limit, less headroom for the graph itself


def weight_values(node: str, weight: Weight, mode: str) -> np.ndarray:
    """Deterministic values for one initializer: He-scaled normal weights, sane BN statistics."""
    shape = weight.shape
    if mode == "zeros":
        return np.ones(shape, np.float32) if weight.role in ("var", "scale") else np.zeros(shape, np.float32)
    rng = np.random.default_rng(zlib.crc32(f"{node}/{weight.role}".encode()))
    if weight.role == "W":
        fan_in = math.prod(shape[1:])
        values = rng.standard_normal(shape, dtype=np.float32)
        values *= np.float32(math.sqrt(2.0 / fan_in))  # in place: the same products, no second array
        return values
    if weight.role in ("scale", "var"):
        return rng.uniform(0.5, 1.5, shape).astype(np.float32)
    return rng.normal(0.0, 0.05, shape).astype(np.float32)  # biases, BN shift and mean


def _folded(graph, name: str, mode: str) -> dict[str, np.ndarray]:
    """A conv's weights with the BatchNormalization it absorbed folded in:
    W' = W * s / sqrt(var + eps), b' = shift + (b - mean) * s / sqrt(var + eps)."""
    bn_name, bn_weights, eps, conv_weights = graph.nodes[name]["folded_bn"]
    own = {w.role: weight_values(name, w, mode) for w in conv_weights}
    bn = {w.role: weight_values(bn_name, w, mode) for w in bn_weights}
    factor = bn["scale"] / np.sqrt(bn["var"] + eps)
    w = own["W"] * factor.reshape(-1, *([1] * (own["W"].ndim - 1)))
    b = bn["B"] + (own.get("B", 0.0) - bn["mean"]) * factor
    return {"W": w.astype(np.float32), "B": b.astype(np.float32)}


def _attributes(op: str, attrs: dict) -> dict:
    """effplan attributes that ONNX takes as attributes (the rest become Constant inputs)."""
    moved = {"Clip": ("min", "max"), "Reshape": ("shape",), "Slice": ("starts", "ends", "axes"),
             "Dropout": ("ratio",)}.get(op, ())
    return {k: list(v) if isinstance(v, tuple) else v for k, v in attrs.items() if k not in moved}


def _constant_inputs(op: str, attrs: dict, name: str) -> list[onnx.NodeProto]:
    if op == "Clip":
        values = [("min", np.array(attrs["min"], np.float32)), ("max", np.array(attrs["max"], np.float32))]
    elif op == "Reshape":
        shape = list(attrs["shape"])
        values = [("shape", np.array([0] + shape[1:], np.int64))]  # 0: keep the batch dimension
    elif op == "Slice":
        values = [(k, np.array(attrs[k], np.int64)) for k in ("starts", "ends", "axes")]
    elif op == "Dropout" and "ratio" in attrs:  # opset 12 on: an input (absent, ONNX reads 0.5)
        values = [("ratio", np.array(attrs["ratio"], np.float32))]
    else:
        return []
    return [helper.make_node("Constant", [], [f"{name}/{key}"], name=f"{name}/{key}",
                             value=numpy_helper.from_array(value, f"{name}/{key}")) for key, value in values]


def to_onnx(graph, design=None, *, opset: int = DEFAULT_OPSET, dynamic_batch: bool = False,
            weights: str = "random", with_data: bool = True) -> onnx.ModelProto:
    """The ModelProto of a graph. `with_data=False` writes initializer shapes without values
    (enough for costing, not for running)."""
    tensors = graph.graph["tensors"]
    batch = "N" if dynamic_batch else None

    def info(name: str) -> onnx.ValueInfoProto:
        shape = list(tensors[name])
        if batch:
            shape[0] = batch
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)

    nodes, initializers = [], []
    for name in graph.nodes:
        node = graph.nodes[name]
        op = node["op"]
        inputs = list(node["inputs"])
        for w in node["weights"]:
            tensor_name = f"{name}.{w.role}"
            initializers.append(TensorProto(name=tensor_name, data_type=TensorProto.FLOAT, dims=w.shape))
            inputs.append(tensor_name)
        constants = _constant_inputs(op, node["attrs"], name)
        nodes += constants
        inputs += [c.output[0] for c in constants]
        place = {"stage": node["stage"], "block": node["block"], "layer": node["layer"]}
        nodes.append(helper.make_node(op, inputs, list(node["outputs"]), name=name,
                                      doc_string="effplan " + json.dumps(place),
                                      **_attributes(op, node["attrs"])))

    (inp,), (out,) = graph.graph["inputs"], graph.graph["outputs"]
    inner = [info(t) for t in tensors if t not in (inp, out)]
    g = helper.make_graph(nodes, graph.graph["name"], [info(inp)], [info(out)], initializers, value_info=inner)
    model = helper.make_model(g, producer_name="effplan", producer_version=__version__,
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 9)  # readable by onnxruntime releases of the last years
    meta = {"effplan_version": __version__, "folded_bn": str(any(graph.nodes[n].get("folded_bn") for n in graph.nodes))}
    if design is not None:
        meta.update(model=design.name, spec=design.spec.name, phi="" if design.phi is None else repr(design.phi),
                    depth_mult=repr(design.depth_mult), width_mult=repr(design.width_mult),
                    resolution=str(design.resolution), classes=str(design.classes))
    helper.set_model_props(model, meta)
    if with_data:
        del model.graph.initializer[:]
        model.graph.initializer.extend(initializer_tensors(graph, weights))
    return model


def initializer_tensors(graph, mode: str):
    """The initializers of `to_onnx` with their values, one at a time in the file's order: an export
    streams them to disk and holds one tensor at a time, never the whole model."""
    for name in graph.nodes:
        node = graph.nodes[name]
        values = _folded(graph, name, mode) if node.get("folded_bn") else None
        for w in node["weights"]:
            yield numpy_helper.from_array(values[w.role] if values else weight_values(name, w, mode), f"{name}.{w.role}")


def needs_external_data(model: onnx.ModelProto) -> bool:
    """Whether the initializers' bytes pass the protobuf limit, from their shapes and types:
    model.ByteSize() itself fails on a message over 2 GB."""
    return sum(tensor_bytes(t) for t in model.graph.initializer) > PROTO_LIMIT


def export(graph, design, path: str, *, opset: int = DEFAULT_OPSET, dynamic_batch: bool = False,
           weights: str = "random") -> list[str]:
    """Write a graph as an ONNX file (and `<file>.data` past 2 GB): checked, then sized against the
    memory and disk left (refused with one line rather than killed midway), then streamed. Returns the
    files written."""
    model = to_onnx(graph, design, opset=opset, dynamic_batch=dynamic_batch, with_data=False)
    _check_exported(model, opset)
    sizes = [tensor_bytes(t) for t in model.graph.initializer]
    # one tensor at a time: its values, their float32 copy, the TensorProto and its serialised bytes,
    # beside the model without its weights (small: nodes and shapes)
    need = 4 * max(sizes, default=0) + (128 << 20)
    left = memory_left()
    if left is not None and need > left:
        raise OnnxError(f"exporting {graph.graph['name']} needs about {human_bytes(need)} of memory at once "
                        f"(its largest tensor is {human_bytes(max(sizes))}); {human_bytes(left)} is left")
    folder = Path(os.path.realpath(path)).parent
    free = disk_free(str(folder)) if not os.path.exists(path) or os.path.isfile(path) else None
    if free is not None and sum(sizes) > free:
        raise OnnxError(f"{path}: the model's weights take {human_bytes(sum(sizes))}; {human_bytes(free)} "
                        f"is free on that disk")
    return save(model, path, initializer_tensors(graph, weights))


def _check_exported(model: onnx.ModelProto, opset: int) -> None:
    """The ONNX checker on a model without its weights' values: initializers become typed graph inputs
    (the checker wants values, and they are what the graph is fed either way)."""
    bare = onnx.ModelProto()
    bare.CopyFrom(model)
    bare.graph.input.extend(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
                            for t in bare.graph.initializer)
    del bare.graph.initializer[:]
    try:
        onnx.checker.check_model(bare)
    except onnx.checker.ValidationError as exc:
        raise OnnxError(f"the exported graph is not valid at opset {opset}: {str(exc).splitlines()[0]}") from None


def save(model: onnx.ModelProto, path: str, tensors=None) -> list[str]:
    """Write a model through base.files.atomic_file (whole or absent; a link followed, a device written
    into). `tensors` gives the initializers' values one at a time, in the order of the model's
    initializers (which then need only name, type and dims); by default they are the model's own.
    Protobuf merges a message that appears twice, so each initializer is appended as a fragment of
    its own and the whole model is never one message in memory. Weights over the 2 GB protobuf limit go
    to `<file>.data` beside it (tensors under 1 KB stay inline): the data file is written first, and the
    old model file is removed before it is renamed into place, so a run killed between the renames
    leaves no model rather than an old model beside new data. Returns the files written."""
    tensors = iter(model.graph.initializer) if tensors is None else tensors
    header = onnx.ModelProto()
    header.CopyFrom(model)
    del header.graph.initializer[:]
    if not needs_external_data(model):
        with atomic_file(path) as fh:
            fh.write(header.SerializeToString())
            for t in tensors:
                part = onnx.ModelProto()
                part.graph.initializer.append(t)
                fh.write(part.SerializeToString())
        return [str(path)]
    if os.path.exists(path) and not os.path.isfile(path):
        raise OnnxError(f"{path}: weights over 2 GB go to a .data file beside the model; give a file path")
    target = Path(os.path.realpath(path))
    data = target.with_name(f"{target.name}.data")
    with atomic_file(path) as model_fh:
        with atomic_file(str(data)) as data_fh:
            offset = 0
            for t in tensors:
                raw = t.raw_data if t.HasField("raw_data") else numpy_helper.to_array(t).tobytes()
                if len(raw) >= 1024:
                    data_fh.write(raw)
                    t = TensorProto(name=t.name, data_type=t.data_type, dims=t.dims,
                                    data_location=TensorProto.EXTERNAL)
                    for key, value in (("location", data.name), ("offset", offset), ("length", len(raw))):
                        t.external_data.add(key=key, value=str(value))
                    offset += len(raw)
                header.graph.initializer.append(t)
            if target.is_file():
                target.unlink()
        model_fh.write(header.SerializeToString())
    return [str(path), str(data)]
