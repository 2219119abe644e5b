"""The dry run, a sweep killed with SIGKILL resuming to the same result, and CPU determinism.

What every launcher must do (same records, a store a rerun skips) is in test_launcher_contract.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from benchmark.cli import main
from tests.benchmark.cli.cli_helpers import SWEEP, stable, stable_records, sweep
from tests.conftest import tiny_dataset_arg
from tests.paths import REPO


def test_dry_run_lists_states_and_writes_nothing(data_root, tmp_path, capsys):
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
        (rows,) = stable_records(tmp_path / name).values()
        records.append(rows)
    assert records[0] == records[1]
