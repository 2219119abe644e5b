"""A run that raises or diverges is recorded as failed; the sweep goes on; --retry-failed."""

from __future__ import annotations

import errno
import json

import pandas as pd
import pytest

from benchmark.cli import main
from methods.baseline import Baseline
from tests.benchmark.cli.cli_helpers import invoke
from tests.conftest import tiny_dataset_arg

RAISES, DIVERGES = 0.0011, 0.0012


def test_failed_and_diverged_runs_are_isolated(data_root, tmp_path, monkeypatch, capsys):
    original = Baseline.update

    def sabotaged(self, batch, step):
        if self.hparams["lr"] == RAISES and step == 1:
            raise RuntimeError("injected failure")
        losses = original(self, batch, step)
        if self.hparams["lr"] == DIVERGES and step == 2:
            losses["loss"] = float("nan")
        return losses

    monkeypatch.setattr(Baseline, "update", sabotaged)
    out = tmp_path / "results"
    args = [
        "--preset",
        "smoke",
        "--device",
        "cpu",
        "--missing",
        "none",
        "--dataset",
        tiny_dataset_arg(),
        "--data-root",
        str(data_root),
        "--out",
        str(out),
        "--methods",
        f"baseline[lr={RAISES}],baseline[lr={DIVERGES}],baseline",
    ]
    assert main(args) == 1  # finished, but not everything has results
    err = capsys.readouterr().err
    assert "FAILED" in err and "injected failure" in err and "non-finite loss" in err

    board = pd.read_csv(out / "leaderboard.csv")
    status = dict(zip(board["method"], board["status"], strict=True))
    assert status == {
        f"baseline[lr={RAISES}]": "failed",
        f"baseline[lr={DIVERGES}]": "failed",
        "baseline": "ok",
    }
    failed = board[board["status"] == "failed"]
    assert failed["miou"].isna().all()
    assert set(failed["error"].str.split(":").str[0]) == {"RuntimeError", "RunDiverged"}
    for run_id in failed["run_id"]:
        info = json.loads((out / "runs" / run_id / "failed.json").read_text())
        assert info["traceback"].startswith("Traceback") and info["reason"]
        assert not (out / "runs" / run_id / "done").exists()

    # without --retry-failed the failures are reported again, not rerun
    assert main(args) == 1
    assert "FAILED" in capsys.readouterr().err

    monkeypatch.setattr(Baseline, "update", original)
    assert main([*args, "--retry-failed"]) == 0
    board = pd.read_csv(out / "leaderboard.csv")
    assert (board["status"] == "ok").all() and board["miou"].notna().all()


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EROFS])
def test_a_full_or_read_only_file_system_is_one_line_not_a_traceback(
    data_root, tmp_path, monkeypatch, capsys, code
):
    import benchmark.commands.launch as launch_module

    def full_disk(frame, path):
        raise OSError(code, f"could not write {path}: its file system is full (0 MiB free)")

    monkeypatch.setattr(launch_module, "write_csv", full_disk)
    capsys.readouterr()
    status = invoke(["--methods", "baseline", "--missing", "none", "--steps", "2"], data_root,
                    tmp_path / "out")  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and err[-1].startswith("error:") and "file system" in err[-1], err
    assert not any("Traceback" in line for line in err)
