"""Atomic writes: a failed write leaves the previous file and no partial one behind."""

from __future__ import annotations

import errno
from collections import namedtuple

import pytest
import torch

from benchmark.system import io

Usage = namedtuple("Usage", "total used free")


def failing_torch_save(obj, handle):
    handle.write(b"partial")
    raise RuntimeError("[enforce fail at inline_container.cc:671] . unexpected pos 52 vs 44")


def test_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "run" / "checkpoint.pt"
    io.atomic_torch_save({"step": 1}, path)
    io.atomic_torch_save({"step": 2}, path)
    assert torch.load(path)["step"] == 2
    assert [p.name for p in path.parent.iterdir()] == ["checkpoint.pt"]


def test_a_full_disk_is_named_and_the_previous_file_survives(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    io.atomic_torch_save({"step": 1}, path)
    monkeypatch.setattr(io.torch, "save", failing_torch_save)
    monkeypatch.setattr(io.shutil, "disk_usage", lambda _: Usage(100 * 2**20, 99 * 2**20, 2**20))
    with pytest.raises(
        OSError, match=r"checkpoint\.pt: its file system is full \(1 MiB free\)"
    ) as e:
        io.atomic_torch_save({"step": 2}, path)
    assert e.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert torch.load(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_other_failures_propagate_unchanged(tmp_path, monkeypatch):
    monkeypatch.setattr(io.torch, "save", failing_torch_save)
    monkeypatch.setattr(io.shutil, "disk_usage", lambda _: Usage(2**40, 0, 2**40))
    with pytest.raises(RuntimeError, match="enforce fail"):
        io.atomic_torch_save({"step": 1}, tmp_path / "checkpoint.pt")
    assert list(tmp_path.iterdir()) == []
