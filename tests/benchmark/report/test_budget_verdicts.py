"""Findings per step budget (`benchmark.report.budget_verdicts`): each comparison's verdict at a
smaller budget against the largest, computed as a report at that budget computes it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from benchmark.report import budget_verdicts, render
from benchmark.report.generate import generate_report
from tests.benchmark.report.report_variants import copy_fixture, read_records, scaled, write_records
from tests.benchmark.report.test_report_convergence import FIXTURE_STEPS, add_budget

LARGER = 2 * FIXTURE_STEPS


@pytest.mark.parametrize(
    ("verdict", "at_largest", "expected"),
    [
        ("higher", "higher", "same"),
        ("n.s.", "n.s.", "same"),
        ("lower", "higher", "reversed"),
        ("higher", "n.s.", "gained"),
        ("n.s.", "lower", "lost"),
    ],
)
def test_agreement_classes(verdict, at_largest, expected):
    assert budget_verdicts.agreement(verdict, at_largest) == expected


def weaken(root: Path, steps: int, reference: bool) -> None:
    """Degrade the test records (scores and per-tile confusions) at `steps` of the reference
    (`reference`) or of every other method, so that the sign of each finding is set."""
    for run in (root / "runs").iterdir():
        spec = json.loads((run / "spec.json").read_text())
        if spec["steps"] != steps or not (run / "records.jsonl").exists():
            continue
        if ((spec.get("label") or spec["method"]) == "baseline") == reference:
            records = read_records(run)
            write_records(run, [scaled(r, 0.4) if r["split"] == "test" else r for r in records])


@pytest.fixture(scope="module")
def reversed_budgets(tmp_path_factory):
    """The fixture at two budgets: at the larger the reference is degraded (every method beats
    it), at the fixture's own every other method is (the reference beats them)."""
    root = copy_fixture(tmp_path_factory.mktemp("budgets"))
    add_budget(root, LARGER, shift=0.0)
    weaken(root, LARGER, reference=True)
    weaken(root, FIXTURE_STEPS, reference=False)
    generate_report(root, qualitative=False)
    return root / "report"


def test_opposite_signs_never_read_as_the_same_verdict(reversed_budgets):
    verdicts = pd.read_csv(reversed_budgets / "budget_verdicts.csv", keep_default_na=False)
    small = verdicts[verdicts["steps"] == FIXTURE_STEPS]
    large = verdicts[verdicts["steps"] == LARGER]
    assert len(small) == len(large) > 0
    assert set(large["agreement"]) == {""}  # the largest budget is what the others are read against
    assert (small["largest_steps"] == LARGER).all()
    for row in small.itertuples():
        assert row.agreement == budget_verdicts.agreement(row.verdict, row.verdict_at_largest)
    miou_small, miou_large = small[small["metric"] == "miou"], large[large["metric"] == "miou"]
    assert (miou_small["diff"] < 0).all() and (miou_large["diff"] > 0).all()
    assert set(miou_small["verdict"]) <= {"lower", "n.s."} and "lower" in set(miou_small["verdict"])
    assert set(miou_large["verdict"]) <= {"higher", "n.s."} and "higher" in set(
        miou_large["verdict"]
    )
    assert "same" not in set(miou_small.loc[miou_small["verdict"] != "n.s.", "agreement"])


def test_the_summary_counts_every_smaller_budget_comparison(reversed_budgets):
    verdicts = pd.read_csv(reversed_budgets / "budget_verdicts.csv", keep_default_na=False)
    summary = pd.read_csv(reversed_budgets / "budget_verdict_summary.csv")
    assert set(summary["steps"]) == {FIXTURE_STEPS}
    counts = summary[list(budget_verdicts.AGREEMENTS)].sum(axis=1)
    assert (counts == summary["comparisons"]).all()
    assert summary["comparisons"].sum() == (verdicts["steps"] == FIXTURE_STEPS).sum()
    miou = summary[summary["metric"] == "miou"]
    assert miou["same"].sum() + miou["reversed"].sum() + miou["gained"].sum() > 0
    assert miou["significant"].sum() > 0 and miou["significant_at_largest"].sum() > 0
    table = (reversed_budgets / "tables" / "synthetic_budget_verdicts.md").read_text()
    assert f"{FIXTURE_STEPS} vs {LARGER}" in table and "(lower)" in table


def test_the_largest_budget_rows_are_the_reports_own_findings(reversed_budgets):
    """At the budget the main tables show, the findings are the report's findings.csv, to the
    id and the adjusted p (the same runs, the same bootstrap, the same Holm family)."""
    verdicts = pd.read_csv(reversed_budgets / "budget_verdicts.csv", keep_default_na=False)
    found = pd.read_csv(reversed_budgets / "findings.csv").set_index("id")
    large = verdicts[verdicts["steps"] == LARGER]
    assert set(large["id"]) <= set(found.index)
    for row in large.itertuples():
        assert row.diff == pytest.approx(found.loc[row.id, "diff"])
        assert row.p_holm == pytest.approx(found.loc[row.id, "p_holm"])
        assert row.verdict == found.loc[row.id, "verdict"]


def test_the_smaller_budget_rows_are_that_budgets_report_findings(reversed_budgets, tmp_path):
    """`report --leaderboard-steps <smaller>` writes the same findings for that budget."""
    root = reversed_budgets.parent
    other = tmp_path / "at_smaller"
    generate_report(root, qualitative=False, leaderboard_steps=FIXTURE_STEPS, out=other)
    found = pd.read_csv(other / "findings.csv").set_index("id")
    verdicts = pd.read_csv(reversed_budgets / "budget_verdicts.csv", keep_default_na=False)
    small = verdicts[verdicts["steps"] == FIXTURE_STEPS]
    assert set(small["id"]) <= set(found.index)
    for row in small.itertuples():
        assert row.p_holm == pytest.approx(found.loc[row.id, "p_holm"])
        assert row.verdict == found.loc[row.id, "verdict"]


def test_one_budget_writes_no_verdicts(tmp_path):
    root = copy_fixture(tmp_path)
    files = generate_report(root, qualitative=False)
    names = {f.path.name for f in files}
    assert "budget_verdicts.csv" not in names and "budget_verdict_summary.csv" not in names


def test_the_detail_table_labels_oracles(reversed_budgets):
    """Each comparison keeps its method's kind; an oracle's row says so and the caption says
    oracles are references, as in findings.md."""
    verdicts = pd.read_csv(reversed_budgets / "budget_verdicts.csv", keep_default_na=False)
    assert set(verdicts["kind"]) == {"single-model"}
    plain = render.to_markdown(budget_verdicts.detail_table(verdicts, "synthetic"))
    assert "(oracle)" not in plain
    oracle = verdicts["method"].iloc[0]
    marked = verdicts.assign(
        kind=[
            "oracle" if m == oracle else k
            for m, k in zip(verdicts["method"], verdicts["kind"], strict=True)
        ]
    )
    text = render.to_markdown(budget_verdicts.detail_table(marked, "synthetic"))
    assert f"{oracle} (oracle) vs" in text and budget_verdicts.ORACLE_NOTE.strip() in text
