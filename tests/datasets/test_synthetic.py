"""The embedded synthetic dataset: contract, determinism, cache behaviour, options, plotting."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

import datasets.synthetic as synthetic
from benchmark.core.plugins import DATASETS
from benchmark.core.spec import MASK
from benchmark.report.samples import plot_sample
from benchmark.system.errors import BenchmarkError
from datasets.synthetic import SyntheticOptions, cache_dir
from datasets.synthetic_scene import (
    CAR,
    CLUTTER,
    GENERATOR_VERSION,
    LEGACY_STYLE,
    SceneStyle,
    generate_scene,
    roof_colour,
)

TINY = SyntheticOptions(tile_size=64, train_tiles=3, val_tiles=2, test_tiles=2, seed=0)
VARIANTS = {
    "synthetic": ("optical", "dsm"),
    "synthetic_sar": ("optical", "sar"),
    "synthetic_3m": ("optical", "dsm", "sar"),
    "synthetic_dsm_led": ("optical", "dsm"),
    "synthetic_4m": ("rgb", "nir", "dsm", "sar"),
}


def make(root: Path, split: str = "train", name: str = "synthetic", **changes: object):
    options = SyntheticOptions(**{**TINY.__dict__, **changes})
    return DATASETS.get(name)(root, split, options)


def test_sample_keys_channels_and_dtypes(tmp_path: Path) -> None:
    ds = make(tmp_path, name="synthetic_3m")
    sample = ds.load(0)
    assert set(sample) == {*ds.spec.modality_names, MASK}
    for modality in ds.spec.modalities:
        arr = sample[modality.name]
        assert arr.dtype == np.float32
        assert arr.shape == (modality.channels, 64, 64)
        assert np.isfinite(arr).all()
    assert sample[MASK].dtype == np.int64
    assert sample[MASK].shape == (64, 64)
    assert sample[MASK].min() >= 0 and sample[MASK].max() < ds.spec.num_classes
    assert sample["optical"].min() >= 0.0 and sample["optical"].max() <= 1.0
    assert len(ds) == 3 and ds.tile_shape(0) == (64, 64)


def test_spec_describes_isprs_classes(tmp_path: Path) -> None:
    spec = make(tmp_path, "test").spec
    assert spec.classes == (
        "impervious_surfaces",
        "building",
        "low_vegetation",
        "tree",
        "car",
        "clutter",
    )
    assert spec.palette[1] == (0, 0, 255) and spec.palette[5] == (255, 0, 0)
    assert spec.ignore_index == 255 and spec.label_set == "isprs6"
    assert spec.eval_classes == tuple(range(6))


def test_statistics_come_from_train(tmp_path: Path) -> None:
    test = make(tmp_path, "test")
    train = make(tmp_path, "train")
    assert test.spec.modalities == train.spec.modalities
    optical = np.stack([train.load(i)["optical"] for i in range(len(train))])
    expected = optical.mean(axis=(0, 2, 3))
    np.testing.assert_allclose(train.spec.modality("optical").mean, expected, rtol=1e-4)


def test_same_seed_same_data_different_seed_different(tmp_path: Path) -> None:
    a = make(tmp_path / "a").load(1)
    b = make(tmp_path / "b").load(1)
    c = make(tmp_path / "c", seed=1).load(1)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["optical"], c["optical"])


def test_splits_are_distinct_scenes(tmp_path: Path) -> None:
    train, val, test = (make(tmp_path, s).load(0)["optical"] for s in ("train", "val", "test"))
    assert not np.array_equal(train, val)
    assert not np.array_equal(train, test)
    assert not np.array_equal(val, test)


def test_cache_is_reused_and_shared_by_variants(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = make(tmp_path, "val")
    first.spec  # noqa: B018  (generates train for the statistics)
    before = first.load(0)

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cache should have been reused")

    monkeypatch.setattr(synthetic, "generate_scene", fail)
    for name, mods in VARIANTS.items():
        ds = make(tmp_path, "val", name=name)
        assert ds.spec.modality_names == mods
        sample = ds.load(0)
        assert set(sample) == {*mods, MASK}
        if "optical" in sample:
            np.testing.assert_array_equal(sample["optical"], before["optical"])
        np.testing.assert_array_equal(sample[MASK], before[MASK])
    assert sorted(p.name for p in cache_dir(tmp_path, TINY).iterdir()) == [
        "meta.json",
        "train",
        "val",
    ]


def test_generation_is_lazy_per_split(tmp_path: Path) -> None:
    make(tmp_path, "test")
    assert [p.name for p in cache_dir(tmp_path, TINY).iterdir()] == ["test"]


def test_crashed_generation_leaves_no_trusted_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}
    real = synthetic.generate_scene

    def crash_on_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("boom")
        return real(*args, **kwargs)

    monkeypatch.setattr(synthetic, "generate_scene", crash_on_second)
    with pytest.raises(RuntimeError):
        make(tmp_path, "test")
    assert list(cache_dir(tmp_path, TINY).iterdir()) == []
    monkeypatch.setattr(synthetic, "generate_scene", real)
    assert make(tmp_path, "test").load(1)[MASK].shape == (64, 64)


def test_window_equals_slice_of_full_tile(tmp_path: Path) -> None:
    ds = make(tmp_path, name="synthetic_3m")
    full = ds.load(2)
    window = (slice(10, 42), slice(5, 61))
    part = ds.load(2, window)
    for key, arr in part.items():
        np.testing.assert_array_equal(arr, full[key][..., 10:42, 5:61])
        assert arr.flags.c_contiguous and arr.flags.writeable


def test_imbalance_reduces_rare_classes() -> None:
    def rare_share(imbalance: float) -> float:
        masks = [
            generate_scene(128, synthetic.scene_rng(0, "train", i), imbalance)[MASK]
            for i in range(6)
        ]
        m = np.stack(masks)
        return float(np.isin(m, (CAR, CLUTTER)).mean())

    base, rarer = rare_share(1.0), rare_share(4.0)
    assert base > 0
    assert rarer < 0.5 * base


def test_class_frequencies_are_imbalanced() -> None:
    counts = np.zeros(6)
    for i in range(6):
        mask = generate_scene(256, synthetic.scene_rng(3, "train", i))[MASK]
        counts += np.bincount(mask.ravel(), minlength=6)
    freq = counts / counts.sum()
    assert freq[CAR] < 0.05 and freq[CLUTTER] < 0.03
    assert max(freq[CAR], freq[CLUTTER]) < min(freq[:4])


@pytest.mark.parametrize(
    "changes",
    [
        {"tile_size": 32},
        {"train_tiles": 0},
        {"test_tiles": -1},
        {"imbalance": 0.5},
        {"imbalance": "high"},
        {"tile_size": 64.5},
        {"seed": -1},
        {"optical_ambiguity": 1.5},
        {"optical_ambiguity": -0.1},
        {"optical_ambiguity": float("nan")},
        {"dsm_quality": "good"},
        {"dsm_quality": True},
        {"dsm_quality": 2},
    ],
)
def test_bad_options_raise(changes: dict) -> None:
    with pytest.raises(BenchmarkError):
        SyntheticOptions(**changes)


def test_make_options_rejects_unknown_keys() -> None:
    cls = DATASETS.get("synthetic")
    with pytest.raises(BenchmarkError, match="valid"):
        cls.make_options({"tiles": 3})
    assert cls.make_options({"imbalance": 2}).imbalance == 2.0


def test_bad_index_raises(tmp_path: Path) -> None:
    with pytest.raises(IndexError):
        make(tmp_path, "val").load(5)


def test_plot_returns_figure(tmp_path: Path) -> None:
    ds = make(tmp_path, "val", name="synthetic_3m")
    sample = ds.load(0)
    fig = plot_sample(ds.spec, sample, prediction=sample[MASK], title="tile")
    assert isinstance(fig, Figure)
    assert len(fig.axes) >= 5  # three modalities, labels, prediction (+ colourbars)


# The original generator (version 1) on one scene: mask hash and per-array sums / sums of
# squares, recorded from that generator's code before the style knobs existed.
_LEGACY_MASK_SHA = "f4418b17a200fbdc"
_LEGACY_MOMENTS = {
    "optical": (9878.503399530426, 4563.7546615217625),
    "dsm": (52583.26154159289, 697469.5208141482),
    "sar": (-135788.7741484791, 2559045.9652394233),
}


def test_legacy_style_reproduces_the_original_generator() -> None:
    scene = generate_scene(96, synthetic.scene_rng(5, "train", 2), 1.0, LEGACY_STYLE)
    assert hashlib.sha256(scene[MASK].tobytes()).hexdigest()[:16] == _LEGACY_MASK_SHA
    for name, (total, squares) in _LEGACY_MOMENTS.items():
        data = scene[name].astype(np.float64)
        assert data.sum() == pytest.approx(total, rel=1e-9), name
        assert (data**2).sum() == pytest.approx(squares, rel=1e-9), name


def test_dsm_led_variant_is_the_legacy_style_and_shares_its_cache(tmp_path: Path) -> None:
    led = DATASETS.get("synthetic_dsm_led").make_options({})
    assert led.style is LEGACY_STYLE
    same = SyntheticOptions(optical_ambiguity=1.0, dsm_quality=1.0)
    assert cache_dir(tmp_path, led) == cache_dir(tmp_path, same)
    assert DATASETS.get("synthetic").make_options({}).style != LEGACY_STYLE


def test_cache_is_keyed_by_generator_version_and_style(tmp_path: Path) -> None:
    default = cache_dir(tmp_path, TINY)
    assert default.name.startswith(f"v{GENERATOR_VERSION}-")
    for changes in ({"optical_ambiguity": 0.9}, {"dsm_quality": 0.9}):
        other = SyntheticOptions(**{**TINY.__dict__, **changes})
        assert cache_dir(tmp_path, other) != default


def test_styles_change_the_sensors_but_not_the_layout() -> None:
    rng = synthetic.scene_rng(1, "train", 0)
    legacy = generate_scene(64, rng, 1.0, LEGACY_STYLE)
    # Same layout draws as long as no colour branch differs: compare the class maps only when
    # the style leaves colours alone (DSM quality only touches the DSM, after the layout).
    poor_dsm = generate_scene(64, synthetic.scene_rng(1, "train", 0), 1.0, SceneStyle(1.0, 0.0))
    np.testing.assert_array_equal(legacy[MASK], poor_dsm[MASK])
    np.testing.assert_array_equal(legacy["optical"], poor_dsm["optical"])
    assert not np.array_equal(legacy["dsm"], poor_dsm["dsm"])


def test_clear_optics_never_paint_roofs_road_grey() -> None:
    rng = np.random.default_rng(0)
    clear = SceneStyle(optical_ambiguity=0.0, dsm_quality=1.0)
    for _ in range(200):
        nir, red, green, blue = roof_colour(rng, False, clear)
        assert red > 1.1 * green  # tiles, never a flat grey spectrum
    legacy = [roof_colour(rng, False) for _ in range(400)]
    flat = [c for c in legacy if np.ptp(c[:3]) < 0.1 * c[:3].mean()]
    assert 0.35 < len(flat) / len(legacy) < 0.8  # half grey + 15 % dark in the legacy style


def test_4m_modalities_regroup_the_stored_bands(tmp_path: Path) -> None:
    four = make(tmp_path, "val", name="synthetic_4m")
    three = make(tmp_path, "val", name="synthetic_3m")
    a, b = four.load(1), three.load(1)
    np.testing.assert_array_equal(a["nir"][0], b["optical"][0])
    np.testing.assert_array_equal(a["rgb"][:2], b["optical"][1:])
    assert a["rgb"].shape == (3, 64, 64) and a["rgb"].min() >= 0.0 and a["rgb"].max() <= 1.0
    assert not np.array_equal(a["rgb"][2], a["rgb"][1])  # a real blue band
    kinds = {m.name: m.kind for m in four.spec.modalities}
    assert kinds == {"rgb": "optical", "nir": "optical", "dsm": "elevation", "sar": "sar"}
    spec3 = three.spec
    assert four.spec.modality("nir").mean[0] == spec3.modality("optical").mean[0]
    assert four.spec.modality("rgb").mean[:2] == spec3.modality("optical").mean[1:]
