"""A corrupted evaluation is a job the launcher schedules on a finished run, not a step of the
run executor: it evaluates only what the run lacks, under the run's lock, in this process or in
a worker process alike (the same rows), and a run whose lock another launcher holds is busy."""

from __future__ import annotations

import json
import multiprocessing
import shutil
from pathlib import Path

import torch

from benchmark.core.records import RunSpec
from benchmark.corrupt.tile import TileCorruption
from benchmark.run.execution import Execution
from benchmark.run.launchers import CORRUPTED_BUSY, LAUNCHERS, LaunchContext
from benchmark.run.store import CORRUPTED, RunStore
from tests.benchmark.cli.cli_helpers import VOLATILE, snapshot

ASKED = (TileCorruption("noise", 1), TileCorruption("clouds", 2), TileCorruption("speckle", 3))
"""Noise touches every scenario, clouds those with optical, speckle none (no SAR here)."""


def _finished_copy(finished: Path, folder: Path) -> tuple[Path, RunSpec]:
    out = folder / "results"
    shutil.copytree(finished, out)
    (spec_file,) = out.glob("runs/*/spec.json")
    return out, RunSpec.from_json(json.loads(spec_file.read_text()))


def _launch(out: Path, data_root: Path, spec: RunSpec, workers: int) -> list:
    execution = Execution(data_root, out, torch.device("cpu"), workers=workers, threads=1)
    ctx = LaunchContext(execution, corruptions=ASKED)
    return LAUNCHERS.get("local")([spec], ctx)


def _rows(out: Path, spec: RunSpec) -> list[dict]:
    path = out / "runs" / spec.run_id / CORRUPTED
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in VOLATILE} for row in rows]


def test_a_finished_run_gets_only_its_missing_corrupted_evaluations(finished, data_root, tmp_path):
    rows = {}
    for workers in (1, 2):  # in this process, then as a job of a worker process
        out, spec = _finished_copy(finished, tmp_path / f"workers_{workers}")
        (outcome,) = _launch(out, data_root, spec, workers)
        assert (outcome.status, outcome.error) == ("skipped", "")  # the run itself was done
        rows[workers] = _rows(out, spec)
        before = snapshot(out / "runs")
        (again,) = _launch(out, data_root, spec, workers)
        assert again.status == "skipped" and snapshot(out / "runs") == before  # nothing missing
    keys = [(r["corruption"], r["severity"], r["scenario"]) for r in rows[1]]
    assert keys == [
        ("noise", 1, "dsm+optical"),
        ("noise", 1, "dsm"),
        ("noise", 1, "optical"),
        ("clouds", 2, "dsm+optical"),
        ("clouds", 2, "optical"),
    ]
    assert rows[2] == rows[1]


def hold_lock(out: str, run_id: str, ready, release) -> None:
    """Another launcher: holds the run's lock until told to let go."""
    with RunStore(Path(out)).lock(run_id) as mine:
        assert mine
        ready.set()
        release.wait(60)


def test_a_run_whose_lock_is_held_elsewhere_is_busy_and_unchanged(finished, data_root, tmp_path):
    out, spec = _finished_copy(finished, tmp_path)
    context = multiprocessing.get_context("spawn")
    ready, release = context.Event(), context.Event()
    other = context.Process(target=hold_lock, args=(str(out), spec.run_id, ready, release))
    other.start()
    try:
        assert ready.wait(60)
        before = snapshot(out / "runs")
        (outcome,) = _launch(out, data_root, spec, workers=1)
        assert (outcome.status, outcome.error) == ("busy", CORRUPTED_BUSY)
        assert snapshot(out / "runs") == before
    finally:
        release.set()
        other.join(60)
