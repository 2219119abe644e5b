"""After a failure the sweep's table says what failed (issue 32), never `selection:  — ; means
over:`. The results folder is written as a failed sweep leaves it (spec.json, failed.json),
without training anything."""

from __future__ import annotations

import pandas as pd
from rich.console import Console

from benchmark.commands.launch import sweep_leaderboard
from benchmark.commands.requests import sweep_request
from benchmark.report.render import wide_table
from benchmark.run.store import RunStore
from benchmark.run.sweep import expand
from tests.conftest import tiny_dataset_arg


def rendered(table) -> str:
    """The table as plain text, whitespace collapsed (rich wraps a caption to the table)."""
    console = Console(width=200, record=True)
    console.print(table)
    return " ".join(console.export_text().split())


def failed_sweep(out):
    """Two runs of one sweep, both failed, as the store holds them after the command."""
    request = sweep_request(
        methods="baseline,baseline[lr=0.0011]",
        datasets=tiny_dataset_arg(),
        seeds="0",
        preset="smoke",
        steps=None,
        imbalance="1",
        missing="all",
        budget="steps",
        train_missing=None,
        selection="full_val",
        corruptions="",
    )
    sweep = expand(request)
    store = RunStore(out)
    for spec in sweep.specs:
        store.write_spec(spec)
        store.record_failure(spec.run_id, RuntimeError("injected failure"))
    return sweep, store


def test_a_table_of_failed_runs_names_them_and_says_no_rows_exist(tmp_path):
    sweep, store = failed_sweep(tmp_path / "results")
    board = sweep_leaderboard(sweep, store)
    assert (board["status"] == "failed").all()
    text = rendered(wide_table(board, sweep.labels, "synthetic"))
    assert "selection: —" not in text and "means over: " not in text
    assert "no results: no full_val rows of any run in this table" in text
    assert (
        "failed: 2 run(s): baseline seed 0 (RuntimeError: injected failure); "
        "baseline[lr=0.0011] seed 0 (RuntimeError: injected failure)"
    ) in text


def test_a_table_with_some_results_keeps_its_caption_and_names_the_failed_run():
    def row(method, status, miou, error=""):
        return {
            "dataset": "d",
            "method": method,
            "imbalance": 1.0,
            "train_missing": "none",
            "scenario": "a+b",
            "missing": "none",
            "n_present": 2,
            "corruption": "none",
            "seed": 0,
            "status": status,
            "miou": miou,
            "mf1": miou,
            "selection": "full_val",
            "eval_classes": "x|y" if status == "ok" else None,
            "run_id": f"{method}-0",
            "error": error,
        }

    board = pd.DataFrame([row("m", "ok", 0.5), row("n", "failed", None, "RunDiverged: nan\nmore")])
    text = rendered(wide_table(board, ["m", "n"], "d"))
    assert "selection: full_val — " in text and "means over: x, y" in text
    assert "failed: 1 run(s): n seed 0 (RunDiverged: nan)" in text and "more" not in text
