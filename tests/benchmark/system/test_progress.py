"""Long work shows progress where no bar can draw (a log file, CI, workers), and a running or
crashed run shows its training curve."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

from benchmark.cli import main
from benchmark.run.store import RunStore
from benchmark.system.progress import ProgressLines, format_seconds
from tests.conftest import tiny_dataset_arg
from tests.paths import REPO


def test_a_run_logged_to_a_file_shows_progress_while_it_trains(data_root, tmp_path):
    args = ["--preset", "smoke", "--steps", "40", "--device", "cpu", "--threads", "1"]
    args += ["--dataset", tiny_dataset_arg(), "--missing", "none", "--methods", "baseline"]
    args += ["--data-root", str(data_root), "--out", str(tmp_path / "out")]
    log = tmp_path / "run.log"
    with open(log, "w") as handle:  # not a terminal: no bar can draw
        env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
        result = subprocess.run(
            [sys.executable, str(REPO / "run_benchmark.py"), *args],
            cwd=REPO,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    assert result.returncode == 0
    text = log.read_text()
    steps = [line for line in text.splitlines() if "step " in line and "/40 " in line]
    assert len(steps) >= 10, text[-2000:]  # every 10 % of the run at least
    assert all("loss" in line and "steps/s" in line and "ETA" in line for line in steps)
    assert text.count("validation at step") == 2  # the smoke preset validates twice
    assert text.index("step 1/40") < text.index("validation at step 20")  # during training
    assert text.index("validation at step 20") < text.index("finished in")


def test_progress_lines_every_share_of_the_run_or_every_interval(caplog):
    lines = ProgressLines("run", total=100, every_s=3600, every_share=0.25, enabled=True)
    with caplog.at_level(logging.INFO, logger="missbench.progress"):
        for step in range(1, 101):
            lines.step(step, 10.0, 0.5)
    logged = [r.getMessage() for r in caplog.records]
    assert [m.split(" · ")[0] for m in logged] == [
        f"run: step {s}/100" for s in (1, 26, 51, 76, 100)
    ]
    assert "ETA 0s" in logged[-1] and "ETA 10s" in logged[0]  # 99 steps at 10/s
    quiet = ProgressLines("run", total=10, enabled=False)
    caplog.clear()
    quiet.step(10, 1.0, 0.1)
    assert not caplog.records


def test_time_only_progress_lines_log_only_when_the_interval_passes(caplog):
    """An intermediate validation's tiles: no first, share or last line (its score follows),
    only a line when it is slow."""
    with caplog.at_level(logging.INFO, logger="missbench.progress"):
        fast = ProgressLines("val", 8, every_s=3600, enabled=True, unit="tile", time_only=True)
        for tile in range(1, 9):
            fast.step(tile, 10.0)
        assert not caplog.records
        slow = ProgressLines("val", 8, every_s=0.0, enabled=True, unit="tile", time_only=True)
        slow.step(1, 10.0)
    assert [r.getMessage().split(" · ")[0] for r in caplog.records] == ["val: tile 1/8"]


def test_format_seconds():
    assert [format_seconds(s) for s in (5, 65, 3725, float("nan"))] == [
        "5s",
        "1m05s",
        "1h02m",
        "?",
    ]


def test_an_interrupted_run_keeps_its_curve_and_resumes_it(data_root, tmp_path, monkeypatch):
    args = ["--preset", "smoke", "--device", "cpu", "--steps", "20", "--missing", "none"]
    args += ["--dataset", tiny_dataset_arg(), "--data-root", str(data_root)]
    out = tmp_path / "out"
    original = RunStore.save_checkpoint

    def save_then_die(self, *a, **k):
        original(self, *a, **k)
        raise KeyboardInterrupt

    monkeypatch.setattr(RunStore, "save_checkpoint", save_then_die)
    assert main([*args, "--out", str(out)]) == 130
    (log,) = out.glob("runs/*/train_log.jsonl")
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["step"] for r in rows] == [10]  # appended as it trained, before the crash
    monkeypatch.setattr(RunStore, "save_checkpoint", original)
    assert main([*args, "--out", str(out)]) == 0
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["step"] for r in rows] == [10, 20]  # resumed: no step twice


def test_tensorboard_logging_writes_event_files(data_root, tmp_path):
    out = tmp_path / "out"
    args = ["--preset", "smoke", "--device", "cpu", "--missing", "none", "--log", "tensorboard"]
    args += ["--dataset", tiny_dataset_arg(), "--data-root", str(data_root), "--out", str(out)]
    assert main(args) == 0
    (folder,) = out.glob("runs/*/tensorboard")
    assert list(folder.glob("events.out.tfevents.*"))
