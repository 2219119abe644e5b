import numpy as np
import pytest
import torch

from benchmark.core.plugins import DATASETS
from benchmark.data.pipeline import PatchSampler
from benchmark.data.transforms import Normalizer, random_dihedral
from tests.conftest import TINY


@pytest.fixture()
def train(data_root):
    cls = DATASETS.get("synthetic")
    return cls(data_root, "train", cls.make_options(TINY))


def test_batches_are_a_pure_function_of_seed_and_step(train):
    a = PatchSampler(train, batch_size=3, crop=32, seed=5)
    b = PatchSampler(train, batch_size=3, crop=32, seed=5)
    for step in (0, 7):
        x, y = a.batch(step), b.batch(step)
        assert all(torch.equal(x[k], y[k]) for k in x)
    other = PatchSampler(train, batch_size=3, crop=32, seed=6).batch(0)
    assert not torch.equal(a.batch(0)["mask"], other["mask"])
    assert not torch.equal(a.batch(0)["mask"], a.batch(1)["mask"])


def test_batch_shapes_dtypes_and_normalisation(train):
    batch = PatchSampler(train, batch_size=4, crop=32, seed=0).batch(0)
    assert set(batch) == {"optical", "dsm", "mask"}
    assert batch["optical"].shape == (4, 3, 32, 32) and batch["optical"].dtype == torch.float32
    assert batch["dsm"].shape == (4, 1, 32, 32)
    assert batch["mask"].shape == (4, 32, 32) and batch["mask"].dtype == torch.int64
    big = PatchSampler(train, batch_size=16, crop=64, seed=0).batch(0)
    assert abs(float(big["optical"].mean())) < 0.5  # normalised with train statistics


def test_augmentation_moves_every_modality_and_the_mask_together():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(1, 8, 8)).astype(np.float32)
    sample = {"a": np.repeat(base, 3, axis=0), "b": base.copy(), "mask": base[0].copy()}
    for seed in range(8):
        out = random_dihedral(sample, np.random.default_rng(seed))
        np.testing.assert_array_equal(out["a"][0], out["b"][0])
        np.testing.assert_array_equal(out["b"][0], out["mask"])


def test_normaliser_maps_mean_to_zero_and_nodata_to_mean(train):
    normalize = Normalizer(train.spec)
    dsm = train.spec.modality("dsm")
    raw = {"dsm": np.full((1, 4, 4), dsm.mean[0], np.float32), "mask": np.zeros((4, 4))}
    raw["dsm"][0, 0, 0] = np.nan
    out = normalize(raw)
    np.testing.assert_allclose(out["dsm"], 0.0, atol=1e-6)
