"""findings.csv / findings.md: every paired comparison, within one condition, with Holm's
adjustment per table, stable ids, and equal-steps beside equal-FLOPs verdicts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.core.records import RunSpec, invalid_fill_of
from benchmark.report import findings
from benchmark.report.frames import MEAN_FILL_SUFFIX, is_clean, significance_frame
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


def run_labels(root: Path) -> dict[str, tuple[str, float]]:
    """Run id -> (label, imbalance) of every run of a fixture copy."""
    out = {}
    for run in (root / "runs").iterdir():
        spec = json.loads((run / "spec.json").read_text())
        out[run.name] = (spec["label"], spec["imbalance"])
    return out


def add_both_fills(root: Path) -> None:
    """Corrupted records under both fills (`--invalid-fill own,mean`) at severities 1 and 3.
    At imbalance ×1 the variant's own fill loses 2 % per severity and its mean fill 25 %, the
    baseline (the reference) the other way round; at ×10 both fills give the same predictions
    (a method whose own fill is the mean fill)."""
    labels = run_labels(root)

    def loss(fill: str):  # noqa: ANN202
        def of(rec: dict, _corruption: str, severity: int) -> float:
            label, imbalance = labels[rec["run_id"]]
            if imbalance != 1.0:
                return 0.05 * severity
            better = (label == VARIANT) == (fill == "own")
            return (0.02 if better else 0.25) * severity

        return of

    add_corruptions(root, severities=(1, 3), loss=loss("own"), fill="own")
    add_corruptions(root, severities=(1, 3), loss=loss("mean"), fill="mean")


@pytest.fixture(scope="module")
def fills(tmp_path_factory):
    """The findings of a fixture with both fills, and every pair of records sets that
    `findings` handed to the paired bootstrap."""
    root = copy_fixture(tmp_path_factory.mktemp("findings_fills"))
    add_both_fills(root)
    calls = []
    real = findings.paired_comparison

    def spy(mine, ref, *args, **kwargs):  # noqa: ANN001, ANN202
        calls.append((dict(mine), dict(ref)))
        return real(mine, ref, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(findings, "paired_comparison", spy)
        frame = frame_of(root)
    return frame, calls


def test_invalid_fill_section_pairs_each_method_with_its_own_mean_fill(fills):
    frame, _calls = fills
    part = frame[frame["section"] == "invalid_fill"]
    assert len(part) and frame["id"].is_unique  # no id shared with the corruption section
    for method, versus in zip(part["method"], part["versus"], strict=True):
        assert method.endswith(findings.OWN_FILL_SUFFIX)
        assert versus == method.removesuffix(findings.OWN_FILL_SUFFIX) + MEAN_FILL_SUFFIX
    assert {m.removesuffix(findings.OWN_FILL_SUFFIX) for m in part["method"]} == {
        "baseline",
        VARIANT,
    }
    assert set(part["corruption"]) == {"clouds", "dsm_voids"}  # the fill is in the labels
    assert set(part["severity"]) == {1, 3} and set(part["metric"]) == {"miou"}
    ones = part[part["imbalance"] == 1.0]
    variant = ones["method"].str.startswith(VARIANT)
    assert (ones.loc[variant, "diff"] > 0).all()  # its own fill loses less than the mean fill
    assert (ones.loc[~variant, "diff"] < 0).all()  # the reference's loses more
    text = findings.findings_markdown(frame, findings.DESCRIPTION)
    assert f"## {findings.SECTIONS['invalid_fill']}" in text
    assert f"| {VARIANT} (own fill) | {VARIANT} (mean fill) | 3 | dsm |" in text


def test_invalid_fill_holm_is_within_each_table_and_identical_fills_are_no_test(fills):
    frame, _calls = fills
    part = frame[frame["section"] == "invalid_fill"]
    assert part["table"].str.startswith("invalid_fill/").all()
    assert not set(part["table"]) & set(frame.loc[frame["section"] != "invalid_fill", "table"])
    for _table, rows in part.groupby("table"):
        assert rows["corruption"].nunique() == 1 and rows["train_missing"].nunique() == 1
        assert np.allclose(rows["p_holm"], holm(rows["p_value"]), equal_nan=True)
        assert (rows["table_size"] == np.isfinite(rows["p_value"]).sum()).all()
    tested = part[part["imbalance"] == 1.0]
    assert np.isfinite(tested["p_value"]).all() and (tested["table_size"] == len(tested) // 2).all()
    same = part[part["imbalance"] == 10.0]  # own fill = mean fill: identical predictions
    assert len(same) and (same["verdict"] == findings.SAME).all()
    assert (same["diff"] == 0).all() and same["p_value"].isna().all()
    assert (same["table_size"] == 0).all()


def test_paired_records_never_cross_fills_between_methods(fills):
    """Every bootstrap compares either two methods under one fill (the corruption section) or
    one method's same runs under two fills (the invalid_fill section), never two methods under
    different fills."""
    frame, calls = fills
    crossed = 0
    for mine, ref in calls:
        for seed in set(mine) & set(ref):
            a, b = mine[seed], ref[seed]
            if is_clean(a) or is_clean(b):
                continue
            assert (a["corruption"], a["severity"]) == (b["corruption"], b["severity"])
            if invalid_fill_of(a) != invalid_fill_of(b):
                assert a["run_id"] == b["run_id"]  # the same trained model
                crossed += 1
    assert crossed  # the invalid_fill section was tested
    corrupted = frame[frame["section"] == "corruption"]
    assert {"clouds", "clouds" + MEAN_FILL_SUFFIX} <= set(corrupted["corruption"])
    ones = corrupted[(corrupted["imbalance"] == 1.0) & (corrupted["severity"] == 3)]
    own = ones["corruption"].map(lambda c: not c.endswith(MEAN_FILL_SUFFIX))
    assert (ones.loc[own, "diff"] > 0).all()  # variant own (−6 %) vs baseline own (−75 %)
    assert (ones.loc[~own, "diff"] < 0).all()  # variant mean (−75 %) vs baseline mean (−6 %)


@pytest.mark.parametrize("fill", ["own", "mean", None])
def test_no_invalid_fill_section_with_one_fill(tmp_path, fill):
    root = copy_fixture(tmp_path)
    add_corruptions(root, severities=(2,), fill=fill)
    frame = frame_of(root)
    assert len(frame[frame["section"] == "corruption"])
    assert not (frame["section"] == "invalid_fill").any()
    assert findings.SECTIONS["invalid_fill"] not in findings.findings_markdown(frame, "x")


def test_each_finding_names_its_methods_kind(plain):
    """The fixture's methods are all single-model; `arms` reads the kind from the registry, so
    a dedicated method (one model per scenario) is an oracle."""
    assert set(plain["kind"]) == {"single-model"}
    spec = {"method": "unimodal", "label": "unimodal", "dataset": "synthetic", "steps": 40}
    (arm,) = findings.arms([spec]).values()
    assert arm.kind == "oracle"


def test_markdown_labels_oracles_and_says_they_never_win(plain):
    """A finding of an oracle against the reference is labelled as such in findings.md, with
    the note that it is a yardstick; without one, neither appears."""
    assert "(oracle)" not in findings.findings_markdown(plain, findings.DESCRIPTION)
    oracle = VARIANT
    marked = plain.assign(kind=np.where(plain["method"] == oracle, "oracle", "single-model"))
    assert (marked["kind"] == "oracle").any()
    text = findings.findings_markdown(marked, findings.DESCRIPTION)
    rows = [line for line in text.splitlines() if line.startswith(f"| {oracle}")]
    assert rows and all(line.startswith(f"| {oracle} (oracle) |") for line in rows)
    assert findings.ORACLE_NOTE.strip() in text
    assert "not that a rival won" in text
