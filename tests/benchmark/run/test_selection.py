"""Selection rules are functions over validation records: their contract, what they see, and
one training that records every rule (a new `--selection` trains nothing)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from benchmark.core.records import SELECTION_FULL_VAL, RunSpec
from benchmark.core.scenarios import Scenario
from benchmark.data.pipeline import prepare_data
from benchmark.deploy.model import load_model
from benchmark.report.generate import load_results
from benchmark.run import train
from benchmark.run.evaluate import evaluate_run_split
from benchmark.run.selection import (
    SELECTIONS,
    SelectionRule,
    chosen_steps,
    full_val,
    mean_val,
    validation_records,
)
from benchmark.run.store import MODEL, RECORDS, SPEC, RunStore, selected_model_name
from benchmark.run.train import build_method
from benchmark.system.errors import BenchmarkError
from benchmark.system.io import atomic_write_jsonl, read_jsonl
from tests.benchmark.cli.cli_helpers import invoke, snapshot

SCENARIOS = {"dsm+optical": 2, "dsm": 1, "optical": 1}
"""Scenario -> modalities present, as a two-modality run validates them."""


def validations(scores: dict[int, list[float]]) -> list[dict]:
    """Intermediate validation records: step -> mIoU per scenario (in `SCENARIOS` order)."""
    return [
        {
            "split": "val",
            "selection": "",
            "checkpoint_step": step,
            "scenario": scenario,
            "n_present": present,
            "miou": miou,
        }
        for step, row in scores.items()
        for (scenario, present), miou in zip(SCENARIOS.items(), row, strict=True)
    ]


def histories() -> list[list[dict]]:
    """Validation histories with ties, plateaus and drops (scores rounded to force ties)."""
    rng = np.random.default_rng(0)
    made = [validations({10: [0.5, 0.2, 0.4]})]
    for _ in range(6):
        steps = sorted(rng.choice(np.arange(1, 100), size=int(rng.integers(2, 7)), replace=False))
        made.append(validations({int(s): list(np.round(rng.random(3), 1)) for s in steps}))
    return made


@pytest.mark.parametrize("name", SELECTIONS.names())
def test_every_rule_keeps_the_contract(name):
    rule = SELECTIONS.get(name)
    assert rule.description
    for history in histories():
        steps = sorted({r["checkpoint_step"] for r in history})
        chosen = rule.choose(history)
        assert chosen in steps
        assert rule.choose([dict(r) for r in history]) == chosen  # deterministic
        previous = None
        for k, newest in enumerate(steps, 1):  # online: the earlier choice or the newest step
            prefix = [r for r in history if r["checkpoint_step"] in steps[:k]]
            choice = rule.choose(prefix)
            assert choice in (previous, newest)
            previous = choice


def test_the_default_rules_choose_what_they_describe():
    history = validations({5: [0.6, 0.1, 0.1], 10: [0.5, 0.5, 0.5], 15: [0.6, 0.5, 0.6]})
    assert full_val(history) == 5  # best with every modality, the earliest of a tie
    assert mean_val(history) == 15


def test_rules_see_only_the_intermediate_validations(monkeypatch):
    history = validations({5: [0.6, 0.1, 0.1], 10: [0.5, 0.5, 0.5]})
    absurd = [
        dict(r, split="test", checkpoint_step=99, miou=1e9) for r in validations({99: [1, 1, 1]})
    ]
    final = [dict(r, selection=SELECTION_FULL_VAL, miou=1e9) for r in history]
    seen = []

    def spy(records):
        seen.extend(records)
        return max(r["checkpoint_step"] for r in records)

    monkeypatch.setitem(SELECTIONS._items, "spy", SelectionRule("records what it sees", spy))
    mixed = [*absurd, *history, *final]
    assert chosen_steps(mixed) == chosen_steps(history)
    assert chosen_steps(mixed) == {"full_val": 5, "mean_val": 10, "spy": 10}
    assert seen and all(r["split"] == "val" and r["selection"] == "" for r in seen)
    assert validation_records(mixed) == history


def test_a_rule_must_choose_a_validated_step_as_validations_arrive(monkeypatch):
    history = validations({s: [0.1 * s, 0.1, 0.1] for s in (1, 2, 3, 4)})

    def unvalidated(records):
        return 7

    monkeypatch.setitem(
        SELECTIONS._items, "bad", SelectionRule("a step never validated", unvalidated)
    )
    with pytest.raises(BenchmarkError, match="'bad' chose step 7"):
        chosen_steps(history)

    def middle(records):
        steps = sorted({r["checkpoint_step"] for r in records})
        return steps[len(steps) // 2]

    monkeypatch.setitem(SELECTIONS._items, "bad", SelectionRule("looks back", middle))
    earlier = {"full_val": 3, "mean_val": 3, "bad": 2}
    with pytest.raises(BenchmarkError, match="must choose as validations arrive"):
        chosen_steps(history, earlier)  # step 3 at step 4: neither its earlier 2 nor 4


def earliest(records):
    return min(r["checkpoint_step"] for r in records)


def latest(records):
    return max(r["checkpoint_step"] for r in records)


EXTRA = {"earliest": earliest, "latest": latest}
"""Rules registered for the run below, so that two distinct checkpoints are chosen."""


@pytest.fixture(scope="module")
def trained(data_root, tmp_path_factory):
    """One tiny baseline run trained with two extra rules registered; every evaluation the run
    made is noted (split, step, rule)."""
    out = tmp_path_factory.mktemp("selection") / "results"
    calls = []
    original = train.evaluation_records

    def noting(*args, **kwargs):
        calls.append((args[3], args[5], args[8], len(args[4])))
        return original(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train, "evaluation_records", noting)
        for name, choose in EXTRA.items():
            patch.setitem(SELECTIONS._items, name, SelectionRule(f"test: {name}", choose))
        assert invoke(["--methods", "baseline"], data_root, out) == 0
    (run,) = (out / "runs").iterdir()
    return out, run, calls


def expected_steps(records):
    history = validation_records(records)
    return {
        "full_val": full_val(history),
        "mean_val": mean_val(history),
        "earliest": 3,
        "latest": 6,
    }


def test_one_training_records_every_rule(trained):
    out, run, _ = trained
    records = read_jsonl(run / RECORDS)
    history = validation_records(records)
    assert sorted({r["checkpoint_step"] for r in history}) == [3, 6]
    assert {(r["checkpoint_step"], r["scenario"]) for r in history} == {
        (s, scenario) for s in (3, 6) for scenario in SCENARIOS
    }  # every validation has every scenario, whatever the rule
    steps = expected_steps(records)
    for rule, step in steps.items():
        for split in ("val", "test"):
            mine = [r for r in records if r["split"] == split and r["selection"] == rule]
            assert {r["scenario"] for r in mine} == set(SCENARIOS)
            assert {r["checkpoint_step"] for r in mine} == {step}
    board = pd.read_csv(out / "leaderboard.csv")
    assert set(board["selection"]) == {SELECTION_FULL_VAL} and len(board) == len(SCENARIOS)
    spec = json.loads((run / SPEC).read_text())
    assert "selection" not in spec and RunSpec.from_json(spec).run_id == run.name


def test_each_distinct_checkpoint_is_evaluated_once_and_kept(trained):
    _, run, calls = trained
    records = read_jsonl(run / RECORDS)
    steps = expected_steps(records)
    distinct = sorted(set(steps.values()))
    assert distinct == [3, 6]
    final = [(split, step) for split, step, rule, _ in calls if rule]
    assert sorted(final) == [("test", s) for s in distinct]  # val: the validation's records
    assert all(n == len(SCENARIOS) for *_, n in calls)
    assert [step for split, step, rule, _ in calls if not rule] == [3, 6]  # the validations

    card = json.loads((run / "model.json").read_text())
    assert card["selected_steps"] == steps and card["selected_step"] == steps["full_val"]
    other = next(rule for rule, step in steps.items() if step != steps["full_val"])
    files = sorted(p.name for p in run.glob("model*.safetensors"))
    assert files == sorted([MODEL, selected_model_name(other)])
    store = RunStore(run.parent.parent)
    for rule, step in steps.items():
        model = load_model(run, selection=rule)
        assert model.card["selected_step"] == step
        same = store.model_path(run.name, rule) == store.model_path(run.name)
        assert same == (step == steps["full_val"])
    weights = {s: store.load_model(run.name, r) for r, s in steps.items()}
    assert any(not weights[3][k].equal(weights[6][k]) for k in weights[3])


def test_another_rule_on_the_finished_store_trains_nothing(trained, data_root, tmp_path):
    out = tmp_path / "results"
    shutil.copytree(trained[0], out)
    before = snapshot(out / "runs")
    assert invoke(["--methods", "baseline", "--selection", "mean_val"], data_root, out) == 0
    assert snapshot(out / "runs") == before
    board = pd.read_csv(out / "leaderboard.csv")
    assert set(board["selection"]) == {"mean_val"} and len(board) == len(SCENARIOS)
    (run,) = (out / "runs").iterdir()
    tests = {
        r["scenario"]: r["miou"]
        for r in read_jsonl(run / RECORDS)
        if r["split"] == "test" and r["selection"] == "mean_val"
    }
    shown = dict(zip(board["scenario"], board["miou"], strict=True))
    assert shown == pytest.approx(tests, abs=1e-6)  # the CSV keeps six decimals


def test_a_run_made_before_every_rule_was_recorded_is_trained_again(
    trained, data_root, tmp_path, capsys
):
    out = tmp_path / "results"
    shutil.copytree(trained[0], out)
    (run,) = (out / "runs").iterdir()
    records = read_jsonl(run / RECORDS)
    old = [r for r in records if r["selection"] in ("", SELECTION_FULL_VAL)]
    atomic_write_jsonl(run / RECORDS, old)  # as a full_val run made before this version
    capsys.readouterr()
    assert invoke(["--methods", "baseline", "--selection", "mean_val"], data_root, out) == 0
    assert "finished before every selection rule was recorded" in capsys.readouterr().err
    again = read_jsonl(run / RECORDS)
    assert {r["selection"] for r in again} >= {"", SELECTION_FULL_VAL, "mean_val"}

    def full(rows):
        return [
            (r["split"], r["scenario"], r["confusion"])
            for r in rows
            if r["selection"] == SELECTION_FULL_VAL
        ]

    assert full(again) == full(records)  # trained again to the same full_val result


def test_report_reads_a_run_whose_spec_still_names_its_rule(trained, tmp_path):
    """A mean_val run made before every rule was recorded: its id hashed the rule, its
    spec.json names it and its records hold that rule's only."""
    out = tmp_path / "results"
    shutil.copytree(trained[0], out)
    (run,) = (out / "runs").iterdir()
    spec = RunSpec.from_json(json.loads((run / SPEC).read_text()))
    legacy = RunSpec.from_json({**spec.to_json(), "selection": "mean_val"})
    old = out / "runs" / legacy.legacy_run_id
    old.mkdir()
    for name in ("done", "model.json", MODEL):
        shutil.copy(run / name, old / name)
    (old / SPEC).write_text(json.dumps({**legacy.to_json(), "run_id": legacy.legacy_run_id}))
    rows = [r for r in read_jsonl(run / RECORDS) if r["selection"] in ("", "mean_val")]
    atomic_write_jsonl(old / RECORDS, rows)
    card = json.loads((old / "model.json").read_text())
    del card["selected_steps"]
    (old / "model.json").write_text(json.dumps(card))

    assert RunStore(out).load(old.name).state == "done"  # readable: its id is the old hash
    assert RunStore(out).has_model(old.name, "mean_val")
    assert not RunStore(out).has_model(old.name)  # its one model is mean_val's
    results = load_results(out, selection="mean_val")
    assert [e.run.run_id for e in results.entries] == [run.name]  # the new run supersedes it
    assert not results.lacking
    default = load_results(out)
    assert [e.run.run_id for e in default.entries] == [run.name] and not default.lacking
    shutil.rmtree(run)  # without the new run, the old one is mean_val's and lacks full_val
    assert [e.run.run_id for e in load_results(out, selection="mean_val").entries] == [old.name]
    assert [r.run_id for r in load_results(out).lacking] == [old.name]


def test_a_chosen_checkpoint_keeps_the_validation_records_that_chose_it(trained, data_root):
    """The final val records are those of the validation at the chosen step, with the finished
    run's fields, not a second evaluation: the kept weights score the same on the same tiles,
    which re-evaluating the stored model here confirms tile for tile."""
    _, run, _ = trained
    records = read_jsonl(run / RECORDS)
    validations = {(r["checkpoint_step"], r["scenario"]): r for r in validation_records(records)}
    final_train_seconds = max(r["train_seconds"] for r in records)
    spec = RunSpec.from_json(json.loads((run / SPEC).read_text()))
    data = prepare_data(spec, data_root)
    store = RunStore(run.parent.parent)
    for rule, step in expected_steps(records).items():
        mine = [r for r in records if r["split"] == "val" and r["selection"] == rule]
        method = build_method(spec, data, torch.device("cpu"))
        method.load_state_dict(store.load_model(run.name, rule))
        again = evaluate_run_split(method, data.val, parse_all(mine), spec, torch.device("cpu"))
        for record in mine:
            earlier = validations[(step, record["scenario"])]
            assert record["tile_confusions"] == earlier["tile_confusions"]
            assert record["train_seconds"] == final_train_seconds
            rescored = [m.matrix.tolist() for m in again[Scenario.parse(record["scenario"])]]
            assert rescored == record["tile_confusions"], (rule, record["scenario"])


def parse_all(records):
    return [Scenario.parse(r["scenario"]) for r in records]
