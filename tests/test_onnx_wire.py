"""Reading ONNX files (protobuf after wire.skim) and shaping them by effplan's own rules: checked against
onnx itself. What import reads must equal what onnx.load gives for the same file, and the graph import
builds from it must equal the one built with ONNX's shape inference, on every fixture PyTorch's exporters
wrote and on effplan's own exports. tests/test_wire_differential.py compares mutated files."""
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError
from onnx import TensorProto, helper

import effplan
from effplan.onnx import importer as onnx_import, wire as onnx_wire
from effplan.onnx.importer import read_file
from effplan.onnx.wire import NotPlain, Tensor

FIXTURES = Path(__file__).parent / "fixtures"
FILES = sorted(FIXTURES.glob("*.onnx"))
EXPORTED = json.loads((FIXTURES / "exported.json").read_text())


def plain(value):
    """Attribute values made comparable: a tensor as its header and values."""
    if isinstance(value, Tensor):
        return (value.name, value.dims, value.data_type, None if value.value is None else value.value.tolist())
    return value


def summary(model: onnx_wire.Model) -> dict:
    return {
        "nodes": [(n.name, n.op_type, n.domain, n.input, n.output, {k: plain(v) for k, v in n.attrs.items()},
                   n.doc_string) for n in model.nodes],
        "initializers": [plain(t) for t in model.initializers],
        "values": [(v.name, v.elem_type, v.dims) for v in [*model.inputs, *model.outputs]],
        "opsets": model.opsets, "metadata": model.metadata, "graph": model.graph_name,
    }


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_import_reads_what_onnx_parses(path):
    assert summary(read_file(str(path))) == summary(onnx_wire.from_proto(onnx.load(str(path))))


def test_a_graph_written_in_pieces_is_merged_as_protobuf_merges_it(effplan, tmp_path):
    """`effplan export` streams each weight as a piece of the graph field of its own; protobuf (and onnx)
    merge the pieces, and so must the reader."""
    path = str(tmp_path / "b0.onnx")
    assert effplan("export", "efficientnet-b0", "--resolution", "32", "--width-mult", "0.25",
                   "--dynamic-batch", "-o", path).code == 0
    read = read_file(path)
    assert summary(read) == summary(onnx_wire.from_proto(onnx.load(path, load_external_data=False)))
    assert len(read.initializers) > 1 and len(read.nodes) > 1


def test_the_skims_tags_are_onnxs():
    """The one-byte tags the skim descends by and cuts, as onnx's own descriptors give them: graph (a
    message), initializer (a message) and raw_data (bytes, which protobuf never validates)."""
    def tag(message, name):
        f = message.DESCRIPTOR.fields_by_name[name]
        return f.number << 3 | 2, f.type
    message, data = FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_BYTES
    assert tag(onnx.ModelProto, "graph") == (onnx_wire.GRAPH_TAG, message)
    assert tag(onnx.GraphProto, "initializer") == (onnx_wire.INITIALIZER_TAG, message)
    assert tag(onnx.TensorProto, "raw_data") == (onnx_wire.RAW_DATA_TAG, data)
    assert onnx.GraphProto.DESCRIPTOR.fields_by_name["node"].number == 1  # what the skim counts
    assert TensorProto.EXTERNAL == onnx_wire.EXTERNAL


def forced_onnx_path(monkeypatch):
    def refuse(*args):
        raise NotPlain("forced: ONNX's inference")
    monkeypatch.setattr(onnx_import, "_own_shapes", refuse)


def graph_summary(graph) -> dict:
    nodes = {n: {k: ({a: plain(v) for a, v in d.items()} if k == "attrs" else d) for k, d in attrs.items()}
             for n, attrs in graph.nodes(data=True)}
    return {"nodes": nodes, "edges": list(graph.edges), "graph": {k: v for k, v in graph.graph.items()
                                                                   if k != "derived"}}


@pytest.mark.parametrize("name", sorted(EXPORTED["files"]))
def test_own_shapes_equal_onnxs_inference_on_every_fixture(name, monkeypatch):
    """effplan's rules on the file read without onnx give the very graph (shapes, weights, folded shape
    arithmetic) that ONNX's shape inference gives on onnx's parse of it."""
    record, path = EXPORTED["files"][name], str(FIXTURES / name)
    model = read_file(path)
    own = onnx_import.from_onnx(model, path, EXPORTED["batch"], record["dims"])  # NotPlain here fails the test
    forced_onnx_path(monkeypatch)
    theirs = onnx_import.from_onnx(onnx.load(path), path, EXPORTED["batch"], record["dims"])
    assert graph_summary(own) == graph_summary(theirs)


@pytest.mark.parametrize("model", ["efficientnet-b0", "mobilenet-v2", "resnet-50"])
def test_own_shapes_equal_onnxs_inference_on_effplans_exports(model, monkeypatch, tmp_path):
    from effplan.onnx.export import to_onnx

    design = effplan.with_overrides(effplan.resolve(model), resolution=64)
    proto = to_onnx(effplan.build(design), design, with_data=False, dynamic_batch=True)
    onnx.save(proto, tmp_path / "m.onnx")
    own = onnx_import.from_onnx(read_file(str(tmp_path / "m.onnx")), "m", 3)
    forced_onnx_path(monkeypatch)
    assert graph_summary(own) == graph_summary(onnx_import.from_onnx(proto, "m", 3))


def small_model(**graph_kw) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y], **graph_kw)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_bytes_protobuf_refuses_are_refused_in_the_users_words(effplan, tmp_path):
    path = tmp_path / "m.onnx"
    for data in (b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", b"\x3a\x05abc", b"junk" * 10,
                 small_model().SerializeToString() + b"\x00\x01"):
        path.write_bytes(data)
        with pytest.raises(DecodeError):
            onnx.load(str(path))
        run = effplan("analyze", str(path))
        assert run.code == 2 and run.err.count("\n") == 1 and "not a valid ONNX file (truncated or corrupt" in run.err
        assert "Error" not in run.err, run.err


def test_text_that_is_not_utf8_is_refused(effplan, tmp_path):
    model = small_model()
    model.graph.node[0].name = "relu"
    raw = bytearray(model.SerializeToString())
    at = raw.index(b"relu")
    raw[at:at + 4] = b"r\xffl\xfe"  # not UTF-8
    (tmp_path / "m.onnx").write_bytes(bytes(raw))
    run = effplan("analyze", str(tmp_path / "m.onnx"))
    assert run.code == 2 and "graph.node.name is not valid UTF-8" in run.err, run.err


def test_values_decoded_as_onnx_decodes_them(tmp_path):
    """raw_data, float_data, int32_data (int8, bool, fp16 bits), int64_data and double_data: the arrays
    onnx's numpy_helper reads from the same tensors."""
    from onnx import numpy_helper

    arrays = [np.arange(6, dtype=np.float32).reshape(2, 3), np.array([-3, 5], np.int64),
              np.array([1.5, -2.25], np.float16), np.array([-7, 7], np.int8), np.array([True, False]),
              np.array([0.1, 0.2], np.float64), np.array([2**62, -1], np.int64)]
    inits = []
    for i, a in enumerate(arrays):
        kind = helper.np_dtype_to_tensor_dtype(a.dtype)
        inits += [helper.make_tensor(f"r{i}", kind, a.shape, a.tobytes(), raw=True),
                  helper.make_tensor(f"t{i}", kind, a.shape, a.reshape(-1).tolist())]
    onnx.save(small_model(initializer=inits), tmp_path / "m.onnx")
    read = read_file(str(tmp_path / "m.onnx"))
    assert [t.name for t in read.initializers] == [t.name for t in inits]
    for t, proto in zip(read.initializers, inits):
        expected = numpy_helper.to_array(proto)
        assert t.value.dtype == expected.dtype and t.value.tolist() == expected.tolist(), t.name


def test_a_file_mixing_operand_types_is_refused_as_onnx_refuses_it(effplan, tmp_path):
    """effplan's rules leave a type clash to ONNX, whose strict inference refuses the file: one line, exit 2."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
    k = helper.make_tensor("k", TensorProto.INT64, [4], [1, 2, 3, 4])
    graph = helper.make_graph([helper.make_node("Add", ["x", "k"], ["y"])], "g", [x], [y], [k])
    path = tmp_path / "mixed.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    run = effplan("analyze", str(path))
    assert run.code == 2 and run.err.count("\n") == 1, run.err
    assert "ONNX's shape inference refuses a node of type Add: B has inconsistent type tensor(int64)" in run.err
    assert "[" not in run.err, run.err  # no onnx class tag
