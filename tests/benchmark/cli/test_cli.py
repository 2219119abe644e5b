"""End to end through the command line on tiny synthetic data (CPU, seconds)."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest

from benchmark.cli import main
from benchmark.run.store import RunStore
from benchmark.system.io import read_jsonl
from tests.conftest import tiny_dataset_arg
from tests.paths import REPO

SMOKE = ["--preset", "smoke", "--device", "cpu"]


def run(args, data_root, out) -> int:
    return main([*SMOKE, *args, "--data-root", str(data_root), "--out", str(out)])


def test_end_to_end_writes_leaderboard_and_rerun_skips(data_root, tmp_path, capsys, caplog):
    out = tmp_path / "results"
    args = ["--methods", "baseline", "--missing", "all", "--dataset", tiny_dataset_arg()]
    with caplog.at_level(logging.INFO):
        assert run(args, data_root, out) == 0
    logged = [r.getMessage() for r in caplog.records]
    # what comes before step 1 and the final evaluation after the last training line are
    # logged (issue 32): a bar on a terminal, lines otherwise (here: not a terminal)
    before = ["loading the data", "building the model", "measuring its FLOPs", "training "]
    for phase in before:
        assert any(m.startswith("baseline · synthetic · seed 0: ") and phase in m
                   for m in logged), phase  # fmt: skip
    final = next(i for i, m in enumerate(logged) if ": final evaluation of the checkpoint" in m)
    test_lines = [m for m in logged[final:] if "eval test · 3 scenario(s): tile " in m]
    done, total = test_lines[-1].split("tile ")[1].split(" ")[0].split("/")
    assert done == total, test_lines  # the last line says the pass is complete
    board = pd.read_csv(out / "leaderboard.csv")
    required = [
        "dataset",
        "method",
        "scenario",
        "missing",
        "seed",
        "split",
        "miou",
        "mf1",
        "oa",
        "kappa",
        "eval_classes",
        "selection",
        "steps",
        "run_id",
        "commit",
    ]
    assert set(required) <= set(board.columns)
    for name in ("impervious_surfaces", "building", "low_vegetation", "tree", "car", "clutter"):
        assert f"iou_{name}" in board.columns and f"f1_{name}" in board.columns
    assert sorted(board["scenario"]) == ["dsm", "dsm+optical", "optical"]
    assert dict(zip(board["scenario"], board["missing"], strict=True)) == {
        "dsm+optical": "none",
        "dsm": "optical",
        "optical": "dsm",
    }
    assert (board["split"] == "test").all() and (board["selection"] == "full_val").all()
    metrics = board[["miou", "mf1", "oa"]].to_numpy()
    assert ((metrics >= 0) & (metrics <= 1)).all()
    run_dir = out / "runs" / board["run_id"].iloc[0]
    assert (run_dir / "done").exists() and not (run_dir / "checkpoint.pt").exists()
    assert read_jsonl(run_dir / "train_log.jsonl")

    first = (out / "leaderboard.csv").read_text()
    capsys.readouterr()
    assert run(args, data_root, out) == 0
    err = capsys.readouterr().err
    assert "skipped (done)" in err and "(3 rows: this command's 1 run(s))" in err
    assert (out / "leaderboard.csv").read_text() == first


def test_missing_flag_filters_scenarios_and_full_is_always_there(data_root, tmp_path):
    out = tmp_path / "results"
    args = ["--dataset", tiny_dataset_arg("synthetic_3m"), "--missing", "dsm"]
    assert run(args, data_root, out) == 0
    board = pd.read_csv(out / "leaderboard.csv")
    assert list(board["scenario"]) == ["dsm+optical+sar", "optical+sar"]


def test_interrupted_run_resumes_to_the_same_result(data_root, tmp_path, monkeypatch):
    args = ["--dataset", tiny_dataset_arg(), "--steps", "6"]
    reference = tmp_path / "reference"
    assert run(args, data_root, reference) == 0

    out = tmp_path / "interrupted"
    original = RunStore.save_checkpoint

    def save_then_die(self, *a, **k):
        original(self, *a, **k)
        raise KeyboardInterrupt  # as if Ctrl-C arrived right after the first checkpoint

    monkeypatch.setattr(RunStore, "save_checkpoint", save_then_die)
    assert run(args, data_root, out) == 130
    run_dirs = list((out / "runs").iterdir())
    assert (run_dirs[0] / "checkpoint.pt").exists() and not (run_dirs[0] / "done").exists()
    assert not (out / "leaderboard.csv").exists()

    monkeypatch.setattr(RunStore, "save_checkpoint", original)
    assert run(args, data_root, out) == 0
    ours = read_jsonl(run_dirs[0] / "records.jsonl")
    theirs = read_jsonl(reference / "runs" / run_dirs[0].name / "records.jsonl")

    def keys(records):
        return [
            (r["split"], r["selection"], r["scenario"], r["checkpoint_step"], r["confusion"])
            for r in records
        ]

    assert keys(ours) == keys(theirs)  # every selection rule's checkpoint, kept across the resume


def test_unknown_flag_exits_2_with_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--bogus"])
    assert exc.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_list_shows_registries(capsys):
    assert main(["list"]) == 0
    text = capsys.readouterr().out
    assert "baseline" in text and "synthetic_3m" in text and "quick" in text


def test_list_markdown_is_a_table(capsys):
    assert main(["list", "--markdown"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = (
        "| name | paper | what it does | with a missing modality | with missing training data "
        "| with invalid pixels (clouds, voids) |"
    )
    assert header in lines
    assert any(line.startswith("| `baseline` (alias `zero_fill`)") for line in lines)


def test_readme_tables_are_generated_from_the_registries():
    """Regenerate with `python run_benchmark.py list --update-readme docs/registry.md`."""

    from benchmark.commands.listing import END, START, registry_markdown

    text = (REPO / "docs" / "registry.md").read_text()
    inner = text.split(START, 1)[1].split(END, 1)[0]
    assert inner.strip() == registry_markdown().strip()


def test_imbalance_levels_are_separate_runs_with_tier_columns(data_root, tmp_path):
    out = tmp_path / "results"
    args = ["--dataset", tiny_dataset_arg(), "--imbalance", "1,10", "--missing", "none"]
    assert run(args, data_root, out) == 0
    board = pd.read_csv(out / "leaderboard.csv")
    assert sorted(board["imbalance"]) == [1.0, 10.0]
    assert board["run_id"].nunique() == 2
    assert {"miou_head", "miou_body", "miou_tail", "mf1_tail", "tier_tail"} <= set(board.columns)
    assert set(board["tier_tail"]) == {"car|clutter"}


def test_dedicated_methods_get_one_run_per_scenario(data_root, tmp_path, monkeypatch):
    from benchmark.core.plugins import METHODS
    from methods.baseline import Baseline

    class DedicatedProbe(Baseline):
        """Baseline trained on one modality subset only (tests the harness's DEDICATED path)."""

        DEDICATED = True

    monkeypatch.setitem(METHODS._items, "dedicated_probe", DedicatedProbe)
    out = tmp_path / "results"
    assert (
        run(
            ["--methods", "dedicated_probe,baseline", "--dataset", tiny_dataset_arg()],
            data_root,
            out,
        )
        == 0
    )
    board = pd.read_csv(out / "leaderboard.csv")
    probe = board[board["method"] == "dedicated_probe"]
    assert sorted(probe["scenario"]) == ["dsm", "dsm+optical", "optical"]
    assert probe["run_id"].nunique() == 3
    assert dict(zip(probe["scenario"], probe["missing"], strict=True)) == {
        "dsm+optical": "none",
        "dsm": "optical",
        "optical": "dsm",
    }
    for run_id, scenario in zip(probe["run_id"], probe["scenario"], strict=True):
        spec = json.loads((out / "runs" / run_id / "spec.json").read_text())
        assert "+".join(spec["train_modalities"]) == scenario

    out = tmp_path / "only_dsm_missing"
    assert (
        run(
            ["--methods", "dedicated_probe", "--dataset", tiny_dataset_arg(), "--missing", "dsm"],
            data_root,
            out,
        )
        == 0
    )
    assert sorted(pd.read_csv(out / "leaderboard.csv")["scenario"]) == ["dsm+optical", "optical"]


def test_methods_all_expands_to_the_registry(data_root, tmp_path, capsys):
    from benchmark.core.plugins import METHODS

    out = tmp_path / "dry"
    capsys.readouterr()
    args = [*SMOKE, "--methods", "all", "--launcher", "dry_run", "--dataset", tiny_dataset_arg()]
    assert main([*args, "--data-root", str(data_root), "--out", str(out)]) == 0
    assert not out.exists()
    printed = capsys.readouterr().out
    rows = [line for line in printed.splitlines() if "pending" in line]
    # one run per method, and one per scenario (3) for each dedicated method
    expected = sum(3 if METHODS.get(m).DEDICATED else 1 for m in METHODS.names())
    assert len(rows) == expected
    for name in METHODS.names():
        assert any(f" {name} " in row for row in rows), name
