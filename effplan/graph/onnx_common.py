"""What ONNX import (onnx_import.py) and export (onnx_export.py) share: their error, and a tensor's bytes."""
from __future__ import annotations

import math

import onnx
from onnx import helper

from ..base.errors import EffplanError


class OnnxError(EffplanError):
    pass


def tensor_bytes(t: onnx.TensorProto) -> int:
    """The bytes of a tensor's values, from its dims and type (its data need not be there)."""
    return math.prod(t.dims) * helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
