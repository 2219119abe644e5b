"""The Python API enters the suite as the command line does (issue 33, class 2): the same write
guard (a `runs/`, `report/` or `tune/` folder linked out of `out` is refused, the place it
leads to untouched), arguments of the wrong type refused in one line as `BenchmarkError`
before anything is written, and a dry run that returns its plan.

Every command-line bad-input case also runs through the API: `BAD_INPUT` in
tests/benchmark/cli/test_bad_input.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from benchmark import api
from benchmark.cli import main
from benchmark.run.store import OUT_MARKER
from benchmark.system.errors import BenchmarkError
from tests.benchmark.cli.cli_helpers import snapshot
from tests.conftest import tiny_dataset_arg
from tests.paths import TEST_DATA

FIXTURE_RUNS = TEST_DATA / "report_fixture" / "runs"


def base(command: str, tmp: Path, data_root: Path) -> dict[str, Any]:
    """Valid arguments of `command`, writing under `tmp`."""
    if command in ("report", "freeze"):
        shutil.copytree(FIXTURE_RUNS, tmp / "results" / "runs")
        args: dict[str, Any] = {"results_dir": tmp / "results", "qualitative": False}
        return args | ({"dest": tmp / "frozen"} if command == "freeze" else {})
    args = {"methods": "baseline", "dataset": tiny_dataset_arg(), "preset": "smoke"}
    args |= {"device": "cpu", "threads": 1, "data_root": data_root, "out": tmp / "out"}
    return args | ({"trials": 1} if command == "tune" else {})


def flags(args: dict[str, Any]) -> list[str]:
    """`base`'s arguments as command-line flags."""
    return [part for k, v in args.items() for part in (f"--{k.replace('_', '-')}", str(v))]


# (entry, the wrong argument, what the one line names): types the command line's parser
# never lets through, so only the API meets them
WRONG_TYPES = [
    ("run", {"seeds": 5}, "--seeds 5: expected a string like '0,1,2' or a sequence of integers"),
    ("run", {"seeds": [0.5]}, "--seeds [0.5]: expected"),
    ("run", {"seeds": [True]}, "--seeds [True]"),
    ("run", {"methods": 5}, "--methods 5: expected a string like"),
    ("run", {"methods": ["baseline", 3]}, "--methods ['baseline', 3]"),
    ("run", {"dataset": None}, "--dataset None"),
    ("run", {"missing": ["dsm"]}, "--missing ['dsm']: expected a string"),
    ("run", {"preset": None}, "--preset None: expected a string"),
    ("run", {"steps": "10"}, "--steps must be a positive integer, got '10'"),
    ("run", {"steps": 2.0}, "--steps must be a positive integer, got 2.0"),
    ("run", {"imbalance": [True]}, "--imbalance [True]"),
    ("run", {"train_missing": 0.3}, "--train-missing 0.3: expected a string like 'dsm=0.3'"),
    ("run", {"train_missing": [0.3]}, "--train-missing [0.3]"),
    ("run", {"corruptions": None}, "--corruptions None"),
    ("run", {"corruptions": "clouds", "severities": [1.5]}, "--severities [1.5]"),
    ("run", {"corruptions": "clouds", "invalid_fill": 1}, "--invalid-fill 1"),
    ("run", {"budget": None}, "--budget None: expected one of steps, flops"),
    ("run", {"selection": 1}, "--selection 1: expected one of full_val"),
    ("run", {"device": 0}, "--device 0: expected one of auto, cpu, cuda"),
    ("run", {"launcher": None}, "--launcher None: expected a string"),
    ("run", {"workers": True}, "--workers must be a positive integer, got True"),
    ("run", {"threads": "1"}, "--threads must be a positive integer, got '1'"),
    ("run", {"out": 5}, "--out 5: expected a path"),
    ("run", {"out": None}, "--out None: expected a path"),
    ("run", {"data_root": 5}, "--data-root 5: expected a path"),
    ("run", {"hparams_from": 3}, "--hparams-from 3: expected a path"),
    ("run", {"launcher": "ray", "address": 6379}, "--address 6379: expected a string"),
    ("run", {"retry_failed": "yes"}, "--retry-failed 'yes': expected True or False"),
    ("run", {"log": None}, "--log None: expected one of none, tensorboard"),
    ("tune", {"methods": 5}, "--methods 5"),
    ("tune", {"dataset": ["synthetic"]}, "--dataset ['synthetic']: expected a string"),
    ("tune", {"preset": 1}, "--preset 1: expected a string"),
    ("tune", {"trials": 2.0}, "--trials must be an integer from 1 to 10000, got 2.0"),
    ("tune", {"seed": "0"}, "--seed '0': expected an integer"),
    ("tune", {"rungs": 5}, "--rungs 5: expected a string like '0,1,2' or a sequence of integers"),
    ("tune", {"rungs": [1.5, 3]}, "--rungs [1.5, 3]"),
    ("tune", {"rungs": [1, 2], "keep": "0.5"}, "--keep must be a share in (0, 1], got '0.5'"),
    ("tune", {"selection": None}, "--selection None"),
    ("tune", {"threads": 0}, "--threads must be a positive integer, got 0"),
    ("report", {"results_dir": 5}, "results_dir 5: expected a path"),
    ("report", {"reference": 5}, "--reference 5: expected a string"),
    ("report", {"qualitative": "no"}, "qualitative 'no': expected True or False"),
    ("report", {"overwrite": 1}, "--overwrite 1: expected True or False"),
    ("report", {"out": 5}, "--out 5: expected a path"),
    ("report", {"leaderboard_steps": 1.5}, "--leaderboard-steps 1.5: expected an integer"),
    ("report", {"html": "yes"}, "--html 'yes': expected True or False"),
    ("freeze", {"dest": 5}, "dest 5: expected a path"),
    ("freeze", {"selection": "best"}, "--selection 'best': expected one of full_val, mean_val"),
]


@pytest.mark.parametrize(("command", "wrong", "message"), WRONG_TYPES)
def test_a_wrong_argument_type_is_one_line_and_writes_nothing(
    command, wrong, message, data_root, tmp_path
):
    args = base(command, tmp_path, data_root) | wrong
    before = snapshot(tmp_path)
    with pytest.raises(BenchmarkError) as refused:
        getattr(api, command)(**args)
    assert message in str(refused.value) and "\n" not in str(refused.value), str(refused.value)
    assert snapshot(tmp_path) == before


def test_a_dry_run_returns_its_plan_with_each_run_state_and_writes_nothing(data_root, tmp_path):
    args = base("run", tmp_path, data_root) | {"methods": ["baseline", "moddrop"], "seeds": [0, 1]}
    plan = api.run(**args, launcher="dry_run")
    assert list(plan.columns) == [
        "run_id",
        "method",
        "dataset",
        "imbalance",
        "train_missing",
        "seed",
        "steps",
        "state",
    ]
    assert len(plan) == 4 and plan["run_id"].is_unique and set(plan["state"]) == {"pending"}
    assert sorted(zip(plan["method"], plan["seed"], strict=True)) == [
        ("baseline", 0),
        ("baseline", 1),
        ("moddrop", 0),
        ("moddrop", 1),
    ]
    assert not (tmp_path / "out").exists()
    # a results directory where one run is finished: the plan says so
    done = tmp_path / "out" / "runs" / plan["run_id"][0]
    done.mkdir(parents=True)
    (done / "done").touch()
    (tmp_path / "out" / OUT_MARKER).touch()
    before = snapshot(tmp_path)
    again = api.run(**args, launcher="dry_run")
    assert list(again["state"]) == ["done", "pending", "pending", "pending"]
    assert list(again["run_id"]) == list(plan["run_id"])
    assert snapshot(tmp_path) == before


def linked(folder: Path, name: str, tmp: Path) -> Path:
    """`folder/name` made a symlink to a new, empty folder outside it."""
    elsewhere = tmp / f"elsewhere_{name}"
    elsewhere.mkdir()
    (folder / name).symlink_to(elsewhere)
    return elsewhere


@pytest.mark.parametrize("name", ["runs", "tune"])
def test_a_results_folder_linked_out_of_out_is_refused_by_both(name, data_root, tmp_path, capsys):
    for way in ("cli", "api"):
        out = tmp_path / way / "out"
        out.mkdir(parents=True)
        (out / OUT_MARKER).touch()
        elsewhere = linked(out, name, tmp_path / way)
        before = snapshot(elsewhere), snapshot(out)
        command = "tune" if name == "tune" else "run"
        args = base(command, tmp_path / way, data_root) | {"out": out}
        if way == "cli":
            capsys.readouterr()
            assert main([command, *flags(args)]) == 2
            said = capsys.readouterr().err.strip().splitlines()[-1]
        else:
            with pytest.raises(BenchmarkError) as refused:
                getattr(api, command)(**args)
            said = str(refused.value)
        assert "refusing to write" in said and str(elsewhere) in said, said
        assert (snapshot(elsewhere), snapshot(out)) == before


def test_a_report_folder_linked_out_of_the_results_is_refused_by_both(tmp_path, capsys):
    for way in ("cli", "api"):
        results = tmp_path / way / "results"
        shutil.copytree(FIXTURE_RUNS, results / "runs")
        elsewhere = linked(results, "report", tmp_path / way)
        before = snapshot(elsewhere), snapshot(results)
        if way == "cli":
            capsys.readouterr()
            assert main(["report", str(results), "--no-qualitative"]) == 2
            said = capsys.readouterr().err.strip()
        else:
            with pytest.raises(BenchmarkError) as refused:
                api.report(results, qualitative=False)
            said = str(refused.value)
        assert "refusing to write" in said and len(said.splitlines()) == 1, said
        assert (snapshot(elsewhere), snapshot(results)) == before


def test_the_api_report_and_freeze_take_the_command_line_defaults(tmp_path):
    """`api.report` and `api.freeze` are `report DIR` and `report DIR --freeze DEST`: the same
    files, and a frozen folder regenerates with the options it was frozen with."""
    results = tmp_path / "results"
    shutil.copytree(FIXTURE_RUNS, results / "runs")
    reference = "baseline[class_weighting=none]"
    files = api.freeze(results, tmp_path / "frozen", reference=reference, qualitative=False)
    assert files[0] == tmp_path / "frozen" / "report" / "report.md"
    assert not (results / "report").exists()  # a freeze writes into its destination only
    significance = files[0].parent / "significance.csv"  # its rows: each method vs reference
    assert set(pd.read_csv(significance)["reference"]) == {reference}
    assert api.report(tmp_path / "frozen", overwrite=True, qualitative=False) == files
    assert set(pd.read_csv(significance)["reference"]) == {reference}  # the frozen folder's own
