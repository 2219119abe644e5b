"""findings.csv / findings.md: every paired comparison, within one condition, with Holm's
adjustment per table, stable ids, and equal-steps beside equal-FLOPs verdicts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.core.records import RunSpec
from benchmark.report import findings
from benchmark.report.frames import significance_frame
from benchmark.report.generate import load_results
from benchmark.report.stats import holm
from tests.benchmark.report.report_variants import (
    add_corruptions,
    add_train_missing_run,
    copy_fixture,
    read_records,
    scaled,
    write_records,
)

RESAMPLES = 300  # enough for the invariants; the report uses findings.RESAMPLES
VARIANT = "baseline[class_weighting=none]"


def test_holm_by_hand():
    """p = (0.01, 0.04, 0.03, 0.005), m = 4: sorted 0.005 x 4 = 0.02, 0.01 x 3 = 0.03,
    0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> 0.06 (never below the step before)."""
    assert np.allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    adjusted = holm([0.5, float("nan"), 0.01])  # NaN is not a test: m = 2
    assert np.isnan(adjusted[1]) and np.allclose(adjusted[[0, 2]], [0.5, 0.02])
    assert np.allclose(holm([0.9, 0.8]), [1.0, 1.0])  # 0.8 x 2 capped at 1, then the max


def frame_of(root: Path, reference: str = "baseline") -> pd.DataFrame:
    results = load_results(root, reference)
    specs = [e.spec for e in results.entries]
    return findings.findings_frame(
        results.records, specs, results.methods, reference, resamples=RESAMPLES
    )


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    return frame_of(copy_fixture(tmp_path_factory.mktemp("findings")))


def test_ids_are_stable_unique_and_holm_is_within_each_table(plain, tmp_path):
    assert len(plain) and plain["id"].is_unique
    assert plain["id"].str.fullmatch(r"F[0-9a-f]{8}").all()
    again = frame_of(copy_fixture(tmp_path))
    assert list(again["id"]) == list(plain["id"])
    for _table, part in plain.groupby("table"):
        assert np.allclose(part["p_holm"], holm(part["p_value"]), equal_nan=True)
        assert (part["p_holm"] >= part["p_value"] - 1e-12).all()
        assert (part["table_size"] == len(part)).all()
    significant = plain["p_holm"] < 0.05
    assert (plain.loc[significant, "verdict"] != "n.s.").all()
    assert (plain.loc[~significant, "verdict"] == "n.s.").all()


def test_differences_are_the_significance_tables(plain, tmp_path):
    """The observed difference does not depend on the resamples: the same as
    significance.csv's for the same comparison."""
    results = load_results(copy_fixture(tmp_path))
    sig = significance_frame(results.records, results.methods, "baseline")
    clean = plain[plain["section"] == "clean"]
    merged = clean.merge(sig, on=["dataset", "imbalance", "method", "scenario", "metric"])
    assert len(merged) == len(clean) == len(sig)
    assert np.allclose(merged["diff_x"], merged["diff_y"])


@pytest.fixture(scope="module")
def conditions(tmp_path_factory):
    root = copy_fixture(tmp_path_factory.mktemp("findings_conditions"))
    for seed in (0, 1):
        add_train_missing_run(root, "baseline", 1.0, seed, [["dsm", 0.3]], 0.8)
        add_train_missing_run(root, VARIANT, 1.0, seed, [["dsm", 0.3]], 0.9)
    add_corruptions(root, severities=(1, 3))
    return frame_of(root)


def test_comparisons_stay_within_one_condition(conditions):
    clean = conditions[conditions["section"] == "clean"]
    thirty = clean[clean["train_missing"] == "dsm=0.3"]
    assert len(thirty)
    assert set(thirty["versus"]) == {"baseline (train −dsm 30%)"}
    assert set(clean.loc[clean["train_missing"] == "none", "versus"]) == {"baseline"}
    against_complete = conditions[conditions["section"] == "train_missing"]
    assert set(against_complete["versus"]) == {"baseline", VARIANT}
    assert (against_complete["train_missing"] == "dsm=0.3").all()
    assert (against_complete["diff"] < 0).all()  # the scaled copies lose everywhere


def test_corruption_comparisons_share_corruption_and_severity(conditions):
    corrupted = conditions[conditions["section"] == "corruption"]
    names = {c.split(" (")[0] for c in corrupted["corruption"]}  # as the board names them
    assert names == {"clouds", "dsm_voids"}
    assert set(corrupted["severity"]) == {1, 3}
    for _table, part in corrupted.groupby("table"):
        assert part["corruption"].nunique() == 1  # Holm per corruption
    dsm_only = corrupted.loc[corrupted["scenario"] == "dsm", "corruption"]
    assert len(dsm_only) and {c.split(" (")[0] for c in dsm_only} == {"dsm_voids"}


def add_flops_copies(root: Path) -> None:
    """Copies of the finished ×1 runs trained under `--budget flops` (the variant's scores
    10 % lower), as if a second sweep had matched FLOPs."""
    runs = root / "runs"
    for run in sorted(runs.iterdir()):
        spec = json.loads((run / "spec.json").read_text())
        if spec["imbalance"] != 1 or not (run / "done").exists():
            continue
        ratio = 1.0 if spec["label"] == "baseline" else 1.25
        steps = int(round(spec["steps"] * ratio))
        new = RunSpec.from_json(dict(spec, budget="flops", budget_ratio=ratio, steps=steps))
        target = runs / new.run_id
        target.mkdir()
        (target / "spec.json").write_text(json.dumps(new.to_json(), indent=1, sort_keys=True))
        shutil.copy(run / "train_log.jsonl", target / "train_log.jsonl")
        factor = 1.0 if spec["label"] == "baseline" else 0.9
        write_records(target, [scaled(r, factor, run_id=new.run_id) for r in read_records(run)])
        (target / "done").write_text("fixture\n")


def test_equal_steps_and_equal_flops_side_by_side(tmp_path):
    root = copy_fixture(tmp_path)
    add_flops_copies(root)
    frame = frame_of(root)
    clean = frame[(frame["section"] == "clean") & (frame["imbalance"] == 1.0)]
    assert set(clean["budget"]) == {"steps", "flops"}
    for budget, part in clean.groupby("budget"):
        assert part["table"].str.contains(f"/{budget}/").all()  # each budget its own table
        assert part["versus"].str.contains("equal FLOPs").all() == (budget == "flops")
    text = findings.findings_markdown(frame, findings.DESCRIPTION)
    head = next(line for line in text.splitlines() if "equal FLOPs (40 steps" in line
                and line.startswith("| method"))  # fmt: skip
    assert "equal steps (40, smoke): id" in head
    row = next(l for l in text.splitlines() if l.startswith(f"| {VARIANT} | baseline | dsm |"))
    ids = clean.loc[
        clean["method"].str.startswith(VARIANT)
        & (clean["scenario"] == "dsm")
        & (clean["metric"] == "miou"),
        "id",
    ]
    assert len(ids) == 2 and all(f"`{i}`" in row for i in ids)


def test_markdown_lists_every_finding(conditions):
    text = findings.findings_markdown(conditions, findings.DESCRIPTION)
    for finding in conditions["id"]:
        assert f"`{finding}`" in text
    for title in ("Clean test data", "Training with a modality missing", "Corrupted test data"):
        assert f"## {title}" in text
    empty = findings.findings_markdown(pd.DataFrame(columns=findings.COLUMNS), "x")
    assert "No paired comparisons" in empty
