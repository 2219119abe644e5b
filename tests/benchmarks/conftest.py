"""Timing benchmarks (pytest-benchmark): excluded from the default test command.

Run them with `make bench`, i.e.
`python -m pytest tests/benchmarks -m benchmark --benchmark-enable`. Every test here is marked
`benchmark`; the default `pytest` deselects that mark (see pyproject.toml), so the README's test
command never spends minutes timing, and no test anywhere asserts a duration.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchmark.core.presets import PRESETS
from benchmark.profile.setup import ProfiledRun, open_profiled_run

CPU = torch.device("cpu")


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/benchmarks" in str(item.fspath):
            item.add_marker(pytest.mark.benchmark)


@pytest.fixture(scope="session")
def bench_data_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bench-data")


@pytest.fixture(scope="session")
def quick_run(bench_data_root):
    """Open a method at the quick preset on the embedded dataset, as a real run would."""
    opened: list[ProfiledRun] = []

    def open_run(method: str) -> ProfiledRun:
        run = open_profiled_run(method, "synthetic", PRESETS.get("quick"), CPU, bench_data_root)
        opened.append(run)
        return run

    yield open_run
    for run in opened:
        run.close()
