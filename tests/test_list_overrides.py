"""List-valued overrides (the README's `stars[translate_levels=[2,3],psa_level=2]`) work end
to end: run id, records, leaderboard, report tables (issue 20, class 6)."""

from __future__ import annotations

import json

import pandas as pd

from benchmark.cli import main
from tests.cli_helpers import invoke


def test_a_list_valued_override_trains_records_and_reports(data_root, tmp_path):
    out = tmp_path / "results"
    method = "stars[translate_levels=[2,3],psa_level=2]"
    args = ["--methods", method, "--missing", "all", "--steps", "4"]
    assert invoke(args, data_root, out) == 0
    (run_dir,) = (out / "runs").iterdir()
    spec = json.loads((run_dir / "spec.json").read_text())
    assert dict(spec["hparams"])["translate_levels"] == [2, 3]
    board = pd.read_csv(out / "leaderboard.csv")
    assert set(board["method"]) == {"stars[psa_level=2,translate_levels=[2,3]]"}  # canonical
    assert (board["status"] == "ok").all() and len(board) == 3
    assert invoke(args, data_root, out) == 0  # same spec, same run id: resumed as done
    assert [p.name for p in (out / "runs").iterdir()] == [run_dir.name]
    assert main(["report", str(out), "--no-qualitative"]) == 0
    tables = next((out / "report").rglob("*.md")).read_text()
    assert "translate_levels=[2,3]" in (out / "report" / "leaderboard.csv").read_text() + tables
