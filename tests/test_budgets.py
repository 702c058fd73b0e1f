"""`effplan check`: budgets, exit codes, every output format, baselines; the examples."""
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
CHECK_KEYS = {"budget", "model", "limit_key", "figure", "value", "limit", "margin", "passed"}


def budget(tmp_path, text, name="budgets.toml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_examples_pass(effplan):
    run = effplan("check", str(EXAMPLES / "budgets.toml"), "--format", "json")
    assert run.code == 0, run.err
    report = run.json()
    assert report["passed"] is True
    assert all(CHECK_KEYS <= set(c) for c in report["checks"])
    first = report["checks"][0]
    # published B0 figures: 385,814,752 MACs (torchvision metadata 0.386 G), 5,288,548 params
    assert (first["limit_key"], first["value"], first["limit"]) == ("max_macs", 385_814_752, 500_000_000)
    assert first["margin"] == pytest.approx(1 - 385_814_752 / 500_000_000)


def test_minimal_budget_fails_with_exit_1(effplan, tmp_path):
    path = budget(tmp_path, '[[budget]]\nmodel = "efficientnet-b4"\nmax_macs = "0.5G"\nmax_params = "25M"\n')
    run = effplan("check", path, "--format", "json")
    assert run.code == 1
    checks = {c["limit_key"]: c for c in run.json()["checks"]}
    assert checks["max_macs"]["passed"] is False and checks["max_params"]["passed"] is True
    assert checks["max_params"]["value"] == 19_341_616  # published EfficientNet-B4 params


def test_junit_is_valid_xml_with_one_failure(effplan, tmp_path):
    path = budget(tmp_path, '[[budget]]\nmodel = "resnet-50"\nmax_params = "20M"\nmax_macs = "5G"\n')
    run = effplan("check", path, "--format", "junit")
    assert run.code == 1
    suite = ET.fromstring(run.out.split("?>", 1)[1]).find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    failed = [c for c in suite.iter("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["max_params"]
    assert "25.557M" in failed[0].find("failure").get("message")


def test_github_annotations(effplan, tmp_path):
    path = budget(tmp_path, '[[budget]]\nmodel = "resnet-50"\nmax_params = "20M"\n')
    lines = effplan("check", path, "--format", "github").out.splitlines()
    assert re.match(r"::error file=.*budgets\.toml,title=effplan budget resnet-50::params 25\.557M exceeds max_params", lines[0])
    assert lines[-1] == "::notice title=effplan budgets::0 of 1 limits pass"


def test_baseline_regression_names_the_layers_that_grew(effplan, tmp_path):
    (tmp_path / "report.json").write_text(effplan("layers", "mobilenet-v2", "--format", "json").out)
    grown = budget(tmp_path, '[[budget]]\nmodel = "mobilenet-v2"\nwidth_mult = 1.4\nmax_params = "10M"\n')
    run = effplan("check", grown, "--baseline", str(tmp_path / "report.json"), "--format", "json")
    assert run.code == 1
    growth = {g["figure"]: g for g in run.json()["growth"]}
    assert growth["params"]["baseline"] == 3_504_872 and growth["params"]["current"] > 3_504_872
    assert "stem.0.conv" in growth["params"]["layers"] and "classifier.fc" in growth["params"]["layers"]
    # the same design against its own report: nothing grew
    same = budget(tmp_path, '[[budget]]\nmodel = "mobilenet-v2"\nmax_params = "10M"\n', "same.toml")
    assert effplan("check", same, "--baseline", str(tmp_path / "report.json")).code == 0


def test_baseline_tolerance(effplan, tmp_path):
    (tmp_path / "report.json").write_text(effplan("layers", "mobilenet-v2", "--format", "json").out)
    wider = budget(tmp_path, '[[budget]]\nmodel = "mobilenet-v2"\nresolution = 256\nmax_macs = "1G"\n')
    # 256 px instead of 224 (both divide by 32): every spatial layer grows by (256/224)^2 - 1 = 30.6%,
    # the classifier not at all, so every total grows by a little less than 30.6%
    assert effplan("check", wider, "--baseline", str(tmp_path / "report.json"), "--tolerance", "25%").code == 1
    assert effplan("check", wider, "--baseline", str(tmp_path / "report.json"), "--tolerance", "30.7%").code == 0


def test_onnx_file_in_a_budget(effplan, tmp_path):
    assert effplan("export", "mobilenet-v2", "--resolution", "96", "-o", str(tmp_path / "m.onnx")).code == 0
    path = budget(tmp_path, '[[budget]]\nmodel = "m.onnx"\nmax_params = "3.6M"\n')
    run = effplan("check", path, "--format", "json")
    assert run.code == 0 and run.json()["checks"][0]["value"] == 3_504_872


@pytest.mark.parametrize("text, message", [
    ("", "no budgets"),
    ('[[budget]]\nmodel = "efficientnet-b0"\n', "no limits"),
    ('[[budget]]\nmodel = "efficientnet-b0"\nmax_macs = -1\n', "must be a finite number >= 0"),
    ('[[budget]]\nmodel = "efficientnet-b0"\nmax_macs = "0G"\n', "must be more than 0"),
    ('[[budget]]\nmodel = "efficientnet-b0"\nmax_mac = "1G"\n', "did you mean: max_macs"),
    ('[[budget]]\nmodel = "efficientnet-b0"\nmax_macs = "1Q"\n', "unknown unit 'Q'"),
    ('[[budget]]\nmodel = "efficientnet-b0"\nmax_inference_memory = "16GG"\n', "unknown unit 'GG'"),
    ('[[budget]]\nmodel = "efficientnet-b0"\nmax_latency = "5ms"\n', "needs a device"),
    ('[[budget]]\nmodel = "efficientnet-b0"\ndevice = "t4"\nmax_latency = "1ms"\nmin_throughput = "2000"\n',
     "contradictory"),
    ('[[budget]]\nmodel = "efficientnet-b9"\nmax_macs = "1G"\n', "unknown model"),
    ('[[budget]]\nmax_macs = "1G"\n', "missing key 'model'"),
    ("[[budget]\n", "not valid TOML"),
])
def test_bad_budget_files_exit_2(effplan, tmp_path, text, message):
    run = effplan("check", budget(tmp_path, text))
    assert run.code == 2, run.out
    assert message in run.err and len(run.err.strip().splitlines()) == 1


def test_missing_budget_file_exit_2(effplan, tmp_path):
    run = effplan("check", str(tmp_path / "nope.toml"))
    assert run.code == 2 and "cannot read" in run.err


def effplan_env():
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def test_ci_workflow_commands_run_as_written(tmp_path):
    """Every effplan `run:` line of the example workflow, in a checkout-like folder."""
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    commands = [line.split("run:", 1)[1].strip() for line in (EXAMPLES / "github-workflow.yml").read_text().splitlines()
                if line.strip().startswith("- run:") and "effplan check" in line]
    assert len(commands) == 2
    for command in commands:
        done = subprocess.run(shlex.split(command), cwd=tmp_path, env=effplan_env(), capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    assert ET.parse(tmp_path / "effplan-budgets.xml").getroot().find("testsuite").get("failures") == "0"


def test_pre_commit_hook_blocks_a_commit_over_budget(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    env = {**effplan_env(), "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}

    def git(*args):
        return subprocess.run(["git", *args], cwd=tmp_path, env=env, capture_output=True, text=True)
    git("init", "-q")
    hook = tmp_path / ".git" / "hooks" / "pre-commit"
    shutil.copy(EXAMPLES / "pre-commit", hook)
    hook.chmod(0o755)
    (tmp_path / "budgets.toml").write_text('[[budget]]\nmodel = "efficientnet-b0"\nmax_params = "6M"\n')
    git("add", "budgets.toml")
    assert git("commit", "-q", "-m", "fits").returncode == 0
    (tmp_path / "budgets.toml").write_text('[[budget]]\nmodel = "efficientnet-b0"\nmax_params = "5M"\n')
    git("add", "budgets.toml")
    refused = git("commit", "-q", "-m", "over budget")
    assert refused.returncode != 0 and "commit refused" in refused.stderr
    assert git("log", "--oneline").stdout.count("\n") == 1
