"""`--train-missing`, `--corruptions`/`--severities` end to end on tiny data; `--selection`
outside the run id (its end-to-end test: `tests/benchmark/run/test_selection.py`)."""

from __future__ import annotations

import json
from dataclasses import replace

import pandas as pd
import pytest

from benchmark.commands.requests import parse_train_missing
from benchmark.core.records import SELECTION_FULL_VAL, RunSpec
from benchmark.corrupt.tile import TileCorruption
from benchmark.run.corrupted import corruptions_pending
from benchmark.run.store import CORRUPTED, RECORDS, RunStore, spec_mismatch
from benchmark.system.errors import BenchmarkError
from tests.benchmark.cli.cli_helpers import invoke, snapshot
from tests.benchmark.core.sample_spec import SPEC


def corrupted_files(out):
    return sorted((out / "runs").glob(f"*/{CORRUPTED}"))


def test_train_missing_and_corruptions_end_to_end(data_root, tmp_path):
    out = tmp_path / "out"
    args = [
        "--methods", "baseline",
        "--train-missing", "none",
        "--train-missing", "dsm=0.5",
        "--corruptions", "clouds,noise",
        "--severities", "1,3",
    ]  # fmt: skip
    assert invoke(args, data_root, out) == 0
    board = pd.read_csv(out / "leaderboard.csv", keep_default_na=False)
    assert set(board["train_missing"]) == {"none", "dsm=0.5"}
    clean = board[board["corruption"] == "none"]
    assert set(clean["severity"]) == {0} and len(clean) == 2 * 3  # 2 settings x 3 scenarios
    clouds = board[board["corruption"] == "clouds"]
    assert set(clouds["scenario"]) == {"dsm+optical", "optical"}  # never where optical is absent
    assert set(clouds["severity"]) == {1, 3}
    noise = board[board["corruption"] == "noise"]
    assert len(noise) == 2 * 3 * 2  # every scenario, both settings, both severities
    assert (board["status"] == "ok").all()
    assert len(corrupted_files(out)) == 2

    before = snapshot(out / "runs")
    assert invoke(args, data_root, out) == 0  # everything is there: nothing is evaluated again
    assert snapshot(out / "runs") == before

    more = [*args[:-1], "1,3,5"]
    assert invoke(more, data_root, out) == 0  # only severity 5 is new
    for path in corrupted_files(out):
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        keys = [(r["corruption"], r["severity"], r["scenario"]) for r in rows]
        assert len(keys) == len(set(keys)) and {r["severity"] for r in rows} == {1, 3, 5}
        clean_records = (path.parent / RECORDS).read_text()
        assert '"corruption": "none"' in clean_records

    store = RunStore(out)
    for path in (out / "runs").glob("*/spec.json"):
        spec = RunSpec.from_json(json.loads(path.read_text()))
        assert corruptions_pending(spec, store, [TileCorruption("clouds", 4)])
        assert not corruptions_pending(spec, store, [TileCorruption("clouds", 5)])  # evaluated
        # speckle acts on SAR, which this dataset lacks: nothing to do, no data to prepare
        assert not corruptions_pending(spec, store, [TileCorruption("speckle", 2)])


def test_selection_rule_is_not_part_of_the_run():
    mean = replace(SPEC, selection="mean_val")
    assert mean.run_id == SPEC.run_id and mean == SPEC  # one run records every rule
    assert "selection" not in mean.hashed_fields()
    assert RunSpec.from_json(mean.to_json()).selection == "mean_val"  # how a worker learns it
    old = {**mean.to_json(), "run_id": mean.legacy_run_id}  # spec.json of a run made before
    assert mean.legacy_run_id != SPEC.run_id and SPEC.legacy_run_id is None
    assert spec_mismatch(old, mean.legacy_run_id) == ""  # still readable
    assert spec_mismatch(old, SPEC.run_id) != ""


def test_default_settings_hash_as_before_they_existed():
    spec = SPEC
    assert spec.train_missing == () and spec.selection == SELECTION_FULL_VAL
    hashed = spec.hashed_fields()
    assert "train_missing" not in hashed and "selection" not in hashed
    changed = replace(spec, train_missing=(("dsm", 0.3),))
    assert changed.run_id != spec.run_id
    assert RunSpec.from_json(changed.to_json()) == changed
    assert changed.train_missing_label == "dsm=0.3"


# bad --train-missing, --corruptions and --severities values: BAD_INPUT in test_bad_input.py


def test_parse_train_missing_forms():
    assert parse_train_missing(None) == ((),)
    assert parse_train_missing(["none", "dsm=0.3,optical=0.5", "dsm=0"]) == (
        (),
        (("dsm", 0.3), ("optical", 0.5)),
    )
    with pytest.raises(BenchmarkError, match="shares in"):
        parse_train_missing(["dsm=-0.1"])
