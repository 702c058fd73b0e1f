"""Sizes as people write them: every spelling of a byte unit, and the note when a decimal size is most likely
a binary one (a GPU sold as "24 GB" holds 24 GiB). Expected values are the arithmetic of the units."""
import pytest

from effplan.base.errors import EffplanError
from effplan.base.units import parse_bytes, size_note

GB, GiB = 10**9, 2**30


@pytest.mark.parametrize("text, expected", [
    ("24GB", 24 * GB), ("24gb", 24 * GB), ("24Gb", 24 * GB), ("24 GB", 24 * GB),
    ("24GiB", 24 * GiB), ("24gib", 24 * GiB), ("24GIB", 24 * GiB), ("24Gi", 24 * GiB), ("24g", 24 * GiB),
    ("24G", 24 * GiB), ("512MB", 512 * 10**6), ("512mb", 512 * 10**6), ("512MiB", 512 * 2**20),
    ("512m", 512 * 2**20), ("1.5kb", 1500), ("1.5kB", 1500), ("3KiB", 3 * 1024), ("1TB", 10**12), ("1tib", 2**40),
    ("100B", 100),
])
def test_every_spelling(text, expected):
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["24", "24gg", "24 gigabytes", "24xb", "100b"])  # b: bits?
def test_what_is_not_a_size_is_refused(text):
    with pytest.raises(EffplanError):
        parse_bytes(text)


CATALOG = {"l4": 24 * GiB, "rtx-4090": 24 * GiB, "a100-40gb": 40 * GiB}


@pytest.mark.parametrize("text, devices, note", [
    ("24GB", CATALOG, '24GB = 22.35 GiB; a "24 GB" GPU (l4, rtx-4090) has 24 GiB: write 24GiB'),  # 24e9 / 2^30
    ("24gb", CATALOG, '24gb = 22.35 GiB; a "24 GB" GPU (l4, rtx-4090) has 24 GiB: write 24GiB'),
    ("16GB", {}, '16GB = 14.90 GiB; a "16 GB" GPU has 16 GiB: write 16GiB'),  # a power of two: 16e9 / 2^30
    ("40GB", CATALOG, '40GB = 37.25 GiB; a "40 GB" GPU (a100-40gb) has 40 GiB: write 40GiB'),
    ("40GB", {}, None),  # 40 GiB is no power of two, and 32 GiB (34.4e9) is 16% away
    ("24GiB", CATALOG, None), ("24g", CATALOG, None),  # binary already
    ("500MB", CATALOG, None),  # below a GB: no GPU memory meant
])
def test_the_gib_note(text, devices, note):
    assert size_note(text, devices) == note


def test_fit_says_which_was_meant(effplan):
    run = effplan("fit", "mobilenet-v2", "--resolution", "64", "--memory", "24GB")
    assert run.code == 0, run.err
    header = " ".join(line.lstrip("# ") for line in run.out.splitlines() if line.startswith("#"))
    assert '24GB = 22.35 GiB; a "24 GB" GPU (l4, rtx-3090, rtx-4090) has 24 GiB: write 24GiB' in header
    assert "write" not in effplan("fit", "mobilenet-v2", "--resolution", "64", "--memory", "24GiB").out


def test_fit_on_a_device_uses_its_own_memory(effplan):
    (row,) = effplan("fit", "mobilenet-v2", "--resolution", "64", "--device", "t4", "--format", "json").json()
    assert row["device"] == "t4" and row["capacity_bytes"] == 16 * GiB  # NVIDIA T4 datasheet: 16 GB GDDR6


def test_fit_on_several_devices_answers_for_each(effplan):
    args = ("fit", "efficientnet-b0", "--resolution", "128", "--train")
    rows = effplan(*args, "--device", "t4", "--device", "a100-80gb", "--format", "json").json()
    assert [(r["device"], r["capacity_bytes"]) for r in rows] == [("t4", 16 * GiB), ("a100-80gb", 80 * GiB)]
    for row in rows:  # each as the same command on that device alone
        (alone,) = effplan(*args, "--device", row["device"], "--format", "json").json()
        assert row == alone
    assert rows[1]["batch"] > rows[0]["batch"]
    text = effplan(*args, "--device", "t4", "--device", "a100-80gb", "--wide").out
    assert "t4: 16.00 GiB" in text and "a100-80gb: 80.00 GiB" in text


def test_budgets_and_search_say_which_was_meant(effplan, tmp_path):
    budget = tmp_path / "b.toml"
    budget.write_text('[[budget]]\nmodel = "mobilenet-v2"\nresolution = 64\nmax_training_memory = "16gb"\n'
                      'max_inference_memory = "1GiB"\n')
    run = effplan("check", str(budget), "--format", "json")
    assert run.code == 0
    assert run.err.count("warning") == 1 and 'max_training_memory: 16gb = 14.90 GiB; a "16 GB" GPU' in run.err
    (row,) = [r for r in run.json()["checks"] if r["limit_key"] == "max_training_memory"]
    assert row["limit"] == 16 * GB and row["limit_text"] == "16GB"  # the decimal figure, shown in its own units
    run = effplan("search", "mobilenet-v2", "--max-inference-memory", "80GB", "--depth", "1", "--width", "1",
                  "--resolution", "64", "--format", "json")
    assert run.code == 0 and "--max-inference-memory: 80GB = 74.51 GiB" in run.err  # 80e9 / 2^30
