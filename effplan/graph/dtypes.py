"""ONNX element types (TensorProto.DataType numbers) and their numpy dtypes, without importing onnx:
what an imported file's tensors hold, and what Cast and ConstantOfShape make."""
from __future__ import annotations

import numpy as np

FLOAT, UINT8, INT8, UINT16, INT16, INT32, INT64, STRING, BOOL = 1, 2, 3, 4, 5, 6, 7, 8, 9
FLOAT16, DOUBLE, UINT32, UINT64, BFLOAT16 = 10, 11, 12, 13, 16

# the floating-point types, by the precision effplan plans them in (a double file is planned in fp32)
FLOAT_PRECISIONS = {FLOAT: "fp32", FLOAT16: "fp16", BFLOAT16: "bf16", DOUBLE: "fp32"}

# STRING and BFLOAT16 are ONNX types with no plain numpy dtype (bfloat16 needs ml_dtypes): None
_NUMPY: dict[int, np.dtype | None] = {
    FLOAT: np.dtype(np.float32), UINT8: np.dtype(np.uint8), INT8: np.dtype(np.int8),
    UINT16: np.dtype(np.uint16), INT16: np.dtype(np.int16), INT32: np.dtype(np.int32),
    INT64: np.dtype(np.int64), STRING: None, BOOL: np.dtype(np.bool_), FLOAT16: np.dtype(np.float16),
    DOUBLE: np.dtype(np.float64), UINT32: np.dtype(np.uint32), UINT64: np.dtype(np.uint64), BFLOAT16: None}
_ONNX = {dtype: number for number, dtype in _NUMPY.items() if dtype is not None}
ELEM_TYPES = frozenset(_NUMPY)  # the element types effplan knows, numpy dtype or not


def np_dtype(elem_type: int) -> np.dtype:
    """The numpy dtype of an ONNX element type. KeyError: not a type effplan knows; ValueError: a
    type numpy cannot hold (STRING, BFLOAT16)."""
    dtype = _NUMPY[elem_type]
    if dtype is None:
        raise ValueError(f"ONNX element type {elem_type} has no numpy dtype")
    return dtype


def elem_type(dtype) -> int:
    """The ONNX element type of a numpy dtype (anything np.dtype accepts). KeyError: none."""
    return _ONNX[np.dtype(dtype)]
