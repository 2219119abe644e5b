"""Invariants of the test-time corruptions: determinism per tile, targets by kind, nested
severities, untouched labels and inputs, and one-line errors for bad CLI values."""

import numpy as np
import pytest

from benchmark.core.spec import MASK, DatasetSpec, Modality
from benchmark.corrupt.blocks import sar_scale
from benchmark.corrupt.corruption import SEVERITIES, parse_severities
from benchmark.corrupt.registry import CORRUPTIONS, corrupt, parse_corruptions, target_modalities
from benchmark.system.errors import BenchmarkError
from tests.paths import REPO

SIZE = 64
NAMES = tuple(CORRUPTIONS)
BUILT_IN = ("clouds", "haze", "dsm_voids", "speckle", "misregistration", "noise")
MODALITIES = (
    Modality("rgb", 3, (0.3, 0.2, 0.2), (0.1, 0.08, 0.08), "R, G, B reflectance [0-1]"),
    Modality("nir", 1, (0.4,), (0.15,), "near-infrared reflectance [0-1]"),
    Modality("dsm", 1, (6.0,), (6.0,), "surface height [m]"),
    Modality("sar", 1, (-15.0,), (6.7,), "SAR backscatter [dB]"),
)


def _spec(modalities: tuple[Modality, ...] = MODALITIES) -> DatasetSpec:
    return DatasetSpec("four", modalities, ("a", "b"), ((0, 0, 0), (255, 255, 255)))


SPEC = _spec()


def _sample() -> dict[str, np.ndarray]:
    """Raw arrays around each modality's statistics, shaped as a cone (a translation changes
    it more the further it goes, whatever its direction), and a label map."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE - 0.5
    sample = {}
    for m in MODALITIES:
        cone = np.hypot(xx, yy)  # a translation in any direction changes it alike
        bands = [m.mean[c] + (2.0 + 0.2 * c) * m.std[c] * (cone - 0.4) for c in range(m.channels)]
        sample[m.name] = np.stack(bands).astype(np.float32)
    sample[MASK] = rng.integers(0, 2, (SIZE, SIZE)).astype(np.uint8)
    return sample


SAMPLE = _sample()


def _damage(name: str, severity: int, tile: str = "tile_0") -> float:
    """Mean |corrupted - clean| in band stds over the corruption's targets."""
    out = corrupt(SAMPLE, SPEC, name, severity, seed=0, tile_name=tile).arrays
    total = []
    for m in target_modalities(name, SPEC):
        std = np.asarray(SPEC.modality(m).std)[:, None, None]
        total.append(np.mean(np.abs(out[m] - SAMPLE[m]) / std))
    return float(np.mean(total))


def test_catalogue_documents_every_corruption() -> None:
    assert NAMES[: len(BUILT_IN)] == BUILT_IN  # MissBench's own first, plugins after
    assert SEVERITIES == (1, 2, 3, 4, 5)
    for name in NAMES:
        c = CORRUPTIONS.get(name)
        assert c.name == name
        assert c.targets and c.physics and c.severity_step and c.parameter
        assert len(c.values) == len(SEVERITIES)
        assert c.value(3) == c.values[2]
    for name in BUILT_IN:
        assert bool(CORRUPTIONS.get(name).invalid) == (name in ("clouds", "dsm_voids"))


def test_parse_corruptions() -> None:
    assert parse_corruptions("clouds,haze") == ("clouds", "haze")
    assert parse_corruptions(" noise , clouds,noise") == ("noise", "clouds")
    assert parse_corruptions("all") == NAMES
    for bad in ("fog", "clouds,fog", "", "all,clouds", "Clouds"):
        with pytest.raises(BenchmarkError) as error:
            parse_corruptions(bad)
        message = str(error.value)
        assert "\n" not in message and "clouds" in message
        assert repr(bad.split(",")[-1].strip()) in message or repr(bad) in message


def test_parse_severities() -> None:
    assert parse_severities("1-5") == SEVERITIES
    assert parse_severities("1,3,5") == (1, 3, 5)
    assert parse_severities("3") == (3,)
    assert parse_severities("5, 1-2") == (1, 2, 5)
    assert parse_severities("all") == SEVERITIES
    for bad in ("0", "6", "1-6", "4-2", "x", "", "1,,2", "2.5"):
        with pytest.raises(BenchmarkError) as error:
            parse_severities(bad)
        assert repr(bad) in str(error.value) and "\n" not in str(error.value)


def test_targets_by_kind() -> None:
    assert target_modalities("clouds", SPEC) == ("rgb", "nir")
    assert target_modalities("haze", SPEC) == ("rgb", "nir")
    assert target_modalities("dsm_voids", SPEC) == ("dsm",)
    assert target_modalities("speckle", SPEC) == ("sar",)
    assert target_modalities("misregistration", SPEC) == ("dsm", "sar")
    assert target_modalities("noise", SPEC) == ("rgb", "nir", "dsm", "sar")
    no_optical = _spec(MODALITIES[2:])
    assert target_modalities("misregistration", no_optical) == ("sar",)
    assert target_modalities("clouds", no_optical) == ()
    explicit = _spec((Modality("img", 3, (0.0,) * 3, (1.0,) * 3, kind="optical"), MODALITIES[2]))
    assert target_modalities("clouds", explicit) == ("img",)
    with pytest.raises(BenchmarkError, match="'fog'"):
        target_modalities("fog", SPEC)


@pytest.mark.parametrize("name", NAMES)
def test_only_targets_change_and_outputs_are_finite_float32(name: str) -> None:
    targets = target_modalities(name, SPEC)
    for severity in SEVERITIES:
        result = corrupt(SAMPLE, SPEC, name, severity, seed=0, tile_name="tile_0")
        assert set(result.arrays) == set(SAMPLE)
        assert set(result.validity) <= set(targets)
        for m in SPEC.modality_names:
            out = result.arrays[m]
            assert out.dtype == np.float32 and out.shape == SAMPLE[m].shape
            assert np.isfinite(out).all()
            assert np.array_equal(out, SAMPLE[m]) != (m in targets), (m, severity)
        for valid in result.validity.values():
            assert valid.dtype == bool and valid.shape == (SIZE, SIZE) and not valid.all()
            assert not valid.flags.writeable


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_per_tile_and_seed(name: str) -> None:
    # severity 5: a 16-pixel shift has ~128 directions, so two tiles rarely share one
    first = corrupt(SAMPLE, SPEC, name, 5, seed=0, tile_name="tile_0")
    again = corrupt(SAMPLE, SPEC, name, 5, seed=0, tile_name="tile_0")
    other_tile = corrupt(SAMPLE, SPEC, name, 5, seed=0, tile_name="tile_1")
    other_seed = corrupt(SAMPLE, SPEC, name, 5, seed=1, tile_name="tile_0")
    for m in target_modalities(name, SPEC):
        assert np.array_equal(first.arrays[m], again.arrays[m])
        assert not np.array_equal(first.arrays[m], other_tile.arrays[m])
        assert not np.array_equal(first.arrays[m], other_seed.arrays[m])
    assert first.validity.keys() == again.validity.keys()
    for m, valid in first.validity.items():
        assert np.array_equal(valid, again.validity[m])


@pytest.mark.parametrize("name", NAMES)
def test_independent_of_the_other_modalities_present(name: str) -> None:
    full = corrupt(SAMPLE, SPEC, name, 4, seed=0, tile_name="tile_0")
    for m in target_modalities(name, SPEC):
        alone = corrupt({m: SAMPLE[m]}, SPEC, name, 4, seed=0, tile_name="tile_0")
        assert set(alone.arrays) == {m}
        assert np.array_equal(alone.arrays[m], full.arrays[m])
        assert (m in alone.validity) == (m in full.validity)
        if m in full.validity:
            assert np.array_equal(alone.validity[m], full.validity[m])


@pytest.mark.parametrize("name", NAMES)
def test_label_passes_through_and_inputs_are_not_mutated(name: str) -> None:
    sample = {k: v.copy() for k, v in SAMPLE.items()}
    for v in sample.values():
        v.flags.writeable = False  # any in-place write raises
    result = corrupt(sample, SPEC, name, 5, seed=0, tile_name="tile_0")
    assert result.arrays[MASK] is sample[MASK]
    for k, v in sample.items():
        assert np.array_equal(v, SAMPLE[k])


@pytest.mark.parametrize("name", NAMES)
def test_damage_grows_with_severity(name: str) -> None:
    for tile in ("tile_0", "tile_1"):
        damage = [_damage(name, s, tile) for s in SEVERITIES]
        assert all(a < b for a, b in zip(damage, damage[1:], strict=False)), (tile, damage)
        assert damage[0] > 0


@pytest.mark.parametrize(("name", "modality"), [("clouds", "rgb"), ("dsm_voids", "dsm")])
def test_invalid_pixels_grow_nested_at_the_stated_fraction(name: str, modality: str) -> None:
    previous = np.ones((SIZE, SIZE), bool)
    for severity in SEVERITIES:
        valid = corrupt(SAMPLE, SPEC, name, severity, 0, "tile_0").validity[modality]
        assert not (valid & ~previous).any(), "an invalid pixel became valid again"
        assert (~valid).mean() == pytest.approx(CORRUPTIONS.get(name).value(severity), abs=0.03)
        previous = valid


def test_one_opaque_sky_over_every_optical_band() -> None:
    result = corrupt(SAMPLE, SPEC, "clouds", 3, seed=0, tile_name="tile_0")
    opaque = ~result.validity["rgb"]
    assert np.array_equal(result.validity["rgb"], result.validity["nir"])
    for m in ("rgb", "nir"):
        mod = SPEC.modality(m)
        bright = np.asarray(mod.mean)[:, None] + 1.0 * np.asarray(mod.std)[:, None]
        assert (result.arrays[m][:, opaque] > bright).all(), "clouds are opaque in NIR too"
    valid = result.validity["nir"]
    ratio = result.arrays["nir"][0][valid] / SAMPLE["nir"][0][valid]
    assert (ratio < 0.8).any(), "cloud shadows darken the valid ground"
    assert (ratio > 1.2).any(), "the semi-transparent rim brightens the valid ground"


def test_voids_hold_the_band_mean() -> None:
    result = corrupt(SAMPLE, SPEC, "dsm_voids", 3, seed=0, tile_name="tile_0")
    void = ~result.validity["dsm"]
    assert np.all(result.arrays["dsm"][0][void] == np.float32(6.0))
    assert np.array_equal(result.arrays["dsm"][0][~void], SAMPLE["dsm"][0][~void])


def test_haze_pulls_every_pixel_towards_the_airlight() -> None:
    result = corrupt(SAMPLE, SPEC, "haze", 5, seed=0, tile_name="tile_0")
    assert result.validity == {}
    mod = SPEC.modality("rgb")
    airlight = np.asarray(mod.mean)[:, None, None] + 2.0 * np.asarray(mod.std)[:, None, None]
    before = np.abs(SAMPLE["rgb"] - airlight)
    after = np.abs(result.arrays["rgb"] - airlight)
    assert (after < before).all()
    assert np.median(after / before) == pytest.approx(0.35, abs=0.03)


def test_sar_scale_rule() -> None:
    assert sar_scale(MODALITIES[3]) == "dB"
    assert sar_scale(Modality("sar", 1, (-12.0,), (5.0,))) == "dB"  # negative mean: log units
    assert sar_scale(Modality("sar", 1, (60.0,), (30.0,), "SAR backscatter")) == "intensity"
    assert sar_scale(Modality("sar", 1, (0.2,), (0.1,), "VV amplitude")) == "amplitude"


def test_speckle_is_unit_mean_in_linear_intensity() -> None:
    linear = Modality("sar", 1, (0.2,), (0.1,), "linear intensity")
    spec = _spec((MODALITIES[0], linear))
    clean = np.full((1, SIZE, SIZE), 0.2, np.float32)
    for severity in SEVERITIES:
        looks = CORRUPTIONS.get("speckle").value(severity)
        out = corrupt({"sar": clean}, spec, "speckle", severity, 0, "t").arrays["sar"]
        gain = out / clean
        assert (gain > 0).all()
        assert gain.mean() == pytest.approx(1.0, abs=0.05)
        assert gain.var() == pytest.approx(1.0 / looks, rel=0.15)
    out_db = corrupt(SAMPLE, SPEC, "speckle", 5, 0, "t").arrays["sar"]
    gain_db = 10.0 ** ((out_db - SAMPLE["sar"]) / 10.0)
    assert gain_db.mean() == pytest.approx(1.0, abs=0.05)


def test_misregistration_is_a_pure_translation() -> None:
    spec = _spec(MODALITIES[2:])  # no optical modality: the first (dsm) stays put
    k = 16
    result = corrupt(SAMPLE, spec, "misregistration", 5, seed=3, tile_name="t")
    assert np.array_equal(result.arrays["dsm"], SAMPLE["dsm"])
    out, clean = result.arrays["sar"][0], SAMPLE["sar"][0]
    found = [
        (dy, dx)
        for dy in range(-k, k + 1)
        for dx in range(-k, k + 1)
        if np.array_equal(
            out[k : SIZE - k, k : SIZE - k], clean[k - dy : SIZE - k - dy, k - dx : SIZE - k - dx]
        )
    ]
    assert len(found) == 1 and max(map(abs, found[0])) == k


def test_noise_sigma_follows_the_band_std() -> None:
    for severity in SEVERITIES:
        out = corrupt(SAMPLE, SPEC, "noise", severity, 0, "tile_0").arrays["rgb"]
        residual = (out - SAMPLE["rgb"]).std(axis=(1, 2))
        expected = CORRUPTIONS.get("noise").value(severity) * np.asarray(SPEC.modality("rgb").std)
        np.testing.assert_allclose(residual, expected, rtol=0.1)


def test_bad_calls_fail_clearly() -> None:
    with pytest.raises(BenchmarkError, match="'fog'"):
        corrupt(SAMPLE, SPEC, "fog", 1, 0, "t")
    for severity in (0, 6, 3.0, True):
        with pytest.raises(BenchmarkError, match=repr(severity)):
            corrupt(SAMPLE, SPEC, "noise", severity, 0, "t")
    with pytest.raises(ValueError, match="rgb"):
        corrupt({"rgb": SAMPLE["rgb"][0]}, SPEC, "noise", 1, 0, "t")


def test_user_doc_states_the_parameters_the_code_runs() -> None:
    doc = (REPO / "docs" / "corruptions.md").read_text()
    for name in NAMES:
        c = CORRUPTIONS.get(name)
        assert f"## `{name}`" in doc
        row = next(line for line in doc.splitlines() if line.startswith(f"| `{name}` |"))
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert [float(v) for v in cells[-5:]] == list(c.values), name
        assert c.parameter in row
