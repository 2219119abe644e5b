"""Two launchers on one --out (issue 20, class 9): neither trains a run twice, a run the other
launcher finished meanwhile is done in the leaderboard written at the end (read from the
store), and it is not a failure (exit status 0)."""

from __future__ import annotations

import multiprocessing
import shutil
from pathlib import Path

import pandas as pd

import benchmark.commands.launch as launch_module
from benchmark.run.store import RunStore
from tests.benchmark.cli.cli_helpers import invoke

ARGS = ["--methods", "baseline,moddrop", "--missing", "none", "--steps", "4"]


def other_launcher(out: str, run_id: str, finished: str, ready, finish, gone) -> None:
    """Holds `run_id`'s lock as a launcher that is training it; on `finish`, completes it."""
    with RunStore(Path(out)).lock(run_id) as mine:
        assert mine
        shutil.copy(Path(finished) / "spec.json", Path(out) / "runs" / run_id / "spec.json")
        ready.set()
        finish.wait(60)
        for path in Path(finished).iterdir():
            if path.name != ".lock":
                shutil.copy(path, Path(out) / "runs" / run_id / path.name)
    gone.set()


class OtherLauncher:
    """A second launcher on `out` that holds baseline's lock (training it) until told to finish."""

    def __init__(self, data_root: Path, tmp_path: Path) -> None:
        reference = tmp_path / "reference"
        assert invoke(ARGS, data_root, reference) == 0  # the runs as the other launcher makes them
        board = pd.read_csv(reference / "leaderboard.csv")
        run_id = board.loc[board["method"] == "baseline", "run_id"].iloc[0]
        self.out = tmp_path / "results"
        RunStore(self.out).claim()
        context = multiprocessing.get_context("spawn")
        self.ready, self.finish, self.gone = context.Event(), context.Event(), context.Event()
        finished = str(reference / "runs" / run_id)
        events = (self.ready, self.finish, self.gone)
        self.process = context.Process(
            target=other_launcher, args=(str(self.out), run_id, finished, *events)
        )

    def __enter__(self) -> OtherLauncher:
        self.process.start()
        assert self.ready.wait(60)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.finish.set()
        self.process.join(60)


def test_a_run_finished_by_the_other_launcher_is_done_not_failed(
    data_root, tmp_path, monkeypatch, capsys
):
    with OtherLauncher(data_root, tmp_path) as other:
        original = launch_module.sweep_leaderboard

        def leaderboard_after_the_other_finishes(sweep, store):
            other.finish.set()  # the other launcher finishes baseline while we train moddrop
            assert other.gone.wait(60)
            return original(sweep, store)

        monkeypatch.setattr(
            launch_module, "sweep_leaderboard", leaderboard_after_the_other_finishes
        )
        capsys.readouterr()
        assert invoke(ARGS, data_root, other.out) == 0
    err = capsys.readouterr().err
    assert "busy (locked by another launcher" in err  # this launcher did not train it
    board = pd.read_csv(other.out / "leaderboard.csv")
    assert (board["status"] == "ok").all() and set(board["method"]) == {"baseline", "moddrop"}


def test_a_run_still_running_elsewhere_is_not_a_failure(data_root, tmp_path, capsys):
    with OtherLauncher(data_root, tmp_path) as other:
        capsys.readouterr()
        assert invoke(ARGS, data_root, other.out) == 0
        err = capsys.readouterr().err
        assert "still running in another launcher" in err
        board = pd.read_csv(other.out / "leaderboard.csv")
        statuses = dict(zip(board["method"], board["status"], strict=True))
        assert statuses == {"baseline": "running", "moddrop": "ok"}
