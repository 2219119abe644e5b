"""List-valued overrides (the README's `stars[translate_levels=[2,3],psa_level=2]`) work end
to end: run id, records, leaderboard, report tables (issue 20, class 6)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from benchmark.cli import main
from tests.benchmark.cli.cli_helpers import invoke


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


@pytest.mark.parametrize(
    "method,spaced",
    [
        ("moddrop[subset_weights=[2,1,1]]", "moddrop[subset_weights=[2, 1, 1]]"),
        ("moddrop[subset_weights=[0.5,0.25,0.25]]", "moddrop[ subset_weights=[0.5,0.25, 0.25] ]"),
        ("shaspec[subset_weights=[1,0,1]]", "shaspec[subset_weights=[1,0,1] ]"),
        ("stars[translate_levels=[3]]", "stars[translate_levels=[ 3 ]]"),
        ("stars[psa_level=3,translate_levels=[2,3]]", "stars[translate_levels=[2,3], psa_level=3]"),
    ],
)
def test_list_valued_overrides_plan_one_run_whatever_the_spacing(
    method, spaced, data_root, tmp_path, capsys
):
    """Every list-valued hyperparameter hashes to one run id however it is written."""
    from benchmark.core.options import parse_named_list
    from benchmark.run.sweep import expand_method_names

    (written,) = expand_method_names(parse_named_list(method))
    (respaced,) = expand_method_names(parse_named_list(spaced))
    assert written == respaced and written.label() == respaced.label()
    out = tmp_path / "results"
    dry = ["--launcher", "dry_run", "--missing", "all"]
    assert invoke(["--methods", f"{method},{spaced}", *dry], data_root, out) == 0
    assert "1 run(s)" in capsys.readouterr().out.replace("\n", " ")
    assert not out.exists()  # a dry run writes nothing
