"""Charts, read back from the matplotlib figures the commands draw and from the files they write."""
import re
import struct
import xml.etree.ElementTree as ET

import pytest
from matplotlib.colors import to_hex

import effplan.render.plot as plot

SEARCH = ["search", "efficientnet-b0", "--max-macs", "1G", "--max-inference-memory", "60MiB", "--max-params", "9M",
          "--depth", "1..1.6:0.1", "--width", "1..1.3:0.05", "--resolution", "224..320:8", "--top", "3"]


@pytest.fixture
def figures(monkeypatch):
    """The figures the commands draw, kept instead of saved."""
    drawn = []
    monkeypatch.setattr(plot, "save", lambda fig, path: drawn.append(fig))
    return drawn


def legend_colours(ax):
    """label -> colour of every labelled scatter and bar series of an axis."""
    out = {}
    for c in ax.collections:
        out[c.get_label()] = to_hex(c.get_facecolor()[0], keep_alpha=False)
    for bars in ax.containers:
        out[bars.get_label()] = to_hex(bars.patches[0].get_facecolor(), keep_alpha=False)
    return out


def test_roofline_colours_are_fixed_per_unit_and_bound_across_panels_and_runs(effplan, figures):
    runs = [("efficientnet-b0", "t4", "1"), ("resnet-50", "t4", "64"), ("mobilenet-v2", "h100-sxm", "8")]
    colours, markers = {}, {}
    for model, device, batch in runs:
        assert effplan("roofline", model, "--device", device, "--batch", batch, "--plot", "x.svg").code == 0
        roof, bars = figures[-1].axes
        points, stacks = legend_colours(roof), legend_colours(bars)
        assert points and stacks
        for label, colour in {**points, **stacks}.items():
            assert colours.setdefault(label, colour) == colour, label  # the same in both panels and every run
        for c in roof.collections:  # the marker says the unit
            unit = c.get_label().split(" ")[0]
            shape = c.get_paths()[0].vertices.round(3).tolist()
            assert markers.setdefault(unit, shape) == shape
    assert len(set(colours.values())) == len(colours) >= 4  # distinct (unit, bound) pairs, distinct colours
    assert set(markers) == {"matrix", "vector"} and markers["matrix"] != markers["vector"]
    assert any("compute-bound" in label for label in colours) and any("memory-bound" in label for label in colours)


def test_roofline_bars_leave_headroom(effplan, figures):
    assert effplan("roofline", "efficientnet-b0", "--device", "t4", "--plot", "x.svg").code == 0
    _, bars = figures[-1].axes
    tallest = max(p.get_y() + p.get_height() for p in bars.patches)
    assert bars.get_ylim()[1] >= 1.1 * tallest


def test_svg_keeps_its_text_as_text(effplan, tmp_path):
    path = tmp_path / "b0.svg"
    assert effplan("roofline", "efficientnet-b0", "--device", "h100-sxm", "--plot", str(path)).code == 0
    root = ET.parse(path).getroot()  # a well-formed SVG document
    texts = " ".join("".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "time per stage" in texts and "arithmetic intensity (FLOP/byte)" in texts
    assert "DejaVuSans" not in path.read_text()  # no glyphs drawn as paths


def test_png_is_a_png_of_the_figure_size(effplan, tmp_path):
    path = tmp_path / "b0.png"
    assert effplan("roofline", "efficientnet-b0", "--device", "t4", "--plot", str(path)).code == 0
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    assert struct.unpack(">II", head[16:24]) == (1300, 550)  # 13 x 5.5 inches at matplotlib's 100 dpi


def test_pareto_shows_every_design_that_fits_the_limits_and_phi(effplan, figures):
    text = effplan(*SEARCH)
    assert text.code == 0, text.err
    within = int(re.search(r"([\d,]+) within every limit", text.out).group(1).replace(",", ""))
    designs = effplan(*SEARCH, "--format", "json", "--plot", "x.svg").json()
    ax = figures[-1].axes[0]
    cloud = next(c for c in ax.collections if c.get_label().startswith("grid designs within the limits"))
    xy = cloud.get_offsets()
    assert len(xy) == within > len(designs)  # all of them, not only the listed
    assert (xy[:, 0] <= 60).all() and (xy[:, 1] <= 1.0).all()  # MiB, GMACs
    (phi,) = [d for d in designs if d["phi"] is not None]
    star = next(c for c in ax.collections if "\u03c6" in c.get_label())
    assert star.get_offsets()[0].tolist() == pytest.approx([phi["inference_bytes"] / 2**20, phi["macs"] / 1e9])
    lines = {line.get_label(): line.get_xydata() for line in ax.lines}
    (macs_limit,) = [xy for label, xy in lines.items() if label.startswith("limit: MACs")]
    (memory_limit,) = [xy for label, xy in lines.items() if label.startswith("limit: inference memory")]
    assert set(macs_limit[:, 1]) == {1.0} and set(memory_limit[:, 0]) == {60.0}
    assert "also within: params 9.000M" in ax.get_title()  # a limit with no axis of its own
