"""One answer per question: the precision a design is costed at is one rule in every command and in the API
(base/units.cost_dtype): the one asked; else on a device the one inference runs at there; else fp32.

Expected values from the devices' datasheets, not from effplan: a T4's tensor cores run fp16 (NVIDIA T4
datasheet: 65 TFLOPS "mixed precision (FP16/FP32)"; Turing has no bf16), a TPU v4's MXUs bf16 (Google Cloud
TPU v4 documentation: 275 TFLOPS bf16)."""
import json
import re

import pytest

import effplan as api

SMALL = ["mobilenet-v2", "--resolution", "64"]


def _budget(tmp_path, device=None, dtype=None):
    lines = ['[[budget]]', 'model = "mobilenet-v2"', 'resolution = 64', 'batch = 2', 'max_macs = "1G"']
    lines += [f'device = "{device}"', 'max_latency = "1s"'] if device else []
    lines += [f'dtype = "{dtype}"'] if dtype else []
    path = tmp_path / "budgets.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _report_data(effplan, tmp_path, *args):
    out = tmp_path / "r.html"
    run = effplan("report", *args, "-o", str(out))
    assert run.code == 0, run.err
    blob = re.search(r'<script type="application/json" id="data">(.*?)</script>', out.read_text(), re.S).group(1)
    return json.loads(blob)


def every_command(effplan, tmp_path, device: str, dtype: tuple = ()) -> dict:
    """command -> the precision its JSON reports for the same design on `device`."""
    def js(*args):
        run = effplan(*args, "--format", "json")
        assert run.code in (0, 1), run.err
        return run.json()
    on = ["--device", device, *dtype]
    found = {
        "roofline": js("roofline", *SMALL, "--batch", "2", *on)["dtype"],
        "table": js("table", *SMALL, "--batch", "2", *on)[0]["dtype"],
        "compare": js("compare", "mobilenet-v2", "--batch", "2", *on)[0]["devices"][0]["dtype"],
        "check": js("check", _budget(tmp_path, device, *dtype[1:]))["checks"][0]["dtype"],
        "search": js("search", "mobilenet-v2", "--max-latency", "1s", "--depth", "1", "--width", "1",
                     "--resolution", "64", *on)[0]["dtype"],
        "fit": js("fit", *SMALL, *on)[0]["dtype"],
        "report": _report_data(effplan, tmp_path, *SMALL, *on)["devices"][0]["dtype"],
        "api roofline": effplan_api_roofline(device, *dtype[1:]),
        "api search": api.search("mobilenet-v2", {"max_latency": "1s"}, device=device, depths="1", widths="1",
                                     resolutions="64", **({"dtype": dtype[1]} if dtype else {}))[0]["dtype"],
        "api check": api.check(_budget(tmp_path, device, *dtype[1:]))[0]["dtype"],
    }
    if not dtype:  # train's precision is --precision (mixed: the device's half precision)
        found["train"] = js("train", *SMALL, "--batch", "2", "--epochs", "1", "--device", device)["dtype"]
    return found


def effplan_api_roofline(device, dtype=None):
    from effplan.design.scaling import resolve, with_overrides
    return api.roofline(with_overrides(resolve("mobilenet-v2"), resolution=64), device, dtype, batch=2).dtype


@pytest.mark.parametrize("device, expected", [("t4", "fp16"), ("tpu-v4", "bf16")])
def test_every_command_costs_a_device_at_the_same_precision(effplan, tmp_path, device, expected):
    found = every_command(effplan, tmp_path, device)
    assert found == dict.fromkeys(found, expected)


def test_an_asked_dtype_is_used_everywhere(effplan, tmp_path):
    found = every_command(effplan, tmp_path, "t4", ("--dtype", "int8"))
    assert found == dict.fromkeys(found, "int8")


def test_without_a_device_fp32_everywhere(effplan, tmp_path):
    def js(*args):
        run = effplan(*args, "--format", "json")
        assert run.code == 0, run.err
        return run.json()
    found = {"table": js("table", *SMALL)[0]["dtype"], "compare": js("compare", "mobilenet-v2")[0]["dtype"],
             "check": js("check", _budget(tmp_path))["checks"][0]["dtype"],
             "search": js("search", "mobilenet-v2", "--max-macs", "1G", "--depth", "1", "--width", "1",
                          "--resolution", "64")[0]["dtype"],
             "fit": js("fit", *SMALL, "--memory", "1GiB")[0]["dtype"],
             "layers": js("layers", *SMALL)["dtype"], "memory": js("memory", *SMALL)["dtype"]}
    assert found == dict.fromkeys(found, "fp32")


@pytest.mark.parametrize("command", [["roofline", *SMALL], ["table", *SMALL], ["compare", "mobilenet-v2"],
                                     ["fit", *SMALL], ["search", "mobilenet-v2", "--max-latency", "1s", "--depth",
                                                       "1", "--width", "1", "--resolution", "64"]])
def test_the_header_says_the_precision_and_why(effplan, command):
    run = effplan(*command, "--device", "t4")
    assert run.code == 0, run.err
    header = " ".join(line.lstrip("# ") for line in run.out.splitlines() if line.startswith("#"))
    assert "fp16 (t4's default: its half precision, else fp32; --dtype changes it)" in header or \
        command[0] == "fit" and "dtype" in run.out and "fp16" in run.out
