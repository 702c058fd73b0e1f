"""Spec files: user specs work anywhere a model name does; bad ones fail with the file and key."""
import re
from pathlib import Path

import pytest

import effplan
from conftest import spec_variant
from effplan.design.spec import SpecError, load_spec

B0 = Path(__file__).resolve().parent.parent / "specs" / "models" / "efficientnet-b0.toml"


def variant(tmp_path, old, new):
    return spec_variant(tmp_path, "efficientnet-b0", old, new)


def test_user_spec_file_changes_the_network(tmp_path):
    # 10 classes instead of 1000: the classifier loses 990 * 1280 weights and 990 biases
    path = variant(tmp_path, "classes = 1000", "classes = 10")
    t = effplan.analyze(effplan.resolve(str(path))).totals
    assert t.params == 5288548 - 990 * 1280 - 990


def test_malformed_toml_names_the_file_and_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('name = "x"\nresolution = = 3\n')
    with pytest.raises(SpecError, match=r"bad\.toml: not valid TOML: .*line 2"):
        load_spec(path)


@pytest.mark.parametrize("old, new, message", [
    ("kernel = 5", 'kernel = "five"', r"stages\[2\]\.kernel: expected an integer, got 'five'"),
    ("repeats = 3", "repeats = 0", r"toml: stages\[3\]\.repeats: expected a value between 1 and 1000, got 0"),
    ("se = 0.25", "se = 1.5", r"stages\[0\]\.se: expected a value between 0.0 and 1.0"),
    ("resolution = 224", "resolutoin = 224", r"unknown key 'resolutoin' \(did you mean: resolution"),
    ('block = "mbconv"', 'block = "mbconvv"', r"stages\[0\]\.block: unknown block kind 'mbconvv' \(did you mean: mbconv"),
    ('activation = "swish"', 'activation = "gelu2"', r"activation: expected one of"),
    ("[[head]]", "[[heads]]", r"unknown key 'heads'"),
    ("kernel = 5", "kernal = 5", r"stages\[2\]: unknown key 'kernal' \(did you mean: kernel"),
    ("repeats = 4", "repeats = 100000000", r"repeats: expected a value between 1 and 1000"),
])
def test_wrong_spec_values(tmp_path, old, new, message):
    path = variant(tmp_path, old, new)
    with pytest.raises(SpecError, match=message) as err:
        load_spec(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_missing_key(tmp_path):
    path = variant(tmp_path, 'source = "', 'sauce = "')
    with pytest.raises(SpecError, match=r"unknown key 'sauce'"):
        load_spec(path)
    path.write_text(B0.read_text().replace('description = "', 'summary = "'))
    with pytest.raises(SpecError, match=r"unknown key 'summary'"):
        load_spec(path)
    path.write_text(B0.read_text().replace('description = "', '# description = "'))
    with pytest.raises(SpecError, match=r"missing key 'description'"):
        load_spec(path)


@pytest.mark.parametrize("content", [b"", b"\x00\xff\xfe binary", b"[[" * 10000])
def test_hostile_files(tmp_path, content):
    path = tmp_path / "hostile.toml"
    path.write_bytes(content)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert re.match(r".*hostile\.toml: ", str(err.value))


def test_spec_is_frozen():
    spec = load_spec(B0)
    with pytest.raises(AttributeError):
        spec.resolution = 300


def test_groups_that_do_not_divide_channels_name_the_layer(tmp_path):
    # the stem conv reads 3 input channels: 5 groups cannot divide them
    path = variant(tmp_path, 'block = "conv"', 'block = "conv"\ngroups = 5')
    with pytest.raises(effplan.EffplanError, match=r"layer stem\.0\.conv: 5 groups do not divide 3 input"):
        effplan.analyze(effplan.resolve(str(path)))


@pytest.mark.parametrize("table, message", [
    ('{ "half" = 12 }', r"key 'half' is not a width multiplier"),
    ('{ "0.5" = 0 }', r"channels_by_width\.0\.5: expected a channel count between 1"),
    ('{ "-1" = 12 }', r"width multiplier '-1' must be in \(0, 64\]"),
    ('[12, 24]', r"expected a table of width multiplier = channels"),
])
def test_bad_channels_by_width(tmp_path, table, message):
    path = spec_variant(tmp_path, "shufflenet-v1", 'channels_by_width = { "0.5" = 12, "1.0" = 24, "1.5" = 24, "2.0" = 48 }',
                        f"channels_by_width = {table}")
    with pytest.raises(SpecError, match=message) as err:
        load_spec(path)
    assert "stem[0].channels_by_width" in str(err.value)


def test_channels_by_width_picks_listed_scales_and_rounds_the_rest(tmp_path):
    # ShuffleNet v1 g=3 stem: 12 at 0.5x (listed), 24 * 0.75 = 18 rounded to the spec's multiple of 12 -> 24
    stem = lambda w: effplan.analyze(effplan.with_overrides(effplan.resolve("shufflenet-v1"), width_mult=w)).rows[0]  # noqa: E731
    assert stem(0.5).output_shape[1] == 12 and stem(2.0).output_shape[1] == 48 and stem(0.75).output_shape[1] == 24
