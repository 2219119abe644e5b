"""Helpers shared by the real-dataset tests: run a committed fake-data script, run the CLI."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from benchmark.cli import main

DATA = Path(__file__).resolve().parents[1] / "data"


def make_fake(dataset: str, root: Path) -> Path:
    """Run `tests/data/<dataset>/make_fake.py` into `root/<dataset>`; returns `root`."""
    path = DATA / dataset / "make_fake.py"
    spec = importlib.util.spec_from_file_location(f"make_fake_{dataset}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.make(root / dataset)
    return root


def committed_files(dataset: str, folder: str | None = None) -> set[str]:
    base = DATA / dataset / (folder or dataset)
    return {
        str(p.relative_to(base))
        for p in base.rglob("*")
        if p.is_file() and ".missbench_cache" not in p.parts
    }


def generated_files(root: Path, dataset: str) -> set[str]:
    base = root / dataset
    return {str(p.relative_to(base)) for p in base.rglob("*") if p.is_file()}


def run_cli(dataset: str, data_root: Path, out: Path, *extra: str) -> int:
    return main(
        [
            "--dataset",
            dataset,
            "--data-root",
            str(data_root),
            "--methods",
            "baseline",
            "--missing",
            "all",
            "--preset",
            "smoke",
            "--steps",
            "2",
            "--device",
            "cpu",
            "--out",
            str(out),
            *extra,
        ]
    )
