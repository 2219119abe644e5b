"""Each registered profiler run once per session with the smallest settings, shared by the
contract (test_profiler_contract.py) and the profilers' own tests (test_profile.py): a profile
takes tens of seconds on CPU, too long to run twice."""

from __future__ import annotations

import io
from collections.abc import Callable
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmark.cli import main
from benchmark.profile.profilers import PROFILERS
from tests.conftest import tiny_dataset_arg

SMALLEST = [
    "--preset",
    "smoke",
    "--dataset",
    tiny_dataset_arg(),
    "--device",
    "cpu",
    "--threads",
    "1",
    "--repeats",
    "2",
    "--warmup",
    "1",
]
"""The cheapest settings a profile accepts on the tiny dataset."""

METHODS = ["--methods", "stars,distill"]
"""What a profiler of methods profiles (besides the baseline, which it always includes)."""


@dataclass(frozen=True)
class Profiled:
    """One `run_benchmark.py profile NAME`: its exit status, what it printed, where it wrote."""

    status: int
    printed: str
    out: Path


@pytest.fixture(scope="session")
def profiled(data_root, tmp_path_factory) -> Callable[[str], Profiled]:
    """`profiled(name)`: that profiler's run with SMALLEST settings (made at its first use)."""
    runs: dict[str, Profiled] = {}

    def run(name: str) -> Profiled:
        if name not in runs:
            out = tmp_path_factory.mktemp(f"profile_{name}")
            extra = METHODS if PROFILERS.get(name).uses_methods else []
            args = ["profile", name, *SMALLEST, *extra]
            printed = io.StringIO()
            with redirect_stdout(printed):
                status = main([*args, "--data-root", str(data_root), "--out", str(out)])
            runs[name] = Profiled(status, printed.getvalue(), out)
        return runs[name]

    return run
