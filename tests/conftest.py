"""Shared fixtures: CPU only, tiny synthetic tiles, a matplotlib backend without a display."""

from __future__ import annotations

import shutil

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
torch.set_num_threads(2)

TINY = {"tile_size": 64, "train_tiles": 3, "val_tiles": 2, "test_tiles": 2}
"""Options of the synthetic dataset small enough for a test to train and evaluate in seconds."""


def tiny_dataset_arg(name: str = "synthetic") -> str:
    inner = ",".join(f"{k}={v}" for k, v in TINY.items())
    return f"{name}[{inner}]"


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory):
    """One generated synthetic cache shared by every test of the session."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def finished(data_root, tmp_path_factory):
    """A results directory holding one finished run (built once per test module)."""
    from tests.benchmark.cli.cli_helpers import invoke

    out = tmp_path_factory.mktemp("finished") / "results"
    assert invoke(["--missing", "none"], data_root, out) == 0
    return out


@pytest.fixture()
def results(finished, tmp_path):
    """A private copy of `finished` that a test may try (and fail) to change."""
    copy = tmp_path / "results"
    shutil.copytree(finished, copy)
    return copy
