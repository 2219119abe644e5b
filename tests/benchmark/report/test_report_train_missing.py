"""Runs trained with a modality missing: labelled apart (never averaged with complete-data
runs), named in every caption, and lined up against the missing rate in their own section."""

from __future__ import annotations

import pandas as pd
import pytest

from benchmark.report import tables
from benchmark.report.generate import distinguish, generate_report, load_results
from tests.benchmark.report.report_variants import FIXTURE, add_train_missing_run, copy_fixture

GOLDEN = FIXTURE / "expected"
THIRTY = "baseline (train −dsm 30%)"
SIXTY = "baseline (train −dsm 60%)"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = copy_fixture(tmp_path_factory.mktemp("train_missing"))
    for seed in (0, 1):
        add_train_missing_run(root, "baseline", 1.0, seed, [["dsm", 0.3]], 0.8)
    add_train_missing_run(root, "baseline", 1.0, 0, [["dsm", 0.6]], 0.7)  # one seed of two
    generate_report(root, reference="baseline", qualitative=False)
    return root


def test_runs_of_other_training_conditions_get_their_own_label(report):
    results = load_results(report)
    assert results.methods[:3] == ["baseline", THIRTY, SIXTY]
    families = {e.label: e.spec["_report_family"] for e in results.entries}
    assert families[THIRTY] == families[SIXTY] == families["baseline"] == "baseline"


def test_complete_data_rows_are_unchanged(report):
    wide = pd.read_csv(report / "report" / "leaderboard_wide.csv")
    golden = pd.read_csv(GOLDEN / "leaderboard_wide.csv")
    mine = wide[wide["method"].isin(golden["method"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(mine, golden)
    thirty = wide[(wide["method"] == THIRTY) & (wide["imbalance"] == 1.0)]
    baseline = golden[(golden["method"] == "baseline") & (golden["imbalance"] == 1.0)]
    assert (thirty["miou_mean"].to_numpy() < baseline["miou_mean"].to_numpy()).all()
    board = pd.read_csv(report / "report" / "leaderboard.csv")
    assert set(board.loc[board["method"] == THIRTY, "train_missing"]) == {"dsm=0.3"}
    assert set(board.loc[board["method"] == "baseline", "train_missing"]) == {"none"}


def test_captions_say_the_training_condition_and_the_selection_rule(report):
    text = (report / "report" / "tables" / "synthetic.md").read_text(encoding="utf-8")
    assert text.count("Training data complete unless the label says otherwise") == 7
    assert text.count("Selection: full_val (one model per run") == 7
    assert f"| ×1 | {THIRTY} |" in text


def test_train_missing_section(report):
    out = report / "report"
    index = (out / "report.md").read_text(encoding="utf-8")
    section = index.split("## Training with missing modalities", 1)[1]
    for name in (
        "train_missing.csv",
        "tables/synthetic_train_missing.md",
        "tables/synthetic_train_missing.tex",
        "figures/synthetic_train_missing_dsm.png",
    ):
        assert (out / name).exists() and f"]({name})" in section
    assert (out / "figures" / "synthetic_train_missing_dsm.pdf").stat().st_size > 1000
    frame = pd.read_csv(out / "train_missing.csv")
    complete = frame[frame["train_missing"] == "none"]
    assert complete["p_value"].isna().all()  # no test of the complete runs against themselves
    thirty = frame[(frame["train_missing"] == "dsm=0.3") & (frame["imbalance"] == 1.0)]
    assert len(thirty) == 3 and (thirty["diff_vs_complete"] < 0).all()
    assert (thirty["n_seeds"] == 2).all() and (thirty["n_tiles"] == 3).all()
    sixty = frame[(frame["train_missing"] == "dsm=0.6") & (frame["imbalance"] == 1.0)]
    assert (sixty["miou_n"] == 1).all() and (sixty["n_expected"] == 2).all()
    table = (out / "tables" / "synthetic_train_missing.md").read_text(encoding="utf-8")
    assert "| complete | −dsm 30% | −dsm 60% |" in table
    assert "†" in table and "\\*" in table  # the one-seed condition; the bootstrap's marks


def test_distinguish_labels_only_what_differs():
    def spec(label, missing=None, selection=None, dataset="synthetic"):
        out = {
            "method": "baseline",
            "label": label,
            "dataset": dataset,
            "dataset_options": [],
            "steps": 200,
            "preset": "quick",
        }
        if missing is not None:
            out["train_missing"] = missing
        if selection is not None:
            out["selection"] = selection
        return out

    specs = [
        spec("baseline"),
        spec("baseline", [["dsm", 0.3]]),
        spec("baseline", [["sar", 0.5], ["dsm", 0.25]]),
        spec("baseline", selection="mean_val"),  # an old spec naming its rule: no label
        spec("stars", [["dsm", 0.3]], dataset="other"),  # one condition in its dataset
    ]
    distinguish(specs)
    labels = [s.get("_report_label", s["label"]) for s in specs]
    assert labels == [
        "baseline",
        "baseline (train −dsm 30%)",
        "baseline (train −dsm 25%, −sar 50%)",
        "baseline",
        "stars",
    ]
    assert [s["_report_family"] for s in specs[:3]] == ["baseline"] * 3


def test_sentences_for_one_condition_and_for_the_selection_rule():
    def board(conditions, rules):
        return pd.DataFrame({"train_missing": conditions, "selection": rules})

    uniform = board(["dsm=0.3", "dsm=0.3"], ["mean_val", "mean_val"])
    assert tables.training_sentence(uniform) == (
        "Training data: dsm missing from 30 % of the training tiles, for every run."
    )
    assert tables.selection_sentence(uniform).startswith("Selection: mean_val (one model")
    mixed = board(["none", "dsm=0.3"], ["full_val", "full_val"])
    assert "unless the label says otherwise" in tables.training_sentence(mixed)
    assert tables.selection_sentence(mixed).startswith("Selection: full_val (one model")
    old = pd.DataFrame({"selection": ["full_val"]})  # a board without the column
    assert tables.training_sentence(old).startswith("Training data complete")
