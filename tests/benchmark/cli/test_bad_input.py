"""Bad input: a one-line error naming the value and what was expected, exit status 2, no
traceback, and the results directory left exactly as it was."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchmark.run.store import RunStore
from tests.benchmark.cli.cli_helpers import assert_rejected, invoke


@pytest.mark.parametrize(
    "args,message",
    [
        (["--methods", "nope"], "unknown method 'nope'; valid names: baseline"),
        (["--dataset", "nope"], "unknown dataset 'nope'; valid names: synthetic"),
        (["--preset", "huge"], "unknown preset 'huge'; valid names: quick"),
        (["--launcher", "slurm"], "unknown launcher 'slurm'; valid names: local"),
        (["--missing", "lidar"], "unknown modality lidar; valid: all, none, dsm, optical"),
        (["--missing", "dsm+optical"], "--missing 'dsm+optical' leaves no modality present"),
        (["--methods", "baseline[lrr=1]"], "unknown hyperparameter lrr for method 'baseline'"),
        (["--methods", "baseline[lr=fast]"], "hyperparameter lr='fast': expected a number"),
        (["--methods", "baseline[crop_size=8]"], "hyperparameter crop_size=8: must be >= 32"),
        (["--methods", "baseline[lr]"], "malformed override 'lr' in 'baseline[lr]'"),
        (["--methods", "baseline[lr=1"], "unbalanced '['"),
        (["--seeds", "a,b"], "--seeds 'a,b': expected comma-separated integers"),
        (["--steps", "0"], "--steps must be a positive integer, got 0"),
        (["--imbalance", "0.5"], "--imbalance '0.5': expected comma-separated numbers >= 1"),
        (["--dataset", "synthetic[tiles=3]"], "unknown dataset option tiles; valid: tile_size"),
        (["--workers", "0"], "--workers must be a positive integer"),
    ],
)
def test_bad_flags(args, message, data_root, results, capsys):
    assert_rejected(args, message, data_root, results, capsys)


def test_out_is_a_file(data_root, tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("precious")
    assert_rejected([], f"--out {target}: exists and is not a directory", data_root, target, capsys)
    assert target.read_text() == "precious"


def test_out_is_a_foreign_non_empty_directory(data_root, tmp_path, capsys):
    foreign = tmp_path / "thesis"
    foreign.mkdir()
    (foreign / "chapter1.tex").write_text("precious")
    assert_rejected(
        [], "non-empty directory without a .missbench marker", data_root, foreign, capsys
    )


def test_out_is_not_writable(data_root, capsys):
    out = Path("/proc/missbench-results")
    assert_rejected([], f"--out {out}: not writable", data_root, out, capsys)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_cuda_requested_without_cuda(data_root, results, capsys):
    assert_rejected(
        ["--device", "cuda"],
        "--device cuda: no CUDA device is available",
        data_root,
        results,
        capsys,
    )


@pytest.fixture()
def interrupted(data_root, tmp_path, monkeypatch) -> tuple[Path, Path]:
    """A results directory with one interrupted run (a checkpoint, no `done`)."""
    out = tmp_path / "interrupted"
    original = RunStore.save_checkpoint

    def save_then_die(self, *a, **k):
        original(self, *a, **k)
        raise KeyboardInterrupt

    monkeypatch.setattr(RunStore, "save_checkpoint", save_then_die)
    assert invoke(["--missing", "none"], data_root, out) == 130
    monkeypatch.setattr(RunStore, "save_checkpoint", original)
    (checkpoint,) = out.glob("runs/*/checkpoint.pt")
    return out, checkpoint


def test_checkpoint_from_another_run(data_root, interrupted, capsys):
    out, checkpoint = interrupted
    state = torch.load(checkpoint, weights_only=True)
    state["run_id"] = "0123456789abcdef"
    torch.save(state, checkpoint)
    assert_rejected(
        ["--missing", "none"],
        "checkpoint of run '0123456789abcdef', expected",
        data_root,
        out,
        capsys,
    )


def test_checkpoint_from_another_harness_version(data_root, interrupted, capsys):
    out, checkpoint = interrupted
    state = torch.load(checkpoint, weights_only=True)
    state["harness_version"] = 0
    torch.save(state, checkpoint)
    assert_rejected(
        ["--missing", "none"], "checkpoint from harness version 0", data_root, out, capsys
    )


def test_truncated_checkpoint(data_root, interrupted, capsys):
    out, checkpoint = interrupted
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    assert_rejected(["--missing", "none"], "unreadable checkpoint", data_root, out, capsys)
