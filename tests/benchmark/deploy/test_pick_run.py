"""Picking the run `predict`/`export`/`load_model` mean: a folder, an id prefix, or a results
directory with --method/--seed/--dataset, every refusal one line naming the folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark.api import load_model as api_load_model
from benchmark.cli import main
from benchmark.run.pick import RunChoice, pick_run
from benchmark.system.errors import BenchmarkError


def fake_run(out: Path, run_id: str, method: str, seed: int, *, finished: bool = True) -> Path:
    """A run folder with only what picking reads: its spec and (finished) its model card."""
    folder = out / "runs" / run_id
    folder.mkdir(parents=True)
    spec = {"method": method, "label": method, "seed": seed, "dataset": "synthetic"}
    spec |= {"preset": "quick", "run_id": run_id}
    (folder / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    if finished:
        (folder / "model.json").write_text("{}", encoding="utf-8")
    return folder


@pytest.fixture
def results(tmp_path) -> Path:
    out = tmp_path / "results"
    fake_run(out, "aaaa111122223333", "stars", 0)
    fake_run(out, "aaaa999922223333", "stars", 1)
    fake_run(out, "bbbb111122223333", "baseline", 0)
    fake_run(out, "cccc111122223333", "moddrop", 0, finished=False)
    return out


def refusal(target, choice=None) -> str:
    with pytest.raises(BenchmarkError) as caught:
        pick_run(target, choice)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_run_folder_is_itself(results):
    folder = results / "runs" / "bbbb111122223333"
    assert pick_run(folder) == folder
    assert pick_run(folder, RunChoice(method="baseline", seed=0)) == folder


def test_a_results_directory_is_narrowed_by_method_seed_and_alias(results):
    runs = results / "runs"
    assert pick_run(results, RunChoice(method="baseline")) == runs / "bbbb111122223333"
    assert pick_run(results, RunChoice(method="zero_fill")) == runs / "bbbb111122223333"
    assert pick_run(results, RunChoice(method="stars", seed=1)) == runs / "aaaa999922223333"
    assert pick_run(runs, RunChoice(method="stars", seed=0)) == runs / "aaaa111122223333"


def test_a_unique_prefix_names_a_run(results):
    runs = results / "runs"
    assert pick_run(runs / "bbbb11") == runs / "bbbb111122223333"
    assert pick_run(runs / "aaaa9") == runs / "aaaa999922223333"


def test_a_results_directory_without_a_choice_says_what_it_holds(results):
    message = refusal(results)
    assert str(results) in message and "--method" in message
    assert "baseline, stars" in message and "3 finished run(s)" in message
    assert "moddrop" not in message  # not finished: no model to load


def test_ambiguous_and_unmatched_choices_list_the_candidates(results):
    message = refusal(results, RunChoice(method="stars"))
    assert "2 finished runs match --method stars" in message
    assert "aaaa111122223333 (stars, seed 0" in message and "--seed" in message
    message = refusal(results, RunChoice(method="lckd"))
    assert "no finished run matches --method lckd" in message and "bbbb111122223333" in message
    message = refusal(results, RunChoice(method="moddrop"))  # unfinished runs are not offered
    assert "no finished run matches" in message


def test_prefixes_too_short_ambiguous_or_unknown_are_refused(results):
    runs = results / "runs"
    assert "at least 4 characters" in refusal(runs / "aa")
    assert "2 runs have ids starting with 'aaaa'" in refusal(runs / "aaaa")
    assert "no run under" in refusal(runs / "ffff")
    assert "no such folder" in refusal(results / "nowhere" / "x")


def test_a_run_folder_that_contradicts_the_flags_is_refused(results):
    folder = results / "runs" / "bbbb111122223333"
    message = refusal(folder, RunChoice(method="stars"))
    assert "a run of method baseline" in message and "--method stars" in message


def test_folders_that_hold_no_loadable_run(tmp_path, results):
    frozen = tmp_path / "frozen"
    fake_run(frozen, "dddd111122223333", "stars", 0, finished=False)
    assert "none keeps a model" in refusal(frozen, RunChoice(method="stars"))
    other = tmp_path / "other"
    other.mkdir()
    assert "neither a run folder" in refusal(other)
    assert "not a folder" in refusal(results / "runs" / "bbbb111122223333" / "spec.json")


def test_predict_and_load_model_take_a_results_directory(finished_run, scene, tmp_path, capsys):
    """End to end on a real finished run: the results directory with --method, an id prefix,
    and the one-line answer to a bare results directory (exit 2, naming it)."""
    results = finished_run.parent.parent
    method = json.loads((finished_run / "spec.json").read_text(encoding="utf-8"))["method"]
    inputs = f"optical={scene['optical']}"
    out = tmp_path / "by_method.tif"
    args = ["predict", str(results), "--method", method, "--seed", "0"]
    assert main([*args, "--input", inputs, "--out", str(out)]) == 0 and out.exists()
    prefix = finished_run.parent / finished_run.name[:6]
    out = tmp_path / "by_prefix.tif"
    assert main(["predict", str(prefix), "--input", inputs, "--out", str(out)]) == 0
    capsys.readouterr()
    out = tmp_path / "none.tif"
    assert main(["predict", str(results), "--input", inputs, "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and str(results) in error and "--method" in error
    assert not out.exists()
    model = api_load_model(results, method=method)
    assert model.modalities == api_load_model(finished_run).modalities


def test_dedicated_models_are_told_apart_by_what_they_were_trained_on(tmp_path):
    out = tmp_path / "oracles"
    for run_id, modalities in (("eeee1111", ["optical"]), ("eeee2222", ["dsm"])):
        spec_path = fake_run(out, run_id, "unimodal", 0) / "spec.json"
        spec = json.loads(spec_path.read_text(encoding="utf-8"))
        spec_path.write_text(json.dumps(spec | {"train_modalities": modalities}), "utf-8")
    message = refusal(out, RunChoice(method="unimodal"))
    assert "eeee1111 (unimodal, seed 0, synthetic, quick, trained on optical)" in message
    assert "eeee2222 (unimodal, seed 0, synthetic, quick, trained on dsm)" in message


@pytest.mark.parametrize(
    ("choice", "message"),
    [
        ({"method": 5}, "--method 5: expected a non-empty name"),
        ({"method": ""}, "--method '': expected a non-empty name"),
        ({"seed": "0"}, "--seed '0': expected an integer"),
        ({"seed": True}, "--seed True: expected an integer"),
        ({"dataset": ["synthetic"]}, "--dataset ['synthetic']: expected a non-empty name"),
    ],
)
def test_the_python_api_names_a_choice_of_the_wrong_type(results, choice, message):
    with pytest.raises(BenchmarkError) as caught:
        api_load_model(results, **choice)
    assert str(caught.value) == message
