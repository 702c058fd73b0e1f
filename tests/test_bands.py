"""Error bands: each time figure carries the interval that held on check measurements for its runtime, kind and
batch band (specs/error-bands.json); a regime without checked measurements says so."""
import pytest

from effplan.plan import bands

BAND = {("eager", "inference", "1-8"): {"runtime": "eager", "kind": "inference", "batch_band": "1-8", "rows": 10,
                                        "coverage": 0.8, "low": 0.8, "high": 1.5}}


@pytest.fixture
def one_band(monkeypatch):
    monkeypatch.setattr(bands, "_bands", lambda: BAND)


def test_batch_bands():
    assert [bands.batch_band(b) for b in (1, 8, 9, 63, 64, 1024)] == ["1-8", "1-8", "9-63", "9-63", "64+", "64+"]


def test_a_time_reads_with_its_band_and_a_rate_inverts_it(one_band):
    # 2 ms at batch 4 under eager inference: measured times ran 0.8-1.5 x the estimate: 1.6-3 ms
    found = bands.describe(2e-3, "eager", "inference", 4)
    assert found["band"]["low_s"] == pytest.approx(1.6e-3) and found["band"]["high_s"] == pytest.approx(3e-3)
    assert found["text"] == "2 ms (1.6-3 ms on 80% of checked measurements)"
    # 1,000 images/s: the time band's ends inverted: 1000 / 1.5 to 1000 / 0.8
    rate = bands.figure_band("images_per_s", 1000.0, "eager", 4)
    assert (rate["low"], rate["high"]) == (pytest.approx(666.667, rel=1e-5), pytest.approx(1250.0))
    assert bands.figure_band("macs", 1e9, "eager", 4) is None  # not a time


def test_a_regime_without_checked_measurements_says_so(one_band):
    found = bands.describe(2e-3, "fused", "inference", 4)
    assert found["band"] is None and "no checked measurements for fused inference at batch 1-8" in found["text"]
    assert bands.figure_band("training_step_s", 0.1, "eager", 256)["text"].startswith("no checked measurements")


def test_reports_carry_the_band(effplan):
    report = effplan("roofline", "resnet-18", "--device", "t4", "--runtime", "eager", "--batch", "2",
                     "--format", "json").json()
    band = report["latency_band"]
    assert band["band"] is None or band["band"]["low_s"] < band["band"]["high_s"]
    assert "checked measurements" in band["text"]
    text = effplan("roofline", "resnet-18", "--device", "t4", "--runtime", "eager", "--batch", "2").out
    assert "checked measurements" in text


def test_the_html_reports_latency_carries_its_band():
    import effplan as ep
    from effplan.design.blocks import build
    from effplan.plan.hardware import load_device
    from effplan.plan.roofline import roofline
    from effplan.render.html import device_data

    design = ep.with_overrides(ep.resolve("resnet-18"), resolution=32)
    data = device_data(roofline(build(design, 1), load_device("t4"), runtime="eager"), design)
    assert "checked measurements" in data["totals"]["latency_s_text"]
