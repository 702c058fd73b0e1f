"""The Python API takes an ONNX file anywhere it takes a model, returning the same report objects as for a
built-in name; the figures checked against what PyTorch said of the module (tests/fixtures/own_models.json)."""
import json
from pathlib import Path

import pytest

import effplan

FIXTURES = Path(__file__).parent / "fixtures"
MEASURED = json.loads((FIXTURES / "own_models.json").read_text())["modules"]["resnetish"]
FILE = str(FIXTURES / "resnetish_ts_train.onnx")


def test_every_entry_takes_a_file_and_returns_what_a_name_gives():
    calls = [lambda m: effplan.analyze(m, 2), lambda m: effplan.memory(m, 2), lambda m: effplan.memory(m, 2, train=True),
             lambda m: effplan.fit(m, "1GiB", train=True), lambda m: effplan.roofline(m, "a100-80gb", batch=2),
             lambda m: effplan.train(m, "a100-80gb", batch=2)]
    for call in calls:
        assert type(call(FILE)) is type(call("efficientnet-b0"))


def test_the_files_figures_are_pytorchs():
    assert effplan.analyze(FILE, 2).totals.params == MEASURED["params"]
    saved = effplan.memory(FILE, 2, precision="fp32", optimizer="sgd", train=True).activation_bytes
    assert saved == pytest.approx(MEASURED["saved_bytes"], rel=0.05)
    assert effplan.fit(FILE, "1GiB", train=True).batch > 0
    assert effplan.train(FILE, "a100-80gb", batch=2).stages[0].batch == 2


def test_a_missing_file_is_one_line():
    with pytest.raises(effplan.EffplanError) as error:
        effplan.memory(str(FIXTURES / "missing.onnx"))
    assert "\n" not in str(error.value)
