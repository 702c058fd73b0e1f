"""Hostile input, generated: mutated spec, budget, device and runtime files, CLI arguments and ONNX files.

Every outcome must be exit 0, 1 or 2; exit 2 is exactly one line on stderr (no traceback, no warning
before it, no internal error); JSON output is JSON (no NaN or Infinity). Derandomised and small in CI;
EFFPLAN_FUZZ_EXAMPLES=N (benchmarks/fuzz.py) runs a longer, freshly seeded search under memory and time limits.
"""
import json
import math
import os
import tomllib
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from onnx import TensorProto, helper, numpy_helper

from conftest import SPECS

LONG = "EFFPLAN_FUZZ_EXAMPLES" in os.environ  # a longer run explores afresh each time; CI repeats one seed
FUZZ = settings(max_examples=int(os.environ.get("EFFPLAN_FUZZ_EXAMPLES", "50")), derandomize=not LONG,
                deadline=20_000 if LONG else None, database=None, suppress_health_check=list(HealthCheck))
HARDWARE = SPECS.parent / "hardware"
RUNTIMES = sorted((SPECS.parent / "runtimes").glob("*.toml"))
# a numpy warning (overflow, invalid value) raises: the CLI would print it before its one-line error
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")


def assert_clean(run, fmt=None):
    """The promise: exit 0, 1 or 2; an error is one line; JSON output is strict JSON."""
    assert run.code in (0, 1, 2), (run.code, run.err)
    assert "internal error" not in run.err and "Traceback" not in run.err, run.err
    if run.code == 2:
        lines = run.err.strip("\n").split("\n")
        assert len(lines) == 1 and lines[0].startswith("effplan: error: "), run.err
    if fmt == "json" and run.code == 0:
        def refuse(constant):
            raise AssertionError(f"{constant} in JSON output")
        json.loads(run.out, parse_constant=refuse)


# ---- values a hostile file or command line holds ----

TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12) | st.sampled_from(
    ["", "\n", "a\nb", "\x00", "é", "💥", "[", "1e308P", "-0", "nan", "inf", "0..16:1e-320", "../x", "/dev/zero"])
NUMBER = st.sampled_from([0, -1, 1, 2, 3, 7, 2**31, 2**62, 2**63 - 1, -(2**63), 0.0, -0.0, 0.5, 1e-320, 1e308,
                          math.nan, math.inf, -math.inf]) | st.integers(-5, 300) | st.floats(allow_nan=True)
SCALAR = NUMBER | TEXT | st.booleans()
VALUE = st.recursive(SCALAR, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=6)


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return toml_string(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return "{" + ", ".join(f"{toml_string(k)} = {toml_value(x)}" for k, x in v.items()) + "}"


def toml_string(text: str) -> str:
    """A TOML basic string: control characters escaped as TOML wants them (\\uXXXX, no surrogates)."""
    return '"' + "".join(f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7f or c in '"\\' else c
                         for c in text) + '"'


def to_toml(table: dict) -> str:
    """A TOML document whose top-level values are written inline (arrays of tables as arrays)."""
    return "".join(f"{toml_string(k)} = {toml_value(v)}\n" for k, v in table.items())


@st.composite
def mutated(draw, table: dict) -> dict:
    """A deep copy of `table` with one to three values replaced, keys removed or unknown keys added."""
    table = json.loads(json.dumps(table))
    for _ in range(draw(st.integers(1, 3))):
        node = table
        while True:  # walk down a random path
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            if not keys:
                break
            key = draw(st.sampled_from(keys))
            if isinstance(node[key], (dict, list)) and node[key] and draw(st.booleans()):
                node = node[key]
                continue
            action = draw(st.sampled_from(["replace", "remove", "add"]))
            if action == "replace":
                node[key] = draw(VALUE)
            elif action == "remove" and isinstance(node, dict):
                del node[key]
            elif isinstance(node, dict):
                node[draw(TEXT)] = draw(VALUE)
            else:
                node.append(draw(VALUE))
            break
    return table


def small_spec() -> dict:
    table = tomllib.loads((SPECS / "squeezenet-1.1.toml").read_text())
    table["resolution"] = 32
    return table


# ---- generated files ----

@FUZZ
@given(mutated(small_spec()), st.sampled_from(["table", "layers", "memory"]))
def test_hostile_spec_files(effplan, tmp_path_factory, table, command):
    path = tmp_path_factory.mktemp("spec") / "s.toml"
    path.write_text(to_toml(table))
    run = effplan(command, str(path), "--format", "json")
    assert_clean(run, "json")


BUDGET = {"budget": [{"model": "squeezenet-1.1", "resolution": 32, "max_params": "2M", "max_macs": "1G"},
                     {"model": "squeezenet-1.1", "resolution": 32, "device": "t4", "max_latency": "5ms",
                      "batch": 2, "dtype": "fp16"}]}


@FUZZ
@given(mutated(BUDGET["budget"]))
def test_hostile_budget_files(effplan, tmp_path_factory, entries):
    path = tmp_path_factory.mktemp("budget") / "b.toml"
    path.write_text(to_toml({"budget": entries}))
    assert_clean(effplan("check", str(path), "--format", "json"), "json")


@FUZZ
@given(mutated(tomllib.loads((HARDWARE / "t4.toml").read_text())))
def test_hostile_device_files(effplan, tmp_path_factory, table):
    path = tmp_path_factory.mktemp("device") / "d.toml"
    path.write_text(to_toml(table))
    assert_clean(effplan("roofline", "squeezenet-1.1", "--resolution", "32", "--device", str(path),
                         "--format", "json"), "json")


@FUZZ
@given(st.sampled_from(RUNTIMES).flatmap(lambda path: st.tuples(st.just(path.stem),
                                                                mutated(tomllib.loads(path.read_text())))))
def test_hostile_runtime_files(effplan, tmp_path_factory, drawn):
    stem, table = drawn
    path = tmp_path_factory.mktemp("runtime") / f"{stem}.toml"  # the file name a runtime's name must equal
    path.write_text(to_toml(table))
    assert_clean(effplan("roofline", "squeezenet-1.1", "--resolution", "32", "--device", "t4", "--runtime", str(path),
                         "--format", "json"), "json")


@FUZZ
@given(st.binary(max_size=200) | TEXT.map(str.encode))
def test_hostile_bytes_as_every_file(effplan, tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("bytes")
    for name, args in (("s.toml", ["table", "{}"]), ("b.toml", ["check", "{}"]), ("r.json", None),
                       ("m.onnx", ["analyze", "{}"]),
                       ("rt.toml", ["roofline", "squeezenet-1.1", "--resolution", "32", "--runtime", "{}"]),
                       ("a.toml", ["search", "squeezenet-1.1", "--max-macs", "1G", "--accuracy", "{}"])):
        path = folder / name
        path.write_bytes(data)
        if args:
            assert_clean(effplan(*[a.replace("{}", str(path)) for a in args]))
    (folder / "b.toml").write_text('[[budget]]\nmodel = "squeezenet-1.1"\nresolution = 32\nmax_params = "9M"\n')
    assert_clean(effplan("check", str(folder / "b.toml"), "--baseline", str(folder / "r.json")))


# ---- command lines ----

OPTIONS = {  # option -> plausible values; hostile ones are drawn beside them
    "--phi": ["0", "1", "0..2", "0..16:1e-320", "1e308", "-0", "nan", "0,1,2"],
    "--resolution": ["32", "0", "64,96", "99999999999999999999"],
    "--width-mult": ["0.5", "1e308", "-1", "inf"], "--depth-mult": ["0.5", "64", "0"],
    "--alpha": ["1.2", "nan"], "--classes": ["10", "0", "9223372036854775808", "100000000"],
    "--scale": ["depth=2", "width=x", "=", "resolution=1e308"],
    "--batch": ["1", "0", "1099511627777", "-3"], "--dtype": ["fp16", "fp64"],
    "--format": ["json", "csv", "markdown", "text"], "--device": ["t4", "nope", "/dev/zero"],
    "--memory": ["1GiB", "1e308P", "1e308", "-1G", "16"], "--reserve": ["10%", "100%", "1e308"],
    "--max-macs": ["1G", "1Q", "0"], "--max-params": ["5M", "inf"], "--top": ["1", "0"],
    "--width": ["1..2:1e-320", "1..3:inf", "1,2"], "--depth": ["1..2", "0"],
    "--runtime": ["fused", "eager", "nope", "/dev/zero", "nope.toml"],
    "--by": ["block", "stage", "op"], "--sort": ["macs", "name", "nope"], "--columns": ["name,macs", ",", "x"],
    "--opset": ["17", "13", "99999999999"], "--weights": ["zeros", "ones"], "--dim": ["N=2", "N=0", "=", "x"],
    "--train": [], "--fold-bn": [], "--dynamic-batch": [], "--strict": [], "--path": [],
}
COMMANDS = {
    "table": ["--phi", "--resolution", "--width-mult", "--depth-mult", "--alpha", "--classes", "--scale", "--batch",
              "--dtype", "--format", "--device"],
    "layers": ["--phi", "--resolution", "--classes", "--batch", "--dtype", "--format"],
    "memory": ["--resolution", "--batch", "--dtype", "--format"],
    "fit": ["--resolution", "--memory", "--reserve", "--device", "--format"],
    "roofline": ["--resolution", "--device", "--batch", "--runtime", "--format"],
    "search": ["--max-macs", "--max-params", "--top", "--width", "--depth", "--format"],
    "compare": ["--batch", "--dtype", "--format"],
    "devices": ["--format"], "models": ["--format"],
    "export": ["--classes", "--opset", "--batch", "--weights", "--fold-bn", "--dynamic-batch", "--dtype"],
    "analyze": ["--batch", "--dim", "--by", "--dtype", "--strict", "--format"],
    "show": ["--path"],
}
MODELS = ["squeezenet-1.1", "efficientnet-b0", "x\ny", "[", "", "/dev/zero", "/", "nope.onnx", "nope.toml"]


@st.composite
def command_line(draw):
    command = draw(st.sampled_from(sorted(COMMANDS)))
    args = [command] + ([draw(st.sampled_from(MODELS))] if command not in ("devices", "models") else [])
    if command == "export":  # one small model, written into a device: nothing left behind
        args = ["export", "squeezenet-1.1", "--resolution", "32", "-o", "/dev/null"]
    elif command in ("table", "layers", "memory", "fit", "roofline") and draw(st.booleans()):
        args += ["--resolution", "32"]  # small unless the draw below overrides it
    for option in draw(st.lists(st.sampled_from(COMMANDS[command]), max_size=3, unique=True)):
        args += [option] + ([draw(st.sampled_from(OPTIONS[option]) | TEXT)] if OPTIONS[option] else [])
    return args


@FUZZ
@given(command_line())
def test_hostile_command_lines(effplan, args):
    assert_clean(effplan(*args), "json" if "json" in args else None)


# ---- ONNX files ----

def tiny_model() -> onnx.ModelProto:
    """A conv, ReLU, pooling and a classifier, as an exporter writes them (effplan doc strings)."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n)
             for n, s in (("w", (4, 3, 3, 3)), ("b", (4,)), ("fc", (4, 5)))]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                              doc_string='effplan {"stage": 1, "block": 0, "layer": "conv"}'),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("GlobalAveragePool", ["r"], ["p"], name="pool"),
             helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
             helper.make_node("MatMul", ["f", "fc"], ["y"], name="fc")]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    helper.set_model_props(model, {"phi": "1.0", "model": "tiny"})
    return model


def external(tensor: onnx.TensorProto, location) -> None:
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value=location)


def subgraph_with_conv() -> onnx.GraphProto:
    w = numpy_helper.from_array(np.zeros((4, 4, 1, 1), np.float32), "sw")
    return helper.make_graph([helper.make_node("Conv", ["r", "sw"], ["s"])], "branch", [],
                             [helper.make_tensor_value_info("s", TensorProto.FLOAT, None)], [w])


def _mutate(model: onnx.ModelProto, kind: str, value) -> None:
    g = model.graph
    if kind == "drop_initializer":
        del g.initializer[value % len(g.initializer)]
    elif kind == "duplicate_initializer":
        g.initializer.append(g.initializer[value % len(g.initializer)])
    elif kind == "cycle":
        g.node[1].input[0] = "f"
    elif kind == "dim":
        g.input[0].type.tensor_type.shape.dim[value % 4].dim_value = [0, -1, 2**62, 2**40 + 1, 1][value % 5]
    elif kind == "initializer_dims":
        del g.initializer[1].dims[:]
        g.initializer[1].dims.extend([2**31, 2**31] if value % 2 else [-4])
    elif kind == "attribute_type":
        del g.node[0].attribute[:]
        g.node[0].attribute.append(helper.make_attribute("kernel_shape", ["a", "b"] if value % 2 else 3.5))
    elif kind == "external":
        external(g.initializer[value % 3], ["../w.data", "/etc/passwd", "sub/../../x", "link.data", "ok.data",
                                            ""][value % 6])
    elif kind == "constant_external":
        tensor = numpy_helper.from_array(np.zeros(4, np.float32), "k")
        external(tensor, "../../outside.data")
        g.node.insert(0, helper.make_node("Constant", [], ["k"], value=tensor))
    elif kind == "sparse_external":
        values = numpy_helper.from_array(np.zeros(2, np.float32), "sv")
        external(values, "/abs.data")
        g.sparse_initializer.append(helper.make_sparse_tensor(values, numpy_helper.from_array(
            np.array([0, 1], np.int64), "si"), [4]))
    elif kind in ("if", "loop"):
        branch = subgraph_with_conv()
        if value % 2:
            external(branch.initializer[0], "../secret.data")
        cond = numpy_helper.from_array(np.array(True), "cond")
        g.initializer.append(cond)
        node = helper.make_node("If", ["cond"], ["s"], then_branch=branch, else_branch=branch) if kind == "if" else \
            helper.make_node("Loop", ["", "cond"], ["s"], body=branch)
        g.node.insert(2, node)
    elif kind == "huge_tensor":
        g.initializer.append(TensorProto(name="big", data_type=TensorProto.FLOAT, dims=[2**20, 2**20, 2**20]))
    elif kind == "metadata":
        helper.set_model_props(model, {"phi": ["abc", "nan", "inf", "1e999", ""][value % 5],
                                       "depth_mult": "-inf", "model": "x\ny"})
    elif kind == "doc_string":
        g.node[value % len(g.node)].doc_string = ["effplan " + "[" * 100000, 'effplan {"stage": 1, "block": [], '
                                                  '"layer": "x"}', 'effplan {"stage": true, "block": 1e400, '
                                                  '"layer": 3}', "effplan null"][value % 4]
    elif kind == "names":
        g.node[value % len(g.node)].name = "a\nb\x00" + "z" * 300
        g.node[(value + 1) % len(g.node)].op_type = "Weird\nOp"


KINDS = ["drop_initializer", "duplicate_initializer", "cycle", "dim", "initializer_dims", "attribute_type", "external",
         "constant_external", "sparse_external", "if", "loop", "huge_tensor", "metadata", "doc_string", "names"]


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 100)), min_size=1, max_size=3),
       st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255), st.sampled_from(["set", "insert", "delete"])),
                max_size=2))
def test_hostile_onnx_files(effplan, tmp_path_factory, mutations, byte_edits):
    folder = tmp_path_factory.mktemp("onnx")
    (folder / "ok.data").write_bytes(b"\0" * 64)
    (folder / "link.data").symlink_to("/etc/hostname")
    model = tiny_model()
    for kind, value in mutations:
        try:
            _mutate(model, kind, value)
        except (IndexError, ZeroDivisionError):  # what an earlier mutation removed: skip this one
            pass
    data = bytearray(model.SerializeToString())
    for at, byte, how in byte_edits:
        at %= len(data)
        if how == "set":
            data[at] = byte
        elif how == "insert":
            data.insert(at, byte)
        else:
            del data[at]
    path = folder / "m.onnx"
    path.write_bytes(bytes(data))
    assert_clean(effplan("analyze", str(path), "--format", "json"), "json")


# ---- the failures found by hand, kept found ----

def test_block_that_is_a_list(effplan, tmp_path):
    table = small_spec()
    table["stages"][0]["block"] = []
    (tmp_path / "s.toml").write_text(to_toml(table))
    run = effplan("table", str(tmp_path / "s.toml"))
    assert run.code == 2 and "stages[0].block: unknown block kind []" in run.err


@pytest.mark.parametrize("args", [
    ["fit", "squeezenet-1.1", "--memory", "1e308P"],
    ["fit", "squeezenet-1.1", "--memory", "1GiB", "--reserve", "1e308P"],
    ["table", "--phi", "0..16:1e-320"], ["search", "squeezenet-1.1", "--width", "1..2:1e-320", "--max-macs", "1G"],
    ["search", "squeezenet-1.1", "--width", "1..3:inf", "--max-macs", "1G"],
    ["export", "squeezenet-1.1", "--classes", "9223372036854775808", "-o", "/dev/null"],
    ["export", "squeezenet-1.1", "--classes", "100000000", "-o", "/dev/null"],
])
def test_overflowing_numbers_are_one_line(effplan, args):
    run = effplan(*args)
    assert run.code == 2 and len(run.err.splitlines()) == 1, run.err


def test_device_figures_past_any_device(effplan, tmp_path):
    text = (HARDWARE / "t4.toml").read_text().replace("memory_gb = 16.0", "memory_gb = 1e308")
    (tmp_path / "d.toml").write_text(text)
    run = effplan("roofline", "squeezenet-1.1", "--device", str(tmp_path / "d.toml"))
    assert run.code == 2 and "memory_gb: expected a positive number up to 1e+09, got 1e+308" in run.err


def test_baseline_with_odd_layers_and_without_bound(effplan, tmp_path):
    (tmp_path / "b.toml").write_text('[[budget]]\nmodel = "squeezenet-1.1"\nmax_params = "9M"\n')
    report = effplan("layers", "squeezenet-1.1", "--format", "json").json()
    report["layers"][0]["name"] = ["a"]
    (tmp_path / "r.json").write_text(json.dumps(report))
    run = effplan("check", str(tmp_path / "b.toml"), "--baseline", str(tmp_path / "r.json"))
    assert run.code == 2 and "not an `effplan layers --format json` report" in run.err
    run = effplan("check", str(tmp_path / "b.toml"), "--baseline", "/dev/zero")  # would read forever
    assert run.code == 2 and "larger than 64 MiB" in run.err


def test_stem_and_head_rows_count_as_blocks(effplan, tmp_path):
    table = small_spec()
    table["stem"] = table["stem"][:1] + [{"block": "conv", "channels": 8, "kernel": 1, "repeats": 1000}] * 6
    (tmp_path / "s.toml").write_text(to_toml(table))
    run = effplan("layers", str(tmp_path / "s.toml"))
    assert run.code == 2 and "blocks after depth scaling (stem, stages and head); at most 5000" in run.err


def test_a_bad_late_budget_is_found_before_any_is_evaluated(effplan, tmp_path, monkeypatch):
    import effplan.gate.budget as budget

    def refuse(*args):
        raise AssertionError("evaluated before the whole file was checked")
    monkeypatch.setattr(budget, "figures", refuse)
    entries = '[[budget]]\nmodel = "squeezenet-1.1"\nmax_params = "9M"\n' * 5
    (tmp_path / "b.toml").write_text(entries + '[[budget]]\nmodel = "no-such-model"\nmax_params = "9M"\n')
    run = effplan("check", str(tmp_path / "b.toml"))
    assert run.code == 2 and "budget[5]: unknown model 'no-such-model'" in run.err
    (tmp_path / "b.toml").write_text(entries * 60)
    run = effplan("check", str(tmp_path / "b.toml"))
    assert run.code == 2 and "300 budgets; at most 256" in run.err


def test_errors_quote_raw_text_on_one_line(effplan, tmp_path):
    (tmp_path / "s.toml").write_text('"bad\\nkey" = 1\n')
    run = effplan("table", str(tmp_path / "s.toml"))
    assert run.code == 2 and "unknown key 'bad\\nkey'" in run.err and len(run.err.splitlines()) == 1
    run = effplan("table", "efficient\nnet")
    assert run.code == 2 and "'efficient\\nnet'" in run.err and len(run.err.splitlines()) == 1


def analyze(effplan, tmp_path, model, *args):
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    return effplan("analyze", str(path), *args)


@pytest.mark.parametrize("kind, value, expected", [
    ("if", 0, "holds a subgraph with convs or matrix products"),
    ("loop", 0, "holds a subgraph with convs or matrix products"),
    ("dim", 2, "has a dimension of 4611686018427387904"),
    ("huge_tensor", 0, "must be from 0 to 2^40"),
    ("constant_external", 0, "external data outside the model's folder"),
    ("sparse_external", 0, "external data outside the model's folder"),
])
def test_imports_refuse_what_they_would_skip(effplan, tmp_path, kind, value, expected):
    model = tiny_model()
    _mutate(model, kind, value)
    run = analyze(effplan, tmp_path, model)
    assert run.code == 2 and expected in run.err, run.err


def test_a_subgraph_initializer_outside_the_folder(effplan, tmp_path):
    model = tiny_model()
    branch = helper.make_graph([helper.make_node("Identity", ["k"], ["s"])], "b", [],
                               [helper.make_tensor_value_info("s", TensorProto.FLOAT, None)],
                               [numpy_helper.from_array(np.zeros(2, np.float32), "k")])
    external(branch.initializer[0], "../../secret.data")
    model.graph.initializer.append(numpy_helper.from_array(np.array(True), "cond"))
    model.graph.node.append(helper.make_node("If", ["cond"], ["s"], then_branch=branch, else_branch=branch))
    run = analyze(effplan, tmp_path, model)
    assert run.code == 2 and "tensor 'k' has external data outside the model's folder" in run.err


def test_an_invalid_utf8_location(effplan, tmp_path):
    model = tiny_model()
    external(model.graph.initializer[0], "QQQQ.data")
    (tmp_path / "m.onnx").write_bytes(model.SerializeToString().replace(b"QQQQ", b"\xffQQQ"))
    run = effplan("analyze", str(tmp_path / "m.onnx"))
    assert run.code == 2 and "the text of graph.initializer.external_data.value is not valid UTF-8" in run.err


@pytest.mark.parametrize("doc", ["effplan " + "[" * 100000, 'effplan {"stage": 1, "block": [], "layer": "x"}'])
def test_odd_doc_strings_are_names_not_places(effplan, tmp_path, doc):
    model = tiny_model()
    model.graph.node[0].doc_string = doc
    run = analyze(effplan, tmp_path, model, "--format", "json")
    assert run.code == 0 and run.json()["layers"][0]["stage"] == "stem", run.err  # placed as an unplaced op


@pytest.mark.parametrize("phi, expected", [("abc", None), ("nan", None), ("inf", None), ("1.5", 1.5)])
def test_metadata_that_is_no_number(effplan, tmp_path, phi, expected):
    model = tiny_model()
    helper.set_model_props(model, {"phi": phi})
    run = analyze(effplan, tmp_path, model, "--format", "json")
    assert run.code == 0 and run.json()["phi"] == expected and "NaN" not in run.out
    from effplan.onnx.model import Imported
    assert Imported(str(tmp_path / "m.onnx")).phi == expected  # the file as a design reads it the same way


def test_json_never_holds_nan():
    from effplan.render.report import to_json
    assert json.loads(to_json({"a": math.nan, "b": [math.inf, np.float64("-inf")], "c": 1.5})) == \
        {"a": None, "b": [None, None], "c": 1.5}


# ---- writes ----

def test_export_refuses_what_memory_cannot_hold(effplan, tmp_path, monkeypatch):
    import effplan.onnx.export as io
    # 200 MiB: above 128 MiB plus 4 copies of SqueezeNet's largest tensor (1000x512 fp32, 2 MB), below 4 copies
    # of the 10240x2560 head conv (105 MB) of EfficientNet-B0 at width 8
    monkeypatch.setattr(io, "memory_left", lambda: 200 << 20)
    out = tmp_path / "m.onnx"
    run = effplan("export", "efficientnet-b0", "--width-mult", "8", "-o", str(out))
    assert run.code == 2 and "of memory at once" in run.err and not out.exists()
    assert effplan("export", "squeezenet-1.1", "--resolution", "32", "-o", str(out)).code == 0


def test_export_writes_into_devices_and_through_links(effplan, tmp_path):
    assert effplan("export", "squeezenet-1.1", "--resolution", "32", "-o", "/dev/null").code == 0
    assert Path("/dev/null").is_char_device()
    real = tmp_path / "real.onnx"
    real.write_text("old")
    (tmp_path / "link.onnx").symlink_to(real)
    assert effplan("export", "squeezenet-1.1", "--resolution", "32", "-o", str(tmp_path / "link.onnx")).code == 0
    assert (tmp_path / "link.onnx").is_symlink() and onnx.load(str(real)).graph.node


def test_external_export_killed_between_renames_leaves_no_old_model(effplan, tmp_path, monkeypatch):
    """The data file is renamed first; the old model is gone by then, so a kill before the model's
    rename leaves no model, never an old model beside new data."""
    import effplan.onnx.export as io
    monkeypatch.setattr(io, "PROTO_LIMIT", 1 << 16)
    out = tmp_path / "m.onnx"
    out.write_text("old model")
    real_replace = os.replace

    class Killed(BaseException):  # as SIGKILL: no handler runs
        pass

    def killed(src, dst):
        if str(dst).endswith(".onnx"):
            raise Killed
        real_replace(src, dst)
    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(Killed):
        effplan("export", "squeezenet-1.1", "--resolution", "32", "-o", str(out))
    assert not out.exists() and (tmp_path / "m.onnx.data").exists()


def test_temporary_files_of_a_killed_export_are_removed(effplan, tmp_path, monkeypatch):
    stale = tmp_path / ".m.onnx.99999999.abc"  # pid past any pid_max: its writer is gone
    stale.write_bytes(b"x" * 100)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.onnx.data").write_text("a file onnx would refuse to overwrite")
    import effplan.onnx.export as io
    monkeypatch.setattr(io, "PROTO_LIMIT", 1 << 16)
    run = effplan("export", "squeezenet-1.1", "--resolution", "32", "-o", "m.onnx")
    assert run.code == 0 and not stale.exists(), run.err
    assert onnx.load("m.onnx").graph.initializer  # loads with its data


def test_an_old_model_beside_newer_data_is_refused(effplan, tmp_path):
    """A model whose external data runs past the end of its data file (a kill between the renames of
    an older export) is refused, not costed as if it loaded."""
    model = tiny_model()
    external(model.graph.initializer[0], "m.onnx.data")  # 4x3x3x3 fp32: 432 bytes
    (tmp_path / "m.onnx.data").write_bytes(b"\0" * 100)
    run = analyze(effplan, tmp_path, model)
    assert run.code == 2 and "ends at byte 432, past the end of 'm.onnx.data' (100 bytes)" in run.err, run.err
    (tmp_path / "m.onnx.data").write_bytes(b"\0" * 432)
    assert analyze(effplan, tmp_path, model).code == 0
