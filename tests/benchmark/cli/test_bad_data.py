"""Bad data behind a valid command: one-line error naming the file and what was expected,
exit status 2, results directory untouched — checked through the `folder` card mechanism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml
from PIL import Image

from tests.benchmark.cli.cli_helpers import assert_rejected, invoke

IDS = ["a0", "a1", "a2", "a3", "a4", "a5"]
SIZE = 64


def write_folder(root: Path) -> Path:
    """A small, valid user dataset: optical (3 bands) + dsm (1 band) + index labels."""
    rng = np.random.default_rng(0)
    for sub in ("optical", "dsm", "labels"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for tile_id in IDS:
        labels = rng.integers(0, 3, (SIZE, SIZE)).astype(np.uint8)
        optical = (labels[None] * 0.3 + rng.normal(0, 0.05, (3, SIZE, SIZE))).astype(np.float32)
        dsm = (labels * 4.0 + rng.normal(0, 0.3, (SIZE, SIZE))).astype(np.float32)
        tifffile.imwrite(root / "optical" / f"{tile_id}.tif", optical, photometric="minisblack")
        tifffile.imwrite(root / "dsm" / f"{tile_id}.tif", dsm)
        Image.fromarray(labels).save(root / "labels" / f"{tile_id}.png")
    card = {
        "name": "probe",
        "modalities": {
            "optical": {"folder": "optical", "channels": 3},
            "dsm": {"folder": "dsm", "channels": 1},
        },
        "labels": {"folder": "labels", "encoding": "index"},
        "classes": ["road", "roof", "grass"],
        "splits": {"train": IDS[:3], "val": IDS[3:4], "test": IDS[4:]},
    }
    (root / "card.yaml").write_text(yaml.safe_dump(card))
    return root / "card.yaml"


@pytest.fixture()
def card(tmp_path) -> Path:
    return write_folder(tmp_path / "mydata")


def folder_args(card: Path) -> list[str]:
    return ["--dataset", f"folder[card={card}]", "--missing", "none"]


def test_valid_folder_runs(card, results):
    assert invoke(folder_args(card), card.parent, results) == 0


def test_missing_card(tmp_path, results, capsys):
    args = folder_args(tmp_path / "nowhere" / "card.yaml")
    assert_rejected(args, "card.yaml", tmp_path, results, capsys)


def test_missing_data_root_of_a_real_dataset(tmp_path, results, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    args = ["--dataset", "potsdam", "--missing", "none"]
    assert_rejected(args, "potsdam: no potsdam folder under", empty, results, capsys)


def test_mismatched_tile_sizes(card, results, capsys):
    tifffile.imwrite(card.parent / "dsm" / "a1.tif", np.zeros((SIZE - 4, SIZE), np.float32))
    assert_rejected(
        folder_args(card),
        "dsm/a1.tif is 60x64 but the label is 64x64",
        card.parent,
        results,
        capsys,
    )


def test_wrong_band_count(card, results, capsys):
    tifffile.imwrite(card.parent / "optical" / "a4.tif", np.zeros((2, SIZE, SIZE), np.float32))
    assert_rejected(
        folder_args(card),
        "optical/a4.tif: 2 band(s), but modality 'optical' expects 3",
        card.parent,
        results,
        capsys,
    )


def test_label_values_outside_the_spec(card, results, capsys):
    labels = np.zeros((SIZE, SIZE), np.uint8)
    labels[0, 0] = 7
    Image.fromarray(labels).save(card.parent / "labels" / "a2.png")
    assert_rejected(
        folder_args(card),
        "labels/a2.png: label value(s) 7 are not classes",
        card.parent,
        results,
        capsys,
    )


@pytest.mark.filterwarnings("ignore:Truncated File Read")  # PIL says so before the loader's error
def test_corrupt_tiff(card, results, capsys):
    path = card.parent / "dsm" / "a0.tif"
    path.write_bytes(path.read_bytes()[:200])
    assert_rejected(folder_args(card), "a0.tif", card.parent, results, capsys)


def test_empty_split(card, results, capsys):
    data = yaml.safe_load(card.read_text())
    data["splits"]["val"] = []
    card.write_text(yaml.safe_dump(data))
    assert_rejected(folder_args(card), "val", card.parent, results, capsys)


@pytest.mark.parametrize(
    "text,message",
    [
        ("name: probe\nmodalities: [oops", "invalid YAML"),
        ("name: probe\n", "needs `modalities"),
        ("- just\n- a list\n", "must be a mapping"),
    ],
)
def test_malformed_card(card, results, capsys, text, message):
    card.write_text(text)
    assert_rejected(folder_args(card), message, card.parent, results, capsys)


def test_nan_and_inf_in_dsm_are_nodata_filled_with_the_mean(card, results):
    """Nodata policy: non-finite heights are excluded from the statistics and mean-filled."""
    dsm = tifffile.imread(card.parent / "dsm" / "a0.tif")
    dsm[:8, :8] = np.nan
    dsm[10, 10] = np.inf
    tifffile.imwrite(card.parent / "dsm" / "a0.tif", dsm)
    assert invoke(folder_args(card), card.parent, results) == 0
    import pandas as pd

    board = pd.read_csv(results / "leaderboard.csv")
    assert board["miou"].notna().all() and np.isfinite(board["miou"]).all()
