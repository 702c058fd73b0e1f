"""Import reads a file's large weights as shapes only: wire.skim cuts their raw_data before protobuf parses
the rest, which must give the message onnx's own reader gives, less exactly those bytes (onnx.load_model is
the independent source). Values stay where shape inference reads them (up to 64 elements) or the shape
evaluator folds them (integer tensors up to 2^16 elements); typed data fields (float_data, int32_data ...)
are never cut: protobuf validates them."""
import math

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from effplan.onnx import read as onnx_read
from effplan.onnx.common import OnnxError
from effplan.onnx.export import save

VALUES = ("float_data", "int32_data", "string_data", "int64_data", "raw_data", "double_data", "uint64_data")
FLOATS = (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.DOUBLE)


def _model() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((16, 3, 3, 3)).astype(np.float32), "W"),  # raw_data, 432
        numpy_helper.from_array(np.zeros(16, np.float32), "B"),  # 16 elements: kept (shape inference reads small ones)
        helper.make_tensor("S", TensorProto.FLOAT, [100], rng.standard_normal(100).tolist()),  # float_data
        helper.make_tensor("H", TensorProto.FLOAT16, [80], [1.0] * 80),  # int32_data
        helper.make_tensor("D", TensorProto.DOUBLE, [70], [0.5] * 70),  # double_data
        numpy_helper.from_array(np.arange(300, dtype=np.int64), "I"),  # integers up to 2^16: kept
        helper.make_tensor("Q", TensorProto.INT8, [70_000], np.ones(70_000, np.int8).tolist()),  # past 2^16
    ]
    node = helper.make_node("Conv", ["x", "W", "B"], ["y"], pads=[1, 1, 1, 1], doc_string="caf\u00e9 \u2192 y")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    helper.set_model_props(model, {"model": "m"})
    return model


def _expected(path) -> onnx.ModelProto:
    model = onnx.load_model(str(path), load_external_data=False)
    for t in model.graph.initializer:
        size = math.prod(t.dims)
        if size > 64 and (t.data_type in FLOATS or size > 2**16):
            t.ClearField("raw_data")
    return model


def test_large_float_values_are_left_out_and_everything_else_is_onnxs_own_reading(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(_model(), str(path))
    got = onnx_read.load(str(path))
    assert got == _expected(path)
    kept = {t.name for t in got.graph.initializer if any(len(getattr(t, f)) for f in VALUES)}
    assert kept == {"B", "S", "H", "D", "I", "Q"}  # W's raw_data cut
    assert [list(t.dims) for t in got.graph.initializer] == [[16, 3, 3, 3], [16], [100], [80], [70], [300], [70_000]]


def test_a_file_written_one_initializer_at_a_time_reads_the_same(tmp_path):
    """effplan's exporter appends each initializer as a model fragment of its own (protobuf merges them)."""
    path = tmp_path / "m.onnx"
    save(_model(), str(path))
    assert onnx_read.load(str(path)) == _expected(path)


def test_text_formats_go_to_onnxs_reader_and_corrupt_bytes_are_refused(tmp_path):
    text = tmp_path / "m.textproto"
    onnx.save(_model(), str(text), format="textproto")
    assert onnx_read.load(str(text)) == onnx.load_model(str(text), load_external_data=False)
    text.write_text("ir_version: 8 junk")
    with pytest.raises(OnnxError, match="not a valid ONNX textproto file"):
        onnx_read.load(str(text))
    broken = tmp_path / "m.onnx"
    broken.write_bytes(b"\x3a\xff\xff\xff\xff\x0f")  # graph field claiming 4 GB
    with pytest.raises(OnnxError, match=r"truncated or corrupt at byte 0"):
        onnx_read.load(str(broken))


