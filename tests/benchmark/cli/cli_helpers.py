"""Helpers for tests that drive the CLI: bad input changes nothing; one tiny sweep compared
without its wall times (the launcher tests)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.cli import main
from tests.conftest import tiny_dataset_arg

BASE = ["--preset", "smoke", "--device", "cpu", "--threads", "1"]


def snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Every file under `root` with its size and content hash (and nothing else)."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): (p.stat().st_size, hashlib.sha1(p.read_bytes()).hexdigest())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def invoke(args: list[str], data_root: Path, out: Path) -> int:
    full = [*BASE, *args]
    if "--dataset" not in args:
        full += ["--dataset", tiny_dataset_arg()]
    return main([*full, "--data-root", str(data_root), "--out", str(out)])


def assert_rejected(args, message, data_root, out, capsys):
    before = snapshot(out)
    capsys.readouterr()
    assert invoke(args, data_root, out) == 2
    err = capsys.readouterr().err.strip()
    assert message in err, err
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    assert snapshot(out) == before


# ---------------------------------------------- one tiny sweep, compared without wall times
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
"""Four runs (two method variants, two seeds) of the smoke preset on every scenario."""
RUNS = 4

WALL_TIMES = ["train_seconds", "step_ms"]
"""Leaderboard columns that are wall-clock measurements: equal runs differ only in these."""

VOLATILE = {"eval_seconds", "train_seconds", "step_ms", "peak_memory_mb", "timestamp"}
"""Record fields that measure the machine rather than the run."""


def sweep(out: Path, data_root: Path, *extra: str) -> int:
    """`run` SWEEP on the tiny dataset into `out`; `extra` flags come last (and win)."""
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


def stable(path: Path) -> str:
    """A leaderboard without its wall-time columns."""
    board = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert set(WALL_TIMES) <= set(board.columns)
    return board.drop(columns=WALL_TIMES).to_csv(index=False)


def stable_records(out: Path) -> dict[str, list[dict[str, Any]]]:
    """Every run's `records.jsonl` under `out`, by run id, without the VOLATILE fields."""
    records = {}
    for path in sorted(out.glob("runs/*/records.jsonl")):
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        records[path.parent.name] = [
            {k: v for k, v in row.items() if k not in VOLATILE} for row in rows
        ]
    return records
