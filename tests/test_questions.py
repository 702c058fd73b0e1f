"""Questions people ask, answered by one command each: where the time goes (roofline and train --sort/--top),
designs side by side on devices (compare --device; φ only for compound-scaled networks), how long a run of
the authors' recipe takes (train's default epochs), and a CI baseline from any report kind named in the docs."""
import json
from pathlib import Path

import pytest

FIXTURE = str(Path(__file__).parent / "fixtures" / "merged_zero_bias.onnx")
SMALL = ("efficientnet-b0", "--resolution", "96")


def test_roofline_top_is_where_the_time_goes(effplan):
    every = effplan("roofline", *SMALL, "--device", "t4", "--format", "json").json()
    top = effplan("roofline", *SMALL, "--device", "t4", "--sort", "time_s", "--top", "5", "--format", "json").json()
    slowest = sorted(every["layers"], key=lambda r: -r["time_s"])[:5]
    assert [r["name"] for r in top["layers"]] == [r["name"] for r in slowest]
    assert top["totals"] == every["totals"]  # the whole model's, not the five's
    assert top["kept"]["of"] == len(every["layers"]) and top["kept"]["share"] == pytest.approx(
        sum(r["time_s"] for r in slowest) / every["totals"]["latency_s"])
    text = effplan("roofline", *SMALL, "--device", "t4", "--sort", "time_s", "--top", "5").out
    assert f"the 5 of {len(every['layers'])} kernels with the most time_s" in text
    assert len(effplan("roofline", *SMALL, "--device", "t4", "--top", "3", "--format", "json").json()["layers"]) == 3


def test_train_kernel_view(effplan):
    args = ("train", *SMALL, "--device", "t4", "--batch", "8", "--epochs", "1")
    plain = effplan(*args, "--format", "json").json()
    assert "kernels" not in plain
    report = effplan(*args, "--top", "4", "--format", "json").json()
    kernels = report["kernels"]
    assert len(kernels) == 4 and [k["time_s"] for k in kernels] == sorted((k["time_s"] for k in kernels), reverse=True)
    assert {k["phase"] for k in kernels} <= {"forward", "recompute", "backward", "optimizer"}
    assert report["kernels_kept"]["share"] == pytest.approx(
        sum(k["time_s"] for k in kernels) / report["stages"][-1]["step_s"])
    assert "kernels of the step with the most time_s" in effplan(*args, "--top", "4").out


def test_train_epochs_default_to_the_authors_recipe(effplan):
    # EfficientNet: the official code's 218,949 steps at batch 2,048 = 350 epochs of ImageNet; V2: epochs=350
    for model in ("efficientnet-b0", "efficientnetv2-s"):
        run = effplan("train", model, "--resolution", "96", "--device", "t4", "--batch", "8", "--format", "json")
        assert run.code == 0 and run.json()["epochs"] == 350 and "the authors' recipe" in run.err
    ten = effplan("train", *SMALL, "--device", "t4", "--batch", "8", "--epochs", "10", "--format", "json").json()
    default = effplan("train", *SMALL, "--device", "t4", "--batch", "8", "--format", "json").json()
    assert default["totals"]["hours"] == pytest.approx(35 * ten["totals"]["hours"])
    run = effplan("train", "resnet-50", "--resolution", "64", "--device", "t4")
    assert run.code == 2 and "--epochs" in run.err and len(run.err.splitlines()) == 1


def test_compare_on_devices(effplan):
    rows = effplan("compare", "efficientnet-b0", "resnet-18", "--device", "t4", "--device", "a100-80gb",
                   "--batch", "4", "--format", "json").json()
    for row in rows:
        for device in row["devices"]:
            alone = effplan("roofline", row["model"], "--device", device["device"], "--batch", "4",
                            "--format", "json").json()
            assert (device["dtype"], device["runtime"], device["latency_s"]) == (
                alone["dtype"], alone["runtime"], alone["totals"]["latency_s"])
    text = effplan("compare", "efficientnet-b0", "resnet-18", "--device", "t4", "--wide").out
    assert "latency ms (t4, fp16, fused)" in text and "images/s (t4, fp16, fused)" in text


def test_phi_only_for_compound_scaled_networks(effplan):
    def metrics(*models):
        out = effplan("compare", *models, "--wide").out
        return [line.split()[0] for line in out.splitlines()[out.splitlines().index(
            next(line for line in out.splitlines() if line.startswith("metric"))) + 2:]]
    assert "φ" not in metrics("resnet-50", "mobilenet-v2")
    assert "φ" in metrics("efficientnet-b4", "resnet-50")
    head = next(line for line in effplan("table", "resnet-50", "--wide").out.splitlines() if line.startswith("model"))
    assert "φ" not in head and "2^φ" not in head
    assert "2^φ" in next(line for line in effplan("table", "--phi", "1", "--wide").out.splitlines()
                         if line.startswith("model"))
    assert effplan("table", "resnet-50", "--format", "json").json()[0]["phi"] == 0  # the JSON contract keeps φ


@pytest.mark.parametrize("kind, model", [("layers", "mobilenet-v2"), ("layers", FIXTURE), ("analyze", FIXTURE)])
def test_check_baseline_accepts_every_report_kind(effplan, tmp_path, kind, model):
    shape = ["--resolution", "64"] if not model.endswith(".onnx") else []
    budget = tmp_path / "b.toml"
    budget.write_text(f'[[budget]]\nmodel = "{model}"\n' + ("resolution = 64\n" if shape else "")
                      + 'max_params = "100M"\n')
    report = effplan(kind, model, *shape, "--format", "json").json()
    (tmp_path / "base.json").write_text(json.dumps(report))
    run = effplan("check", str(budget), "--baseline", str(tmp_path / "base.json"))
    assert run.code == 0, run.err
    smaller = {**report, "totals": {**report["totals"], "params": report["totals"]["params"] - 1}}
    (tmp_path / "smaller.json").write_text(json.dumps(smaller))
    run = effplan("check", str(budget), "--baseline", str(tmp_path / "smaller.json"), "--format", "json")
    assert run.code == 1 and [g["figure"] for g in run.json()["growth"]][:1] == ["params"]
