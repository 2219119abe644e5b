"""Where and how runs execute is one value (`Execution`), built alike by the CLI and the API,
and none of it is part of what a run is (its spec and hash)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import torch

from benchmark import api
from benchmark.cli import build_parser, execution
from benchmark.commands import launch
from benchmark.core.records import RunSpec
from benchmark.run.execution import Execution

CPU = torch.device("cpu")
FLAGS = ["--device", "cpu", "--data-root", "d", "--out", "o", "--threads", "3"]
RAY = ["--launcher", "ray", "--address", "auto", "--retry-failed"]


def test_no_execution_setting_is_part_of_a_run_spec():
    """The same run hashes the same on any machine, launcher, device or thread count."""
    settings = {f.name for f in dataclasses.fields(Execution)}
    assert not settings & {f.name for f in dataclasses.fields(RunSpec)}


def test_run_and_tune_parse_the_same_flags_into_the_same_execution():
    parse = build_parser().parse_args
    expected = Execution(
        Path("d"),
        Path("o"),
        CPU,
        launcher="ray",
        threads=3,
        retry_failed=True,
        address="auto",
    )
    assert execution(parse(["run", *FLAGS, *RAY])) == expected
    assert execution(parse(["tune", *FLAGS, *RAY])) == expected
    logged = execution(parse(["run", *FLAGS, *RAY, "--log", "tensorboard"]))
    assert logged == dataclasses.replace(expected, tensorboard=True)
    local = Execution(Path("d"), Path("o"), CPU, workers=2, threads=3)
    assert execution(parse(["run", *FLAGS, "--workers", "2"])) == local
    assert execution(parse(["tune", *FLAGS, "--workers", "2"])) == local


def test_api_run_passes_its_keyword_arguments_down_as_one_execution(monkeypatch, tmp_path):
    given: list[Execution] = []

    def recorded(request, execution: Execution) -> launch.SweepResult:
        given.append(execution)
        board = execution.out / launch.LEADERBOARD
        pd.DataFrame({"method": ["baseline"]}).to_csv(board)
        return launch.SweepResult(0, (), board)

    monkeypatch.setattr(launch, "run_sweep", recorded)
    out = tmp_path / "results"
    out.mkdir()
    api.run(out=str(out), device="cpu", data_root=str(tmp_path), launcher="ray", threads=1)
    api.run(out=out, device="cpu", data_root=tmp_path, retry_failed=True, log="tensorboard")
    assert given == [
        Execution(tmp_path, out, CPU, launcher="ray", threads=1),
        Execution(tmp_path, out, CPU, retry_failed=True, tensorboard=True),
    ]
