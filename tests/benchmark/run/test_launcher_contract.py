"""The contract every registered launcher honours, parametrised over `LAUNCHERS`.

A launcher that runs the sweep gives the reference's records and leaderboard (the `local`
launcher in this process), but for the fields that measure wall time, and leaves a store that
a rerun skips. A launcher that runs nothing (the dry run) reports a finished store as done and
changes nothing. A newly registered launcher fails here until SETUPS says how to run it on this
machine without a cluster, or RUNS_NOTHING names it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from benchmark.core.records import RunSpec
from benchmark.run.execution import Execution
from benchmark.run.launchers import LAUNCHERS, LaunchContext
from benchmark.run.train import RunOutcome
from tests.benchmark.cli.cli_helpers import RUNS, snapshot, stable, stable_records, sweep


@contextmanager
def local_ray() -> Iterator[None]:
    """A two-CPU Ray instance on this machine while the launcher runs (skip without Ray)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


@dataclass(frozen=True)
class Setup:
    """How a launcher runs on this machine without a cluster."""

    name: str
    """The test id."""
    workers: int = 1
    """`--workers`."""
    instance: Callable[[], AbstractContextManager[None]] = nullcontext
    """What must be up while it runs (a local Ray instance)."""


SETUPS: dict[str, tuple[Setup, ...]] = {
    "local": (Setup("local"), Setup("local-2-workers", workers=2)),
    "ray": (Setup("ray-local-instance", instance=local_ray),),
}
REFERENCE = SETUPS["local"][0]
"""The setup whose records every other one must reproduce."""
RUNS_NOTHING = {"dry_run"}
"""Launchers that only report the sweep's states (their own test is below)."""

CASES = [
    pytest.param((name, setup), id=setup.name if setup else name)
    for name in LAUNCHERS.names()
    if name not in RUNS_NOTHING
    for setup in SETUPS.get(name, (None,))
]
OTHER_CASES = [case for case in CASES if case.values[0][1] is not REFERENCE]

CPU = torch.device("cpu")


@dataclass(frozen=True)
class Launched:
    """A launcher's sweep, and what rerunning it on the same store did."""

    out: Path
    rerun: list[RunOutcome]
    before_rerun: dict[str, tuple[int, str]]
    after_rerun: dict[str, tuple[int, str]]


def flags(name: str, setup: Setup) -> list[str]:
    """The `run` flags that choose this launcher and setup."""
    return ["--launcher", name, "--workers", str(setup.workers)]


def stored_specs(out: Path) -> list[RunSpec]:
    """The specs of every run under `out`, read back from their `spec.json`."""
    specs = []
    for path in sorted(out.glob("runs/*/spec.json")):
        spec = RunSpec.from_json(json.loads(path.read_text()))
        assert spec.run_id == path.parent.name
        specs.append(spec)
    return specs


@pytest.fixture(scope="module")
def reference(data_root, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference")
    assert sweep(out, data_root, *flags("local", REFERENCE)) == 0
    return out


@pytest.fixture(scope="module")
def launched(request, reference, data_root, tmp_path_factory) -> Launched:
    """The sweep run by one launcher setup (the reference's own store for REFERENCE), then
    rerun by the same launcher, called directly so that its outcomes can be read."""
    name, setup = request.param
    if setup is None:
        pytest.fail(f"launcher {name!r} has no entry in SETUPS (nor in RUNS_NOTHING)")
    with setup.instance():
        out = reference
        if setup is not REFERENCE:
            out = tmp_path_factory.mktemp(setup.name)
            assert sweep(out, data_root, *flags(name, setup)) == 0
        before = snapshot(out)
        context = LaunchContext(Execution(data_root, out, CPU, workers=setup.workers, threads=1))
        rerun = LAUNCHERS.get(name)(stored_specs(out), context)
        return Launched(out, rerun, before, snapshot(out))


def test_every_setup_names_a_registered_launcher():
    """A renamed or removed launcher must not leave a setup that silently tests nothing."""
    assert set(SETUPS) | RUNS_NOTHING <= set(LAUNCHERS.names())


@pytest.mark.parametrize("launched", OTHER_CASES, indirect=True)
def test_same_sweep_gives_the_reference_records(launched, reference):
    records = stable_records(launched.out)
    assert len(records) == RUNS
    assert records == stable_records(reference)
    assert stable(launched.out / "leaderboard.csv") == stable(reference / "leaderboard.csv")


@pytest.mark.parametrize("launched", CASES, indirect=True)
def test_a_rerun_skips_every_run_and_changes_nothing(launched):
    assert [o.status for o in launched.rerun] == ["skipped"] * RUNS
    assert launched.after_rerun == launched.before_rerun


@pytest.mark.parametrize("name", sorted(RUNS_NOTHING))
def test_a_launcher_that_runs_nothing_reports_a_finished_store_done(name, reference, data_root):
    specs = stored_specs(reference)
    before = snapshot(reference)
    context = LaunchContext(Execution(data_root, reference, CPU, threads=1))
    outcomes = LAUNCHERS.get(name)(specs, context)
    assert [o.status for o in outcomes] == ["done"] * RUNS
    assert snapshot(reference) == before
