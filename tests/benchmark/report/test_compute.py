"""The compute section (`benchmark.report.compute`): hours the runs recorded, per stage and
device, from records with known seconds (no training)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from benchmark.commands.tuning import TUNE_DIR
from benchmark.report import compute
from benchmark.report.generate import generate_report
from benchmark.run.store import RUNS, StoredRun
from tests.benchmark.report.report_variants import add_corruptions, copy_fixture, read_records

HOUR = 3600.0


def record(split: str, step: int, scenario: str, train: float, evaluation: float, **more):
    """A record with the fields the compute section reads."""
    return {
        "split": split,
        "selection": "full_val" if split == "test" else "",
        "checkpoint_step": step,
        "scenario": scenario,
        "train_seconds": train,
        "eval_seconds": evaluation,
        "device": "cuda:0",
        **more,
    }


def fake_run(
    run_id: str,
    train: float,
    evaluation: float = 0.0,
    method: str = "baseline",
    seed: int = 0,
    device: str = "cuda:0",
    scenarios: tuple[str, ...] = ("dsm+optical", "optical"),
    extra: list[dict] | None = None,
    **spec: object,
) -> StoredRun:
    """A finished run trained for `train` seconds whose every clean evaluation (one
    intermediate validation halfway, the final validation and test of each scenario) took
    `evaluation` seconds; `extra` records are added as they are."""
    records = [record("val", 20, s, train / 2, evaluation, device=device) for s in scenarios]
    records += [record("val", 40, s, train, evaluation, device=device) for s in scenarios]
    records += [record("test", 40, s, train, evaluation, device=device) for s in scenarios]
    full = {
        "method": method.split("[")[0],
        "label": method,
        "dataset": "synthetic",
        "dataset_options": [],
        "seed": seed,
        "steps": 40,
        "preset": "quick",
        **spec,
    }
    return StoredRun(run_id, Path(run_id), full, "done", records=records + (extra or []))


def rows(frame: pd.DataFrame, **where: object) -> pd.DataFrame:
    mask = pd.Series(True, index=frame.index)
    for key, value in where.items():
        mask &= frame[key] == value
    return frame[mask]


def test_training_seconds_count_once_per_run_and_evaluations_once_each():
    # 6 records carry the training seconds: summed per record it would be 5 h, not 1 h
    frame = compute.compute_frame([fake_run("a", HOUR, evaluation=360.0)])
    (stage,) = rows(frame, stage="run").to_dict("records")
    assert stage["train_hours"] == 1.0
    # val at 20 and 40 steps, test at 40: 3 evaluations x 2 scenarios x 0.1 h
    assert stage["eval_hours"] == 0.6
    assert stage["corrupted_eval_hours"] == 0.0
    assert stage["total_hours"] == 1.6
    assert (stage["runs"], stage["seeds"], stage["methods"]) == (1, 1, 1)


def test_an_evaluation_recorded_under_several_rules_counts_once():
    """The checkpoint two rules chose is evaluated once and recorded under each; the
    validation that chose it is its final validation record too."""
    copies = [
        record("test", 40, s, HOUR, 360.0, selection="mean_val") for s in ("dsm+optical", "optical")
    ]
    copies += [
        record("val", 40, s, HOUR, 360.0, selection="full_val") for s in ("dsm+optical", "optical")
    ]
    frame = compute.compute_frame([fake_run("a", HOUR, evaluation=360.0, extra=copies)])
    assert rows(frame, stage="run")["eval_hours"].item() == 0.6


def test_an_oracle_adds_up_its_per_scenario_models():
    """`unimodal` trains one model per scenario, each a run of its own: every model's
    training counts, under one method and one seed."""
    oracle = [
        fake_run(f"u{i}", HOUR * (i + 1), method="unimodal", scenarios=(s,))
        for i, s in enumerate(("dsm", "optical"))
    ]
    frame = compute.compute_frame([fake_run("b", HOUR), *oracle])
    stage = rows(frame, stage="run")
    assert stage["train_hours"].item() == 4.0  # 1 + 1 + 2
    assert (stage["runs"].item(), stage["seeds"].item(), stage["methods"].item()) == (3, 1, 2)


def test_devices_get_rows_of_their_own_and_a_total_each():
    runs = [
        fake_run("a", HOUR, device="cpu"),
        fake_run("b", 2 * HOUR, seed=1, device="cuda:0"),
        fake_run("c", 3 * HOUR, seed=2, device="cuda:1"),  # --workers over two GPUs
        fake_run("d", HOUR, device="cuda:0", steps=100),
    ]
    frame = compute.compute_frame(runs)
    assert list(frame["stage"]) == ["run", "run", "run", "total", "total"]
    assert list(frame["device"]) == ["cpu", "gpu", "gpu", "cpu", "gpu"]
    gpu = rows(frame, stage="total", device="gpu").iloc[0]
    assert gpu["train_hours"] == 6.0
    assert (gpu["runs"], gpu["seeds"], gpu["methods"]) == (3, 3, 1)
    assert rows(frame, stage="total", device="cpu")["train_hours"].item() == 1.0
    assert list(rows(frame, device="gpu", stage="run")["steps"]) == [40, 100]


def test_stages_are_what_one_command_produced():
    """Training condition, budget kind, steps and preset set stages apart; under
    `--budget flops` the methods' FLOP-matched steps are one stage at the asked-for steps."""
    runs = [
        fake_run("a", HOUR),
        fake_run("b", HOUR, train_missing=[["dsm", 0.3]]),
        fake_run("c", HOUR, budget="flops", budget_ratio=1.0),
        fake_run("d", HOUR, method="other", budget="flops", budget_ratio=0.5, steps=20),
        fake_run("e", HOUR, preset="paper"),
    ]
    frame = rows(compute.compute_frame(runs), stage="run")
    got = {
        (r.train_missing, r.budget, r.steps, r.preset): (r.runs, r.methods)
        for r in frame.itertuples()
    }
    assert got == {
        ("none", "steps", 40, "quick"): (1, 1),
        ("dsm=0.3", "steps", 40, "quick"): (1, 1),
        ("none", "flops", 40, "quick"): (2, 2),
        ("none", "steps", 40, "paper"): (1, 1),
    }


def test_corrupted_evaluations_count_once_and_a_written_fill_adds_nothing():
    plain = compute.compute_frame([fake_run("a", HOUR)])
    assert (plain["corrupted_eval_hours"] == 0.0).all()
    corrupted = [
        record("test", 40, "optical", HOUR, 180.0, corruption="clouds", severity=s,
               invalid_fill="own")
        for s in (1, 2)
    ]  # fmt: skip
    derived = dict(corrupted[0], invalid_fill="mean", invalid_fill_from="own")
    frame = compute.compute_frame([fake_run("a", HOUR, extra=[*corrupted, derived])])
    stage = rows(frame, stage="run").iloc[0]
    assert stage["corrupted_eval_hours"] == 0.1
    assert stage["train_hours"] == 1.0  # corrupted records carry the run's training seconds
    assert stage["total_hours"] == 1.1


class Files:
    """Collects what the section writes (`compute.Writer`)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def csv(self, frame: pd.DataFrame, name: str, what: str, section: str = "") -> None:
        self.names.append(name)

    def text(self, relative: str, text: str, what: str, section: str = "") -> None:
        self.names.append(relative)


def test_no_section_without_a_finished_run(tmp_path):
    unfinished = StoredRun("x", tmp_path / "x", fake_run("x", HOUR).spec, "incomplete")
    files = Files()
    assert compute.write_section(files, [unfinished], tmp_path) == []
    assert files.names == []
    compute.write_section(files, [fake_run("a", HOUR)], tmp_path)
    assert files.names == ["compute.csv", "compute.md"]


def write_tune(root: Path, cost: list[dict]) -> None:
    folder = root / compute.TUNE_DIR
    folder.mkdir(parents=True)
    protocol = {"dataset": "synthetic", "preset": "quick", "seed": 0, "rungs": [20, 40]}
    (folder / "protocol.json").write_text(json.dumps(protocol))
    pd.DataFrame(cost).to_csv(folder / "search_cost.csv", index=False)


def tune_row(method: str, train: float, evaluation: float, cpu: float, gpu: float) -> dict:
    return {"method": method, "trials": 4, "runs": 6, "steps": 180, "train_seconds": train,
            "eval_seconds": evaluation, "cpu_seconds": cpu, "gpu_seconds": gpu}  # fmt: skip


def test_a_tune_folder_is_a_stage_and_enters_the_totals(tmp_path):
    write_tune(
        tmp_path,
        [
            tune_row("baseline", 2 * HOUR, HOUR, 0.0, 3 * HOUR),
            tune_row("stars", HOUR, 0.0, 0.0, HOUR),
        ],
    )
    tune, notes = compute.tune_tallies(tmp_path / compute.TUNE_DIR)
    frame = compute.compute_frame([fake_run("a", HOUR)], tune)
    (row,) = rows(frame, stage="tune").to_dict("records")
    assert (row["device"], row["steps"], row["dataset"]) == ("gpu", "20|40", "synthetic")
    assert (row["train_hours"], row["eval_hours"], row["total_hours"]) == (3.0, 1.0, 4.0)
    assert (row["runs"], row["methods"], row["seeds"]) == (12, 2, 1)
    total = rows(frame, stage="total").iloc[0]
    assert total["train_hours"] == 4.0 and total["runs"] == 13 and not notes


def test_a_tune_method_on_cpu_and_gpu_keeps_its_hours_but_not_their_split(tmp_path):
    write_tune(tmp_path, [tune_row("baseline", 2 * HOUR, HOUR, HOUR, 2 * HOUR)])
    tune, _notes = compute.tune_tallies(tmp_path / compute.TUNE_DIR)
    frame = compute.compute_frame([], tune)
    cpu, gpu = (rows(frame, stage="tune", device=d).iloc[0] for d in ("cpu", "gpu"))
    assert (cpu["total_hours"], gpu["total_hours"]) == (1.0, 2.0)
    assert math.isnan(cpu["train_hours"]) and math.isnan(gpu["eval_hours"])
    assert (cpu["runs"], gpu["runs"]) == (0, 6)  # where most of its seconds went
    assert "–" in compute.compute_markdown(frame)


def test_an_unreadable_search_cost_is_a_note(tmp_path):
    write_tune(tmp_path, [{"method": "baseline", "runs": 1}])
    tune, notes = compute.tune_tallies(tmp_path / compute.TUNE_DIR)
    assert tune == {} and len(notes) == 1 and "cpu_seconds" in notes[0]


def test_the_tune_folder_is_where_tune_writes():
    assert compute.TUNE_DIR == TUNE_DIR


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The committed fixture's runs with corrupted evaluations added, reported."""
    root = copy_fixture(tmp_path_factory.mktemp("results"))
    add_corruptions(root, severities=(1,))
    generate_report(root, qualitative=False)
    return root


def test_the_report_writes_and_lists_the_section(report):
    out = report / "report"
    frame = pd.read_csv(out / "compute.csv")
    expected = [0.0, 0.0, 0.0]
    for run in sorted((report / RUNS).iterdir()):
        if not (run / "done").exists():
            continue
        records = read_records(run)
        clean = [r for r in records if r.get("corruption", "none") == "none"]
        expected[0] += max(r["train_seconds"] for r in clean)
        once = {(r["split"], r["checkpoint_step"], r["scenario"]): r for r in clean}
        expected[1] += sum(r["eval_seconds"] for r in once.values())
        expected[2] += sum(r["eval_seconds"] for r in records if r not in clean)
    (total,) = rows(frame, stage="total").to_dict("records")
    assert total["device"] == "cpu" and total["runs"] == 7 and expected[2] > 0
    for column, seconds in zip(compute.HOURS, expected, strict=False):
        assert total[column] == pytest.approx(seconds / HOUR, abs=1e-3)
    index = (out / "report.md").read_text(encoding="utf-8")
    assert f"## {compute.SECTION}" in index
    assert "](compute.csv)" in index and "](compute.md)" in index
    markdown = (out / "compute.md").read_text(encoding="utf-8")
    assert compute.CAPTION in markdown and "| total |" in markdown
