"""Every built-in model: a well-formed graph, costed in full; overrides and their errors."""
import pytest

import effplan
from conftest import spec_variant
from effplan.graph.ops import COSTS
from effplan.design.scaling import model_names

MODELS = model_names()


@pytest.mark.parametrize("name", MODELS)
def test_graph_is_well_formed(name):
    design = effplan.resolve(name)
    g = effplan.build(design, batch=2)
    tensors = g.graph["tensors"]
    produced = set(g.graph["inputs"])
    for node in g.nodes:
        attrs = g.nodes[node]
        assert attrs["op"] in COSTS, f"{node}: {attrs['op']} has no cost function"
        assert set(attrs["inputs"]) <= produced, f"{node} reads a tensor not yet produced"
        produced |= set(attrs["outputs"])
        ins = [tensors[t] for t in attrs["inputs"]]
        out = tensors[attrs["outputs"][0]]
        if attrs["op"] == "Concat":  # channels add up; everything else matches
            assert out[1] == sum(s[1] for s in ins)
            assert all(s[0] == out[0] and s[2:] == out[2:] for s in ins)
        if attrs["op"] == "Reshape":  # channel shuffle moves elements, never adds or drops them
            assert effplan.graph.builder.math.prod(out) == effplan.graph.builder.math.prod(ins[0])
        if attrs["op"] == "Conv":  # the weight reads exactly the input channels
            w = dict((x.role, x.shape) for x in attrs["weights"])["W"]
            assert w[1] * attrs["attrs"]["group"] == ins[0][1] and w[0] == out[1]
    assert tensors[g.graph["outputs"][0]] == (2, design.classes)
    assert effplan.analyze(design).unknown_ops == {}


def test_model_families_are_listed():
    families = {effplan.resolve(n).spec.family for n in MODELS}
    assert {"efficientnet", "efficientnetv2", "mobilenet", "resnet", "shufflenet", "squeezenet",
            "mnasnet", "inception", "xception"} <= families


def test_width_multiplier_on_mobilenet_v1():
    # 0.5 halves every width: 32 -> 16 stem ... 1024 -> 512; the paper's 149 M MAdds (Table 6)
    d = effplan.with_overrides(effplan.resolve("mobilenet-v1"), width_mult=0.5)
    g = effplan.build(d)
    assert g.graph["tensors"]["stem.0.conv"][1] == 16
    assert g.graph["tensors"][g.graph["outputs"][0]] == (1, 1000)
    assert effplan.analyze(d).totals.macs == pytest.approx(149e6, rel=0.03)


def test_mobilenet_v2_last_conv_never_narrows():
    # torchvision: last channel = make_divisible(1280 * max(1.0, width))
    narrow = effplan.build(effplan.with_overrides(effplan.resolve("mobilenet-v2"), width_mult=0.5))
    wide = effplan.build(effplan.with_overrides(effplan.resolve("mobilenet-v2"), width_mult=1.4))
    assert narrow.graph["tensors"]["head.0.conv"][1] == 1280
    assert wide.graph["tensors"]["head.0.conv"][1] == 1792


def test_mobilenet_v2_1_4_is_torchvision_and_keras_size():
    # MobileNetV2 1.4 at 224: 6.06 M params (Keras MobileNetV2(alpha=1.4): 6,156,712 total incl. BN statistics)
    t = effplan.analyze(effplan.with_overrides(effplan.resolve("mobilenet-v2"), width_mult=1.4)).totals
    assert t.params + t.buffers == 6156712


def test_efficientnetv2_rounds_widths_to_the_nearest_multiple_of_8():
    # The official V2 round_filters has no "never 10% down" step: at width 1.2 (B3) stage 1's
    # 16 channels become 19.2 -> 16 (V1's rule would add 8 and give 24); stage 2's 32 -> 38.4 -> 40.
    g = effplan.build(effplan.resolve("efficientnetv2-b3"))
    assert g.graph["tensors"]["stage1.block0.fused.bn"][1] == 16  # expand 1: a single fused conv
    assert g.graph["tensors"]["stage2.block0.project.bn"][1] == 40


def test_mnasnet_keeps_its_1280_head_at_every_width():
    # torchvision MNASNet: _get_depths scales the eight stage widths by alpha; the 1x1 head stays 1280
    for width in (0.5, 1.3):
        g = effplan.build(effplan.with_overrides(effplan.resolve("mnasnet-b1"), width_mult=width))
        assert g.graph["tensors"]["head.0.conv"][1] == 1280


def test_scale_single_dimensions():
    base = effplan.resolve("resnet-50")
    deeper = effplan.with_overrides(base, scale={"depth": 4})
    wider = effplan.with_overrides(base, scale={"width": 2})
    sharper = effplan.with_overrides(base, scale={"resolution": 2})
    assert deeper.depth_mult == 4 and wider.width_mult == 2 and sharper.resolution == 448
    g = effplan.build(deeper)
    blocks = {(g.nodes[n]["stage"], g.nodes[n]["block"]) for n in g.nodes if isinstance(g.nodes[n]["stage"], int)}
    assert len(blocks) == 4 * (3 + 4 + 6 + 3)
    base_macs = effplan.analyze(base).totals.macs
    # doubling the side of a network with 'same' padding and a 32x total stride: 4x every conv's MACs
    conv_macs = lambda d: sum(r.macs for r in effplan.analyze(d).rows if r.op == "Conv")  # noqa: E731
    assert conv_macs(sharper) == 4 * conv_macs(base)
    assert effplan.analyze(wider).totals.macs > 3 * base_macs


def test_compound_scaling_any_spec(effplan):
    rows = effplan("table", "mobilenet-v2", "--phi", "0..2", "--format", "json").json()
    assert [r["resolution"] for r in rows] == [224, 258, 296]
    assert rows[0]["params"] == 3504872 and rows[2]["macs_ratio"] > 3


def test_compare_puts_models_side_by_side(effplan):
    run = effplan("compare", "efficientnet-b4", "efficientnetv2-s", "resnet-50", "--format", "json")
    assert [r["model"] for r in run.json()] == ["efficientnet-b4", "efficientnetv2-s", "resnet-50"]
    text = effplan("compare", "efficientnet-b4", "resnet-50").out
    assert "19.342M" in text and "25.557M" in text
    csv_out = effplan("compare", "resnet-50", "--format", "csv").out
    assert "params,25557032" in csv_out


def test_models_command_groups_by_family(effplan):
    rows = effplan("models", "--format", "json").json()
    assert [r["family"] for r in rows] == sorted(r["family"] for r in rows)
    assert {"googlenet", "xception", "shufflenet-v1", "efficientnetv2-s"} <= {r["name"] for r in rows}
    text = effplan("models").out.splitlines()
    headings = [line for line in text if line and line == line.strip() and " " not in line]
    assert headings == list(dict.fromkeys(r["family"] for r in rows))  # one section per family, in order


@pytest.mark.parametrize("args, message", [
    (["table", "squeezenet-1.0", "--resolution", "6"], "layer stem.0.conv (Conv): input (1, 3, 6, 6) is too small"),
    (["table", "resnet-50", "--width-mult", "0"], "--width-mult must be"),
    (["table", "resnet-50", "--depth-mult", "-2"], "--depth-mult must be"),
    (["table", "resnet-50", "--scale", "depth"], "expected DIM=FACTOR"),
    (["table", "resnet-50", "--scale", "height=2"], "unknown dimension"),
    (["table", "resnet-50", "--scale", "width=1e9"], "the factor must be"),
    (["compare"], "Missing argument"),
    (["table", "mobilenetv2"], "did you mean: mobilenet-v2"),
])
def test_bad_overrides(effplan, args, message):
    run = effplan(*args)
    assert run.code == 2 and message in run.err and run.err.count("\n") == 1


def test_groups_must_divide_channels(tmp_path):
    # ShuffleNet v1 g=3 with rounding to whole channels at width 0.51 (not a listed scale): the stem is
    # round(24 * 0.51) = 12 wide, stage 2 round(240 * 0.51) = 122 with a quarter of 30 inside; its first
    # unit's branch gives 122 - 12 (the concatenated pool) = 110 channels, not divisible by 3
    path = spec_variant(tmp_path, "shufflenet-v1", "divisor = 12", "divisor = 1", "min_channels = 12", "min_channels = 1")
    with pytest.raises(effplan.EffplanError, match=r"layer stage1\.block0\.gconv2\.conv: 3 groups do not divide 30 input and 110 output"):
        effplan.analyze(effplan.with_overrides(effplan.resolve(str(path)), width_mult=0.51))


def test_odd_shufflenet_v2_width_names_the_layer(tmp_path):
    # with whole-channel rounding, 116 * 0.37 = 42.9 rounds to 43: a unit cannot split 43 channels in half
    path = spec_variant(tmp_path, "shufflenet-v2", "divisor = 2", "divisor = 1", "min_channels = 2", "min_channels = 1")
    with pytest.raises(effplan.EffplanError, match=r"layer stage1\.block0: a ShuffleNetV2 unit splits its channels in two, and 43 is odd"):
        effplan.analyze(effplan.with_overrides(effplan.resolve(str(path)), width_mult=0.37))


@pytest.mark.parametrize("name", [n for n in MODELS if effplan.resolve(n).coefficients != "published"
                                  or effplan.resolve(n).name == effplan.resolve(n).spec.name])
def test_every_spec_scales_by_phi(name):
    """Compound scaling works on every baseline spec, and grows its cost."""
    base = effplan.resolve(name)
    costs = [effplan.analyze(effplan.compound(base, phi)).totals.macs for phi in (0, 1, 2)]
    assert costs[0] < costs[1] < costs[2]


@pytest.mark.parametrize("name", ["googlenet", "squeezenet-1.0", "squeezenet-1.1", "resnet-50", "xception",
                                  "efficientnet-b0", "shufflenet-v1", "mobilenet-v1"])
def test_depth_scaling_repeats_blocks_never_downsampling(name):
    """Depth adds blocks at a stage's resolution: every stage ends at the same side as before
    (a pooling row between stages is not repeated: a second 'valid' pool would shrink the maps)."""
    def stage_sides(depth):
        g = effplan.build(effplan.with_overrides(effplan.resolve(name), depth_mult=depth))
        last = {}
        for n in g.nodes:
            shape = g.graph["tensors"][g.nodes[n]["outputs"][0]]
            if isinstance(g.nodes[n]["stage"], int) and len(shape) == 4:
                last[g.nodes[n]["stage"]] = shape[2:]
        return last
    assert stage_sides(2.0) == stage_sides(1.0)


def test_a_layer_with_no_channels_names_the_layer(tmp_path):
    # ResNet-50's bottleneck is a quarter of its output: with whole-channel rounding at width 0.01,
    # stage 1's 256 outputs round to 3, and 3 // 4 = 0 channels inside
    path = spec_variant(tmp_path, "resnet-50", "[[stem]]", "[rounding]\ndivisor = 1\nmin_channels = 1\n\n[[stem]]")
    with pytest.raises(effplan.EffplanError, match=r"layer stage1\.block0\.\w+\.conv: 0 output channels"):
        effplan.analyze(effplan.with_overrides(effplan.resolve(str(path)), width_mult=0.01))


@pytest.mark.parametrize("name, resolution, layer", [
    ("resnet-50", 16, "stage4.block0"),  # 16 / 2 (stem) / 2 (pool) / 2 / 2 = 1 px before stage 4's stride 2
    ("efficientnet-b0", 1, "stem.0.conv"),
    ("mobilenet-v2", 8, "stage4.block0"),  # 8 -> 4 -> 2 (stage 2) -> 1 (stage 3), then stage 4 strides
])
def test_resolution_too_small_for_the_strides(effplan, name, resolution, layer):
    run = effplan("table", name, "--resolution", str(resolution))
    assert run.code == 2 and f"layer {layer}" in run.err and "too small for this network's strides" in run.err
    assert run.err.count("\n") == 1
