"""`folder` cards on fake user data, and on the real samples of ../shared/data/real
(skipped cleanly when that folder is absent; the files are never copied into the repo)."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.cli import main
from benchmark.core.dataset import data_root_scope
from benchmark.core.options import parse_named
from benchmark.core.plugins import DATASETS
from benchmark.core.presets import PRESETS
from benchmark.core.records import RunSpec
from benchmark.core.spec import MASK
from benchmark.report.frames import dataset_of
from benchmark.run.sweep import SweepRequest, expand, make_run_spec
from benchmark.system.errors import BenchmarkError, DatasetNotFoundError
from benchmark.system.io import content_digest
from datasets.folder import card_from_mapping, resolve_card_path
from tests.datasets.fake_data import committed_files, generated_files, make_fake, run_cli

REAL = Path(
    os.environ.get(
        "MISSBENCH_REAL_DATA", Path(__file__).resolve().parents[2] / ".." / "shared/data/real"
    )
)
needs_real = pytest.mark.skipif(
    not (REAL / "potsdam_multisenseseg").is_dir(), reason=f"real samples absent ({REAL})"
)


@pytest.fixture(scope="module")
def card(tmp_path_factory):
    root = make_fake("folder", tmp_path_factory.mktemp("folder_root"))
    return root / "folder" / "card.yaml"


def open_card(card, which="train"):
    cls = DATASETS.get("folder")
    return cls(Path("."), which, cls.make_options({"card": str(card)}))


def test_committed_fake_matches_generator(card):
    assert committed_files("folder", "my_city") == generated_files(card.parents[1], "folder")


def test_card_drives_modalities_bands_palette_and_ratio_splits(card):
    splits = {s: open_card(card, s) for s in ("train", "val", "test")}
    ids = [set(d.tile_name(i) for i in range(len(d))) for d in splits.values()]
    assert [len(i) for i in ids] == [3, 1, 2] and not (ids[0] & ids[1] or ids[0] & ids[2])
    sample = splits["train"].load(0)
    assert set(sample) == {"optical", "dsm", "sar", MASK}
    assert sample["sar"].shape == (1, 32, 32) and sample["sar"].max() < -5  # VH band only
    assert set(np.unique(sample[MASK])) <= {0, 1, 2, 255}  # black -> ignore
    spec = splits["test"].spec
    assert spec.name == "my_city" and spec.classes == ("road", "building", "vegetation")
    cls = DATASETS.get("folder")
    assert cls.modalities_for(cls.make_options({"card": str(card)})) == ("optical", "dsm", "sar")


def test_card_validation_messages():
    with pytest.raises(BenchmarkError, match="unknown key"):
        card_from_mapping({"modalitis": {}})
    base = {
        "modalities": {"optical": {"channels": 3}},
        "labels": {"folder": "gt"},
        "classes": ["a", "b"],
        "splits": {"train": [1], "val": [], "test": []},
    }
    with pytest.raises(BenchmarkError, match="quoted string id"):
        card_from_mapping(base)


def test_end_to_end_cli(card, tmp_path, monkeypatch, capsys):
    """A relative `card=` path is found under --data-root (not the working directory), and the
    rows, the table and the log name the dataset by its card's `name`."""
    monkeypatch.chdir(tmp_path)  # nothing of the card here: only the data root has it
    assert run_cli("folder[card=folder/card.yaml]", card.parents[1], tmp_path / "out") == 0
    board = pd.read_csv(tmp_path / "out" / "leaderboard.csv")
    assert len(board) == 7  # every non-empty subset of 3 modalities
    assert set(board["dataset"]) == {"my_city"}
    assert "my_city: test mIoU" in capsys.readouterr().out
    (run_id,) = set(board["run_id"])
    spec = json.loads((tmp_path / "out" / "runs" / run_id / "spec.json").read_text())
    assert spec["dataset"] == "folder" and spec["dataset_name"] == "my_city"
    assert RunSpec.from_json({**spec, "dataset_name": ""}).run_id == run_id  # not hashed


def test_a_relative_card_resolves_against_the_data_root(card, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MISSBENCH_DATA", raising=False)
    root, cls = card.parents[1], DATASETS.get("folder")
    options = cls.make_options({"card": "folder/card.yaml"})
    with data_root_scope(root):
        assert resolve_card_path("folder/card.yaml") == root / "folder" / "card.yaml"
        assert cls.modalities_for(options) == ("optical", "dsm", "sar")
        assert cls.report_name(options) == "my_city"
    assert len(cls(root, "train", options)) == 3  # an opened dataset uses its own root
    with pytest.raises(DatasetNotFoundError) as error:
        resolve_card_path("folder/card.yaml")  # the default data root, ./data, lacks it
    message = str(error.value)
    assert str(tmp_path / "data" / "folder" / "card.yaml") in message
    assert str(tmp_path / "folder" / "card.yaml") in message and "--data-root" in message


def test_rows_name_a_folder_dataset_by_its_card_and_builtin_runs_keep_their_ids(card):
    with data_root_scope(card.parents[1]):
        sweep = expand(
            SweepRequest(
                methods=(parse_named("baseline"),),
                datasets=(parse_named("folder[card=folder/card.yaml]"),),
                seeds=(0,),
                preset=PRESETS.get("smoke"),
            )
        )
    (spec,) = sweep.specs
    assert spec.dataset == "folder" and spec.dataset_label == "my_city"
    assert set(sweep.reported) == set(sweep.modalities) == {"my_city"}
    assert replace(spec, dataset_name="").run_id == spec.run_id
    assert dataset_of(spec.to_json()) == "my_city"
    builtin = replace(spec, dataset="synthetic", dataset_name="")
    assert "dataset_name" not in builtin.to_json() and builtin.dataset_label == "synthetic"


def test_missing_card_is_one_line_exit_2(tmp_path, capsys):
    code = main(["--dataset", f"folder[card={tmp_path}/none.yaml]", "--out", str(tmp_path / "o")])
    captured = capsys.readouterr()
    assert code == 2 and "card" in captured.out + captured.err
    with pytest.raises(DatasetNotFoundError):
        open_card(tmp_path / "none.yaml")


# ------------------------------------------------- the data files are part of the id

MY_CITY = Path(__file__).resolve().parents[1] / "data" / "folder" / "my_city"
PAST_NS = 1_700_000_000 * 10**9  # an old, fixed modification time: cached, never racy


@pytest.fixture()
def city_root(tmp_path) -> Path:
    """A private copy of the committed fake user data: `<root>/city/card.yaml` and tiles."""
    root = tmp_path / "root"
    shutil.copytree(MY_CITY, root / "city")
    for path in (root / "city").rglob("*"):
        os.utime(path, ns=(PAST_NS, PAST_NS))
    return root


def city_run_id(root: Path) -> str:
    """The id of a `folder` run on `root/city` with the card given relative to the data root."""
    with data_root_scope(root):
        spec = make_run_spec(
            parse_named("baseline"),
            parse_named("folder[card=city/card.yaml]"),
            seed=0,
            preset=PRESETS.get("smoke"),
            steps=6,
            train_modalities=("dsm", "optical", "sar"),
        )
    assert [key for key, _ in spec.file_digests] == ["dataset_files", "dataset_options.card"]
    return spec.run_id


def set_mtime(path: Path, ns: int) -> None:
    os.utime(path, ns=(ns, ns))


def test_a_folder_runs_id_follows_its_data_files(city_root, tmp_path):
    first = city_run_id(city_root)
    tile = city_root / "city" / "height" / "t0_dsm.tif"
    original = tile.read_bytes()

    edited = bytearray(original)
    edited[-1] ^= 1  # same size, other bytes, a new modification time
    tile.write_bytes(bytes(edited))
    set_mtime(tile, PAST_NS + 10**9)
    assert city_run_id(city_root) != first

    tile.write_bytes(original)  # the old bytes again: the old run
    set_mtime(tile, PAST_NS + 2 * 10**9)
    assert city_run_id(city_root) == first
    set_mtime(tile, PAST_NS + 3 * 10**9)  # touched: rehashed, equal
    assert city_run_id(city_root) == first

    moved = tmp_path / "moved"  # the whole data folder elsewhere: paths are relative
    city_root.rename(moved)
    assert city_run_id(moved) == first

    for folder, name in [("rgb", "t0.png"), ("height", "t0_dsm.tif"), ("sar", "t0.tif")]:
        shutil.copy2(moved / "city" / folder / name, moved / "city" / folder / f"t6{name[2:]}")
    assert city_run_id(moved) == first  # no label: not a tile, so in no split
    shutil.copy2(moved / "city" / "gt" / "t0.png", moved / "city" / "gt" / "t6.png")
    assert city_run_id(moved) != first  # a seventh tile joins a split


def test_unchanged_data_files_are_not_hashed_again(city_root, monkeypatch):
    import datasets.files.data_digest as digests

    hashed: list[str] = []

    def counting(path):
        hashed.append(str(path))
        return content_digest(path)

    monkeypatch.setattr(digests, "content_digest", counting)
    first = city_run_id(city_root)
    assert len(hashed) == 6 * 4  # every tile's rgb, height, sar and label, once
    cache = Path(os.environ["MISSBENCH_CACHE"]) / "my_city" / digests.DIGESTS_FILE
    assert len(json.loads(cache.read_text())["files"]) == 24

    hashed.clear()
    assert city_run_id(city_root) == first and hashed == []  # read from the cache file

    tile = city_root / "city" / "sar" / "t3.tif"
    set_mtime(tile, PAST_NS + 10**9)  # touched: this one file only
    assert city_run_id(city_root) == first and hashed == [str(tile)]

    hashed.clear()
    tile.write_bytes(tile.read_bytes())  # modified just now: hashed, but not trusted to cache
    assert city_run_id(city_root) == first and city_run_id(city_root) == first
    assert hashed == [str(tile), str(tile)]


def test_a_tile_file_missing_under_a_card_is_one_line_exit_2(city_root, tmp_path, capsys):
    (city_root / "city" / "sar" / "t2.tif").unlink()
    with pytest.raises(DatasetNotFoundError, match="tile 't2': no sar file in sar/"):
        city_run_id(city_root)
    card = city_root / "city" / "card.yaml"
    code = main(["--dataset", f"folder[card={card}]", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "no sar file" in err and len(err.splitlines()) == 1, err


# ------------------------------------------------------------------ real samples


@needs_real
def test_real_sen1floods11_through_a_card(tmp_path):
    chip = "Spain_7370579"
    (tmp_path / "card.yaml").write_text(
        f"""
name: sen1floods11_chip
root: {REAL / "sen1floods11_spain_7370579"}
modalities:
  optical: {{folder: optical, channels: 13, pattern: "{{id}}_S2Hand"}}
  sar: {{folder: sar, channels: 2, pattern: "{{id}}_S1Hand"}}
labels: {{folder: labels, pattern: "{{id}}_LabelHand", encoding: index, ignore: [-1]}}
classes: [not_water, water]
splits: {{train: ["{chip}"], val: ["{chip}"], test: ["{chip}"]}}
"""
    )
    ds = open_card(tmp_path / "card.yaml")
    sample = ds.load(0)
    assert sample["optical"].shape == (13, 512, 512) and sample["sar"].shape == (2, 512, 512)
    assert (sample[MASK] == 255).sum() == 99  # the -1 nodata pixels
    assert 0.2 < (sample[MASK] == 1).mean() < 0.35


@needs_real
def test_real_mmsam_rgb_irrg_through_a_card(tmp_path):
    (tmp_path / "card.yaml").write_text(
        f"""
name: potsdam_rgb_irrg
root: {REAL / "potsdam_mmsam_rgb_irrg"}
modalities:
  optical: {{folder: rgb, channels: 3}}
  nir: {{folder: irrg, channels: 1, bands: [0]}}
labels: {{folder: labels, encoding: index}}
classes: [impervious_surfaces, building, low_vegetation, tree, car, clutter]
splits: {{train: ["00000", "00001"], val: ["00002"], test: ["00003"]}}
"""
    )
    ds = open_card(tmp_path / "card.yaml", "test")
    sample = ds.load(0, (slice(0, 256), slice(0, 256)))
    assert sample["optical"].shape == (3, 256, 256) and sample["nir"].shape == (1, 256, 256)
    assert set(np.unique(sample[MASK])) <= set(range(6))


@needs_real
def test_real_potsdam_mini_smoke_preset(tmp_path):
    """The documented smoke test: train on real patch 00000, evaluate on 00001. Not a result."""
    out = tmp_path / "out"
    args = ["--dataset", "real_potsdam_mini", "--data-root", str(REAL), "--methods", "baseline"]
    args += ["--missing", "all", "--preset", "real_mini", "--device", "cpu", "--out", str(out)]
    assert main(args) == 0
    board = pd.read_csv(out / "leaderboard.csv")
    assert sorted(board["scenario"]) == ["dsm", "dsm+optical", "optical"]
    assert ((board["miou"] >= 0) & (board["miou"] <= 1)).all()
    print(board[["scenario", "miou", "mf1", "oa"]].to_string())
