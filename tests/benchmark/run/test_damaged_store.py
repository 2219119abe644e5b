"""A results store damaged after the fact (issue 20, classes 7 and 8): a finished run whose
records are gone or garbled is named and trained again while the sweep goes on; a spec.json
that no longer hashes to its directory is refused by `report` and listed; a store where every
run is unreadable gets one line from `report` and nothing written."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest

from benchmark.cli import main
from tests.benchmark.cli.cli_helpers import invoke, snapshot

ARGS = ["--methods", "baseline,moddrop", "--missing", "none", "--steps", "4"]


@pytest.fixture(scope="module")
def finished(data_root, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("damaged") / "results"
    assert invoke(ARGS, data_root, out) == 0
    return out


def copy_of(finished: Path, tmp_path: Path) -> Path:
    import shutil

    out = tmp_path / "results"
    shutil.copytree(finished, out)
    return out


def run_of(out: Path, method: str) -> Path:
    for run_dir in (out / "runs").iterdir():
        if json.loads((run_dir / "spec.json").read_text())["method"] == method:
            return run_dir
    raise AssertionError(method)


DAMAGE = {
    "missing": lambda path: path.unlink(),
    "empty": lambda path: path.write_text(""),
    "truncated": lambda path: path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2]),
    "garbage": lambda path: path.write_bytes(b"\x00\xff not json \x80" * 50),
    "a directory": lambda path: (path.unlink(), path.mkdir()),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_done_run_with_damaged_records_is_redone_and_the_sweep_goes_on(
    finished, tmp_path, data_root, caplog, damage
):
    out = copy_of(finished, tmp_path)
    broken = run_of(out, "baseline")
    DAMAGE[damage](broken / "records.jsonl")
    intact = run_of(out, "moddrop")
    intact_before = snapshot(intact)
    with caplog.at_level(logging.WARNING):
        assert invoke(ARGS, data_root, out) == 0
    assert any(
        broken.name in r.getMessage() and "damaged" in r.getMessage() for r in caplog.records
    )
    board = pd.read_csv(out / "leaderboard.csv")
    assert (board["status"] == "ok").all() and set(board["method"]) == {"baseline", "moddrop"}
    assert snapshot(intact) == intact_before  # the intact run was not touched
    assert (broken / "done").exists() and (broken / "records.jsonl").is_file()
    kept = broken / "records.jsonl.damaged"  # what stood there is kept, not deleted
    assert kept.is_file() == (damage in ("truncated", "garbage"))


@pytest.mark.parametrize(
    "edit",
    [
        lambda spec: spec.update(method="moddrop", label="moddrop"),
        lambda spec: spec.update(seed=spec["seed"] + 1),
        lambda spec: spec.update(run_id="0" * 16),
        lambda spec: spec.pop("hparams"),
    ],
)
def test_report_refuses_a_spec_that_does_not_hash_to_its_run(finished, tmp_path, caplog, edit):
    out = copy_of(finished, tmp_path)
    edited = run_of(out, "baseline")
    moddrop = run_of(out, "moddrop")  # before the edit: it may make baseline's spec say moddrop
    spec = json.loads((edited / "spec.json").read_text())
    edit(spec)
    (edited / "spec.json").write_text(json.dumps(spec))
    with caplog.at_level(logging.WARNING):
        assert main(["report", str(out), "--no-qualitative"]) == 0
    assert any(edited.name in r.getMessage() for r in caplog.records)
    board = pd.read_csv(out / "report" / "leaderboard.csv")
    assert set(board["run_id"]) == {moddrop.name}  # baseline left out, not moved


def test_report_on_a_store_where_every_run_is_unreadable_is_one_line(finished, tmp_path, capsys):
    out = copy_of(finished, tmp_path)
    for run_dir in (out / "runs").iterdir():
        (run_dir / "records.jsonl").write_text("{broken")
    before = snapshot(out)
    capsys.readouterr()
    assert main(["report", str(out), "--no-qualitative"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "unreadable" in err[0], err
    assert snapshot(out) == before and not (out / "report").exists()
