"""Launchers agree with each other, and a sweep killed with SIGKILL resumes to the same result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from benchmark.cli import main
from tests.conftest import tiny_dataset_arg
from tests.paths import REPO

SWEEP = [
    "--preset",
    "smoke",
    "--device",
    "cpu",
    "--threads",
    "1",
    "--missing",
    "all",
    "--methods",
    "baseline,baseline[class_weighting=none]",
    "--seeds",
    "0,1",
]


WALL_TIMES = ["train_seconds", "step_ms"]
"""Leaderboard columns that are wall-clock measurements: equal runs differ only in these."""


def stable(path: Path) -> str:
    """A leaderboard without its wall-time columns (two equal runs never take equal seconds)."""
    board = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert set(WALL_TIMES) <= set(board.columns)
    return board.drop(columns=WALL_TIMES).to_csv(index=False)


def sweep(out: Path, data_root: Path, *extra: str) -> int:
    args = [
        *SWEEP,
        "--dataset",
        tiny_dataset_arg(),
        "--data-root",
        str(data_root),
        "--out",
        str(out),
        *extra,
    ]
    return main(args)


@pytest.fixture(scope="module")
def reference(data_root, tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("reference")
    assert sweep(out, data_root) == 0
    return stable(out / "leaderboard.csv")


def test_worker_processes_give_the_same_leaderboard(reference, data_root, tmp_path):
    assert sweep(tmp_path / "workers", data_root, "--workers", "2") == 0
    assert stable(tmp_path / "workers" / "leaderboard.csv") == reference


def test_ray_gives_the_same_leaderboard(reference, data_root, tmp_path):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        assert sweep(tmp_path / "ray", data_root, "--launcher", "ray") == 0
    finally:
        ray.shutdown()
    assert stable(tmp_path / "ray" / "leaderboard.csv") == reference


def test_dry_run_lists_states_and_writes_nothing(reference, data_root, tmp_path, capsys):
    out = tmp_path / "dry"
    assert sweep(out, data_root, "--launcher", "dry_run") == 0
    assert not out.exists()
    assert capsys.readouterr().out.count("pending") == 4


def test_sigkill_mid_sweep_then_resume_matches_uninterrupted(data_root, tmp_path):
    """Kill the whole launcher with SIGKILL once a run has a checkpoint; rerun; compare."""
    args = [
        *SWEEP,
        "--methods",
        "baseline",
        "--seeds",
        "0",
        "--steps",
        "40",
        "--dataset",
        tiny_dataset_arg(),
        "--data-root",
        str(data_root),
    ]
    reference = tmp_path / "uninterrupted"
    assert main([*args, "--out", str(reference)]) == 0

    out = tmp_path / "killed"
    command = [sys.executable, str(REPO / "run_benchmark.py"), *args, "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 300
    while time.time() < deadline and not list(out.glob("runs/*/checkpoint.pt")):
        if process.poll() is not None:
            pytest.fail("the sweep ended before it could be killed")
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not list(out.glob("runs/*/done"))

    assert subprocess.run(command, cwd=REPO, env=env, capture_output=True).returncode == 0
    assert stable(out / "leaderboard.csv") == stable(reference / "leaderboard.csv")


VOLATILE = {"eval_seconds", "train_seconds", "step_ms", "peak_memory_mb", "timestamp"}


def test_same_command_same_seeds_gives_identical_records(data_root, tmp_path):
    """CPU determinism: two fresh runs agree on every record field except timings."""
    args = [
        *SWEEP,
        "--methods",
        "baseline",
        "--seeds",
        "3",
        "--dataset",
        tiny_dataset_arg(),
        "--data-root",
        str(data_root),
    ]
    records = []
    for name in ("first", "second"):
        assert main([*args, "--out", str(tmp_path / name)]) == 0
        (path,) = (tmp_path / name).glob("runs/*/records.jsonl")
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        records.append([{k: v for k, v in r.items() if k not in VOLATILE} for r in rows])
    assert records[0] == records[1]
