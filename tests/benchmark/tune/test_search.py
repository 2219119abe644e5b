"""`tune` without training: every method's declared space, the seeded draw, the schedule and
selection on validation only (a fake store whose test scores disagree)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from benchmark.commands.requests import tune_request
from benchmark.commands.tune import distributions, draw_trials, open_study, play, suggest
from benchmark.commands.tuning import (
    Schedule,
    promote,
    read_tuned,
    resolved_space,
    trial_specs,
    validation_score,
)
from benchmark.core.hparams import HParam, Search, resolve_hparams, search_space
from benchmark.core.options import NamedConfig, parse_named_list
from benchmark.core.plugins import METHODS, load_plugins
from benchmark.core.presets import PRESETS
from benchmark.run.sweep import SweepRequest, expand
from benchmark.system.errors import BenchmarkError

load_plugins()


def test_every_method_declares_a_search_space_whose_points_validate():
    """Non-empty (the learning rate for everyone, plus each method's own knobs where it has
    any); every point (bounds, middle, every choice, and Optuna's own draws) is a valid value
    under every preset; the value the preset resolves lies inside (ranges are centred)."""
    import optuna

    for name in METHODS.names():
        cls = METHODS.get(name)
        space = cls.hparam_space()
        searches = search_space(space)
        assert "lr" in searches, name
        if cls.HPARAMS and name != "unimodal":
            assert set(searches) & set(cls.HPARAMS), f"{name}: none of its own knobs is searched"
        for preset in map(PRESETS.get, PRESETS.names()):
            bases = resolve_hparams(space, preset.hparams)
            for key, search in searches.items():
                assert search.contains(bases[key], bases[key]), (name, preset.name, key)
                for point in search.points(bases[key]):
                    resolve_hparams(space, preset.hparams, {key: point})
            study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
            dists = distributions(resolved_space(name, preset))
            for _ in range(4):
                trial = study.ask()
                values = {k: suggest(trial, k, d) for k, d in dists.items()}
                resolve_hparams(space, preset.hparams, values)


def test_a_bad_declaration_fails_where_it_is_written():
    with pytest.raises(ValueError, match="must be <= 1"):
        HParam(0.5, low=0.0, high=1.0, search=Search.log_uniform(0.1, 2.0))
    with pytest.raises(ValueError, match="choices"):
        HParam("a", choices=("a", "b"), search=Search.categorical("a"))
    with pytest.raises(ValueError, match="expected one of"):
        HParam("a", choices=("a", "b"), search=Search.categorical("a", "c"))
    with pytest.raises(ValueError, match="low > 0"):
        Search.log_uniform(0.0, 1.0)


def test_stars_hand_picked_switches_are_points_of_its_space():
    """The configurations compared in results/2026-11-29_3a5ddcb/choices are draws of the
    space, not exceptions to it."""
    space = search_space(METHODS.get("stars").hparam_space())
    for key, value in {
        "decode_norm": "private",
        "compose_norm": "private",
        "recovery_sampling": "sample",
        "psa_level": 1,
        "psa_purity": 0.0,
    }.items():
        assert value in space[key].choices, key


def request(seed: int = 0, trials: int = 3, methods: str = "baseline,moddrop", rungs="2,4"):
    return tune_request(methods, "synthetic", "smoke", trials, seed, rungs, 0.5, "full_val")


def drawn(folder: Path, req, method: str = "moddrop") -> list:
    folder.mkdir(parents=True, exist_ok=True)
    space = resolved_space(method, req.preset)
    study = open_study(folder, method, req, space)
    return draw_trials(folder, study, req, method, space)


def test_the_draw_is_seeded_and_a_resumed_study_draws_only_what_it_lacks(tmp_path):
    first = drawn(tmp_path / "a", request(seed=0))
    assert [n for n, _ in first] == [0, 1, 2]
    assert drawn(tmp_path / "b", request(seed=0)) == first
    assert drawn(tmp_path / "c", request(seed=1)) != first
    # resumed with the same request: the same trials, none added
    assert drawn(tmp_path / "a", request(seed=0)) == first
    import optuna

    study = optuna.load_study(study_name="moddrop", storage=f"sqlite:///{tmp_path}/a/moddrop.db")
    assert len(study.trials) == 3
    # a study cut short after two draws goes on with what an uninterrupted one drew
    assert drawn(tmp_path / "d", request(seed=0, trials=2)) == first[:2]
    assert drawn(tmp_path / "d", request(seed=0, trials=3)) == first


def test_every_method_gets_the_same_schedule():
    schedule = Schedule((100, 200, 400), keep=0.5)
    assert schedule.sizes(8) == [8, 4, 2]
    assert schedule.sizes(5) == [5, 3, 2]
    assert Schedule((10,), keep=0.3).sizes(7) == [7]
    assert Schedule((1, 2, 3), keep=0.1).sizes(3) == [3, 1, 1]
    req = request(methods="baseline,moddrop,stars")
    assert req.protocol()["trials"] == 3 and req.schedule.rungs == (2, 4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"trials": 0}, "--trials must be an integer from 1"),
        ({"rungs": "4,2"}, "--rungs '4,2': expected strictly increasing"),
        ({"rungs": "0"}, "expected strictly increasing positive"),
        ({"keep": 0.0}, "--keep must be a share in (0, 1]"),
        ({"keep": 1.5}, "--keep must be a share in (0, 1]"),
        ({"seed": -1}, "--seed -1: expected an integer"),
        ({"methods": "baseline[lr=0.1]"}, "tune takes method names without overrides"),
        ({"methods": "nope"}, "nope"),
        ({"dataset": "synthetic,synthetic_3m"}, "tune searches on one dataset"),
    ],
)
def test_bad_values_are_one_line_errors(kwargs, message):
    args = {
        "methods": "baseline",
        "dataset": "synthetic",
        "preset": "smoke",
        "trials": 2,
        "seed": 0,
        "rungs": None,
        "keep": 0.5,
        "selection": "full_val",
        **kwargs,
    }
    with pytest.raises(BenchmarkError) as error:
        tune_request(**args)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


# ------------------------------------------------------------------------------ validation only
def record(split: str, scenario: str, n_present: int, miou: float, **extra) -> dict:
    return {
        "split": split,
        "scenario": scenario,
        "n_present": n_present,
        "miou": miou,
        "selection": "full_val",
        "corruption": "none",
        "checkpoint_step": 4,
        "train_seconds": 1.0,
        "eval_seconds": 0.5,
        "device": "cpu",
        **extra,
    }


def records(val: float, test: float) -> list[dict]:
    """A run whose validation says `val` and whose test says `test` (in every scenario), with a
    corrupted validation that says 1.0 (never read) and intermediate validations."""
    rows = []
    for scenario, n in (("dsm+optical", 2), ("dsm", 1), ("optical", 1)):
        rows += [
            record("val", scenario, n, val),
            record("test", scenario, n, test),
            record("val", scenario, n, 0.99, selection=""),
            record("val", scenario, n, 1.0, corruption="clouds"),
        ]
    return rows


def test_the_score_is_the_chosen_checkpoints_validation():
    assert validation_score(records(0.4, 0.9), "full_val") == pytest.approx(0.4)
    mixed = [r | {"miou": 0.1} if r["scenario"] == "dsm" else r for r in records(0.4, 0.9)]
    assert validation_score(mixed, "full_val") == pytest.approx(0.4)
    assert validation_score(
        [r | {"selection": "mean_val"} for r in mixed], "mean_val"
    ) == pytest.approx(0.3)
    assert (
        validation_score([r for r in records(0.4, 0.9) if r["split"] == "test"], "full_val") is None
    )
    assert promote({0: 0.2, 1: None, 2: 0.5, 3: 0.5}, 2) == [2, 3]


@dataclass
class FakeRun:
    state: str
    records: list = field(default_factory=list)


class FakeStore:
    """Every run done; validation mIoU rises with the learning rate, test mIoU falls with it."""

    def __init__(self, specs_by_id: dict) -> None:
        self.specs = specs_by_id

    def load(self, run_id: str) -> FakeRun:
        lr = self.specs[run_id].hparams["lr"]
        return FakeRun("done", records(val=lr, test=1 - 100 * lr))


def test_promotion_and_the_best_trial_read_validation_never_test(tmp_path):
    req = request(trials=4, methods="baseline")
    plan = drawn(tmp_path, req, "baseline")
    specs = {}
    for steps in req.schedule.rungs:
        for number, params in plan:
            for spec in trial_specs(req, "baseline", number, params, steps):
                specs[spec.run_id] = spec
    results = play(req, {"baseline": plan}, FakeStore(specs))
    result = results["baseline"]
    assert result.complete
    by_lr = sorted(plan, key=lambda p: -p[1]["lr"])
    finalists = {t.number for t in result.trials if len(t.rungs) == 2}
    assert finalists == {by_lr[0][0], by_lr[1][0]}
    assert result.best.number == by_lr[0][0]  # the highest validation, the lowest test


def test_hparams_from_applies_tuned_values_and_refuses_a_method_it_lacks(tmp_path):
    best = tmp_path / "best.json"
    best.write_text(
        json.dumps({"protocol": {}, "methods": {"baseline": {"hparams": {"lr": 0.002}}}})
    )
    tuned = read_tuned(tmp_path)
    assert read_tuned(best).methods == tuned.methods
    base = {"datasets": (NamedConfig("synthetic"),), "seeds": (0,), "preset": PRESETS.get("smoke")}

    def sweep(methods: str) -> list:
        made = SweepRequest(
            methods=tuple(parse_named_list(methods)),
            tuned=tuned.methods,
            tuned_from=str(tmp_path),
            **base,
        )
        return list(expand(made).specs)

    [spec] = sweep("baseline")
    assert spec.hparams["lr"] == 0.002 and spec.label == "baseline"
    [spec] = sweep("baseline[lr=0.0005]")
    assert spec.hparams["lr"] == 0.0005  # an explicit override still wins
    with pytest.raises(BenchmarkError, match="no tuned configuration for method 'moddrop'"):
        sweep("baseline,moddrop")
    with pytest.raises(BenchmarkError, match="no best.json there"):
        read_tuned(tmp_path / "nowhere")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "best.json").write_text("[1, 2]")
    with pytest.raises(BenchmarkError, match="not a tune best.json"):
        read_tuned(tmp_path / "bad")
