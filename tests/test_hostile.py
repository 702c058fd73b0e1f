"""Reproducers of issue 22 ("Trust the bytes"), each a regression test: inputs that ended in an internal
error (exit 70), a value protobuf would not read, an overwritten input, a runaway or a malformed output.
Every refusal is one line and exit 2, in the user's words (no exception class)."""
import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import SPECS


def refused(run, *words):
    assert run.code == 2 and run.err.count("\n") == 1 and "internal error" not in run.err, run
    assert "Error" not in run.err, run.err  # no exception class
    for word in words:
        assert word in run.err, run.err


def conv_file(tmp_path, name="m.onnx", w_type=TensorProto.FLOAT, out="y", before=(), extra=(), **attrs):
    """x [1, 3, 8, 8] -> Conv(W [4, 3, 3, 3]) -> out; W of any element type (its bytes zero)."""
    size = {TensorProto.INT8: 1}.get(w_type, 4)
    inits = [TensorProto(name="W", data_type=w_type, dims=[4, 3, 3, 3], raw_data=bytes(108 * size)), *extra]
    nodes = [*before, helper.make_node("Conv", ["x", "W"], [out], **attrs)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info(out or "y", TensorProto.FLOAT, None)], inits)
    path = tmp_path / name
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    return str(path)


# ---- internal errors -------------------------------------------------------------------------------

@pytest.mark.parametrize("w_type", [TensorProto.INT8, 99])
def test_a_conv_with_int8_or_unknown_typed_weights_is_costed(effplan, tmp_path, w_type):
    """The weight's element type does not change a conv's work: 4 x 6 x 6 outputs of 3 x 3 x 3 MACs each."""
    run = effplan("analyze", conv_file(tmp_path, w_type=w_type), "--format", "json")
    assert run.code == 0, run.err
    assert json.loads(run.out)["totals"]["macs"] == 4 * 6 * 6 * 3 * 3 * 3


@pytest.mark.parametrize("attrs, words", [
    ({"group": [1]}, ["attribute 'group' is INTS; ONNX's Conv takes INT"]),
    ({"kernel_shape": 3}, ["attribute 'kernel_shape' is INT; ONNX's Conv takes INTS"]),
])
def test_an_attribute_of_another_type_than_onnxs_is_refused(effplan, tmp_path, attrs, words):
    path = conv_file(tmp_path, **attrs)
    for command in ("analyze", "layers", "memory"):
        refused(effplan(command, path), *words)


def test_a_node_without_a_named_output_is_refused(effplan, tmp_path):
    path = conv_file(tmp_path, out="")
    for command in (["analyze"], ["memory", "--train"]):
        refused(effplan(command[0], path, *command[1:]), "has no named output")


@pytest.mark.parametrize("op", ["Identity", "Cast", "DequantizeLinear"])
def test_a_weight_pass_through_with_an_empty_first_input(effplan, tmp_path, op):
    """Identity, Cast and DequantizeLinear pass a weight through their first input; an empty one passes
    none (it was read as the weight of name '')."""
    scale = numpy_helper.from_array(np.array(1.0, np.float32), "s")
    node = helper.make_node(op, ["", "s"], ["z"], **({"to": TensorProto.FLOAT} if op == "Cast" else {}))
    run = effplan("analyze", conv_file(tmp_path, before=[node], extra=[scale]))
    assert run.code in (0, 2) and "internal error" not in run.err, run.err


def test_a_5000_digit_integer_in_a_toml_file(effplan, tmp_path):
    path = tmp_path / "b.toml"
    path.write_text('[[budget]]\nmodel = "efficientnet-b0"\nmax_macs = ' + "9" * 5000 + "\n")
    refused(effplan("check", str(path)), "integer of thousands of digits")


# ---- the baseline: strict JSON -------------------------------------------------------------------

@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    from effplan.cli import main

    folder = tmp_path_factory.mktemp("baseline")
    (folder / "b.toml").write_text('[[budget]]\nmodel = "efficientnet-b0"\nmax_macs = "1G"\n')
    main(["layers", "efficientnet-b0", "--format", "json", "-o", str(folder / "base.json")])
    return folder


@pytest.mark.parametrize("figure, text, words", [
    ("macs", "NaN", ["'totals.macs' is NaN"]),
    ("macs", "Infinity", ["'totals.macs' is Infinity"]),
    ("macs", "-Infinity", ["'totals.macs' is -Infinity"]),
    ("macs", "2e308", ["'totals.macs' is a number beyond 1e308"]),
    ("params", "1" + "0" * 320, ["'totals.params' is a number of 321 digits"]),
    ("params", "9" * 5000, ["'totals.params' is a number of 5000 digits"]),
    ("flops", str(2**64), ["'totals.flops' is 18446744073709551616"]),
])
def test_a_baseline_with_no_finite_number_is_refused_naming_the_key(effplan, baseline, figure, text, words):
    report = json.loads((baseline / "base.json").read_text())
    raw = json.dumps(report).replace(f'"{figure}": {report["totals"][figure]},', f'"{figure}": {text},', 1)
    assert raw != json.dumps(report)
    (baseline / "bad.json").write_text(raw)
    refused(effplan("check", str(baseline / "b.toml"), "--baseline", str(baseline / "bad.json")),
            *words, "strict JSON")


def test_a_baseline_of_finite_numbers_still_compares(effplan, baseline):
    run = effplan("check", str(baseline / "b.toml"), "--baseline", str(baseline / "base.json"))
    assert run.code == 0, run.err


# ---- the bytes -------------------------------------------------------------------------------------

def test_one_flipped_bit_protobuf_refuses_is_no_model(effplan, tmp_path):
    """A flipped bit that makes the varint of a length run past its message: protobuf refuses the file."""
    path = conv_file(tmp_path)
    data = bytearray(open(path, "rb").read())
    at = data.index(b"Conv") - 1  # the length of op_type
    data[at] |= 0x80
    (tmp_path / "m.onnx").write_bytes(bytes(data))
    with pytest.raises(Exception):
        onnx.load(str(tmp_path / "m.onnx"))
    refused(effplan("analyze", str(tmp_path / "m.onnx")), "not a valid ONNX file (truncated or corrupt")


# ---- outputs never replace inputs ------------------------------------------------------------------

def test_an_output_naming_an_input_is_refused(effplan, tmp_path, monkeypatch):
    """`-o` resolving to the model, the spec, the budget or the baseline (by another spelling, or a link)
    is refused in one line, and the file is left as it was."""
    import os

    model = conv_file(tmp_path)
    (tmp_path / "b.toml").write_text('[[budget]]\nmodel = "efficientnet-b0"\nmax_macs = "1G"\n')
    (tmp_path / "s.toml").write_text((SPECS / "efficientnet-b0.toml").read_text())
    (tmp_path / "d.toml").write_text((SPECS.parent / "hardware" / "t4.toml").read_text())
    (tmp_path / "r.toml").write_text((SPECS.parent / "runtimes" / "compiled.toml").read_text())
    os.symlink(model, tmp_path / "link.onnx")
    monkeypatch.chdir(tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    for args in (["analyze", "m.onnx", "-o", "./m.onnx"], ["layers", str(tmp_path / "link.onnx"), "-o", "m.onnx"],
                 ["check", "b.toml", "-o", "b.toml"], ["export", "s.toml", "-o", "s.toml"],
                 ["layers", "s.toml", "-o", str(tmp_path / "s.toml")],
                 ["roofline", "efficientnet-b0", "--device", "d.toml", "-o", "d.toml"],
                 ["roofline", "efficientnet-b0", "--device", "t4", "--runtime", "r.toml", "-o", "./r.toml"]):
        refused(effplan(*args), "an output never replaces an input")
    assert before == {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file() and p in before}


def test_an_output_over_a_file_read_on_the_way_is_refused(effplan, tmp_path):
    """A model named inside a budget file is no option of the command: the write itself refuses it."""
    model = conv_file(tmp_path)
    (tmp_path / "b.toml").write_text(f'[[budget]]\nmodel = "{model}"\nmax_macs = "1G"\n')
    before = open(model, "rb").read()
    refused(effplan("check", str(tmp_path / "b.toml"), "-o", model), "it is a file this command reads")
    assert open(model, "rb").read() == before


# ---- renderers escape for their format -------------------------------------------------------------

HOSTILE = "a|b <i>x</i> & \x07\n# c"


def test_text_and_markdown_tables_keep_hostile_names_in_their_cell(effplan, tmp_path):
    """A node name with '|', HTML, a control character and a newline starting a '#' line: each table keeps
    one line per row, markdown the header's column count, and no raw HTML."""
    path = conv_file(tmp_path)
    model = onnx.load(path)
    model.graph.node[0].name = HOSTILE
    onnx.save(model, path)
    text = effplan("layers", path, "--wide")
    assert text.code == 0, text.err
    rows = [line for line in text.out.splitlines() if not line.startswith("#")]
    assert len(rows) == 2 + 2 + 1  # header, rule, the conv, a rule, the total
    assert any(line.startswith("a|b <i>x</i> & \\x07\\n# c") for line in rows)
    md = effplan("layers", path, "--format", "markdown")
    table = [line for line in md.out.splitlines() if line.startswith("|")]
    outside_comments = [line for line in md.out.splitlines() if not line.startswith("<!--")]
    assert len(table) == 4 and "<i>" not in "\n".join(outside_comments) and "\x07" not in md.out
    count = lambda line: len(line.replace("\\|", "")) - len(line.replace("\\|", "").replace("|", ""))  # noqa: E731
    assert {count(line) for line in table} == {count(table[0])}
    assert r"a\|b &lt;i&gt;x&lt;/i&gt; &amp; \\x07\\n# c" in md.out  # renders as the text view shows it


def test_junit_holds_no_character_xml_forbids(effplan, tmp_path):
    import xml.dom.minidom

    (tmp_path / "b.toml").write_text(f'[[budget]]\nname = {json.dumps(HOSTILE + chr(0x1b))}\n'
                                     'model = "efficientnet-b0"\nmax_macs = "1M"\n')
    run = effplan("check", str(tmp_path / "b.toml"), "--format", "junit")
    assert run.code == 1, run.err
    document = xml.dom.minidom.parseString(run.out.encode())  # XML 1.0 forbids U+0000-U+001F but tab, LF, CR
    case = document.getElementsByTagName("testcase")[0]
    assert case.getAttribute("classname") == "effplan.a|b <i>x</i> & \\x07\n# c\\x1b"


def test_a_name_starting_with_a_hash_is_no_comment_line_in_text(effplan, tmp_path):
    path = conv_file(tmp_path)
    model = onnx.load(path)
    model.graph.node[0].name = "# not a comment"
    onnx.save(model, path)
    run = effplan("layers", path, "--wide")
    assert any(line.startswith("\\# not a comment") for line in run.out.splitlines()), run.out


def test_onnxs_inference_errors_name_the_node_in_plain_words(effplan, tmp_path):
    """onnx's '[ShapeInferenceError] (op_type:Add, node name: add1): B has inconsistent type' without its
    class tags, naming the node."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    k = helper.make_tensor("k", TensorProto.INT64, [1], [1])
    graph = helper.make_graph([helper.make_node("Add", ["x", "k"], ["y"], name="add1")], "g", [x],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [k])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    refused(effplan("analyze", str(path)), "ONNX's shape inference refuses node 'add1' (Add): B has inconsistent type")
    assert "[" not in effplan("analyze", str(path)).err


# ---- bounded work ----------------------------------------------------------------------------------

def test_a_file_past_the_node_limit_is_refused_before_protobuf_parses_it(effplan, tmp_path, monkeypatch):
    """100,001 empty nodes (two bytes each): the skim counts them; protobuf never sees the file."""
    from effplan.onnx.wire import MAX_NODES

    graph = b"\x0a\x00" * (MAX_NODES + 1)
    path = tmp_path / "many.onnx"
    path.write_bytes(b"\x08\x08\x3a" + _varint(len(graph)) + graph)
    monkeypatch.setattr(onnx.ModelProto, "FromString", lambda data: pytest.fail("parsed"))
    refused(effplan("analyze", str(path)), f"more than {MAX_NODES:,} nodes")


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes(out + bytes([value]))


def test_ops_side_by_side_past_the_planning_bound_are_refused(effplan, tmp_path, monkeypatch):
    """A graph of parallel ops: each step of its memory timeline holds every branch live (quadratic
    work). Past the bound (lowered here to keep the test small) it is one line, not hours."""
    from effplan.plan import memory

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])
    nodes = [helper.make_node("Relu", ["x"], [f"r{i}"]) for i in range(60)]
    nodes.append(helper.make_node("Sum", [f"r{i}" for i in range(60)], ["y"]))
    graph = helper.make_graph(nodes, "wide", [x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])])
    path = tmp_path / "wide.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    assert effplan("memory", str(path)).code == 0
    monkeypatch.setattr(memory, "MAX_CHAINS_WEIGHED", 1000)  # 60 ready chains weighed at 60 steps and more
    refused(effplan("memory", str(path)), "too many ops run side by side")
    monkeypatch.setattr(memory, "MAX_LIVE_ENTRIES", 1000)  # 60 steps of up to 60 live tensors
    refused(effplan("analyze", str(path)), "too many ops run side by side")


@pytest.mark.parametrize("version", [2**62, 2**31, -5, 0])
def test_an_opset_version_past_any_int32_is_no_internal_error(effplan, tmp_path, version):
    """Found by benchmarks/fuzz.py --wire: onnx's schema lookup takes an int32 version."""
    path = conv_file(tmp_path, group=1)
    model = onnx.load(path)
    model.opset_import[0].version = version
    onnx.save(model, path)
    run = effplan("analyze", path)
    assert run.code in (0, 2) and "internal error" not in run.err, run.err


def test_a_report_past_its_design_and_device_bounds_is_refused_before_work(effplan):
    devices = [f"--device={d}" for d in ("t4", "l4", "a100-80gb")]
    refused(effplan("report", "--phi", "0..10:0.1", "-o", "/dev/null"), "101 designs asked; a report compares at most 100")
    refused(effplan("report", "--phi", "0..6.6:0.1", *devices, "-o", "/dev/null"),
            "67 designs on 3 devices; a report holds at most 200 design-device pairs")
    refused(effplan("table", "--phi", "0..20.1:0.1"), "at most 200")
    refused(effplan("search", "efficientnet-b0", "--objective", "train-throughput", "--device", "t4",
                    "--max-macs", "1G", "--timed", "101"), "101")


def test_a_grown_layer_with_a_hostile_name_stays_on_its_line(effplan, tmp_path):
    """`check --baseline` names the layers that grew, in text on one line, whatever the file calls them."""
    path = conv_file(tmp_path)
    model = onnx.load(path)
    model.graph.node[0].name = "conv\n# a comment"
    onnx.save(model, path)
    assert effplan("layers", path, "--format", "json", "-o", str(tmp_path / "base.json")).code == 0
    report = json.loads((tmp_path / "base.json").read_text())
    report["model"] = "m"  # the name a budget gives a file's design (layers says m.onnx)
    report["totals"]["macs"] //= 2
    for row in report["layers"]:
        row["macs"] //= 2
    (tmp_path / "base.json").write_text(json.dumps(report))
    (tmp_path / "b.toml").write_text(f'[[budget]]\nmodel = {json.dumps(path)}\nmax_macs = "1G"\n')
    run = effplan("check", str(tmp_path / "b.toml"), "--baseline", str(tmp_path / "base.json"))
    assert run.code == 1, run.err
    grown = [line for line in run.out.splitlines() if line.startswith("baseline: macs grew")]
    assert len(grown) == 1 and "layers that grew: conv\\n# a comment" in grown[0], run.out
    assert not any(line.startswith("# a comment") for line in run.out.splitlines())
