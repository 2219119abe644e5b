# ruff: noqa: E501  (the table: one case a line)
"""Bad input: a one-line error naming the value and what was expected, exit status 2, no
traceback, and the results directory left exactly as it was; through the Python API, the same
one-line `BenchmarkError`, before anything is written (issue 33, class 2).

`BAD_INPUT` is every command-line bad-input case of `run`, `tune` and `report` that fails before
training, each with the same request as API keyword arguments; one test runs each both ways.
Where the command line's parser refuses a value itself (a choice, an integer), its message and
the API's differ in wording but both name the flag and the value (`says`).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch

from benchmark import api
from benchmark.cli import main
from benchmark.run.store import RunStore
from benchmark.system.errors import BenchmarkError
from tests.benchmark.cli.cli_helpers import assert_rejected, invoke, snapshot
from tests.conftest import TINY, tiny_dataset_arg
from tests.paths import TEST_DATA

TILES = TINY["train_tiles"]  # 3 training tiles: a share of 0.1 removes none, 0.9 all
TMP = "{tmp}"
"""Stands for the case's own folder in argv and keyword arguments (one for each way)."""


def a_file(tmp: Path) -> None:
    (tmp / "file.txt").write_text("precious")


def a_foreign_folder(tmp: Path) -> None:
    (tmp / "thesis").mkdir()
    (tmp / "thesis" / "chapter1.tex").write_text("precious")


def the_report_fixture(tmp: Path) -> None:
    shutil.copytree(TEST_DATA / "report_fixture" / "runs", tmp / "results" / "runs")


def an_empty_results_folder(tmp: Path) -> None:
    (tmp / "results").mkdir()


@dataclass(frozen=True)
class Case:
    """One bad input: `argv` after the command's base flags (the last of a flag wins),
    `kwargs` over the API call's base arguments, and what both one-line errors say."""

    argv: tuple[str, ...]
    kwargs: dict[str, Any]
    says: str | tuple[str, ...]
    command: str = "run"
    setup: Callable[[Path], None] | None = field(default=None, compare=False)

    def __str__(self) -> str:
        setup = f" ({self.setup.__name__})" if self.setup is not None else ""
        return f"{self.command} {' '.join(self.argv)}{setup}"


def run(argv: list[str], kwargs: dict[str, Any], says: Any, **extra: Any) -> Case:
    return Case(tuple(argv), kwargs, says, "run", **extra)


def tune(argv: list[str], kwargs: dict[str, Any], says: Any, **extra: Any) -> Case:
    return Case(tuple(argv), kwargs, says, "tune", **extra)


def report(argv: list[str], kwargs: dict[str, Any], says: Any, **extra: Any) -> Case:
    return Case(tuple(argv), kwargs, says, "report", the_report_fixture, **extra)


NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
OVERRIDES = "baseline[lr=1e-3,weight_decay=0,lr=2e-3]"

BAD_INPUT = [
    # names and values the request builder refuses
    run(["--methods", "nope"], {"methods": "nope"}, "unknown method 'nope'; valid names: baseline"),
    run(["--dataset", "nope"], {"dataset": "nope"}, "unknown dataset 'nope'; valid names: synth"),
    run(["--preset", "huge"], {"preset": "huge"}, "unknown preset 'huge'; valid names: quick"),
    run(["--launcher", "slurm"], {"launcher": "slurm"}, "unknown launcher 'slurm'; valid names"),
    run(["--missing", "lidar"], {"missing": "lidar"}, "unknown modality lidar; valid: all, none"),
    run(["--missing", "dsm+optical"], {"missing": "dsm+optical"}, "leaves no modality present"),
    run(["--methods", "baseline[lrr=1]"], {"methods": ["baseline[lrr=1]"]}, "unknown hyperpa"),
    run(["--methods", "baseline[lr=fast]"], {"methods": "baseline[lr=fast]"}, "expected a number"),
    run(["--methods", "baseline[crop_size=8]"], {"methods": "baseline[crop_size=8]"}, ">= 32"),
    run(["--methods", "baseline[lr]"], {"methods": "baseline[lr]"}, "malformed override 'lr'"),
    run(["--methods", "baseline[lr=1"], {"methods": "baseline[lr=1"}, "unbalanced '['"),
    run(["--seeds", "a,b"], {"seeds": "a,b"}, "--seeds 'a,b': expected comma-separated integers"),
    run(["--seeds", "-1"], {"seeds": [-1]}, "--seeds '-1': expected integers from 0 to"),
    run(["--steps", "0"], {"steps": 0}, "--steps must be a positive integer, got 0"),
    run(["--imbalance", "0.5"], {"imbalance": [0.5]}, "--imbalance '0.5': expected comma-sep"),
    run(["--dataset", "synthetic[tiles=3]"], {"dataset": "synthetic[tiles=3]"}, "option tiles"),
    run(["--workers", "0"], {"workers": 0}, "--workers must be a positive integer, got 0"),
    run(["--threads", "0"], {"threads": 0}, "--threads must be a positive integer, got 0"),
    run(["--train-missing", "sar=0.3"], {"train_missing": "sar=0.3"}, "no modality 'sar'"),
    run(["--train-missing", "dsm=1.5"], {"train_missing": ["dsm=1.5"]}, "--train-missing 'dsm=1.5'"),
    run(["--train-missing", "dsm"], {"train_missing": "dsm"}, "malformed --train-missing pair"),
    run(["--corruptions", "fog"], {"corruptions": "fog"}, "fog"),
    run(["--corruptions", "clouds", "--severities", "7"], {"corruptions": "clouds", "severities": [7]}, "7"),
    run(["--corruptions", "clouds", "--invalid-fill", "zero"], {"corruptions": "clouds", "invalid_fill": "zero"}, "--invalid-fill 'zero': expected own, mean"),
    run(["--hparams-from", f"{TMP}/nowhere"], {"hparams_from": f"{TMP}/nowhere"}, "no best.json"),
    # the results directory and the data root
    run(["--out", f"{TMP}/file.txt"], {"out": f"{TMP}/file.txt"}, "exists and is not a directory", setup=a_file),
    run(["--out", f"{TMP}/thesis"], {"out": f"{TMP}/thesis"}, "non-empty directory without a .missbench marker", setup=a_foreign_folder),
    run(["--out", "/proc/missbench-results"], {"out": "/proc/missbench-results"}, "--out /proc/missbench-results: not writable"),
    run(["--data-root", f"{TMP}/file.txt"], {"data_root": f"{TMP}/file.txt"}, "is a file; expected a directory", setup=a_file),
    # values the command line's parser refuses itself: both name the flag and the value
    run(["--budget", "flopz"], {"budget": "flopz"}, ("--budget", "'flopz'")),
    run(["--selection", "best"], {"selection": "best"}, ("--selection", "'best'")),
    run(["--device", "tpu"], {"device": "tpu"}, ("--device", "'tpu'")),
    run(["--log", "loud"], {"log": "loud"}, ("--log", "'loud'")),
    run(["--threads", "two"], {"threads": "two"}, ("--threads", "'two'")),
    run(["--steps", "1e3"], {"steps": "1e3"}, ("--steps", "'1e3'")),
    run(["--workers", "2.5"], {"workers": 2.5}, ("--workers", "2.5")),
    # a training-missing share judged by its tile count on this dataset
    run(["--train-missing", "dsm=0.1"], {"train_missing": "dsm=0.1"}, f"--train-missing dsm=0.1 removes dsm from 0 of the {TILES} training tiles of synthetic"),
    run(["--train-missing", "optical=0.9"], {"train_missing": "optical=0.9"}, f"removes optical from {TILES} of the {TILES} training tiles"),
    run(["--train-missing", "none", "--train-missing", "dsm=0.5,optical=0.05"], {"train_missing": ["none", "dsm=0.5,optical=0.05"]}, "optical=0.05 removes optical from 0 of the 3"),
    run(["--train-missing", "dsm=0.3", "--train-missing", "dsm=0.4"], {"train_missing": ["dsm=0.3", "dsm=0.4"]}, "--train-missing dsm=0.3 and dsm=0.4 remove the same training tiles of synthetic"),
    # a key given twice, in every key=value list the command line reads
    run(["--train-missing", "dsm=0.5, dsm=0.6"], {"train_missing": "dsm=0.5, dsm=0.6"}, "--train-missing pair 'dsm' given twice in 'dsm=0.5, dsm=0.6' (dsm=0.5 and dsm=0.6)"),
    run(["--methods", OVERRIDES], {"methods": OVERRIDES}, f"override 'lr' given twice in '{OVERRIDES}'"),
    run(["--dataset", "synthetic[tile_size=64,train_tiles=3,tile_size =96]"], {"dataset": "synthetic[tile_size=64,train_tiles=3,tile_size =96]"}, "override 'tile_size' given twice"),
    # options that apply to nothing
    run(["--severities", "2"], {"severities": "2"}, "--severities 2: applies to nothing without --corruptions"),
    run(["--corruptions", "none", "--severities", "abc"], {"corruptions": "none", "severities": "abc"}, "--severities abc: applies to nothing"),
    run(["--invalid-fill", "mean"], {"invalid_fill": "mean"}, "--invalid-fill mean: applies to nothing without a --corruptions entry"),
    run(["--corruptions", "haze,noise", "--invalid-fill", "own,mean"], {"corruptions": "haze,noise", "invalid_fill": ["own", "mean"]}, "asked: haze, noise"),
    run(["--corruptions", "speckle"], {"corruptions": "speckle"}, "--corruptions speckle: acts on sar modalities and touches none of this command's data (synthetic has optical (optical), dsm (elevation))"),
    run(["--launcher", "local", "--address", "auto"], {"launcher": "local", "address": "auto"}, "--address auto: applies to nothing with --launcher local"),
    run(["--launcher", "dry_run", "--workers", "2"], {"launcher": "dry_run", "workers": 2}, "--workers 2: applies to nothing with --launcher dry_run"),
    run(["--launcher", "dry_run", "--train-missing", "dsm=0.95"], {"launcher": "dry_run", "train_missing": "dsm=0.95"}, "removes dsm from 3 of the 3"),
    pytest.param(run(["--device", "cuda"], {"device": "cuda"}, "--device cuda: no CUDA device is available"), marks=NO_CUDA),
    # tune
    tune(["--trials", "0"], {"trials": 0}, "--trials must be an integer from 1"),
    tune(["--keep", "0"], {"keep": 0.0}, "--keep must be a share"),
    tune(["--rungs", "2,1"], {"rungs": [2, 1]}, "expected strictly increasing"),
    tune(["--methods", "baseline[lr=0.1]"], {"methods": "baseline[lr=0.1]"}, "without overrides"),
    tune(["--keep", "0.25"], {"keep": 0.25}, "--keep 0.25: applies to nothing"),
    tune(["--seed", "-1"], {"seed": -1}, "--seed -1: expected an integer from 0"),
    tune(["--dataset", "synthetic,synthetic_3m"], {"dataset": "synthetic,synthetic_3m"}, "tune searches on one dataset"),
    tune(["--workers", "0"], {"workers": 0}, "--workers must be a positive integer, got 0"),
    tune(["--launcher", "dry_run"], {"launcher": "dry_run"}, ("--launcher", "'dry_run'")),
    tune(["--trials", "many"], {"trials": "many"}, ("--trials", "'many'")),
    # report
    report(["--flat-delta", "nan"], {"flat_delta": float("nan")}, "--flat-delta"),
    report(["--leaderboard-steps", "0"], {"leaderboard_steps": 0}, "--leaderboard-steps"),
    report(["--selection", "best"], {"selection": "best"}, ("--selection", "'best'")),
    report(["--split", "train"], {"split": "train"}, ("--split", "'train'")),
    report(["--flat-delta", "wide"], {"flat_delta": "wide"}, ("--flat-delta", "'wide'")),
    Case((), {}, "no runs", "report", an_empty_results_folder),
    Case((), {}, "results is not a directory", "report"),  # no results folder at all
]  # fmt: skip


def fill(value: Any, tmp: Path) -> Any:
    """`value` with TMP standing for `tmp` (in a string or the strings of a list)."""
    if isinstance(value, str):
        return value.replace(TMP, str(tmp))
    if isinstance(value, list):
        return [fill(v, tmp) for v in value]
    return value


def through_the_cli(case: Case, tmp: Path, data_root: Path, capsys) -> str:
    """Run `case` on the command line: exit status 2, one line on stderr, no traceback."""
    base = {
        "run": ["run", "--preset", "smoke", "--methods", "baseline", "--dataset", tiny_dataset_arg()],
        "tune": ["tune", "--preset", "smoke", "--methods", "baseline", "--trials", "1",
                 "--dataset", tiny_dataset_arg()],
        "report": ["report", str(tmp / "results"), "--no-qualitative"],
    }[case.command]  # fmt: skip
    if case.command != "report":
        base += ["--device", "cpu", "--threads", "1", "--out", str(tmp / "out")]
    argv = [*base, "--data-root", str(data_root), *fill(list(case.argv), tmp)]
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as parser_exit:  # the parser's own one-line refusal
        code = parser_exit.code
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def through_the_api(case: Case, tmp: Path, data_root: Path) -> str:
    """Run `case` through `benchmark.api`: one `BenchmarkError` of one line."""
    base: dict[str, Any] = {"data_root": data_root}
    if case.command != "report":
        base |= {"preset": "smoke", "methods": "baseline", "dataset": tiny_dataset_arg()}
        base |= {"device": "cpu", "threads": 1, "out": tmp / "out"}
    if case.command == "tune":
        base["trials"] = 1
    kwargs = base | {k: fill(v, tmp) for k, v in case.kwargs.items()}
    call = {"run": api.run, "tune": api.tune, "report": api.report}[case.command]
    if case.command == "report":
        kwargs = {"results_dir": tmp / "results", "qualitative": False, **kwargs}
    with pytest.raises(BenchmarkError) as refused:
        call(**kwargs)
    message = str(refused.value)
    assert "\n" not in message, message
    return message


@pytest.fixture(scope="module", autouse=True)
def generated(data_root) -> None:
    """The tiny dataset generated up front, so that a refusal's stderr is its one line."""
    from benchmark.core.plugins import DATASETS

    cls = DATASETS.get("synthetic")
    for split in cls.SPLITS:
        cls(data_root, split, cls.make_options(TINY)).load(0)


@pytest.mark.parametrize("case", BAD_INPUT, ids=str)
def test_refused_alike_through_the_cli_and_the_api(case, data_root, tmp_path, capsys):
    said = []
    for way in ("cli", "api"):
        tmp = tmp_path / way
        tmp.mkdir()
        if case.setup is not None:
            case.setup(tmp)
        before = snapshot(tmp)
        if way == "cli":
            said.append(through_the_cli(case, tmp, data_root, capsys))
        else:
            said.append(through_the_api(case, tmp, data_root))
        assert snapshot(tmp) == before, (
            f"{way} wrote {sorted(snapshot(tmp).keys() - before.keys())}"
        )
        assert not (tmp / "out").exists()
    phrases = (case.says,) if isinstance(case.says, str) else case.says
    for phrase in phrases:
        assert all(phrase in message for message in said), (phrase, said)


def test_every_cli_choice_is_one_the_api_checks_alike():
    """Where the parser offers choices, the builders check the same ones (the API's values)."""
    from benchmark.cli import build_parser
    from benchmark.commands.entry import SPLITS
    from benchmark.commands.requests import BUDGETS, DEVICES, LOGS
    from benchmark.run.selection import SELECTION_DESCRIPTION

    commands = next(a for a in build_parser()._actions if a.dest == "command").choices

    def choices(command: str, flag: str) -> tuple:
        return tuple(
            next(a for a in commands[command]._actions if flag in a.option_strings).choices
        )

    assert choices("run", "--budget") == BUDGETS and choices("run", "--log") == LOGS
    assert choices("run", "--device") == DEVICES == choices("tune", "--device")
    assert choices("run", "--selection") == tuple(SELECTION_DESCRIPTION)
    assert choices("report", "--split") == SPLITS


# ---------------------------------------------------- damaged checkpoints (need one training)
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
