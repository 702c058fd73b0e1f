"""Output a person reads: text fits the terminal, one unit system per table, rows that sum to their
totals, the layer view (kind, kernel, stride, share, sort, top, total row) and markdown headers."""
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def terminal(monkeypatch):
    """These tests read output on a terminal (COLUMNS wide): only there are columns hidden."""
    monkeypatch.setattr("effplan.render.tables.stdout_is_terminal", lambda: True)


def widest(text: str) -> int:
    return max(len(line) for line in text.splitlines())


BUDGETS = """[[budget]]
model = "squeezenet-1.1"
resolution = 32
max_params = "2M"
max_inference_memory = "4MB"
[[budget]]
model = "squeezenet-1.1"
resolution = 32
device = "t4"
max_latency = "5ms"
"""


@pytest.mark.parametrize("width", [80, 100, 120])
@pytest.mark.parametrize("command", [  # every command whose text output is a table
    ("table", "--phi", "0..7"),  # 158 columns wide before
    ("devices",),  # 250
    ("memory", "efficientnet-b0", "--train"),  # header lines of 499
    ("layers", "efficientnet-b0"),
    ("analyze", "{fixtures}/cnn_qdq.onnx"),
    ("roofline", "squeezenet-1.1", "--resolution", "32", "--device", "t4"),
    ("models",),
    ("runtimes",),  # 188
    ("fit", "squeezenet-1.1", "--resolution", "32", "--memory", "1GiB", "--train"),  # 89
    ("fit", "squeezenet-1.1", "--resolution", "32", "--memory", "1GiB", "--batch", "4"),
    ("check", "{budgets}"),  # 107
    ("search", "squeezenet-1.1", "--max-macs", "1G", "--device", "t4", "--max-latency", "5ms", "--width", "1..1.1",
     "--depth", "1..1.1", "--resolution", "32..48:8", "--top", "3"),  # 159
    ("compare", "efficientnet-b0", "squeezenet-1.1", "resnet-50", "mobilenet-v2", "efficientnetv2-b0"),
    ("train", "squeezenet-1.1", "--resolution", "32", "--device", "t4", "--batch", "8", "--epochs", "1"),  # 121
    ("measure", "squeezenet-1.1", "--resolution", "32", "--runs", "1", "--device", "xeon-e5-2690"),  # 110
])
def test_text_fits_the_terminal(effplan, monkeypatch, tmp_path, width, command):
    (tmp_path / "b.toml").write_text(BUDGETS)
    fixtures = Path(__file__).parent / "fixtures"
    monkeypatch.setenv("COLUMNS", str(width))
    args = [a.format(budgets=tmp_path / "b.toml", fixtures=fixtures) for a in command]
    run = effplan(*args)
    assert run.code in (0, 1), run.err  # check exits 1: a budget fails
    assert widest(run.out) <= width
    if "columns hidden" in run.out:  # and every command that hides columns shows them all with --wide
        wide = effplan(*args, "--wide")
        assert wide.code == run.code and "hidden" not in wide.out and widest(wide.out) > width


def test_wide_shows_every_column_and_default_says_what_it_hid(effplan, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    narrow = effplan("table", "--phi", "0").out
    head = next(line for line in narrow.splitlines() if line.startswith("model"))
    assert "2^φ" not in head and "FLOPs" not in head
    note = " ".join(line.lstrip("# ") for line in narrow.splitlines()[narrow.splitlines().index(head):]
                    if line.startswith("#"))
    assert "columns hidden to fit the terminal's 80 characters: d, layers, w, FLOPs" in note and "2^φ" in note
    assert "two_pow_phi" not in note  # headers, as shown, not JSON keys
    wide = effplan("table", "--phi", "0", "--wide").out
    header = wide.splitlines()[wide.splitlines().index(next(l for l in wide.splitlines() if l.startswith("model")))]
    assert header.split() == ["model", "φ", "d", "w", "res", "layers", "params", "MACs", "FLOPs", "weights", "MiB",
                              "peak", "act", "MiB", "infer", "MiB", "train", "GiB", "MACs", "×φ0", "2^φ"]
    assert "hidden" not in wide


def test_columns_choose_by_key_or_header_and_unknown_is_one_line(effplan):
    out = effplan("table", "--phi", "0", "--columns", "model,MACs,inference_bytes").out
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("model"))
    assert lines[head].split() == ["model", "MACs", "infer", "MiB"]
    assert lines[head + 2].split()[:2] == ["efficientnet-b0", "0.386G"]
    bad = effplan("table", "--columns", "model,macz")
    assert bad.code == 2 and bad.out == "" and len(bad.err.splitlines()) == 1
    assert "unknown column 'macz'" in bad.err and "did you mean: macs?" in bad.err
    assert effplan("table", "--columns", "model", "--wide").code == 2


def test_csv_keeps_every_column_whatever_the_width(effplan, monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    header = effplan("table", "--phi", "0", "--format", "csv").out.splitlines()[0]
    assert header.split(",")[-2:] == ["macs_ratio", "two_pow_phi"]


def test_table_uses_one_unit_system_and_memory_adds_up(effplan):
    out = effplan("table", "--phi", "0..3", "--wide").out
    assert " MB" not in out and "MiB = 2^20" in out  # no 10^6-byte column beside 2^20-byte ones
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("model"))
    for line in lines[head + 2:head + 6]:
        cells = line.split()
        weights, peak, infer = float(cells[9]), float(cells[10]), float(cells[11])
        # infer = weights + peak activations (each rounded to 0.1 MiB: at most one unit apart)
        assert abs(weights + peak - infer) <= 0.1 + 1e-9


@pytest.mark.parametrize("by", ["stage", "block", "layer"])
def test_saved_rows_sum_to_the_training_total(effplan, by):
    report = effplan("memory", "efficientnet-b0", "--train", "--by", by, "--format", "json").json()
    # a tensor read by several ops (a block's input: the conv and the residual add; the SE's input:
    # the pooling and the multiply) is saved once, so it appears in one row only
    assert sum(row["saved_bytes"] for row in report["layers"]) == report["training"]["activation_bytes"]


def test_memory_text_ends_with_the_saved_total(effplan, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    report = effplan("memory", "efficientnet-b0", "--train", "--format", "json").json()
    last = effplan("memory", "efficientnet-b0", "--train").out.splitlines()[-1].split()
    assert last[0] == "total" and float(last[-1]) == round(report["training"]["activation_bytes"] / 2**20, 3)


def test_conv_kind_kernel_and_stride(effplan):
    rows = {r["name"]: r for r in effplan("layers", "shufflenet-v1", "--format", "json").json()["layers"]}
    # ShuffleNet v1 (g=3): a 3x3 stride-2 stem, then units of 1x1 group conv, 3x3 depthwise, 1x1 group
    # conv; the paper leaves stage 2's first 1x1 conv ungrouped (24 input channels)
    expect = {"stem.0.conv": ("dense", [3, 3], [2, 2]),
              "stage1.block0.gconv1.conv": ("pointwise", [1, 1], [1, 1]),
              "stage1.block0.dw.conv": ("depthwise", [3, 3], [2, 2]),
              "stage1.block0.gconv2.conv": ("grouped", [1, 1], [1, 1]),
              "stage1.block1.dw.conv": ("depthwise", [3, 3], [1, 1])}
    assert {n: (rows[n]["kind"], rows[n]["kernel"], rows[n]["stride"]) for n in expect} == expect
    dw = rows["stage1.block1.dw.conv"]
    assert dw["input_shape"][1] == dw["output_shape"][1] == 60  # group = channels: one filter per channel
    assert all(r["kind"] is None for r in rows.values() if r["op"] != "Conv")


def test_layers_sort_top_share_and_total_row(effplan, monkeypatch):
    report = effplan("layers", "efficientnet-b0", "--sort", "macs", "--top", "2", "--format", "json").json()
    # B0's two heaviest layers, by hand: the head's 1x1 conv 320 -> 1280 at 7x7 and stage 2's first
    # expand conv 16 -> 96 at 112x112
    assert [(r["name"], r["macs"]) for r in report["layers"]] == [
        ("head.0.conv", 7 * 7 * 320 * 1280), ("stage2.block0.expand.conv", 112 * 112 * 16 * 96)]
    everything = effplan("layers", "efficientnet-b0", "--format", "json").json()
    assert sum(r["share"] for r in everything["layers"]) == pytest.approx(1.0, abs=1e-12)
    assert sum(r["buffers"] for r in everything["layers"]) == everything["totals"]["buffers"] > 0
    monkeypatch.setenv("COLUMNS", "200")
    lines = effplan("layers", "efficientnet-b0", "--top", "3").out.splitlines()
    assert lines[-1].split()[0] == "total" and "5,288,548" in lines[-1]  # the published B0 params
    assert "buffers" in next(line for line in lines if line.startswith("name"))


def test_markdown_starts_with_no_heading(effplan):
    for command in (("table", "--phi", "0"), ("layers", "efficientnet-b0", "--by", "stage"),
                    ("memory", "efficientnet-b0")):
        out = effplan(*command, "--format", "markdown").out
        assert out.startswith("<!-- effplan ") and not any(line.startswith("# ") for line in out.splitlines())
        assert "|---" in out


def test_analyze_notes_bn_folded_when_a_file_has_none(effplan, tmp_path):
    import onnx

    folded, plain = tmp_path / "folded.onnx", tmp_path / "plain.onnx"
    for path, flags in ((folded, ["--fold-bn"]), (plain, [])):
        assert effplan("export", "mobilenet-v2", "--resolution", "32", *flags, "-o", str(path)).code == 0
        model = onnx.load(str(path))
        del model.metadata_props[:]  # a file from elsewhere: no effplan metadata to go by
        onnx.save(model, str(path))
    assert "no BatchNormalization after the convs" in effplan("analyze", str(folded)).out
    assert "BatchNormalization after" not in effplan("analyze", str(plain)).out


def test_check_shows_a_limit_in_the_units_written(effplan, tmp_path):
    budgets = tmp_path / "budgets.toml"
    budgets.write_text('[[budget]]\nmodel = "efficientnet-b0"\nmax_weight_bytes = "4MB"\n'
                       'max_inference_memory = "1GiB"\n')
    rows = {r["limit_key"]: r for r in effplan("check", str(budgets), "--format", "json").json()["checks"]}
    weights, memory = rows["max_weight_bytes"], rows["max_inference_memory"]
    assert weights["limit_text"] == "4MB" and weights["value_text"].endswith(" MB")  # MB = 10^6, as written
    assert float(weights["value_text"][:-3]) * 10**6 == pytest.approx(weights["value"], rel=5e-4)
    assert memory["limit_text"] == "1GiB" and memory["value_text"].endswith(" MiB")  # binary, as written
    assert float(memory["value_text"][:-4]) * 2**20 == pytest.approx(memory["value"], rel=5e-4)
    text = effplan("check", str(budgets)).out
    assert "4MB" in text and "3.81" not in text
