"""The Python API's worked example (docs/api_example.py) runs, at the smoke preset."""

from __future__ import annotations

import importlib.util

import numpy as np

from tests.conftest import tiny_dataset_arg
from tests.paths import REPO

EXAMPLE = REPO / "docs" / "api_example.py"


def test_the_documented_example_runs(data_root, tmp_path):
    spec = importlib.util.spec_from_file_location("api_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.example(tmp_path / "out", data_root, "smoke", tiny_dataset_arg())
    board = result["board"]
    assert set(board["method"]) == {"stars", "baseline"} and (board["status"] == "ok").all()
    assert result["files"][0].name == "report.md" and result["files"][0].exists()
    labels = result["labels"]
    assert labels.shape == (160, 200) and labels.dtype == np.uint8
    assert labels.max() < len(result["model"].spec.classes)
