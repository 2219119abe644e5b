"""`report --split val`: the leaderboard of the selected checkpoints' validation records, in
`report/val/`, beside (never over) the test report, which validation records leave unchanged.

The committed fixture keeps no selected validation records (`shrink.py` drops them), so
`add_validation` writes them: each selected clean test record, scaled by a factor per method
(so that validation numbers differ from test ones, and differ by method), as a validation
record on validation tiles; one finished run gets none (a gap the report must show).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from benchmark.cli import build_parser, main
from benchmark.report import frames
from benchmark.report.generate import (
    REPORT_DIR,
    VAL_DIR,
    VAL_SKIPPED,
    generate_report,
    report_target,
)
from benchmark.run.store import FROZEN
from benchmark.system.errors import BenchmarkError
from tests.benchmark.report.report_variants import (
    GOLDEN,
    GOLDEN_FILES,
    add_corruptions,
    copy_fixture,
    read_records,
    scaled,
    write_records,
)

FACTOR = {"baseline": 0.8, "baseline[class_weighting=none]": 0.95}
"""Validation score = test score x this, per method label."""


def add_validation(root: Path) -> str:
    """Selected validation records for every finished run but one; returns that one's id."""
    runs = [r for r in sorted((root / "runs").iterdir()) if (r / "done").exists()]
    left_out = runs[-1].name
    for run in runs[:-1]:
        label = json.loads((run / "spec.json").read_text())["label"]
        records = read_records(run)
        extra = [
            scaled(
                rec,
                FACTOR[label],
                split="val",
                tile_names=[t.replace("test", "val") for t in rec["tile_names"]],
            )
            for rec in records
            if rec["split"] == "test" and rec["selection"] and frames.is_clean(rec)
        ]
        write_records(run, records + extra)
    return left_out


def text_files(folder: Path, skip: Path | None = None) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and (skip is None or skip not in p.parents)
    }


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """The fixture with validation records and one corruption: the test report first, then
    the validation report from the command line; returns (root, test report before the
    validation one, the run without validation records)."""
    root = copy_fixture(tmp_path_factory.mktemp("split"))
    left_out = add_validation(root)
    add_corruptions(root, severities=(1,))
    assert main(["report", str(root), "--no-qualitative"]) == 0
    before = text_files(root / REPORT_DIR)
    assert main(["report", str(root), "--split", "val", "--no-qualitative"]) == 0
    return root, before, left_out


def test_the_test_report_is_unchanged_by_validation_records(results):
    root, _before, _left_out = results
    for name in GOLDEN_FILES:
        produced = (root / REPORT_DIR / name).read_text(encoding="utf-8")
        assert produced == (GOLDEN / name).read_text(encoding="utf-8"), name
    board = pd.read_csv(root / REPORT_DIR / "leaderboard.csv")
    assert set(board["split"]) == {"test"}


def test_the_validation_report_lands_in_report_val_beside_the_test_report(results):
    root, before, _left_out = results
    val = root / REPORT_DIR / VAL_DIR
    assert text_files(root / REPORT_DIR, skip=val) == before  # the test report untouched
    index = (val / "report.md").read_text(encoding="utf-8")
    assert index.startswith("# MissBench report — validation split")
    assert f"report {root} --split val`" in index
    assert json.loads((val / "provenance.json").read_text())["split"] == "val"
    assert "split" not in json.loads((root / REPORT_DIR / "provenance.json").read_text())
    for name in ("leaderboard.csv", "leaderboard_wide.csv", "robustness.csv", "significance.csv"):
        assert f"]({name})" in index
    markdown = (val / "tables" / "synthetic.md").read_text(encoding="utf-8")
    assert "validation mIoU (%) per missing-modality scenario" in markdown
    assert "Validation split over 3 validation tiles" in markdown
    assert ": test " not in markdown and "Test split" not in markdown
    assert (val / "figures" / "synthetic_heatmap.png").stat().st_size > 1000


def test_validation_tables_hold_the_validation_numbers(results):
    root, _before, left_out = results
    test = pd.read_csv(root / REPORT_DIR / "leaderboard.csv")
    val = pd.read_csv(root / REPORT_DIR / VAL_DIR / "leaderboard.csv")
    assert len(val) and set(val["split"]) == {"val"} and set(val["corruption"]) == {"none"}
    assert left_out not in set(val["run_id"]) and left_out in set(test["run_id"])
    keys = ["run_id", "scenario"]
    both = val.merge(test[test["corruption"] == "none"], on=keys, suffixes=("_val", "_test"))
    assert len(both) == len(val)
    expected = both["method_val"].map(FACTOR) * both["miou_test"]
    assert (both["miou_val"] - expected).abs().max() < 1e-5
    assert (both["miou_val"] != both["miou_test"]).any()
    wide = pd.read_csv(root / REPORT_DIR / VAL_DIR / "leaderboard_wide.csv")
    test_wide = pd.read_csv(root / REPORT_DIR / "leaderboard_wide.csv")
    assert not wide["miou_mean"].equals(test_wide["miou_mean"])


def test_validation_significance_resamples_validation_tiles(results):
    root, _before, _left_out = results
    significance = pd.read_csv(root / REPORT_DIR / VAL_DIR / "significance.csv")
    assert len(significance)
    assert significance["test"].str.contains("seeds and validation tiles").all()
    assert (significance["n_tiles"] == 3).all()
    test = pd.read_csv(root / REPORT_DIR / "significance.csv")
    assert not significance["diff"].equals(test["diff"])


def test_test_only_sections_are_left_out_and_named(results):
    root, _before, left_out = results
    val = root / REPORT_DIR / VAL_DIR
    assert (root / REPORT_DIR / "corruption.csv").exists()  # the test report has them
    for name in ("corruption.csv", "failure.csv", "findings.md", "findings.csv", "compute.csv"):
        assert not (val / name).exists(), name
    assert not list(val.rglob("*qualitative*")) and not list(val.rglob("*corruption*"))
    index = (val / "report.md").read_text(encoding="utf-8")
    assert all(section in index for section in VAL_SKIPPED)
    lacking = "have no validation records of their selected checkpoint (shown as missing): "
    assert lacking + left_out in index
    assert "†" in (val / "tables" / "synthetic.md").read_text(encoding="utf-8")


def test_a_bad_split_and_freeze_with_val_are_refused_in_one_line(results, tmp_path, capsys):
    root, _before, _left_out = results
    with pytest.raises(SystemExit) as exit_:
        main(["report", str(root), "--split", "train"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'train'" in err and len(err.strip().splitlines()) == 1
    dest = tmp_path / "frozen"
    assert main(["report", str(root), "--freeze", str(dest), "--split", "val"]) == 2
    err = capsys.readouterr().err
    assert "--freeze writes the test report" in err and len(err.strip().splitlines()) == 1
    assert not dest.exists()


def test_a_frozen_folders_validation_report_is_replaced_only_when_asked(tmp_path):
    (tmp_path / FROZEN).write_text("{}")
    assert report_target(tmp_path, None, False, "val") == tmp_path / REPORT_DIR / VAL_DIR
    (tmp_path / REPORT_DIR / VAL_DIR).mkdir(parents=True)
    with pytest.raises(BenchmarkError, match="committed report of a frozen folder"):
        report_target(tmp_path, None, False, "val")
    assert report_target(tmp_path, None, True, "val") == tmp_path / REPORT_DIR / VAL_DIR


def test_the_command_line_offers_the_splits_the_report_names(tmp_path):
    parser = build_parser()
    assert parser.parse_args(["report", str(tmp_path)]).split == "test"
    for split in frames.SPLIT_NAMES:
        assert parser.parse_args(["report", str(tmp_path), "--split", split]).split == split
    with pytest.raises(BenchmarkError, match="unknown split 'train'"):
        generate_report(tmp_path, split="train")
