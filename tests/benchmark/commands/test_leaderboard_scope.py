"""`leaderboard.csv` covers every run of `--out` on the command's data and budget, not only the
last command's (issue 32). The runs are written as failed sweeps leave them (spec.json,
failed.json): what a leaderboard takes in is tested without training anything."""

from __future__ import annotations

from benchmark.commands.launch import data_keys, sweep_data_keys, sweep_leaderboard
from benchmark.commands.requests import sweep_request
from benchmark.run.store import RunStore
from benchmark.run.sweep import expand
from tests.conftest import tiny_dataset_arg


def sweep_of(methods="baseline", seeds="0", preset="smoke", dataset=None, steps=None):
    return expand(
        sweep_request(
            methods=methods,
            datasets=dataset or tiny_dataset_arg(),
            seeds=seeds,
            preset=preset,
            steps=steps,
            imbalance="1",
            missing="all",
            budget="steps",
            train_missing=None,
            selection="full_val",
            corruptions="",
        )
    )


def failed(store, sweep):
    """Leave `sweep`'s runs in `store` as failed (the leaderboard's rows without results)."""
    for spec in sweep.specs:
        store.write_spec(spec)
        store.record_failure(spec.run_id, RuntimeError("injected failure"))
    return {spec.run_id for spec in sweep.specs}


def test_a_command_shows_the_earlier_runs_on_its_data_and_budget(tmp_path):
    store = RunStore(tmp_path / "results")
    first = failed(store, sweep_of(seeds="0"))
    other_method = failed(store, sweep_of(methods="moddrop", seeds="0"))
    other_budget = failed(store, sweep_of(steps=5))  # same labels, another budget
    other_data = failed(store, sweep_of(dataset=tiny_dataset_arg().replace("64", "96")))
    other_preset = failed(store, sweep_of(preset="quick"))

    now = sweep_of(seeds="1")
    mine = failed(store, now)
    board = sweep_leaderboard(now, store)
    assert set(board["run_id"]) == mine | first | other_method
    assert not set(board["run_id"]) & (other_budget | other_data | other_preset)
    assert set(zip(board["method"], board["seed"], strict=True)) == {
        ("baseline", 0),
        ("baseline", 1),
        ("moddrop", 0),
    }
    assert len(board) == 3 * 3 and (board["status"] == "failed").all()  # 3 runs x 3 scenarios

    again = sweep_leaderboard(sweep_of(seeds="0"), store)  # rerunning a command: no repeats
    assert len(board) == len(again) and set(again["run_id"]) == set(board["run_id"])


def test_seed_run_data_are_one_dataset_and_a_fixed_data_seed_another():
    per_run = [s.to_json() for s in sweep_of(seeds="0,1", dataset="synthetic[seed=run]").specs]
    fixed = [s.to_json() for s in sweep_of(seeds="0,1").specs]
    later_per_run = sweep_of(seeds="2", dataset="synthetic[seed=run]").specs[0].to_json()
    later_fixed = sweep_of(seeds="2").specs[0].to_json()
    assert data_keys(later_per_run) & sweep_data_keys(per_run)
    assert not data_keys(later_per_run) & sweep_data_keys(fixed)
    assert data_keys(later_fixed) & sweep_data_keys(fixed)
    assert not data_keys(later_fixed) & sweep_data_keys(per_run)
