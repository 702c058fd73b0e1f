"""Reading ONNX files without onnx (onnx_wire.py) and shaping them by effplan's own rules: checked
against onnx itself. What the wire reader decodes must equal what onnx's parser gives for the same
file, and the graph import builds from it must equal the one built with ONNX's shape inference, on
every fixture PyTorch's exporters wrote and on effplan's own exports."""
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import effplan
from effplan.onnx import importer as onnx_import, wire as onnx_wire
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
def test_the_wire_reader_reads_what_onnx_parses(path):
    assert summary(onnx_wire.read(str(path))) == summary(onnx_wire.from_proto(onnx.load(str(path))))


def test_a_graph_written_in_pieces_is_merged_as_protobuf_merges_it(effplan, tmp_path):
    """`effplan export` streams each weight as a piece of the graph field of its own; protobuf (and onnx)
    merge the pieces, and so must the reader."""
    path = str(tmp_path / "b0.onnx")
    assert effplan("export", "efficientnet-b0", "--resolution", "32", "--width-mult", "0.25",
                   "--dynamic-batch", "-o", path).code == 0
    read = onnx_wire.read(path)
    assert summary(read) == summary(onnx_wire.from_proto(onnx.load(path, load_external_data=False)))
    assert len(read.initializers) > 1 and len(read.nodes) > 1


def test_field_numbers_are_onnxs():
    """The numbers the reader decodes by, as onnx's own descriptors give them."""
    numbers = lambda message: {f.name: f.number for f in message.DESCRIPTOR.fields}  # noqa: E731
    assert {k: numbers(onnx.ModelProto)[k] for k in ("ir_version", "graph", "opset_import", "metadata_props",
                                                      "functions", "training_info")} == {
        "ir_version": 1, "graph": 7, "opset_import": 8, "metadata_props": 14, "functions": 25, "training_info": 20}
    assert {k: numbers(onnx.GraphProto)[k] for k in ("node", "name", "initializer", "input", "output",
                                                      "value_info", "sparse_initializer")} == {
        "node": 1, "name": 2, "initializer": 5, "input": 11, "output": 12, "value_info": 13, "sparse_initializer": 15}
    assert {k: numbers(onnx.NodeProto)[k] for k in ("input", "output", "name", "op_type", "attribute", "domain")} \
        == {"input": 1, "output": 2, "name": 3, "op_type": 4, "attribute": 5, "domain": 7}
    assert {k: numbers(onnx.AttributeProto)[k] for k in ("name", "f", "i", "s", "t", "g", "floats", "ints",
                                                          "strings", "type")} == {
        "name": 1, "f": 2, "i": 3, "s": 4, "t": 5, "g": 6, "floats": 7, "ints": 8, "strings": 9, "type": 20}
    assert {k: numbers(onnx.TensorProto)[k] for k in ("dims", "data_type", "float_data", "int32_data",
                                                       "int64_data", "name", "raw_data", "double_data",
                                                       "external_data", "data_location")} == {
        "dims": 1, "data_type": 2, "float_data": 4, "int32_data": 5, "int64_data": 7, "name": 8, "raw_data": 9,
        "double_data": 10, "external_data": 13, "data_location": 14}
    assert (onnx.AttributeProto.FLOAT, onnx.AttributeProto.INT, onnx.AttributeProto.STRING,
            onnx.AttributeProto.TENSOR, onnx.AttributeProto.FLOATS, onnx.AttributeProto.INTS,
            onnx.AttributeProto.STRINGS) == (onnx_wire.FLOAT, onnx_wire.INT, onnx_wire.STRING, onnx_wire.TENSOR,
                                             onnx_wire.FLOATS, onnx_wire.INTS, onnx_wire.STRINGS)
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
    model = onnx_wire.read(path)
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
    own = onnx_import.from_onnx(onnx_wire.read(str(tmp_path / "m.onnx")), "m", 3)
    forced_onnx_path(monkeypatch)
    assert graph_summary(own) == graph_summary(onnx_import.from_onnx(proto, "m", 3))


def small_model(**graph_kw) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y], **graph_kw)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_what_the_reader_leaves_to_onnx(tmp_path):
    """Files it does not take plainly raise NotPlain, and the file is then read by onnx, with the same result."""
    path = tmp_path / "m.onnx"
    custom = small_model()
    custom.graph.node[0].domain = "com.example"
    sub = small_model()
    sub.graph.node.append(helper.make_node("If", ["c"], ["z"], then_branch=small_model().graph,
                                           else_branch=small_model().graph))
    for model in (custom, sub):
        onnx.save(model, path)
        with pytest.raises(NotPlain):
            onnx_wire.read(str(path))
    for data in (b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", b"\x3a\x05abc", b"junk" * 10):
        path.write_bytes(data)
        with pytest.raises(NotPlain):
            onnx_wire.read(str(path))
    model = small_model()
    model.graph.node[0].name = "relu"
    raw = bytearray(model.SerializeToString())
    at = raw.index(b"relu")
    raw[at:at + 4] = b"r\xffl\xfe"  # not UTF-8
    path.write_bytes(bytes(raw))
    with pytest.raises(NotPlain):
        onnx_wire.read(str(path))


def test_analyze_reads_plain_files_without_importing_onnx(tmp_path):
    """The point of the reader: `analyze` of a fixture never loads onnx (nor does roofline of a file)."""
    import subprocess
    import sys

    path = FIXTURES / "timm_vit_opset17.onnx"
    code = ("import sys; from effplan.cli import main\n"
            f"sys.argv = ['effplan', 'analyze', {str(path)!r}, '--format', 'json']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('onnx' in sys.modules, file=sys.stderr)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.stderr.strip().splitlines()[-1] == "False", run.stderr
    assert json.loads(run.stdout)["totals"]["macs"] > 0


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
    read = onnx_wire.read(str(tmp_path / "m.onnx"))
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
    assert run.code == 2 and run.err.count("\n") == 1 and "shape inference failed" in run.err, run.err
