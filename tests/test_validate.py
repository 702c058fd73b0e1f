"""The one validator of TOML data (effplan/base/schema.py): each rule once, for every file kind.

Each kind's test file is a built-in one (a spec, a device, a runtime) or a small budget, changed in
one place and written back as a user's file; the expected messages are written out here by hand from
the rule (the file, the key's path, what was expected, what was found).
"""
import json
import math
import tomllib

import pytest

from effplan.base.errors import EffplanError
from effplan.design.spec import SPECS_DIR, load_spec
from effplan.gate.budget import load_budgets
from effplan.plan.hardware import load_device
from effplan.plan.runtime import load_runtime

DIGITS = object()  # a mutation's value: an integer of 5,000 digits, written into the file's text


def toml(value) -> str:
    """A TOML value, tables and arrays inline (every kind's files read the same either way)."""
    if value is DIGITS:
        return "9" * 5000
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else "inf"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON's escapes are TOML's
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml(v)}" for k, v in value.items()) + "}"


BUDGET = {"budget": [{"model": "mobilenet-v2", "max_macs": "1G", "batch": 1}]}
KINDS = {  # kind -> (the table a valid file holds, how a user's file of the kind is loaded)
    "spec": (lambda: tomllib.loads((SPECS_DIR / "models" / "mobilenet-v2.toml").read_text()), load_spec),
    "device": (lambda: tomllib.loads((SPECS_DIR / "hardware" / "t4.toml").read_text()), lambda p: load_device(str(p))),
    "runtime": (lambda: tomllib.loads((SPECS_DIR / "runtimes" / "fused.toml").read_text()),
                lambda p: load_runtime(str(p))),
    "budget": (lambda: json.loads(json.dumps(BUDGET)), lambda p: load_budgets(str(p))),
}
B = ("budget", 0)  # the key path of the budget entry
# rule -> kind -> (key path, new value or None to delete it, the message after "FILE: ")
RULES = {
    "unknown key, nearest known": {
        "spec": (("resolutoin",), 224, "unknown key 'resolutoin' (did you mean: resolution"),
        "device": (("bandwith_gbs",), 300.0, "unknown key 'bandwith_gbs' (did you mean: bandwidth_gbs?)"),
        "runtime": (("launch", "overlapp"), "async", "launch: unknown key 'overlapp' (did you mean: overlap"),
        "budget": (B + ("max_mac",), "1G", "budget[0]: unknown key 'max_mac' (did you mean: max_macs"),
    },
    "missing key": {
        "spec": (("description",), None, "missing key 'description' (a string)"),
        "device": (("onchip_mb",), None, "missing key 'onchip_mb' (a positive number up to 1e+09)"),
        "runtime": (("launch", "overlap"), None, "launch: missing key 'overlap' (one of async, serial)"),
        "budget": (B + ("model",), None,
                   "budget[0]: missing key 'model' (a built-in name, a spec file, an .onnx file or a PyTorch model)"),
    },
    "wrong type": {
        "spec": (("resolution",), "big", "resolution: expected an integer, got 'big'"),
        "device": (("memory_gb",), "16", "memory_gb: expected a positive number up to 1e+09, got '16'"),
        "runtime": (("fusion", "enabled"), "yes", "fusion.enabled: expected true or false, got 'yes'"),
        "budget": (B + ("batch",), 1.5, "budget[0].batch: expected an integer, got 1.5"),
    },
    "out of bounds": {
        "spec": (("resolution",), 0, "resolution: expected a value between 1 and 16384, got 0"),
        "device": (("efficiency", "matrix"), 1.5,
                   "efficiency.matrix: expected a share of peak, more than 0 and at most 1, got 1.5"),
        "runtime": (("fusion", "max_adds"), 9, "fusion.max_adds: expected a value between 0 and 8, got 9"),
        "budget": (B + ("batch",), 0, "budget[0].batch: expected a value between 1 and 1048576, got 0"),
    },
    "not one of the choices": {
        "spec": (("activation",), "relu7", "activation: expected one of swish, relu, relu6, hswish, none, "
                                           "got 'relu7' (did you mean: relu, relu6?)"),
        "device": (("class",), "edge_gpu", "class: expected one of datacenter-gpu, desktop-gpu, edge-gpu, tpu, "
                                           "mobile-npu, mobile-cpu, server-cpu, got 'edge_gpu' (did you mean: edge-gpu"),
        "runtime": (("launch", "overlap"), "sync", "launch.overlap: expected one of async, serial, got 'sync' "
                                                   "(did you mean: async"),
        "budget": (B + ("dtype",), "fp64", "budget[0].dtype: expected one of fp32, tf32, fp16, bf16, int8, got 'fp64'"),
    },
    "not a table": {
        "spec": (("rounding",), 8, "rounding: expected a table, got 8"),
        "device": (("efficiency",), 0.5, "efficiency: expected a table, got 0.5"),
        "runtime": (("fusion",), True, "fusion: expected a table, got True"),
        "budget": (B, "mobilenet-v2", "budget[0]: expected a table, got 'mobilenet-v2'"),
    },
    "integer past 63 bits": {  # 2^70: TOML reads it; no figure that large can be right
        "spec": (("stages", 0, "channels"), 2**70, "stages[0].channels: expected an integer of at most 63 bits, "
                                                   "got an integer of 71 bits"),
        "device": (("memory_gb",), 2**70, "memory_gb: expected a positive number up to 1e+09, got an integer of 71 bits"),
        "runtime": (("fusion", "max_adds"), -2**70, "fusion.max_adds: expected an integer of at most 63 bits, "
                                                    "got an integer of 71 bits"),
        "budget": (B + ("dataset_size",), 2**70, "budget[0].dataset_size: expected an integer of at most 63 bits, "
                                                 "got an integer of 71 bits"),
    },
    "integer of thousands of digits": {  # past what Python reads from text: refused before any key is looked at
        kind: (path, DIGITS, "holds an integer of thousands of digits; no figure is that large")
        for kind, path in (("spec", ("resolution",)), ("device", ("memory_gb",)), ("runtime", ("fusion", "max_adds")),
                           ("budget", B + ("batch",)))
    },
    "not finite": {
        "spec": (("rounding",), {"limit": math.nan}, "rounding.limit: expected a finite number, got nan"),
        "device": (("bandwidth_gbs",), math.inf, "bandwidth_gbs: expected a positive number up to 1e+09, got inf"),
        "runtime": (("launch", "overhead_s"), math.nan, "launch.overhead_s: expected seconds from 0 to 1, or \"device\" "
                                                        "(the device file's launch_overhead_us), got nan"),
        "budget": (B + ("phi",), math.inf, "budget[0].phi: expected a finite number, got inf"),
    },
    "a row's key, by its place": {
        "spec": (("stages", 2, "kernal"), 3, "stages[2]: unknown key 'kernal' (did you mean: kernel?)"),
        "device": (("matrix", "fp17"), 1.0, "matrix: unknown precision 'fp17' (did you mean: fp16"),
        "runtime": (("kernels", "single_kernel", 0, "match"), "mul_of_input",
                    "kernels.single_kernel[0].match: expected one of mul-of-input, single, chain, got 'mul_of_input'"),
        "budget": (B + ("max_macs",), "1Q", "budget[0].max_macs: '1Q': unknown unit 'Q'"),
    },
}


def changed(table, path, value):
    *parents, last = path
    for key in parents:
        table = table[key]
    if value is None:
        del table[last]
    else:
        table[last] = value


@pytest.mark.parametrize("rule, kind", [(rule, kind) for rule in RULES for kind in KINDS])
def test_each_rule_for_each_kind(tmp_path, rule, kind):
    base, load = KINDS[kind]
    path_in_file, value, message = RULES[rule][kind]
    table = base()
    good, file = tmp_path / f"good-{kind}.toml", tmp_path / f"mine-{kind}.toml"  # devices and runtimes cache by path
    good.write_text("".join(f"{json.dumps(k)} = {toml(v)}\n" for k, v in table.items()))
    load(good)  # the file as written holds no fault of its own
    changed(table, path_in_file, value)
    file.write_text("".join(f"{json.dumps(k)} = {toml(v)}\n" for k, v in table.items()))
    with pytest.raises(EffplanError) as err:
        load(file)
    assert str(err.value).startswith(f"{file}: ") and message in str(err.value), str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("kind, args", [
    ("spec", ["layers", "{}"]),
    ("device", ["roofline", "mobilenet-v2", "--device", "{}"]),
    ("runtime", ["roofline", "mobilenet-v2", "--device", "t4", "--runtime", "{}"]),
    ("budget", ["check", "{}"]),
])
def test_the_cli_says_it_in_one_line(effplan, tmp_path, kind, args):
    path_in_file, value, message = RULES["unknown key, nearest known"][kind]
    table = KINDS[kind][0]()
    changed(table, path_in_file, value)
    file = tmp_path / f"mine-{kind}.toml"
    file.write_text("".join(f"{json.dumps(k)} = {toml(v)}\n" for k, v in table.items()))
    run = effplan(*[a.format(file) for a in args])
    assert run.code == 2 and run.err.startswith(f"effplan: error: {file}: {message}"), run.err
    assert len(run.err.strip().splitlines()) == 1
