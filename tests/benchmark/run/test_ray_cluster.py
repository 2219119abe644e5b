"""A Ray cluster that loses a node while a run trains, tested the way Ray tests itself.

A head and two worker nodes on this machine (`ray.cluster_utils.Cluster`; the head has no CPU,
so every run trains on a worker node), the sweep through the command line with `--launcher ray
--address` of that cluster, and the worker node that trains a run removed once that run has a
checkpoint. The launcher submits the lost run again, it resumes from its checkpoint in the
shared results folder, and the leaderboard equals a local sweep's of the same runs but for the
wall times (runs are deterministic on CPU: test_launchers.py). What a cluster on one machine
cannot show (a node lost again and again, a lost worker's lock that outlives it) is played
through the launcher's bookkeeping with a scripted stand-in for Ray.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import torch

from benchmark.cli import main
from benchmark.run import launchers
from benchmark.run.execution import Execution
from benchmark.run.store import RunStore
from tests.benchmark.cli.cli_helpers import SWEEP, stable
from tests.benchmark.core.sample_spec import SPEC
from tests.conftest import tiny_dataset_arg
from tests.paths import REPO

STEPS = 80
"""Two validations (smoke preset): the first checkpoint comes at step 40, so the run still has
40 steps and its evaluation to go when its node is removed."""
DEADLINE_S = 300.0


def node_holding(lock: Path, nodes: list[Any]) -> Any | None:
    """The node whose worker process holds the run lock `lock` open (a run's `.lock` is open
    while a process executes the run), or None."""
    from ray._private.ray_constants import PROCESS_TYPE_RAYLET

    psutil = pytest.importorskip("psutil")  # shipped with Ray
    for node in nodes:
        raylet = psutil.Process(node.all_processes[PROCESS_TYPE_RAYLET][0].process.pid)
        for worker in raylet.children(recursive=True):
            try:
                if any(Path(f.path) == lock for f in worker.open_files()):
                    return node
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
    return None


def wait_for_a_training_run(
    out: Path, nodes: list[Any], sweep: subprocess.Popen
) -> tuple[Any, str]:
    """Poll until some run has a checkpoint and is executing on one of `nodes`: that node and
    the run's id."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if sweep.poll() is not None:
            pytest.fail("the sweep ended before a node could be removed")
        for checkpoint in sorted(out.glob("runs/*/checkpoint.pt")):
            node = node_holding(checkpoint.parent.resolve() / ".lock", nodes)
            if node is not None:
                return node, checkpoint.parent.name
        time.sleep(0.05)
    pytest.fail(f"no run had a checkpoint on a worker node within {DEADLINE_S:.0f} s")


@pytest.mark.slow
def test_a_sweep_that_loses_a_node_retries_its_run_and_matches_a_local_sweep(data_root, tmp_path):
    cluster_utils = pytest.importorskip("ray.cluster_utils")
    args = [
        *SWEEP,
        "--methods",
        "baseline",
        "--seeds",
        "0,1",
        "--steps",
        str(STEPS),
        "--dataset",
        tiny_dataset_arg(),
        "--data-root",
        str(data_root),
    ]
    reference = tmp_path / "local"
    assert main([*args, "--out", str(reference)]) == 0

    out, log_path = tmp_path / "cluster", tmp_path / "sweep.log"
    cluster = cluster_utils.Cluster(
        initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False}
    )
    try:
        workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
        cluster.wait_for_nodes()
        command = [sys.executable, str(REPO / "run_benchmark.py"), *args, "--out", str(out)]
        command += ["--launcher", "ray", "--address", cluster.address]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        with log_path.open("w") as log:
            sweep = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=log)
            try:
                node, lost_run = wait_for_a_training_run(out, workers, sweep)
                cluster.remove_node(node)
                assert sweep.wait(timeout=DEADLINE_S) == 0, log_path.read_text()
            finally:
                if sweep.poll() is None:
                    sweep.kill()
                    sweep.wait()
    finally:
        cluster.shutdown()

    lines = log_path.read_text().splitlines()
    retried = [line for line in lines if f"run {lost_run}: its Ray worker was lost" in line]
    assert len(retried) == 1, lines
    assert "(retry 1 of 3); it resumes from its checkpoint" in retried[0]
    (finished,) = [line for line in lines if f"run {lost_run}: finished in" in line]
    assert finished.endswith("retried 1 time(s) after its worker was lost")
    assert sum("worker was lost" in line for line in lines) == 2  # the other run: no retry
    assert stable(out / "leaderboard.csv") == stable(reference / "leaderboard.csv")


def scripted_ray(results: Sequence[object]) -> types.ModuleType:
    """A stand-in for `ray` whose n-th submitted task ends with `results[n]`: a `(status,
    seconds)` pair, or an exception `ray.get` raises (Ray's own exception types)."""
    exceptions = pytest.importorskip("ray").exceptions
    fake = types.ModuleType("ray")
    fake.exceptions = exceptions
    fake.submitted = 0
    outcomes = iter(results)

    def remote(**_: object) -> object:
        def wrap(_function: object) -> object:
            def submit(*_args: object) -> object:
                fake.submitted += 1
                return next(outcomes)

            return types.SimpleNamespace(remote=submit)

        return wrap

    def get(result: object) -> object:
        if isinstance(result, BaseException):
            raise result
        return result

    fake.is_initialized = lambda: True
    fake.remote = remote
    fake.wait = lambda refs, num_returns, timeout: (refs[:num_returns], refs[num_returns:])
    fake.get = get
    return fake


def launch_scripted(monkeypatch, out: Path, results: Sequence[object]) -> tuple:
    """SPEC through the Ray launcher, its tasks ending as `results` say: the outcome and the
    number of tasks submitted."""
    fake = scripted_ray(results)
    monkeypatch.setitem(sys.modules, "ray", fake)
    monkeypatch.setattr(launchers, "LOCK_POLL_S", 0.0)
    (out / "runs" / SPEC.run_id).mkdir(parents=True)  # what the lost worker had begun
    execution = Execution(out, out, torch.device("cpu"), launcher="ray", threads=1)
    (outcome,) = launchers.ray_launcher([SPEC], launchers.LaunchContext(execution))
    return outcome, fake.submitted


def node_died() -> Exception:
    return pytest.importorskip("ray").exceptions.NodeDiedError("the node is dead")


def test_a_job_lost_with_its_node_waits_for_its_lock_then_runs(monkeypatch, tmp_path, caplog):
    caplog.set_level("INFO")
    results = [node_died(), ("busy", 0.0), ("busy", 0.0), ("done", 1.0)]
    outcome, submitted = launch_scripted(monkeypatch, tmp_path, results)
    assert (outcome.status, submitted) == ("done", 4)
    assert "submitted again (retry 1 of 3); it starts over (no checkpoint yet)" in caplog.text
    assert caplog.text.count("the lost worker's lock is still held") == 1
    assert "retried 1 time(s) after its worker was lost" in caplog.text


def test_a_job_lost_more_often_than_its_retries_fails_its_run(monkeypatch, tmp_path):
    retries = launchers.LOST_WORKER_RETRIES
    outcome, submitted = launch_scripted(monkeypatch, tmp_path, [node_died()] * (retries + 1))
    assert (outcome.status, submitted) == ("failed", retries + 1)
    reason = RunStore(tmp_path).failure_reason(SPEC.run_id)
    assert reason == f"Ray task failed (its worker was lost {retries + 1} times): the node is dead"


def test_a_lock_held_past_the_wait_leaves_the_run_busy(monkeypatch, tmp_path):
    monkeypatch.setattr(launchers, "LOCK_WAIT_S", 0.0)
    outcome, submitted = launch_scripted(monkeypatch, tmp_path, [node_died(), ("busy", 0.0)])
    assert (outcome.status, submitted) == ("busy", 2)


def test_a_task_that_raised_is_not_retried(monkeypatch, tmp_path):
    error = pytest.importorskip("ray").exceptions.RayTaskError("execute_one", "trace", ValueError())
    outcome, submitted = launch_scripted(monkeypatch, tmp_path, [error])
    assert (outcome.status, submitted) == ("failed", 1)
