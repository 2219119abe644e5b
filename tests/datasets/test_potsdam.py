"""ISPRS Potsdam on a fake tree with the provider's names, nesting, dtypes and encodings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile
from PIL import Image

from benchmark.cli import main
from benchmark.core.plugins import DATASETS
from benchmark.core.spec import MASK
from benchmark.system.errors import BenchmarkError, DatasetNotFoundError
from tests.datasets.fake_data import committed_files, generated_files, make_fake, run_cli


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_fake("potsdam", tmp_path_factory.mktemp("potsdam_root"))


def open_ds(root, which="train", **options):
    cls = DATASETS.get("potsdam")
    return cls(root, which, cls.make_options(options))


def test_committed_fake_matches_generator(root):
    assert committed_files("potsdam") == generated_files(root, "potsdam")


def test_splits_and_drop_7_10(root):
    assert [open_ds(root, s).tile_name(0) for s in ("val", "test")] == ["2_10", "2_13"]
    train = open_ds(root)
    assert [train.tile_name(i) for i in range(len(train))] == ["2_11", "7_10"]
    assert len(open_ds(root, drop_7_10=True)) == 1
    fusion = {s: open_ds(root, s, split="fusion") for s in ("train", "val", "test")}
    assert [fusion[s].tile_name(0) for s in ("train", "val", "test")] == ["7_10", "2_10", "2_11"]


def test_rgbir_is_read_band_exactly_and_dsm_is_float(root):
    sample = open_ds(root).load(0)
    tile = root / "potsdam"
    rgbir = np.asarray(Image.open(tile / "4_Ortho_RGBIR/top_potsdam_2_11_RGBIR.tif"))
    assert sample["optical"].shape == (4, 64, 64) and sample["optical"].dtype == np.float32
    np.testing.assert_array_equal(sample["optical"], np.moveaxis(rgbir, -1, 0))
    dsm = tifffile.imread(tile / "1_DSM/dsm_potsdam_02_11.tif")
    np.testing.assert_array_equal(sample["dsm"][0], dsm)
    irrg = open_ds(root, optical="irrg").load(0)["optical"]
    np.testing.assert_array_equal(irrg[0], sample["optical"][3])  # NIR first in IRRG
    assert open_ds(root, optical="rgb").spec.modality("optical").channels == 3


def test_labels_full_vs_eroded_and_off_palette_is_ignored(root):
    full = open_ds(root).load(0)[MASK]
    assert full.dtype == np.int64 and full[0, 0] == 255  # the off-palette pixel
    assert set(np.unique(full)) <= {0, 1, 2, 3, 4, 5, 255}
    eroded = open_ds(root, train_labels="eroded").load(0)[MASK]
    boundary = eroded == 255
    assert boundary.sum() > (full == 255).sum()  # black boundaries -> ignore, never clutter
    np.testing.assert_array_equal(
        eroded[~boundary & (full != 255)], full[~boundary & (full != 255)]
    )


def test_ndsm_falls_back_to_ownapproach(root):
    ds = open_ds(root, height="ndsm")
    assert ds.tiles[0].id == "2_11"
    assert "ownapproach" in str(dict(ds.tiles[0].sources)["dsm"])
    assert ds.load(0)["dsm"].shape == (1, 64, 64)


def test_spec_convention_and_stats_from_train(root):
    test = open_ds(root, "test")
    spec = test.spec
    assert spec.eval_classes == (0, 1, 2, 3, 4) and spec.ignore_index == 255
    assert "eval=eroded" in spec.label_set and "clutter_in_mean=false" in spec.label_set
    assert open_ds(root, clutter_in_mean=True).spec.eval_classes == tuple(range(6))
    train = open_ds(root)
    optical = np.concatenate([train.load(i)["optical"].reshape(4, -1) for i in range(2)], 1)
    np.testing.assert_allclose(spec.modality("optical").mean, optical.mean(1), rtol=1e-5)


def test_windows_read_from_the_cache(root):
    ds = open_ds(root)
    whole = ds.load(1)
    part = ds.load(1, (slice(8, 40), slice(16, 48)))
    for key in whole:
        np.testing.assert_array_equal(part[key], whole[key][..., 8:40, 16:48])


def test_bad_options_and_missing_data(tmp_path, root):
    with pytest.raises(BenchmarkError, match="optical must be one of"):
        open_ds(root, optical="rgbn")
    with pytest.raises(DatasetNotFoundError, match="4_Ortho_RGBIR"):
        open_ds(tmp_path)


def test_end_to_end_cli(root, tmp_path):
    out = tmp_path / "out"
    assert run_cli("potsdam[optical=rgbir]", root, out) == 0
    board = pd.read_csv(out / "leaderboard.csv")
    assert sorted(board["scenario"]) == ["dsm", "dsm+optical", "optical"]
    assert (board["label_set"].str.contains("eval=eroded")).all()


def test_empty_folder_is_one_line_exit_2(tmp_path, capsys):
    code = main(
        ["--dataset", "potsdam", "--data-root", str(tmp_path), "--out", str(tmp_path / "o")]
    )
    err = capsys.readouterr()
    text = (err.out + err.err).strip()
    assert code == 2 and "potsdam" in text and "isprs.org" in text.replace("\n", "")
