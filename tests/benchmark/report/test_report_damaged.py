"""`report` on damaged corrupted records (issue 33, class 7): every intact corrupted record is
used, the damaged lines are kept out and named in report.md's notes, and no run file is
rewritten by a report, in a results directory or in a frozen folder (read-only records)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd

from benchmark.cli import main
from benchmark.report.generate import generate_report
from benchmark.run.store import CORRUPTED, DAMAGED, RunStore, frozen_changes
from tests.benchmark.cli.cli_helpers import snapshot
from tests.benchmark.report.report_variants import copy_fixture, read_records, scaled

KEYS = ["dataset", "imbalance", "method", "scenario", "corruption", "severity"]


def corrupt_every_run(root: Path) -> tuple[Path, str]:
    """Give every finished run `clouds` severity 2 records in `corrupted.jsonl`; returns the
    first run's folder and the scenario of its last record, the one the tests damage."""
    runs = [p for p in sorted((root / "runs").iterdir()) if (p / "done").exists()]
    for run in runs:
        records = [
            scaled(r, 0.9, corruption="clouds", severity=2, invalid_fill="own")
            for r in read_records(run)
            if r["split"] == "test" and r["selection"] and "optical" in r["scenario"].split("+")
        ]
        lines = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
        (run / CORRUPTED).write_text(lines)
    first = (runs[0] / CORRUPTED).read_text().splitlines()
    return runs[0], json.loads(first[-1])["scenario"]


def damage_last_line(run: Path) -> None:
    lines = (run / CORRUPTED).read_text().splitlines()
    (run / CORRUPTED).write_text("\n".join([*lines[:-1], lines[-1][:50]]) + "\n")


def counts(report: Path) -> tuple[pd.Series, pd.Series]:
    """Seeds per (dataset, imbalance, method, scenario, corruption) with a clouds severity 2
    record, and with a clean one (severity 0, repeated under each corruption)."""
    table = pd.read_csv(report / "corruption.csv")
    table = table[table["corruption"] == "clouds"].set_index(KEYS)["miou_n"]
    return table.xs(2, level="severity"), table.xs(0, level="severity")


def test_report_keeps_every_intact_record_and_names_the_damaged_line(tmp_path):
    root = copy_fixture(tmp_path)
    run, lost = corrupt_every_run(root)
    damage_last_line(run)
    before = snapshot(root / "runs")
    generate_report(root, reference="baseline", qualitative=False)
    assert snapshot(root / "runs") == before  # a report reads runs, never rewrites them
    corrupted, clean = counts(root / "report")
    spec = json.loads((run / "spec.json").read_text())
    key = ("synthetic", float(spec["imbalance"]), spec["label"], lost, "clouds")
    expected = clean.loc[corrupted.index].copy()
    expected[key] -= 1  # the damaged record alone is lost; every intact one counts
    assert corrupted.sum() > 1 and corrupted.to_dict() == expected.to_dict()
    index = (root / "report" / "report.md").read_text(encoding="utf-8")
    notes = index.split("## Notes", 1)[1]
    assert f"runs/{run.name}/{CORRUPTED}: 1 damaged line(s) skipped" in notes


def test_report_names_the_lines_a_run_set_aside(tmp_path):
    root = copy_fixture(tmp_path)
    run, _ = corrupt_every_run(root)
    damage_last_line(run)
    RunStore(root).set_aside_corrupted(run.name)
    assert (run / (CORRUPTED + DAMAGED)).is_file()
    generate_report(root, reference="baseline", qualitative=False)
    index = (root / "report" / "report.md").read_text(encoding="utf-8")
    assert f"runs/{run.name}/{CORRUPTED}{DAMAGED}: 1 line(s) set aside" in index
    assert f"{CORRUPTED}: 1 damaged" not in index


def test_a_frozen_folder_with_a_damaged_line_is_read_not_rewritten(tmp_path):
    """The freeze's report is written from the frozen copy, whose gzipped records keep the
    damaged line as it was: skipped and named, never set aside."""
    source = copy_fixture(tmp_path / "source")
    run, _ = corrupt_every_run(source)
    damage_last_line(run)
    dest = tmp_path / "frozen"
    assert main(["report", str(source), "--freeze", str(dest), "--no-qualitative"]) == 0
    frozen_run = dest / "runs" / run.name
    assert not (frozen_run / CORRUPTED).exists()
    kept = gzip.decompress((frozen_run / (CORRUPTED + ".gz")).read_bytes())
    assert kept == (run / CORRUPTED).read_bytes()  # the damaged line is still there
    assert not list((dest / "runs").rglob(f"*{DAMAGED}")) and frozen_changes(dest) == []
    index = (dest / "report" / "report.md").read_text(encoding="utf-8")
    assert f"runs/{run.name}/{CORRUPTED}.gz: 1 damaged line(s) skipped" in index
    corrupted, clean = counts(dest / "report")
    assert corrupted.sum() > 1 and (corrupted <= clean.loc[corrupted.index]).all()


def test_a_freeze_keeps_the_lines_a_run_set_aside(tmp_path):
    """Lines set aside as damaged travel with the frozen run (checksummed), so the frozen
    report names them as the source's report does."""
    source = copy_fixture(tmp_path / "source")
    run, _ = corrupt_every_run(source)
    damage_last_line(run)
    RunStore(source).set_aside_corrupted(run.name)
    dest = tmp_path / "frozen"
    assert main(["report", str(source), "--freeze", str(dest), "--no-qualitative"]) == 0
    kept = dest / "runs" / run.name / (CORRUPTED + DAMAGED)
    assert kept.read_bytes() == (run / (CORRUPTED + DAMAGED)).read_bytes()
    assert frozen_changes(dest) == []
    index = (dest / "report" / "report.md").read_text(encoding="utf-8")
    assert f"runs/{run.name}/{CORRUPTED}{DAMAGED}: 1 line(s) set aside" in index
