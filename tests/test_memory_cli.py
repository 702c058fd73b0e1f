"""`effplan memory` and `effplan fit`: JSON contracts, agreement with the library, bad input."""
import pytest

import effplan as api
from effplan.design.blocks import build
from effplan.plan.memory import training_memory

MEMORY_KEYS = {"model", "batch", "dtype", "inference_peak_bytes", "peak_layer", "weight_bytes"}
TRAINING_KEYS = {"total_bytes", "activation_bytes", "weight_bytes", "gradient_bytes", "optimizer_bytes"}
FIT_KEYS = {"batch", "bytes_at_batch", "bytes_at_next_batch", "budget_bytes"}


def test_memory_json_contract(effplan):
    report = effplan("memory", "efficientnet-b0", "--batch", "4", "--format", "json").json()
    assert MEMORY_KEYS <= set(report) and "training" not in report
    assert (report["model"], report["batch"], report["dtype"]) == ("efficientnet-b0", 4, "fp32")
    # the same peak as `effplan layers` reports, and weights = (params + BN buffers) * 4 bytes
    layers = effplan("layers", "efficientnet-b0", "--batch", "4", "--format", "json").json()["totals"]
    assert report["inference_peak_bytes"] == layers["peak_activation_bytes"]
    # Keras EfficientNetB0: 5,288,548 trainable and 42,023 non-trainable, of which 7 belong to its input
    # Normalization layer (mean, variance, count); the other 42,016 are BN running statistics.
    assert report["weight_bytes"] == layers["weight_bytes"] == (5288548 + 42016) * 4
    assert report["peak_layer"] == layers["peak_layer"]
    assert sum(t["bytes"] for t in report["peak_live_tensors"]) == report["inference_peak_bytes"]


def test_memory_train_json_contract(effplan):
    report = effplan("memory", "resnet-50", "--batch", "2", "--train", "--optimizer", "adam",
                     "--precision", "fp32", "--format", "json").json()
    t = report["training"]
    assert TRAINING_KEYS <= set(t)
    params = 25557032  # published ResNet-50 parameter count
    assert (t["gradient_bytes"], t["optimizer_bytes"]) == (params * 4, 2 * params * 4)
    assert t["total_bytes"] == sum(t[k] for k in ("activation_bytes", "weight_bytes", "gradient_bytes",
                                                  "optimizer_bytes", "transient_bytes"))
    assert t["activation_bytes"] == training_memory(build(api.resolve("resnet-50"), 2), "fp32", "adam").activation_bytes


def test_memory_checkpoint_reports_savings_and_extra_flops(effplan):
    t = effplan("memory", "efficientnet-b0", "--train", "--checkpoint", "blocks", "--format", "json").json()["training"]
    assert t["checkpoint_saved_bytes"] == t["activation_bytes_without_checkpoint"] - t["activation_bytes"] > 0
    assert t["recompute_flops"] > 0
    text = effplan("memory", "efficientnet-b0", "--train", "--checkpoint", "blocks").out
    assert "checkpointing saves" in text and "extra FLOPs" in text


def test_memory_text_states_its_assumptions(effplan):
    out = effplan("memory", "efficientnet-b0", "--inplace", "--fuse-se", "--fold-bn").out
    assert "overwrite" in out and "fused into the following conv" in out and "folded into the convs" in out
    plain = effplan("memory", "efficientnet-b0", "--format", "json").json()
    options = effplan("memory", "efficientnet-b0", "--inplace", "--fuse-se", "--fold-bn", "--format", "json").json()
    assert options["inference_peak_bytes"] < plain["inference_peak_bytes"]
    assert options["options"] == {"inplace": True, "fold_bn": True, "fuse_se": True, "order": "plain"}


def test_memory_aware_order_gain_is_shown_for_googlenet(effplan):
    rows = effplan("memory", "googlenet", "--by", "block", "--format", "json").json()["layers"]
    assert any(r["memory_aware_live_bytes"] < r["live_bytes"] for r in rows if r["name"].startswith("stage"))


def test_fit_json_contract_and_bracket(effplan):
    (fit,) = effplan("fit", "mobilenet-v2", "--memory", "4GiB", "--train", "--format", "json").json()  # always a list
    assert FIT_KEYS <= set(fit)
    assert fit["budget_bytes"] == 4 * 2**30 - 429496729  # the default reserve: 10% of 4 GiB, rounded down
    assert fit["bytes_at_batch"] <= fit["budget_bytes"] < fit["bytes_at_next_batch"]
    b = fit["batch"]
    for batch, key in ((b, "bytes_at_batch"), (b + 1, "bytes_at_next_batch")):
        real = training_memory(build(api.resolve("mobilenet-v2"), batch), "mixed", "adamw").total_bytes
        assert real == fit[key]


def test_fit_resolution_sweep_batches_fall_as_resolution_grows(effplan):
    rows = effplan("fit", "efficientnetv2-s", "--memory", "16GiB", "--train", "--resolution", "128,256,384",
                   "--format", "json").json()
    assert [r["resolution"] for r in rows] == [128, 256, 384]
    assert rows[0]["batch"] > rows[1]["batch"] > rows[2]["batch"] > 0


def test_fit_reserve_as_size(effplan):
    (fit,) = effplan("fit", "efficientnet-b0", "--memory", "8GB", "--reserve", "1GiB", "--format", "json").json()
    assert fit["budget_bytes"] == 8 * 10**9 - 2**30


def test_fit_nothing_fits_exits_1(effplan):
    run = effplan("fit", "efficientnet-b7", "--memory", "100MiB", "--train")
    assert run.code == 1
    row = next(line for line in run.out.splitlines() if line.startswith("efficientnet-b7"))
    assert row.split()[2] == "0"


@pytest.mark.parametrize("args, message", [
    (["fit", "efficientnet-b0", "--memory", "-16GiB"], "must be a finite number >= 0"),
    (["fit", "efficientnet-b0", "--memory", "lots"], "not a number"),
    (["fit", "efficientnet-b0", "--memory", "16GG"], "unknown unit 'GG'"),
    (["fit", "efficientnet-b0", "--memory", "0GiB"], "more than 0"),
    (["fit", "efficientnet-b0"], "one of --device"),
    (["fit", "efficientnet-b0", "--memory", "1GiB", "--reserve", "120%"], "between 0% and 100%"),
    (["memory", "efficientnet-b0", "--batch", "0"], "--batch"),
    (["memory", "efficientnet-b0", "--precision", "fp8"], "--precision"),
    (["memory", "efficientnet-b0", "--resolution", "big"], "--resolution"),
])
def test_bad_memory_input_one_line_exit_2(effplan, args, message):
    run = effplan(*args)
    assert run.code == 2
    assert message in run.err and len(run.err.strip().splitlines()) == 1


def test_every_command_plans_with_the_same_peak_unless_asked(effplan):
    # ShuffleNetV2 2.0's branches let the memory-aware order save about 80 KiB; by default memory,
    # layers (and so table and check) all report the builder's order, the one runtimes execute
    plain = effplan("memory", "shufflenet-v2-2.0", "--format", "json").json()
    layers = effplan("layers", "shufflenet-v2-2.0", "--format", "json").json()
    aware = effplan("memory", "shufflenet-v2-2.0", "--order", "aware", "--format", "json").json()
    assert plain["inference_peak_bytes"] == plain["plain_order_peak_bytes"] == layers["totals"]["peak_activation_bytes"]
    assert aware["inference_peak_bytes"] == aware["memory_aware_peak_bytes"] < plain["inference_peak_bytes"]
    fits = [effplan("fit", "shufflenet-v2-2.0", "--memory", "1GiB", *extra, "--format", "json").json()[0]["batch"]
            for extra in ((), ("--order", "aware"))]
    assert fits[0] <= fits[1]
