"""`tune` end to end on tiny data: two methods, the same trials and schedule, resumable, its
cost and best configurations written; `run --hparams-from` takes them."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pandas as pd
import pytest

from benchmark.cli import main
from tests.benchmark.cli.cli_helpers import snapshot
from tests.conftest import tiny_dataset_arg

TUNE = [
    "tune",
    "--preset",
    "smoke",
    "--device",
    "cpu",
    "--threads",
    "1",
    "--methods",
    "baseline,moddrop",
    "--trials",
    "2",
    "--rungs",
    "1,2",
    "--keep",
    "0.5",
    "--seed",
    "3",
]
"""Two methods x 2 trials: both train 1 step, the better one 2 steps (3 runs per method)."""


def tune(out: Path, data_root: Path, *extra: str) -> int:
    args = [*TUNE, "--dataset", tiny_dataset_arg(), "--data-root", str(data_root)]
    return main([*args, "--out", str(out), *extra])


@pytest.fixture(scope="module")
def tuned(data_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("tune") / "results"
    assert tune(out, data_root) == 0
    return out


def study(out: Path, method: str) -> optuna.Study:
    url = f"sqlite:///{out / 'tune' / method}.db"
    return optuna.load_study(study_name=method, storage=url)


def test_every_method_gets_the_same_trials_and_schedule_and_its_cost_is_written(tuned):
    cost = pd.read_csv(tuned / "tune" / "search_cost.csv")
    assert list(cost["method"]) == ["baseline", "moddrop"]
    assert set(cost["trials"]) == {2} and set(cost["runs"]) == {3} and set(cost["steps"]) == {4}
    assert cost["schedule"].nunique() == 1 and cost["schedule"][0] == "2 x 1 -> 1 x 2 steps"
    assert (cost["cpu_seconds"] > 0).all() and (cost["gpu_seconds"] == 0).all()
    assert cost["complete"].all()
    markdown = (tuned / "tune" / "search_cost.md").read_text()
    assert "| baseline | 2 | 3 | 4 |" in markdown and "| moddrop | 2 | 3 | 4 |" in markdown
    trials = pd.read_csv(tuned / "tune" / "trials.csv")
    assert len(trials) == 6 and set(trials["state"]) == {"done"}
    for method in ("baseline", "moddrop"):
        states = sorted(t.state.name for t in study(tuned, method).trials)
        assert states == ["COMPLETE", "PRUNED"]
        complete = next(t for t in study(tuned, method).trials if t.state.name == "COMPLETE")
        assert set(complete.intermediate_values) == {1, 2}
    # the trials' runs are kept apart from the results directory's own
    assert not (tuned / "runs").exists() and len(list((tuned / "tune" / "runs").iterdir())) == 6


def test_best_json_holds_each_methods_best_finalist(tuned):
    best = json.loads((tuned / "tune" / "best.json").read_text())
    assert best["protocol"]["trials"] == 2 and best["protocol"]["seed"] == 3
    for method in ("baseline", "moddrop"):
        entry = best["methods"][method]
        complete = next(t for t in study(tuned, method).trials if t.state.name == "COMPLETE")
        assert entry["trial"] == complete.number and entry["hparams"] == complete.params
        assert entry["val_miou"] == pytest.approx(complete.value)
        assert entry["steps"] == 2


def test_rerunning_resumes_without_new_trials_or_runs(tuned, data_root):
    """Through the Python API this time: the same request, the same table, nothing new."""
    from benchmark import api

    runs = tuned / "tune" / "runs"
    before, cost = snapshot(runs), pd.read_csv(tuned / "tune" / "search_cost.csv")
    again = api.tune(
        methods=["baseline", "moddrop"],
        dataset=tiny_dataset_arg(),
        preset="smoke",
        trials=2,
        seed=3,
        rungs=[1, 2],
        keep=0.5,
        out=tuned,
        device="cpu",
        data_root=data_root,
        threads=1,
    )
    assert snapshot(runs) == before
    stable = ["method", "trials", "runs", "steps", "best_trial", "best_val_miou", "best_hparams"]
    assert again[stable].equals(cost[stable])
    for method in ("baseline", "moddrop"):
        assert len(study(tuned, method).trials) == 2


def test_another_protocol_in_the_same_folder_is_refused_and_writes_nothing(
    tuned, data_root, capsys
):
    before = snapshot(tuned)
    capsys.readouterr()
    assert tune(tuned, data_root, "--trials", "3") == 2
    err = capsys.readouterr().err.strip()
    assert "trials 2 (asked: 3)" in err and len(err.splitlines()) == 1
    assert snapshot(tuned) == before


# bad --trials, --keep, --rungs and --methods values: BAD_INPUT in cli/test_bad_input.py


def test_run_hparams_from_takes_the_tuned_values(tuned, data_root, tmp_path, capsys):
    from benchmark.commands.requests import sweep_request
    from benchmark.run.sweep import expand

    best = json.loads((tuned / "tune" / "best.json").read_text())["methods"]

    def specs(methods: str) -> list:
        request = sweep_request(
            methods, tiny_dataset_arg(), "0", "smoke", None, "1", "all", "steps", None,
            "full_val", "none", hparams_from=tuned,
        )  # fmt: skip
        return list(expand(request).specs)

    baseline, moddrop = specs("baseline,moddrop")
    assert baseline.hparams["lr"] == best["baseline"]["hparams"]["lr"]
    assert {k: moddrop.hparams[k] for k in best["moddrop"]["hparams"]} == best["moddrop"]["hparams"]
    [fixed] = specs("moddrop[lr=0.0005]")
    assert fixed.hparams["lr"] == 0.0005 and fixed.hparams["fill"] == moddrop.hparams["fill"]
    capsys.readouterr()
    args = ["--preset", "smoke", "--methods", "baseline,stars", "--dataset", tiny_dataset_arg()]
    code = main([*args, "--hparams-from", str(tuned / "tune"), "--out", str(tmp_path / "r")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "no tuned configuration for method 'stars'" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_a_frozen_tune_folder_keeps_its_studies_and_tables(tuned, tmp_path):
    """`report <out>/tune --freeze DEST`: the trials' records as any freeze, plus the studies
    and tables `tune` wrote, checksummed, so an edit is named and `--hparams-from DEST` reads
    the frozen best.json; a refreeze with --overwrite replaces them."""
    from benchmark.commands.tuning import read_tuned
    from benchmark.run.store import frozen_changes

    source, dest = tuned / "tune", tmp_path / "2026-12-07_abc1234" / "tune"
    args = ["report", str(source), "--freeze", str(dest), "--no-qualitative"]
    assert main(args) == 0
    kept = ["baseline.db", "best.json", "moddrop.db", "protocol.json", "search_cost.csv"]
    kept += ["search_cost.md", "trials.csv"]
    assert sorted(p.name for p in dest.iterdir() if p.is_file()) == sorted([*kept, "frozen.json"])
    for name in kept:
        assert (dest / name).read_bytes() == (source / name).read_bytes(), name
    assert frozen_changes(dest) == []
    frozen, original = read_tuned(dest), read_tuned(source)
    assert (frozen.methods, frozen.protocol) == (original.methods, original.protocol)
    (dest / "best.json").write_text("{}")
    assert frozen_changes(dest) == ["best.json"]
    (dest / "moddrop.db").unlink()
    assert main([*args, "--overwrite"]) == 0 and frozen_changes(dest) == []
    assert (dest / "moddrop.db").read_bytes() == (source / "moddrop.db").read_bytes()
