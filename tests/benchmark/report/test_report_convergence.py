"""The step-budget section (`benchmark.report.convergence`): curves, flattening budget, Kendall τ,
and the main tables showing one budget per configuration."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from benchmark.cli import main
from benchmark.core.records import RunSpec
from benchmark.report import convergence
from benchmark.report.generate import generate_report, load_results
from benchmark.run.store import StoredRun
from benchmark.system.errors import BenchmarkError

FIXTURE = Path(__file__).resolve().parents[2] / "data" / "report_fixture" / "runs"
FIXTURE_STEPS = 40
"""The fixture's step budget (`--steps 40`)."""
SCENARIOS = (("dsm+optical", "none"), ("optical", "dsm"), ("dsm", "optical"))


def fake_run(method: str, steps: int, val: float, test: float, seed: int = 0) -> StoredRun:
    """A finished run whose selected checkpoint scores `val` / `test` mIoU on every scenario
    (the missing ones a little lower), as the records of a real run spell them."""
    spec = {
        "method": method.split("[")[0],
        "label": method,
        "dataset": "synthetic",
        "dataset_options": [],
        "imbalance": 1.0,
        "steps": steps,
        "preset": "quick",
        "seed": seed,
    }
    records = []
    for split, score in (("val", val), ("test", test)):
        for index, (scenario, missing) in enumerate(SCENARIOS):
            records.append(
                {
                    "split": split,
                    "selection": "full_val",
                    "scenario": scenario,
                    "missing": missing,
                    "seed": seed,
                    "kind": "single-model",
                    "miou": score - 0.01 * index,
                    "checkpoint_step": steps,
                }
            )
    run_id = f"{method}-{steps}-{seed}"
    return StoredRun(run_id, Path(run_id), spec, "done", records=records)


def frames_of(scores: dict[str, dict[int, tuple[float, float]]], delta: float = 1.0):
    runs = [
        fake_run(method, steps, val, test)
        for method, by_steps in scores.items()
        for steps, (val, test) in by_steps.items()
    ]
    return convergence.budget_frames(runs, "full_val", delta)


def taus(built, split: str, measure: str = "scenario_mean") -> dict[tuple[int, int], float]:
    part = built.kendall[(built.kendall["split"] == split) & (built.kendall["measure"] == measure)]
    return {(r.steps_a, r.steps_b): r.tau_b for r in part.itertuples()}


def test_kendall_tau_is_one_when_rankings_agree_and_minus_one_when_reversed():
    built = frames_of(
        {
            # validation keeps a > b > c at every budget; test reverses it at 1600
            "a": {400: (0.50, 0.50), 800: (0.60, 0.60), 1600: (0.70, 0.40)},
            "b": {400: (0.40, 0.40), 800: (0.50, 0.50), 1600: (0.60, 0.50)},
            "c": {400: (0.30, 0.30), 800: (0.40, 0.40), 1600: (0.50, 0.60)},
        }
    )
    assert taus(built, "val") == pytest.approx({(400, 800): 1, (400, 1600): 1, (800, 1600): 1})
    test = taus(built, "test")
    assert test[(400, 800)] == pytest.approx(1.0)
    assert test[(400, 1600)] == pytest.approx(-1.0)
    assert test[(800, 1600)] == pytest.approx(-1.0)
    assert set(built.kendall["n_methods"]) == {3}
    assert set(built.kendall["measure"]) == set(convergence.MEASURES)


def test_kendall_ranks_only_methods_present_at_both_budgets():
    built = frames_of(
        {
            "a": {400: (0.5, 0.5), 800: (0.6, 0.6)},
            "b": {400: (0.4, 0.4), 800: (0.7, 0.7)},
            "c": {800: (0.1, 0.1), 1600: (0.2, 0.2)},  # another configuration's budgets
        }
    )
    row = built.kendall[(built.kendall["split"] == "val") & (built.kendall["steps_a"] == 400)]
    pair = row[row["steps_b"] == 800].iloc[0]
    assert pair["n_methods"] == 2 and pair["methods"] == "a|b"
    assert pair["tau_b"] == pytest.approx(-1.0)
    alone = row[row["steps_b"] == 1600].iloc[0]  # no method has both: no τ
    assert alone["n_methods"] == 0 and pd.isna(alone["tau_b"])


def flat_steps(built, method: str, measure: str = "scenario_mean") -> int:
    part = built.flattening
    row = part[(part["method"] == method) & (part["measure"] == measure)].iloc[0]
    return int(row["flat_steps"])


def test_flattening_budget_is_found_on_validation_only():
    # validation: +10 points, then +0.5 (flat from 800 at δ = 1); test keeps climbing
    val = {400: 0.50, 800: 0.600, 1600: 0.605}
    rising = {400: 0.30, 800: 0.40, 1600: 0.80}
    flat = {400: 0.70, 800: 0.70, 1600: 0.70}
    for test in (rising, flat):
        built = frames_of({"a": {s: (val[s], test[s]) for s in val}})
        assert flat_steps(built, "a") == 800
        assert flat_steps(built, "a", "all_present") == 800
        part = built.flattening
        row = part[part["measure"] == "scenario_mean"].iloc[0]
        assert bool(row["flattened"]) and row["largest_steps"] == 1600
        assert row["test_at_flat"] == pytest.approx(test[800] - 0.01)  # reported, not used
    # the same data with a validation curve still rising: not flat before the largest budget
    built = frames_of({"a": {s: (v + (0.1 if s == 1600 else 0), 0.5) for s, v in val.items()}})
    assert flat_steps(built, "a") == 1600
    assert not built.flattening["flattened"].any()
    # a looser δ makes the earlier budget flat
    built = frames_of({"a": {s: (val[s], 0.5) for s in val}}, delta=20.0)
    assert flat_steps(built, "a") == 400


def test_flattening_needs_every_larger_budget_within_delta():
    assert convergence.flattening_budget({400: 0.60, 800: 0.50, 1600: 0.60}, 1.0) == 1600
    assert convergence.flattening_budget({400: 0.60, 800: 0.605, 1600: 0.60}, 1.0) == 400
    assert convergence.flattening_budget({400: float("nan"), 800: 0.6}, 1.0) == 800
    assert convergence.flattening_budget({}, 1.0) is None


def test_no_budget_section_with_one_budget():
    built = frames_of({"a": {400: (0.5, 0.5)}, "b": {400: (0.4, 0.4)}})
    assert built is None
    runs = [fake_run("a", 400, 0.5, 0.5), fake_run("a", 800, 0.6, 0.6)]
    assert convergence.off_budget(runs) == {"a-400-0"}
    assert convergence.off_budget(runs, 400) == {"a-800-0"}
    assert convergence.off_budget(runs[:1]) == set()


def test_bad_options_are_refused_in_one_line(tmp_path, capsys):
    with pytest.raises(BenchmarkError, match="flat-delta"):
        convergence.check_options(delta=-1.0)
    with pytest.raises(BenchmarkError, match="leaderboard-steps"):
        convergence.check_options(steps=0)
    shutil.copytree(FIXTURE, tmp_path / "runs")
    assert main(["report", str(tmp_path), "--flat-delta", "nan"]) == 2
    err = capsys.readouterr().err
    assert "--flat-delta" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "report").exists()  # refused before anything was written


def add_budget(root: Path, steps: int, shift: float) -> None:
    """Copy every fixture run to another step budget: a new spec (and run id), its records
    moved by `shift` mIoU, as `run --steps` would have written them."""
    for source in sorted((root / "runs").iterdir()):
        spec = json.loads((source / "spec.json").read_text())
        if spec["steps"] != FIXTURE_STEPS:
            continue
        moved = RunSpec.from_json(dict(spec, steps=steps)).to_json()
        target = root / "runs" / moved["run_id"]
        target.mkdir()
        (target / "spec.json").write_text(json.dumps(moved, indent=1, sort_keys=True) + "\n")
        if not (source / "done").exists():
            continue
        shutil.copy(source / "train_log.jsonl", target / "train_log.jsonl")
        lines = []
        for line in (source / "records.jsonl").read_text().splitlines():
            rec = json.loads(line)
            rec.update(run_id=moved["run_id"], steps=steps, miou=rec["miou"] + shift)
            lines.append(json.dumps(rec, sort_keys=True))
        (target / "records.jsonl").write_text("\n".join(lines) + "\n")
        (target / "done").write_text("fixture\n")


@pytest.fixture
def two_budgets(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / "runs")
    add_budget(tmp_path, 80, shift=0.05)
    return tmp_path


def test_main_tables_show_one_budget_under_plain_labels(two_budgets):
    results = load_results(two_budgets)
    board_steps = {e.spec["steps"] for e in results.entries}
    assert board_steps == {80}  # the largest budget by default
    assert "baseline" in results.methods  # plain labels: the reference is still found
    assert not any("steps" in m for m in results.methods)
    assert {r.spec["steps"] for r in results.off_budget} == {40}
    chosen = load_results(two_budgets, leaderboard_steps=40)
    assert {e.spec["steps"] for e in chosen.entries} == {40}
    assert {r.spec["steps"] for r in chosen.off_budget} == {80}
    absent = load_results(two_budgets, leaderboard_steps=123)  # not trained: the largest
    assert {e.spec["steps"] for e in absent.entries} == {80}


def test_report_writes_the_budget_section_with_several_budgets(two_budgets):
    files = generate_report(two_budgets, qualitative=False)
    names = {f.path.relative_to(two_budgets / "report").as_posix() for f in files}
    expected = {
        "budget_curve.csv",
        "budget_flattening.csv",
        "budget_kendall.csv",
        "tables/synthetic_budget.md",
        "tables/synthetic_budget.tex",
        "figures/synthetic_budget_x1.png",  # one figure per imbalance factor
        "figures/synthetic_budget_x10.png",
    }
    assert expected <= names
    out = two_budgets / "report"
    curve = pd.read_csv(out / "budget_curve.csv")
    assert set(curve["steps"]) == {40, 80} and set(curve["split"]) == {"val", "test"}
    # the fixture keeps only intermediate validations: the selected step's are used; they
    # cover the all-present scenario only, so no validation scenario mean is made up
    val = curve[(curve["split"] == "val") & (curve["n_seeds"] > 0)]
    assert val.loc[val["measure"] == "all_present", "miou_mean"].notna().all()
    assert val.loc[val["measure"] == "scenario_mean", "miou_mean"].isna().all()
    assert curve.loc[curve["split"] == "test", "n_scenarios"].max() == 3
    board = pd.read_csv(out / "leaderboard.csv")
    assert set(board["steps"]) == {80}
    index = (out / "report.md").read_text(encoding="utf-8")
    assert f"## {convergence.SECTION}" in index and "their largest budget" in index


class RecordingWriter:
    """Remembers what a section would write."""

    def __init__(self) -> None:
        self.written: list[str] = []

    def csv(self, frame, name, what, section=""):
        self.written.append(name)

    def text(self, relative, text, what, section=""):
        self.written.append(relative)

    def figure(self, fig, stem, what, section=""):
        self.written.append(stem)


def test_one_budget_writes_no_section_and_keeps_every_run_on_the_board():
    results = load_results(FIXTURE.parent)
    assert results.off_budget == []
    runs = [e.run for e in results.entries]
    writer = RecordingWriter()
    assert not convergence.write_section(writer, runs, results.selection)
    assert writer.written == []
    assert convergence.budget_notes(results.runs) == []
