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

from effplan import __version__

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
NUMBER = (int, float)
CHECK_SCHEMA = {"budget": str, "model": str, "limit_key": str, "figure": str, "value": NUMBER, "limit": NUMBER,
                "margin": float, "passed": bool, "batch": int, "dtype": str, "value_text": str, "limit_text": str,
                "unknown_ops": dict}
B0_MACS = 0.386e9  # torchvision efficientnet_b0 metadata, GFLOPS 0.386 (the paper: 0.39B)


def budget(tmp_path, text, name="budgets.toml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def strict_json(text):
    """JSON as the standard defines it: no NaN or Infinity."""
    return json.loads(text, parse_constant=lambda name: pytest.fail(f"not JSON: {name}"))


def test_examples_pass(effplan):
    run = effplan("check", str(EXAMPLES / "budgets.toml"), "--format", "json")
    assert run.code == 0, run.err
    report = strict_json(run.out)
    assert report["passed"] is True and report["unknown_ops"] == {} and report["strict"] is False
    for check in report["checks"]:
        for key, kind in CHECK_SCHEMA.items():
            value = check[key]
            assert isinstance(value, kind) and (kind is bool or not isinstance(value, bool)), (key, check)
    first = report["checks"][0]
    assert (first["model"], first["limit_key"], first["limit"]) == ("efficientnet-b0", "max_macs", 500_000_000)
    assert first["value"] == pytest.approx(B0_MACS, rel=0.005)
    assert first["margin"] == pytest.approx(1 - first["value"] / 500_000_000)


def test_minimal_budget_fails_with_exit_1(effplan, tmp_path):
    path = budget(tmp_path, '[[budget]]\nmodel = "efficientnet-b4"\nmax_macs = "0.5G"\nmax_params = "25M"\n')
    run = effplan("check", path, "--format", "json")
    assert run.code == 1
    checks = {c["limit_key"]: c for c in run.json()["checks"]}
    assert checks["max_macs"]["passed"] is False and checks["max_params"]["passed"] is True
    assert checks["max_params"]["value"] == 19_341_616  # published EfficientNet-B4 params (torchvision, Keras)


def test_junit_is_valid_xml_with_one_failure(effplan, tmp_path):
    path = budget(tmp_path, '[[budget]]\nmodel = "resnet-50"\nmax_params = "20M"\nmax_macs = "5G"\n')
    run = effplan("check", path, "--format", "junit")
    assert run.code == 1
    suite = ET.fromstring(run.out.split("?>", 1)[1]).find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    failed = [c for c in suite.iter("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["max_params"]
    assert "25.557M exceeds" in failed[0].find("failure").get("message")  # torchvision resnet50: 25,557,032


def test_github_annotations(effplan, tmp_path):
    path = budget(tmp_path, '[[budget]]\nmodel = "resnet-50"\nmax_params = "20M"\n')
    lines = effplan("check", path, "--format", "github").out.splitlines()
    assert re.match(r"::error file=.*budgets\.toml,title=effplan budget resnet-50::params 25\.557M exceeds max_params",
                    lines[0])
    assert lines[-1] == "::notice title=effplan budgets::0 of 1 limits pass"


def test_github_properties_and_messages_are_escaped(effplan, tmp_path):
    # GitHub's workflow commands: in property values % \r \n : , become %25 %0D %0A %3A %2C; in the message % \r \n
    folder = tmp_path / "a,b:c"
    folder.mkdir()
    path = budget(folder, '[[budget]]\nname = "phone: 50%, v2\\nnew"\nmodel = "resnet-50"\nmax_params = "20M"\n')
    first = effplan("check", path, "--format", "github").out.splitlines()[0]
    assert first.startswith("::error file=" + path.replace(",", "%2C").replace(":", "%3A") + ",")
    assert ",title=effplan budget phone%3A 50%25%2C v2%0Anew::params 25.557M exceeds" in first


def test_a_failing_minimum_is_below_not_exceeding(effplan, tmp_path):
    path = budget(tmp_path, '[[budget]]\nmodel = "mobilenet-v2"\ndevice = "t4"\nmin_throughput = "1T"\n')
    text = effplan("check", path).out
    github = effplan("check", path, "--format", "github").out
    junit = effplan("check", path, "--format", "junit").out
    for out in (github, junit):
        assert "images_per_s" in out and "is below min_throughput 1,000,000,000,000.0/s" in out
        assert "exceeds" not in out
    assert "FAIL" in text


def test_baseline_regression_names_the_layers_that_grew(effplan, tmp_path):
    (tmp_path / "report.json").write_text(effplan("layers", "mobilenet-v2", "--format", "json").out)
    grown = budget(tmp_path, '[[budget]]\nmodel = "mobilenet-v2"\nwidth_mult = 1.4\nmax_params = "10M"\n')
    run = effplan("check", grown, "--baseline", str(tmp_path / "report.json"), "--format", "json")
    assert run.code == 1
    growth = {g["figure"]: g for g in run.json()["growth"]}
    assert growth["params"]["baseline"] == 3_504_872 and growth["params"]["current"] > 3_504_872  # torchvision
    assert "stem.0.conv" in growth["params"]["layers"] and "classifier.fc" in growth["params"]["layers"]
    # the same design against its own report: nothing grew
    same = budget(tmp_path, '[[budget]]\nmodel = "mobilenet-v2"\nmax_params = "10M"\n', "same.toml")
    assert effplan("check", same, "--baseline", str(tmp_path / "report.json")).code == 0


def test_baseline_lists_only_the_layers_that_grew(effplan, tmp_path):
    (tmp_path / "report.json").write_text(effplan("layers", "mobilenet-v2", "--format", "json").out)
    deeper = budget(tmp_path, '[[budget]]\nmodel = "mobilenet-v2"\ndepth_mult = 1.5\nmax_params = "10M"\n')
    growth = {g["figure"]: g for g in effplan("check", deeper, "--baseline", str(tmp_path / "report.json"),
                                             "--format", "json").json()["growth"]}
    grown = growth["params"]["layers"]
    # depth 1.5 turns repeats (1, 2, 3, 4, 3, 3, 1) into ceil(1.5 r) = (2, 3, 5, 6, 5, 5, 2): 11 new blocks, none
    # changed. A new stage-1 block (expand ratio 1) has a depthwise and a projection conv, each with its BN:
    # 4 layers with params; the 10 others add an expansion conv and BN: 6 each. 4 + 10 * 6 = 64.
    assert len(grown) == 64 and len(set(grown)) == 64
    assert all(re.match(r"stage\d\.block\d\.", name) for name in grown)
    assert "stage1.block1.dw.conv" in grown and "stage7.block1.project.bn" in grown
    assert not {"stem.0.conv", "stage1.block0.dw.conv", "stage2.block1.expand.conv", "classifier.fc"} & set(grown)


def test_baseline_tolerance(effplan, tmp_path):
    (tmp_path / "report.json").write_text(effplan("layers", "mobilenet-v2", "--format", "json").out)
    wider = budget(tmp_path, '[[budget]]\nmodel = "mobilenet-v2"\nwidth_mult = 1.1\nmax_macs = "1G"\n')
    # the growth of each total from the two `layers` reports; the check must fail just below it, pass at it
    old = json.loads((tmp_path / "report.json").read_text())["totals"]
    new = effplan("layers", "mobilenet-v2", "--width-mult", "1.1", "--format", "json").json()["totals"]
    largest = max(new[k] / old[k] - 1 for k in ("params", "macs", "flops", "weight_bytes", "peak_activation_bytes"))
    assert 0 < largest < 1
    base = str(tmp_path / "report.json")
    assert effplan("check", wider, "--baseline", base, "--tolerance", f"{largest * 100 - 0.01}%").code == 1
    assert effplan("check", wider, "--baseline", base, "--tolerance", f"{largest * 100 + 0.01}%").code == 0
    assert effplan("check", wider, "--baseline", base, "--tolerance", f"{largest + 1e-4}").code == 0  # a share


@pytest.mark.parametrize("text, message", [
    ('model = "mobilenet-v2"\nresolution = 256\n', "resolution 224 differs from the 256 of"),
    ('model = "mobilenet-v2"\nbatch = 2\n', "batch 1 differs from the 2 of"),
    ('model = "mobilenet-v2"\ndtype = "fp16"\n', "dtype 'fp32' differs from the 'fp16' of"),
    ('model = "resnet-18"\n', "a report of model 'mobilenet-v2', which no budget checks"),
])
def test_baseline_of_another_design_exit_2(effplan, tmp_path, text, message):
    (tmp_path / "report.json").write_text(effplan("layers", "mobilenet-v2", "--format", "json").out)
    path = budget(tmp_path, f'[[budget]]\n{text}max_params = "10M"\n')
    run = effplan("check", path, "--baseline", str(tmp_path / "report.json"))
    assert run.code == 2 and message in run.err and len(run.err.strip().splitlines()) == 1


def test_baseline_picks_the_budget_of_its_design(effplan, tmp_path):
    """A spec file's budget is matched by its design (model name, resolution, batch, dtype), not its path;
    another budget of the same model at another resolution is passed over."""
    spec = tmp_path / "mine.toml"
    spec.write_text((ROOT / "specs" / "models" / "mobilenet-v2.toml").read_text().replace(
        'name = "mobilenet-v2"', 'name = "mine"'))
    (tmp_path / "report.json").write_text(effplan("layers", str(spec), "--format", "json").out)
    path = budget(tmp_path, '[[budget]]\nmodel = "mobilenet-v2"\nmax_params = "10M"\n'
                            '[[budget]]\nmodel = "mine.toml"\nresolution = 256\nmax_params = "10M"\n'
                            '[[budget]]\nmodel = "mine.toml"\nwidth_mult = 1.4\nmax_params = "10M"\n')
    run = effplan("check", path, "--baseline", str(tmp_path / "report.json"), "--format", "json")
    assert run.code == 1  # budget[2], the wider one: its params grew
    assert [g["figure"] for g in run.json()["growth"]][0] == "params"


def test_a_baseline_total_of_zero_gives_null_growth(effplan, tmp_path):
    report = effplan("layers", "mobilenet-v2", "--format", "json").json()
    report["totals"]["params"] = 0
    (tmp_path / "report.json").write_text(json.dumps(report))
    path = budget(tmp_path, '[[budget]]\nmodel = "mobilenet-v2"\nmax_params = "10M"\n')
    run = effplan("check", path, "--baseline", str(tmp_path / "report.json"), "--format", "json")
    assert run.code == 1
    (params,) = [g for g in strict_json(run.out)["growth"] if g["figure"] == "params"]
    assert params["growth"] is None and params["baseline"] == 0
    assert "no growth ratio" in effplan("check", path, "--baseline", str(tmp_path / "report.json")).out


@pytest.mark.parametrize("tolerance", ["5", "-1%", "lots", "nan%"])
def test_bad_tolerance_exit_2(effplan, tmp_path, tolerance):
    (tmp_path / "report.json").write_text(effplan("layers", "mobilenet-v2", "--format", "json").out)
    path = budget(tmp_path, '[[budget]]\nmodel = "mobilenet-v2"\nmax_params = "10M"\n')
    run = effplan("check", path, "--baseline", str(tmp_path / "report.json"), "--tolerance", tolerance)
    assert run.code == 2 and "--tolerance" in run.err
    if tolerance == "5":
        assert "write 5% for a percentage" in run.err


def test_onnx_file_in_a_budget(effplan, tmp_path):
    onnx = str(tmp_path / "m.onnx")
    assert effplan("export", "mobilenet-v2", "--resolution", "96", "--dynamic-batch", "-o", onnx).code == 0
    path = budget(tmp_path, '[[budget]]\nmodel = "m.onnx"\nbatch = 2\ndtype = "fp16"\nmax_params = "3.6M"\n'
                            'max_inference_memory = "1GiB"\n')
    run = effplan("check", path, "--format", "json")
    params, memory = run.json()["checks"]
    assert run.code == 0 and params["value"] == 3_504_872  # torchvision mobilenet_v2
    # batch and dtype apply to the file: the same design built at batch 2 in fp16
    assert (memory["batch"], memory["dtype"], memory["resolution"]) == (2, "fp16", 96)
    t = effplan("layers", "mobilenet-v2", "--resolution", "96", "--batch", "2", "--dtype", "fp16", "--format",
                "json").json()["totals"]
    assert memory["value"] == t["weight_bytes"] + t["peak_activation_bytes"]
    for key, value in (("resolution", "128"), ("phi", "1"), ("width_mult", "1.4"), ("depth_mult", "2.0")):
        bad = budget(tmp_path, f'[[budget]]\nmodel = "m.onnx"\n{key} = {value}\nmax_params = "3.6M"\n', "bad.toml")
        run = effplan("check", bad)
        assert run.code == 2 and f"budget[0].{key}: an ONNX file or PyTorch model fixes its own design" in run.err


def erf_model(path):
    """A conv, then Sin and Cos, which no cost function knows."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper, save

    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Sin", ["c"], ["e"]),
             helper.make_node("Cos", ["e"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])],
                              [numpy_helper.from_array(np.zeros((4, 3, 3, 3), np.float32), "w")])
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_unknown_ops_warn_and_strict_fails(effplan, tmp_path):
    erf_model(tmp_path / "erf.onnx")
    path = budget(tmp_path, '[[budget]]\nname = "erf"\nmodel = "erf.onnx"\nmax_params = "1M"\n')
    # the conv alone: 4 x 3 x 3 x 3 = 108 weights, no bias
    run = effplan("check", path, "--format", "json")
    assert run.code == 0 and run.json()["checks"][0]["value"] == 108
    assert run.json()["unknown_ops"] == {"erf": {"Sin": 1, "Cos": 1}}
    text = effplan("check", path).out
    assert "warning: budget erf: no cost function for Cos (x1), Sin (x1): counted as zero" in text
    assert "::warning file=" in effplan("check", path, "--format", "github").out
    suite = ET.fromstring(effplan("check", path, "--format", "junit").out.split("?>", 1)[1]).find("testsuite")
    assert suite.find("properties/property").get("value") == "Cos x1, Sin x1"
    assert "Sin (x1)" in suite.find("system-out").text and suite.get("failures") == "0"
    strict = effplan("check", path, "--strict", "--format", "junit")
    assert strict.code == 1
    suite = ET.fromstring(strict.out.split("?>", 1)[1]).find("testsuite")
    assert suite.get("failures") == "1" and [c.get("name") for c in suite.iter("testcase")
                                             if c.find("failure") is not None] == ["unknown_ops"]
    assert effplan("check", path, "--strict").code == 1
    assert "::error file=" in effplan("check", path, "--strict", "--format", "github").out
    assert strict_json(effplan("check", path, "--strict", "--format", "json").out)["passed"] is False


@pytest.mark.parametrize("text, message", [
    ("", "no budgets"),
    ('[[budget]]\nmodel = "efficientnet-b0"\n', "budget[0]: no limits"),
    ('[[budget]]\nmodel = "efficientnet-b0"\nmax_macs = -1\n', "budget[0].max_macs: '-1' must be a finite number >= 0"),
    ('[[budget]]\nmodel = "efficientnet-b0"\nmax_macs = "0G"\n', "budget[0].max_macs: '0G': a limit must be more than"),
    ('[[budget]]\nmodel = "efficientnet-b0"\nmax_mac = "1G"\n', "did you mean: max_macs"),
    ('[[budget]]\nmodel = "efficientnet-b0"\nmax_macs = "1G"\n[[budget]]\nmodel = "efficientnet-b0"\n'
     'max_macs = "1Q"\n', "budget[1].max_macs: '1Q': unknown unit 'Q'"),
    ('[[budget]]\nmodel = "efficientnet-b0"\nmax_inference_memory = "16GG"\n', "unknown unit 'GG'"),
    ('[[budget]]\nmodel = "efficientnet-b0"\nmax_latency = "5ms"\n', "budget[0].max_latency: needs a device"),
    ('[[budget]]\nmodel = "efficientnet-b0"\ndevice = "t4"\nmax_latency = "1ms"\nmin_throughput = "2000"\n',
     "contradictory"),
    ('[[budget]]\nmodel = "efficientnet-b9"\nmax_macs = "1G"\n', "budget[0]: unknown model"),
    ('[[budget]]\nmax_macs = "1G"\n', "missing key 'model'"),
    ('[[budget]]\nmodel = "efficientnet-b0"\nbatch = 0\nmax_macs = "1G"\n', "budget[0].batch: expected a value between 1 and 1048576, got 0"),
    ('[[budget]]\nmodel = "efficientnet-b0"\ndtype = "fp64"\nmax_macs = "1G"\n', "budget[0].dtype: expected one of fp32"),
    ('[[budget]]\nmodel = "efficientnet-b0"\ndevice = "t5"\nmax_latency = "1ms"\n', "budget[0]: unknown device"),
    ("[[budget]\n", "not valid TOML"),
])
def test_bad_budget_files_exit_2(effplan, tmp_path, text, message):
    path = budget(tmp_path, text)
    run = effplan("check", path)
    assert run.code == 2, run.out
    assert message in run.err and len(run.err.strip().splitlines()) == 1
    assert "budget[" not in message or f"{path}: budget[" in run.err  # the file, then the entry


def test_missing_budget_file_exit_2(effplan, tmp_path):
    run = effplan("check", str(tmp_path / "nope.toml"))
    assert run.code == 2 and "cannot read" in run.err


# ---- the examples, as CI and git run them

def effplan_env():
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def workflow_steps(path: Path) -> list[dict]:
    """The steps of the example workflow's single job, each {key: value}, read from the YAML's structure:
    a step starts at `- ` under `steps:`, its keys are the lines indented like its first key."""
    steps, indent = [], None
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "steps:") + 1
    for line in lines[start:]:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        body = line.lstrip()
        if body.startswith("- "):
            steps.append({})
            indent = len(line) - len(body) + 2
            body = body[2:]
        elif len(line) - len(body) != indent:
            continue  # nested under `with:`
        key, _, value = body.partition(":")
        value = value.strip()
        steps[-1][key.strip()] = value[1:-1] if len(value) > 1 and value[0] == value[-1] == '"' else value
    return steps


def workflow_env(path: Path) -> dict:
    """The workflow's top-level `env:` mapping (keys indented two spaces under it)."""
    lines = path.read_text().splitlines()
    start = lines.index("env:") + 1
    env = {}
    for line in lines[start:]:
        if line and not line.startswith(" "):
            break
        if line.startswith("  ") and not line.lstrip().startswith("#") and ":" in line:
            key, _, value = line.strip().partition(":")
            env[key] = value.strip()
    return env


PIN = f"effplan=={__version__}"  # what the examples install: this release


def test_examples_install_effplan_from_a_pinned_source():
    """Copied into another project, `pip install .` would install that project: the examples install a
    pinned effplan, the same release everywhere, and it is the version this checkout is."""
    from packaging.requirements import Requirement
    path = EXAMPLES / "github-workflow.yml"
    steps = workflow_steps(path)
    assert {"run": 'pip install "$EFFPLAN_SOURCE"'} in steps
    assert not any(s.get("run", "").startswith("pip install .") for s in steps)
    source = workflow_env(path)["EFFPLAN_SOURCE"]
    requirement = Requirement(source)
    assert (requirement.name, str(requirement.specifier)) == ("effplan", PIN[len("effplan"):]), source
    assert f'additional_dependencies: ["{PIN}"]' in (EXAMPLES / "pre-commit-config.yaml").read_text()
    assert "language: python" in (EXAMPLES / "pre-commit-config.yaml").read_text()  # pre-commit installs it
    assert f'pip install "{PIN}"' in (EXAMPLES / "pre-commit").read_text()  # the hook says what to install


def run_job(steps, cwd) -> tuple[int, list]:
    """The job as GitHub runs it: each `run:` step in order, skipped after a failure unless `if: always()`;
    the job fails when a step does. The checkout and the install (test_examples_install_effplan_from_a_pinned_source)
    are what this test's environment stands in for: its effplan is the pinned release."""
    failed, outcomes = False, []
    for step in steps:
        if "run" not in step or not step["run"].startswith("effplan "):
            continue
        if failed and step.get("if") != "always()":
            continue
        done = subprocess.run(shlex.split(step["run"]), cwd=cwd, env=effplan_env(), capture_output=True, text=True)
        outcomes.append((step["run"], done.returncode, done.stdout))
        failed = failed or done.returncode != 0
    return (1 if failed else 0), outcomes


def test_ci_workflow_runs_the_checks_in_another_project(tmp_path):
    steps = workflow_steps(EXAMPLES / "github-workflow.yml")
    assert steps[0] == {"uses": "actions/checkout@v4"}
    checks = [s for s in steps if s.get("run", "").startswith("effplan check")]
    assert len(checks) == 2 and checks[1]["if"] == "always()"  # the JUnit file is written even after a failure
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["if"] == "always()"
    shutil.copy(EXAMPLES / "budgets.toml", tmp_path / "budgets.toml")  # a project with nothing of effplan's
    code, outcomes = run_job(steps, tmp_path)
    assert code == 0 and [c for _, c, _ in outcomes] == [0, 0], outcomes
    assert ET.parse(tmp_path / "effplan-budgets.xml").getroot().find("testsuite").get("failures") == "0"


def test_ci_workflow_fails_the_job_on_a_failing_budget(tmp_path):
    steps = workflow_steps(EXAMPLES / "github-workflow.yml")
    (tmp_path / "budgets.toml").write_text('[[budget]]\nmodel = "efficientnet-b0"\nmax_params = "5M"\n')
    code, outcomes = run_job(steps, tmp_path)
    assert code == 1 and [c for _, c, _ in outcomes] == [1, 1]
    assert outcomes[0][2].startswith("::error file=budgets.toml,title=effplan budget efficientnet-b0::params")
    assert ET.parse(tmp_path / "effplan-budgets.xml").getroot().find("testsuite").get("failures") == "1"


def test_pre_commit_hook_blocks_a_commit_over_budget(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    env = {**effplan_env(), "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}

    def git(*args, path=None):
        return subprocess.run(["git", *args], cwd=tmp_path, env={**env, "PATH": path or env["PATH"]},
                              capture_output=True, text=True)
    git("init", "-q")  # a repository that is not effplan's: the hook as a user copies it
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
    # without effplan the hook refuses (never passes unchecked) and says what to install
    bare = str(Path(shutil.which("git")).parent)
    if shutil.which("effplan", path=bare) is None:
        missing = git("commit", "-q", "-m", "unchecked", path=bare)
        assert missing.returncode != 0 and f'install it (pip install "{PIN}")' in missing.stderr, missing.stderr
        assert git("log", "--oneline").stdout.count("\n") == 1
