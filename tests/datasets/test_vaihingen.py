"""ISPRS Vaihingen on a fake tree with the provider's names, nesting, dtypes and encodings."""

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
    return make_fake("vaihingen", tmp_path_factory.mktemp("vaihingen_root"))


def open_ds(root, which="train", **options):
    cls = DATASETS.get("vaihingen")
    return cls(root, which, cls.make_options(options))


def names(ds):
    return [ds.tile_name(i) for i in range(len(ds))]


def test_committed_fake_matches_generator(root):
    assert committed_files("vaihingen") == generated_files(root, "vaihingen")


def test_protocols_hold_out_val_from_train_and_skip_area9(root):
    assert names(open_ds(root)) == ["area1", "area3", "area5", "area37"]
    assert names(open_ds(root, "val")) == ["area30"]
    assert names(open_ds(root, "test")) == ["area2"]
    assert names(open_ds(root, split="fusion")) == ["area1", "area3"]
    assert names(open_ds(root, "val", split="fusion")) == ["area37"]
    assert names(open_ds(root, "test", split="fusion")) == ["area5", "area30"]


def test_irrg_dsm_and_labels(root):
    sample = open_ds(root).load(0)
    assert sample["optical"].shape == (3, 32, 32) and sample["dsm"].dtype == np.float32
    dsm = tifffile.imread(root / "vaihingen/dsm/dsm_09cm_matching_area1.tif")
    np.testing.assert_array_equal(sample["dsm"][0], dsm)  # absolute heights, untouched
    assert sample["dsm"].min() > 200
    assert sample[MASK][-1, -1] == 255  # off-palette colour
    eroded = open_ds(root, "test").load(0)[MASK]  # eval labels default to eroded
    full = open_ds(root, "test", eval_labels="full").load(0)[MASK]
    assert (eroded == 255).sum() > (full == 255).sum()
    ndsm = open_ds(root, height="ndsm").load(0)["dsm"]
    assert ndsm.shape == (1, 32, 32) and ndsm.max() <= 255


def test_missing_dsm_names_the_file(root, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(root / "vaihingen", copy / "vaihingen")
    (copy / "vaihingen/dsm/dsm_09cm_matching_area3.tif").unlink()
    with pytest.raises(DatasetNotFoundError, match="area3.*dsm/"):
        open_ds(copy)


def test_end_to_end_cli(root, tmp_path):
    out = tmp_path / "out"
    assert run_cli("vaihingen[split=fusion,clutter_in_mean=true]", root, out) == 0
    board = pd.read_csv(out / "leaderboard.csv")
    assert len(board) == 3 and board["eval_classes"].str.contains("clutter").all()
