"""The embedded synthetic dataset: contract, determinism, cache behaviour, options, plotting."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

import datasets.synthetic as synthetic
from benchmark.core.errors import BenchmarkError
from benchmark.core.plugins import DATASETS
from benchmark.core.spec import MASK
from datasets.synthetic import SyntheticOptions, cache_dir
from datasets.synthetic_scene import CAR, CLUTTER, generate_scene

TINY = SyntheticOptions(tile_size=64, train_tiles=3, val_tiles=2, test_tiles=2, seed=0)
VARIANTS = {
    "synthetic": ("optical", "dsm"),
    "synthetic_sar": ("optical", "sar"),
    "synthetic_3m": ("optical", "dsm", "sar"),
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
    fig = ds.plot(sample, prediction=sample[MASK], title="tile")
    assert isinstance(fig, Figure)
    assert len(fig.axes) >= 5  # three modalities, labels, prediction (+ colourbars)
