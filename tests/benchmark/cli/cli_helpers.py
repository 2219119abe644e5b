"""Helpers for tests that drive the CLI and check that bad input changes nothing."""

from __future__ import annotations

import hashlib
from pathlib import Path

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
