"""EarthMiss on a fake tree with the provider's names, nesting, dtypes and encodings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile

from benchmark.core.plugins import DATASETS
from benchmark.core.spec import MASK
from benchmark.system.errors import DatasetNotFoundError
from tests.datasets.fake_data import committed_files, generated_files, make_fake, run_cli


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_fake("earthmiss", tmp_path_factory.mktemp("earthmiss_root"))


def open_ds(root, which="train"):
    return DATASETS.get("earthmiss")(root, which)


def test_committed_fake_matches_generator(root):
    assert committed_files("earthmiss") == generated_files(root, "earthmiss")


def test_city_wise_split(root):
    names = {
        s: [open_ds(root, s).tile_name(i) for i in range(len(open_ds(root, s)))]
        for s in ("train", "val", "test")
    }
    assert names == {
        "train": ["Nanjing/1", "Nanjing/2", "Singapore/7"],
        "val": ["America-Pake/3"],
        "test": ["Peru-Callao/5"],
    }


def test_mask_k_minus_one_and_zero_is_ignore(root):
    raw = tifffile.imread(root / "earthmiss/Nanjing/masks/1_mask.tif")
    assert raw.dtype == np.float32
    sample = open_ds(root).load(0)
    assert sample["optical"].shape == (3, 32, 32) and sample["sar"].shape == (1, 32, 32)
    labelled = raw > 0
    np.testing.assert_array_equal(sample[MASK][labelled], raw[labelled].astype(np.int64) - 1)
    assert (sample[MASK][~labelled] == 255).all()
    spec = open_ds(root).spec
    assert spec.num_classes == 8 and spec.eval_classes == tuple(range(8))
    assert spec.palette[4] == (159, 129, 183)


def test_empty_city_folder(tmp_path):
    (tmp_path / "earthmiss" / "Nanjing" / "masks").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError, match="Zenodo"):
        open_ds(tmp_path)


def test_end_to_end_cli(root, tmp_path):
    assert run_cli("earthmiss", root, tmp_path / "out", "--missing", "optical") == 0
    board = pd.read_csv(tmp_path / "out" / "leaderboard.csv")
    assert list(board["scenario"]) == ["optical+sar", "sar"]
