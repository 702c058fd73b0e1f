"""Issue 14's traps and the Python API: units that refuse to guess, fit --batch, per-image budget
limits, help text per command, activation aliases, int8 on a T4, export --check refusal, unsteady
timings, `effplan show`, built-in files named by name, and the top-level `effplan` package."""
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import effplan as api
from effplan.base.errors import EffplanError
from effplan.base.units import parse_bytes
from effplan.gate.budget import parse_limits
from effplan.plan import measure as measure_module

from conftest import spec_variant

HARDWARE = Path(__file__).resolve().parent.parent / "specs" / "hardware"
MODELS = Path(__file__).resolve().parent.parent / "specs" / "models"


# ---- units without traps ----

@pytest.mark.parametrize("args, option", [
    (["--memory", "12"], "--memory"),
    (["--memory", "16GiB", "--reserve", "10"], "--reserve"),
])
def test_a_bare_number_of_bytes_is_refused_as_ambiguous(effplan, args, option):
    run = effplan("fit", "mobilenet-v2", *args)
    assert run.code == 2 and len(run.err.strip().splitlines()) == 1
    assert option in run.err and "ambiguous" in run.err


def test_a_bare_number_is_refused_in_budgets_too():
    with pytest.raises(EffplanError, match="ambiguous"):
        parse_limits({"max_inference_memory": 300000000}, lambda key: key)


def test_16g_means_gibibytes_as_docker_and_java_read_it():
    assert parse_bytes("16g") == parse_bytes("16G") == parse_bytes("16GiB") == 16 * 2**30
    assert parse_bytes("16GB") == 16 * 10**9 and parse_bytes("512m") == 512 * 2**20
    assert parse_limits({"max_training_memory": "16g"}, lambda key: key) == {"max_training_memory": 16 * 2**30}


# ---- fit --batch ----

def test_fit_batch_answers_yes_or_no_with_the_margin(effplan):
    common = ["fit", "mobilenet-v2", "--resolution", "64", "--memory", "1GiB", "--train", "--format", "json"]
    (fit,) = effplan(*common).json()
    largest = fit["batch"]
    budget = 2**30 - 107374182  # the default reserve, 10% of 1 GiB, rounded down
    for asked, code in ((largest, 0), (largest + 1, 1)):
        run = effplan(*common, "--batch", str(asked))
        (row,) = run.json()
        # memory at the batch, from `effplan memory`, which builds the graph at that batch itself
        real = effplan("memory", "mobilenet-v2", "--resolution", "64", "--batch", str(asked), "--train",
                       "--format", "json").json()["training"]["total_bytes"]
        assert run.code == code
        assert row["bytes_at_asked_batch"] == real and row["margin_bytes"] == budget - real
        assert row["fits"] is (code == 0)
    text = effplan(*common[:-2], "--batch", str(largest + 1)).out
    assert " NO " in text and "-" in text.splitlines()[-1]


def test_fit_json_is_a_list_for_one_design_and_for_several(effplan):
    one = effplan("fit", "mobilenet-v2", "--resolution", "64", "--memory", "1GiB", "--format", "json").json()
    two = effplan("fit", "mobilenet-v2", "--resolution", "64,96", "--memory", "1GiB", "--format", "json").json()
    assert isinstance(one, list) and len(one) == 1 and len(two) == 2


# ---- budgets: whole batch or one image ----

def test_max_macs_bounds_the_batch_and_max_macs_per_image_one_image(effplan, tmp_path):
    path = tmp_path / "b.toml"
    path.write_text('[[budget]]\nmodel = "mobilenet-v2"\nresolution = 64\nbatch = 4\n'
                    'max_macs = "1T"\nmax_macs_per_image = "1T"\nmax_params = "1T"\n')
    run = effplan("check", str(path), "--format", "json")
    rows = {r["limit_key"]: r for r in run.json()["checks"]}
    one = effplan("layers", "mobilenet-v2", "--resolution", "64", "--format", "json").json()["totals"]["macs"]
    assert rows["max_macs_per_image"]["value"] == one and rows["max_macs"]["value"] == 4 * one
    assert [rows[k]["scope"] for k in ("max_macs", "max_macs_per_image", "max_params")] == [
        "batch of 4", "one image", "the model"]
    assert "batch of 4" in effplan("check", str(path)).out


# ---- help text and blame per command ----

@pytest.mark.parametrize("command", ["layers", "export", "roofline", "memory", "measure"])
def test_single_design_commands_promise_no_lists(effplan, command):
    text = effplan(command, "--help").out
    assert "0,2,5" not in text and "128,192,256" not in text
    assert "128,192,256" in effplan("fit", "--help").out  # fit takes lists


@pytest.mark.parametrize("option, value", [("--resolution", "128,192"), ("--phi", "0..2")])
def test_a_list_for_one_design_blames_its_own_option(effplan, option, value):
    run = effplan("layers", "mobilenet-v2", option, value)
    assert run.code == 2 and run.err.count("--") == 1 and f"{option} '{value}'" in run.err


# ---- activation aliases ----

@pytest.mark.parametrize("alias", ["silu", "SiLU", "Swish"])
def test_activation_aliases_build_the_same_network(effplan, tmp_path, alias):
    path = spec_variant(tmp_path, "efficientnet-b0", 'activation = "swish"', f'activation = "{alias}"')
    mine = effplan("layers", str(path), "--resolution", "64", "--format", "json").json()["totals"]
    base = effplan("layers", "efficientnet-b0", "--resolution", "64", "--format", "json").json()["totals"]
    assert mine == base


def test_hardswish_is_hswish_and_an_unknown_activation_is_still_refused(effplan, tmp_path):
    assert api.load_spec(spec_variant(tmp_path, "mobilenet-v2", 'activation = "relu6"',
                                      'activation = "hardswish"')).activation == "hswish"
    run = effplan("layers", str(spec_variant(tmp_path, "mobilenet-v2", 'activation = "relu6"',
                                             'activation = "gelu"')))
    assert run.code == 2 and "activation" in run.err


# ---- int8 on the vector unit ----

def test_int8_elementwise_work_runs_at_the_t4s_fp16_vector_rate(effplan):
    t4 = tomllib.loads((HARDWARE / "t4.toml").read_text())
    device = api.load_device("t4")
    assert "int8" not in t4["vector"]
    assert device.compute("vector", "int8") == t4["vector"]["fp16"] * 1e12 * t4["efficiency"]["vector"]
    assert device.compute("matrix", "int8") == t4["matrix"]["int8"] * 1e12 * t4["efficiency"]["matrix"]
    run = effplan("roofline", "mobilenet-v2", "--resolution", "64", "--device", "t4", "--dtype", "int8",
                  "--format", "json")
    assert run.code == 0 and run.json()["vector_dtype"] == "fp16"
    assert run.json()["device_figures"]["vector_flops_per_s"] == t4["vector"]["fp16"] * 1e12
    text = effplan("roofline", "mobilenet-v2", "--resolution", "64", "--device", "t4", "--dtype", "int8").out
    assert "at fp16" in " ".join(text.split())


def test_a_device_with_an_int8_vector_peak_uses_it(tmp_path):
    text = (HARDWARE / "t4.toml").read_text().replace("fp16 = 16.2\n", "fp16 = 16.2\nint8 = 32.4\n", 1)
    path = tmp_path / "t4-int8.toml"
    path.write_text(text)
    device = api.load_device(str(path))
    assert device.vector_precision("int8") == "int8" and device.compute("vector", "int8") == 32.4e12 * 0.6


# ---- export --check refuses what cannot run ----

def test_export_check_refuses_a_run_larger_than_the_machine(effplan, tmp_path):
    out = tmp_path / "huge.onnx"
    run = effplan("export", "efficientnet-b0", "--batch", "100000", "--resolution", "10000", "--check",
                  "-o", str(out))
    assert run.code == 2 and len(run.err.strip().splitlines()) == 1 and "--check would need" in run.err
    assert not out.exists()


# ---- timings that disagree ----

def test_spread_by_hand():
    assert measure_module.spread([1.0, 1.1, 1.5]) == pytest.approx(0.1)  # median 1.1 over best 1.0
    assert measure_module.unsteady_warnings({"matrix": 0.1}) == []
    assert "matrix" in measure_module.unsteady_warnings({"matrix": 0.5})[0]


def test_without_onnxruntime_the_vector_figure_is_not_called_a_depthwise_conv(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    spreads = {}
    steps, finish = measure_module._runtime_steps("unused")
    figures = finish(measure_module._windows(steps, 1, 1, spreads), 1, 1, spreads)
    assert figures["kind"] == "numpy multiply-add" and set(spreads) == {"launch", "vector"}


def test_calibrate_warns_when_runs_disagree_and_names_its_vector_source(effplan, monkeypatch, tmp_path):
    text = (HARDWARE / "xeon-e5-2690.toml").read_text()
    figures = {"matrix_fp32": 1e11, "vector_fp32": 1e10, "bandwidth": 1e10, "launch": 1e-6,
               "vector_kind": "numpy multiply-add", "spreads": {"matrix": 0.6, "bandwidth": 0.01},
               "matrix_efficiency": 1.0, "load": 0.0, "copy_bandwidth": 1e10}
    monkeypatch.setattr(measure_module, "calibrate", lambda name: (text, figures))
    run = effplan("calibrate", "-o", str(tmp_path / "here.toml"))
    assert run.code == 0 and "(numpy multiply-add)" in run.out and "depthwise" not in run.out
    assert run.err.count("warning:") == 1 and "matrix" in run.err


def test_measure_warns_when_runs_disagree(effplan, monkeypatch):
    report = {"provider": "CPUExecutionProvider", "onnxruntime": "x", "runs": 3, "estimated_s": 1e-3,
              "measured_s": 2e-3, "ratio": 0.5, "spread": 0.8, "spearman": None, "kernels_timed": 0,
              "unassigned_s": 0.0, "profiled_s": 0.0, "layers": []}
    monkeypatch.setattr(measure_module, "measure", lambda *args: report)
    run = effplan("measure", "mobilenet-v2", "--resolution", "64", "--device", "t4")
    assert run.code == 0 and "warning: repeated whole-model runs disagree" in run.err


# ---- built-in files by name; effplan show ----

def test_show_prints_a_built_in_spec_and_its_path(effplan, tmp_path):
    assert effplan("show", "efficientnet-b0").out == (MODELS / "efficientnet-b0.toml").read_text()
    assert Path(effplan("show", "t4", "--path").out.strip()) == (HARDWARE / "t4.toml").resolve()
    scaled = effplan("show", "efficientnet-b4").out
    assert scaled.startswith("# efficientnet-b4 is efficientnet-b0 scaled")
    copy = tmp_path / "mine.toml"
    copy.write_text(scaled)  # what a pip user copies loads as a spec
    assert api.load_spec(copy).name == "efficientnet-b0"
    run = effplan("show", "efficientnet-b9")
    assert run.code == 2 and "did you mean" in run.err


def test_errors_name_built_in_files_by_name(effplan):
    run = effplan("roofline", "mobilenet-v2", "--device", "cortex-x4", "--dtype", "bf16")
    assert run.code == 2 and "cortex-x4 (built-in)" in run.err and "/" not in run.err


# ---- the Python API ----

def test_training_memory_has_the_clis_defaults(effplan):
    graph = api.build(api.resolve("mobilenet-v2"), 2)
    cli = effplan("memory", "mobilenet-v2", "--batch", "2", "--train", "--format", "json").json()["training"]
    assert api.training_memory(graph).total_bytes == cli["total_bytes"]
    assert api.training_memory(graph) == api.training_memory(graph, "mixed", "adamw")


def test_top_level_api_reaches_every_command_with_docstrings(effplan, tmp_path):
    for name in ("analyze", "memory", "fit", "roofline", "export", "to_onnx", "check", "search", "training_memory",
                 "load_device"):
        assert getattr(api, name).__doc__, name
    cli_fit = effplan("fit", "mobilenet-v2", "--resolution", "64", "--memory", "1GiB", "--format", "json").json()
    small = api.with_overrides(api.resolve("mobilenet-v2"), resolution=64)
    assert api.fit(small, "1GiB", reserve="10%").batch == cli_fit[0]["batch"]
    (written,) = api.export(small, str(tmp_path / "m.onnx"))
    import onnx
    assert [d.dim_value for d in onnx.load(written).graph.output[0].type.tensor_type.shape.dim] == [1, 1000]
    latency = api.roofline("mobilenet-v2", "t4").latency_s
    cli = effplan("roofline", "mobilenet-v2", "--device", "t4", "--format", "json").json()
    assert latency == cli["totals"]["latency_s"]  # the CLI's defaults: fp16, batch 1, the device class's runtime
    # a floor by hand: every fp16 weight read once at T4's 320 GB/s x its 0.8 efficiency (torchvision's
    # MobileNetV2 has 3,504,872 params): 27.4 us
    assert latency >= 3_504_872 * 2 / (0.8 * 320e9)
    budget = tmp_path / "b.toml"
    budget.write_text('[[budget]]\nmodel = "mobilenet-v2"\nresolution = 64\nmax_params = "4M"\n')
    assert [r["passed"] for r in api.check(str(budget))] == [True]
    found = api.search("mobilenet-v2", {"max_macs": "60M"}, depths="1..1.2:0.1", widths="1..1.1:0.1",
                       resolutions="96..128:16", top=2)
    assert found and all(d["macs"] <= 60e6 for d in found)


def test_profile_repr_is_short_and_summary_exact():
    p = api.analyze(api.resolve("efficientnet-b0"))
    assert len(repr(p)) < 200 and "efficientnet-b0" in repr(p)
    assert "5,288,548" in p.summary()  # torchvision's efficientnet_b0 parameter count


def test_import_effplan_loads_no_heavy_library():
    code = ("import sys, effplan, effplan.cli; "
            "print(sorted(m for m in ('onnx', 'networkx', 'matplotlib', 'onnxruntime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
