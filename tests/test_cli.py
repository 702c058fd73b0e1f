"""The command line: the output contract of design.md, formats, and one-line errors with exit 2."""
import csv
import io
import json
import subprocess
import sys

import pytest

TABLE_KEYS = {"model", "phi", "depth_mult", "width_mult", "resolution", "params", "macs", "flops",
              "peak_activation_bytes"}
LAYER_KEYS = {"name", "op", "stage", "block", "input_shape", "output_shape", "params", "macs", "flops",
              "weight_bytes", "output_bytes"}


def test_table_phi_range_json_contract(effplan):
    run = effplan("table", "--phi", "0..7", "--format", "json")
    assert run.code == 0, run.err
    rows = run.json()
    assert [r["phi"] for r in rows] == [0, 1, 2, 3, 4, 5, 6, 7]
    assert all(TABLE_KEYS <= set(r) for r in rows)
    assert all(isinstance(r[k], int) for r in rows for k in ("params", "macs", "flops", "peak_activation_bytes"))
    assert rows[0]["params"] == 5288548  # phi 0 is B0
    assert rows[1]["depth_mult"] == pytest.approx(1.2) and rows[1]["resolution"] == 258
    assert [r["two_pow_phi"] for r in rows] == [2.0 ** k for k in range(8)]
    assert rows[3]["macs_ratio"] == pytest.approx(rows[3]["macs"] / rows[0]["macs"])


@pytest.mark.parametrize("text, expected", [
    ("0,2,5", [0, 2, 5]), ("0..2:0.5", [0, 0.5, 1, 1.5, 2]), ("1.5", [1.5]), ("0..1:0.1", [round(0.1 * i, 1) for i in range(11)]),
])
def test_phi_syntax(effplan, text, expected):
    run = effplan("table", "--phi", text, "--format", "json")
    assert [r["phi"] for r in run.json()] == pytest.approx(expected)


def test_table_of_published_names(effplan):
    rows = effplan("table", "efficientnet-b0", "efficientnet-b4", "--format", "json").json()
    assert [(r["model"], r["resolution"], r["params"]) for r in rows] == [
        ("efficientnet-b0", 224, 5288548), ("efficientnet-b4", 380, 19341616)]
    assert rows[1]["macs_ratio"] == pytest.approx(rows[1]["macs"] / rows[0]["macs"])


def test_table_csv_is_exact(effplan):
    run = effplan("table", "--phi", "0,1", "--format", "csv", "--batch", "2", "--dtype", "fp16")
    rows = list(csv.DictReader(io.StringIO(run.out)))
    assert rows[0]["params"] == "5288548"
    one = effplan("table", "--phi", "0", "--format", "csv", "--dtype", "fp16").out
    single = int(next(csv.DictReader(io.StringIO(one)))["macs"])
    # exact integers: batch 2 is exactly twice batch 1, which is B0's published 0.386 G within 0.5%
    assert int(rows[0]["macs"]) == 2 * single and single == pytest.approx(0.386e9, rel=0.005)
    assert int(rows[0]["weight_bytes"]) % 2 == 0


def test_table_text_states_its_conventions(effplan):
    out = effplan("table", "--phi", "0..1").out
    assert out.startswith("# effplan ") and "MACs = conv+gemm" in out and "batch 1, fp32" in out
    assert "5.289M" in out and "0.386G" in out


def test_markdown(effplan):
    out = effplan("table", "efficientnet-b0", "--format", "markdown").out
    assert "| model " in out and "|---" in out


def test_alpha_beta_gamma_override_and_warning(effplan):
    run = effplan("table", "--phi", "1", "--alpha", "1.5", "--beta", "1.3", "--gamma", "1.3", "--format", "json")
    row = run.json()[0]
    assert row["depth_mult"] == 1.5 and row["width_mult"] == 1.3 and row["resolution"] == round(224 * 1.3)
    assert run.err.startswith("effplan: warning: alpha*beta^2*gamma^2 = ") and "far from 2" in run.err
    assert "far from 2" not in effplan("table", "--phi", "1", "--alpha", "1.2").err


def test_depth_rounding_round(effplan):
    ceil = effplan("table", "--phi", "1", "--format", "json").json()[0]
    rounded = effplan("table", "--phi", "1", "--depth-rounding", "round", "--format", "json").json()[0]
    # ceil repeats (2,3,3,4,4,5,2), round (1,2,2,4,4,5,1): one block fewer in stages 1, 2, 3, 7.
    # Weighted layers per block: expand, depthwise, SE reduce, SE expand, project = 5;
    # stage 1 has expand ratio 1, so no expand conv: 4.
    assert ceil["layers"] - rounded["layers"] == 4 + 5 + 5 + 5


@pytest.mark.parametrize("by", ["layer", "block", "stage", "op"])
def test_layers_json_contract_and_sums(effplan, by):
    report = effplan("layers", "efficientnet-b0", "--by", by, "--format", "json").json()
    assert {"model", "resolution", "batch", "dtype", "totals", "layers"} <= set(report)
    assert {"params", "macs", "flops", "weight_bytes", "peak_activation_bytes"} <= set(report["totals"])
    assert all(LAYER_KEYS <= set(row) for row in report["layers"])
    for key in ("params", "macs", "flops", "weight_bytes"):
        assert sum(r[key] for r in report["layers"]) == report["totals"][key]
    assert report["totals"]["params"] == 5288548


def test_layers_stage_numbering(effplan):
    rows = effplan("layers", "efficientnet-b0", "--by", "stage", "--format", "json").json()["layers"]
    assert [r["stage"] for r in rows] == ["stem", 1, 2, 3, 4, 5, 6, 7, "head"]
    blocks = effplan("layers", "efficientnet-b0", "--by", "block", "--format", "json").json()["layers"]
    assert [r["block"] for r in blocks if r["stage"] == 6] == [0, 1, 2, 3]


def test_layers_with_phi(effplan):
    report = effplan("layers", "efficientnet-b0", "--phi", "1", "--format", "json").json()
    assert report["resolution"] == 258 and report["phi"] == 1.0


def test_models_lists_specs_and_published(effplan):
    names = {m["name"] for m in effplan("models", "--format", "json").json()}
    assert {f"efficientnet-b{i}" for i in range(9)} | {"efficientnet-l2"} <= names


def test_output_file_is_written_whole(effplan, tmp_path):
    target = tmp_path / "t.json"
    assert effplan("table", "--phi", "0", "--format", "json", "-o", str(target)).code == 0
    assert json.loads(target.read_text())[0]["params"] == 5288548
    assert [p.name for p in tmp_path.iterdir()] == ["t.json"]


@pytest.mark.parametrize("args, message", [
    (["table", "--phi", "abc"], "expected a number"),
    (["table", "--phi", "-1"], "between 0 and"),
    (["table", "--phi", "1e9"], "between 0 and"),
    (["table", "--phi", "inf"], "between 0 and"),
    (["table", "--phi", "0..100000"], "at most"),
    (["table", "--phi", "0..2:0"], "step"),
    (["table", "--phi", "3..1"], "empty"),
    (["table", "efficentnet-b0"], "did you mean: efficientnet-b0"),
    (["layers", "resnet50x"], "unknown model"),
    (["table", "--batch", "0"], "--batch"),
    (["table", "--dtype", "fp64"], "--dtype"),
    (["table", "--format", "xml"], "--format"),
    (["table", "--resolution", "0"], "resolution"),
    (["table", "--classes", "0"], "classes"),
    (["table", "--alpha", "0.5", "--phi", "1"], "--alpha must be"),
    (["table", "--alpha", "1.3"], "apply with --phi"),
    (["table", "efficientnet-b4", "--phi", "1"], "published design"),
    (["table", "--phi", "16", "--alpha", "1.5", "--beta", "1", "--gamma", "1.15"], "depth multiplier"),
    (["table", "/no/such/spec.toml"], "cannot read"),
    (["table", "--phi", "0", "-o", "/no/such/dir/out.json"], "cannot write"),
    (["layers", "efficientnet-b0", "--phi", "0,1"], "--phi '0,1': this command takes one design"),
    (["table", "--batch", "99999999999999999999999"], "--batch"),
    (["table", "--batch", str(2**20 + 1)], "--batch"),
    (["compare", "efficientnet-l2", "resnet-152", "--batch", "1000000000000"], "--batch"),
    (["table", "--beta", "1e300", "--phi", "1"], "--beta must be a number from 1"),
    (["table", "--gamma", "nan", "--phi", "1"], "--gamma must be a number from 1"),
    (["fit", "efficientnet-b0", "--memory", "16GiB", "--reserve", "32GiB"], "--reserve 32GiB is the whole capacity"),
    (["fit", "efficientnet-b0", "--memory", "16GiB", "--reserve", "16GiB"], "--reserve 16GiB is the whole capacity"),
    (["nosuchcommand"], "No such command"),
])
def test_bad_input_one_line_exit_2(effplan, args, message):
    run = effplan(*args)
    assert run.code == 2
    assert message in run.err
    assert run.err.count("\n") == 1 and "Traceback" not in run.err
    assert run.out == ""


def test_bad_spec_file_through_the_cli(effplan, tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("name = 3\n")
    run = effplan("table", str(path))
    assert run.code == 2 and "broken.toml: name: expected a string, got 3" in run.err


def test_real_process_no_traceback_and_exit_codes():
    """The installed console entry point, as a user runs it."""
    cmd = [sys.executable, "-m", "effplan"]
    ok = subprocess.run(cmd + ["table", "--phi", "0"], capture_output=True, text=True)
    bad = subprocess.run(cmd + ["table", "--phi", "abc"], capture_output=True, text=True)
    assert ok.returncode == 0 and "efficientnet-b0" in ok.stdout
    assert bad.returncode == 2 and bad.stderr.startswith("effplan: error:") and "Traceback" not in bad.stderr


def test_every_roll_up_renders_as_text(effplan):
    """Roll-ups have no kind/kernel/stride columns; the text table must still fit and total."""
    for by in ("layer", "block", "stage", "op"):
        run = effplan("layers", "efficientnet-b0", "--resolution", "64", "--by", by)
        assert run.code == 0, (by, run.err)
        rows = [line for line in run.out.splitlines() if not line.startswith("#")]
        assert rows[-1].split()[0] == "total" and "5,288,548" in rows[-1]  # B0's params (design.md)


def test_a_command_called_from_python_leaves_the_collector_whole(effplan):
    """main() freezes the imported heap while a command runs (startup speed); called with arguments (a caller
    that goes on) it unfreezes, so nothing a later command frees is kept from the collector."""
    import gc

    assert effplan("table", "--phi", "0", "--resolution", "32").code == 0
    assert effplan("memory", "nope").code == 2  # an error path too
    assert gc.get_freeze_count() == 0
