"""What ONNX import (onnx/importer.py) and export (onnx/export.py) share: their error, and a tensor's bytes."""
from __future__ import annotations

import math

from ..base.errors import EffplanError


class OnnxError(EffplanError):
    pass


def tensor_bytes(t) -> int:
    """The bytes of a tensor's values (an onnx TensorProto), from its dims and type (its data need not be there)."""
    from onnx import helper

    return math.prod(t.dims) * helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
