"""WHU-OPT-SAR on a fake tree with the provider's names, nesting, dtypes and encodings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile

from benchmark.cli import main
from benchmark.core.plugins import DATASETS
from benchmark.core.spec import MASK
from tests.datasets.fake_data import committed_files, generated_files, make_fake, run_cli


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_fake("whu_opt_sar", tmp_path_factory.mktemp("whu_root"))


def open_ds(root, which="train", **options):
    cls = DATASETS.get("whu_opt_sar")
    return cls(root, which, cls.make_options(options))


def test_committed_fake_matches_generator(root):
    assert committed_files("whu_opt_sar") == generated_files(root, "whu_opt_sar")


def test_official_test_list_and_val_held_out_of_train(root):
    splits = {s: open_ds(root, s) for s in ("train", "val", "test")}
    ids = {s: {d.tile_name(i) for i in range(len(d))} for s, d in splits.items()}
    assert ids["test"] == {"NH49E001014", "NH50E007002"}
    assert ids["val"] == {"NH49E002011"} and not ids["val"] & ids["train"]


def test_grey_labels_and_background_option(root):
    grey = tifffile.imread(root / "whu_opt_sar/lbl/NH49E001013.tif").astype(np.int64)
    ignore_bg = open_ds(root).load(0)
    with_bg = open_ds(root, background="class").load(0)
    assert ignore_bg["optical"].shape == (4, 32, 32) and ignore_bg["sar"].shape == (1, 32, 32)
    valid = grey <= 70
    np.testing.assert_array_equal(with_bg[MASK][valid], grey[valid] // 10)
    assert (with_bg[MASK][~valid] == 255).all()  # stray value 255 -> ignore
    fg = valid & (grey > 0)
    np.testing.assert_array_equal(ignore_bg[MASK][fg], grey[fg] // 10 - 1)
    assert (ignore_bg[MASK][grey == 0] == 255).all()
    assert open_ds(root).spec.num_classes == 7
    assert open_ds(root, background="class").spec.classes[0] == "background"


def test_end_to_end_cli(root, tmp_path):
    assert run_cli("whu_opt_sar", root, tmp_path / "out") == 0
    board = pd.read_csv(tmp_path / "out" / "leaderboard.csv")
    assert sorted(board["scenario"]) == ["optical", "optical+sar", "sar"]


def test_wrong_folder_is_one_line_exit_2(tmp_path, capsys):
    (tmp_path / "whu_opt_sar").mkdir()
    code = main(
        ["--dataset", "whu_opt_sar", "--data-root", str(tmp_path), "--out", str(tmp_path / "o")]
    )
    captured = capsys.readouterr()
    assert code == 2 and "lbl" in (captured.out + captured.err)
