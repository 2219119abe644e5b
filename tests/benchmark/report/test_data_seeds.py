"""Variance over the data as well as the training: `--dataset "synthetic[seed=run]"` trains and
tests seed i on the dataset generated with seed i. The sweep resolves it into every run spec,
the report keeps one dataset with several seeds, and the paired bootstrap pairs a tile only
with the same tile of the same data and draws each seed's tiles apart."""

from __future__ import annotations

import json
import shutil
from functools import partial

import numpy as np
import pandas as pd
import pytest

from benchmark.cli import main
from benchmark.core.options import parse_named
from benchmark.core.presets import PRESETS
from benchmark.core.records import RunSpec
from benchmark.report import failure, frames
from benchmark.report.generate import distinguish, load_results
from benchmark.report.stats import paired_bootstrap
from benchmark.run.sweep import SweepRequest, expand
from benchmark.system.errors import BenchmarkError
from tests.benchmark.cli.cli_helpers import invoke
from tests.benchmark.report.report_variants import FIXTURE, read_records, write_records
from tests.conftest import TINY


def sweep(dataset: str, seeds: tuple[int, ...] = (0, 1, 2)) -> list[RunSpec]:
    request = SweepRequest(
        methods=(parse_named("baseline"),),
        datasets=(parse_named(dataset),),
        seeds=seeds,
        preset=PRESETS.get("smoke"),
        missing="none",
    )
    return list(expand(request).specs)


def tiny(**options: object) -> str:
    inner = ",".join(f"{k}={v}" for k, v in {**TINY, **options}.items())
    return f"synthetic[{inner}]"


def test_seed_run_gives_each_seed_its_own_data_in_spec_and_id():
    varied = sweep(tiny(seed="run"))
    fixed = sweep(tiny())
    assert [dict(s.dataset_options)["seed"] for s in varied] == [0, 1, 2]
    assert [dict(s.dataset_options)["seed"] for s in fixed] == [0, 0, 0]
    # seed 0 of the data is the dataset's default: the same run; the others are new runs
    assert varied[0].run_id == fixed[0].run_id
    assert varied[1].run_id != fixed[1].run_id and varied[2].run_id != fixed[2].run_id
    # run i is the run that seed=i given by hand makes
    assert varied[2].run_id == sweep(tiny(seed=2), seeds=(2,))[0].run_id


def test_seed_run_needs_a_dataset_generated_from_a_seed():
    with pytest.raises(BenchmarkError, match="seed=run .* no seed option"):
        sweep("vaihingen[seed=run]")


def spec(seed: int, data_seed: int, **options: object) -> dict:
    return {
        "method": "baseline",
        "label": "baseline",
        "dataset": "synthetic",
        "dataset_options": sorted({"seed": data_seed, "test_tiles": 3, **options}.items()),
        "seed": seed,
        "steps": 40,
        "preset": "smoke",
    }


def test_report_keeps_one_dataset_whose_seeds_vary_the_data():
    varied = [spec(s, s) for s in (0, 1, 2)]
    distinguish(varied)
    assert {frames.dataset_of(s) for s in varied} == {"synthetic[seed=run]"}
    fixed = [spec(s, 0) for s in (0, 1, 2)]
    distinguish(fixed)
    assert {frames.dataset_of(s) for s in fixed} == {"synthetic"}
    # fixed data at seed 0 for seeds 1, 2 beside varied data: two datasets, never averaged
    mixed = [spec(s, s) for s in (0, 1, 2)] + [spec(s, 0) for s in (1, 2)]
    distinguish(mixed)
    names = [frames.dataset_of(s) for s in mixed]
    assert len(set(names[:3])) == 1 and "seed=run" in names[0]
    assert len(set(names[3:])) == 1 and "seed=0" in names[3]
    # other options still split
    other = [spec(s, s) for s in (0, 1)] + [spec(s, s, test_tiles=4) for s in (0, 1)]
    distinguish(other)
    assert len({frames.dataset_of(s) for s in other}) == 2


@pytest.fixture()
def varied_results(tmp_path):
    """The report fixture with every seed-1 run moved to the data of seed 1 (spec, id and
    records), as `synthetic[seed=run]` would have made it."""
    root = tmp_path / "results"
    shutil.copytree(FIXTURE / "runs", root / "runs")
    for run in sorted((root / "runs").iterdir()):
        old = json.loads((run / "spec.json").read_text())
        if old["seed"] != 1:
            continue
        options = [[k, 1 if k == "seed" else v] for k, v in old["dataset_options"]]
        new = RunSpec.from_json(dict(old, dataset_options=options))
        target = run.with_name(new.run_id)
        run.rename(target)
        (target / "spec.json").write_text(json.dumps(new.to_json(), indent=1, sort_keys=True))
        if (target / "records.jsonl").exists():
            records = read_records(target)
            for rec in records:
                rec["run_id"] = new.run_id
                rec["dataset_options"] = dict(rec["dataset_options"], seed=1)
            write_records(target, records)
    return root


def test_report_of_varied_data_counts_every_seed_in_one_table(varied_results):
    results = load_results(varied_results)
    assert {d for d, _f, _m in results.expected} == {"synthetic[seed=run]"}
    assert results.expected[("synthetic[seed=run]", 1.0, "baseline")] == 2
    by_seed = frames.records_by_seed(
        results.records, ("dataset", "imbalance", "method", "scenario")
    )
    key = ("synthetic[seed=run]", 1.0, "baseline", "dsm+optical")
    assert set(by_seed[key]) == {0, 1}
    ref = by_seed[key]
    seeds, nested = frames.paired_seeds(ref, ref)
    assert seeds == [0, 1] and nested


def test_failure_comparison_draws_each_seeds_tiles_apart(varied_results):
    """The failure model's paired comparison (`failure.compare`) knows, as
    `paired_comparison` does, that the seeds of `seed=run` saw different data."""
    results = load_results(varied_results)
    data = failure.failure_data(results.records, results.methods, results.expected, set())
    ref = data.views[("synthetic[seed=run]", 1.0, "baseline")]
    mine = next(v for (_d, _f, m), v in data.views.items() if m != "baseline")
    assert mine.nested and ref.nested and len(set(mine.seeds) & set(ref.seeds)) == 2
    statistic = failure.STATISTICS[0]
    seeds = [s for s in mine.seeds if s in ref.seeds]
    tiles = [t for t in mine.tiles if t in ref.tiles]
    a, weights = mine.subset(seeds, tiles).views(statistic)
    b, _ = ref.subset(seeds, tiles).views(statistic)
    result = failure.compare(mine, ref, statistic, resamples=300)
    bootstrap = partial(paired_bootstrap, a, b, mine.classes, resamples=300, weights=weights)
    assert result == bootstrap(nested=True)
    assert result != bootstrap(nested=False)  # here the nested draw changes the test
    fixed = load_results(FIXTURE)
    plain = failure.failure_data(fixed.records, fixed.methods, fixed.expected, set())
    assert not any(v.nested for v in plain.views.values())


def test_a_seed_pairs_only_with_the_same_data():
    def record(seed: int, data_seed: int) -> dict:
        return {"dataset": "synthetic", "dataset_options": {"seed": data_seed}, "seed": seed}

    varied = {s: record(s, s) for s in (0, 1, 2)}
    other = {0: record(0, 0), 1: record(1, 0), 2: record(2, 2)}
    seeds, nested = frames.paired_seeds(varied, other)
    assert seeds == [0, 2] and nested  # seed 1's tiles are other scenes: left out
    fixed = {s: record(s, 0) for s in (0, 1, 2)}
    assert frames.paired_seeds(fixed, fixed) == ([0, 1, 2], False)


def confusions(correct: np.ndarray) -> np.ndarray:
    """[S, T] shares of correct pixels -> [S, T, 2, 2] confusion matrices (100 px a class)."""
    right = np.rint(100 * correct)
    wrong = 100 - right
    return np.stack([np.stack([right, wrong], axis=-1), np.stack([wrong, right], axis=-1)], axis=-2)


def test_nested_bootstrap_draws_each_seeds_tiles_apart():
    rng = np.random.default_rng(1)
    base = rng.uniform(0.5, 0.9, size=(1, 12))
    a, b = confusions(base + rng.uniform(-0.1, 0.1, size=(1, 12))), confusions(base)
    one = paired_bootstrap(a, b, [0, 1])
    # one seed: nothing to draw apart, the same test as before
    assert paired_bootstrap(a, b, [0, 1], nested=True) == one
    # two seeds with the very same tiles: one shared tile draw scores both alike, so the test
    # is the one-seed test; drawn per seed, a resample that takes both seeds averages two
    # independent draws, and the interval narrows
    two_a, two_b = np.concatenate([a, a]), np.concatenate([b, b])
    shared = paired_bootstrap(two_a, two_b, [0, 1])
    apart = paired_bootstrap(two_a, two_b, [0, 1], nested=True)
    assert shared.diff == apart.diff == one.diff  # the observed difference takes no draws
    assert shared.ci_high - shared.ci_low == pytest.approx(one.ci_high - one.ci_low)
    assert apart.ci_high - apart.ci_low < 0.95 * (one.ci_high - one.ci_low)


@pytest.mark.slow
def test_seed_run_end_to_end_then_frozen_with_its_qualitative_grid(data_root, tmp_path):
    """Two smoke runs on the data of their own seeds, reported as one dataset of two seeds,
    then frozen: the qualitative grid drawn from the source's weights, none copied."""
    out = tmp_path / "results"
    args = ["--missing", "none", "--seeds", "0,1", "--dataset", tiny(seed="run")]
    assert invoke(args, data_root, out) == 0
    for spec_file in sorted((out / "runs").glob("*/spec.json")):
        spec = json.loads(spec_file.read_text())
        assert dict(spec["dataset_options"])["seed"] == spec["seed"]
        for rec in read_records(spec_file.parent):
            assert rec["dataset_options"]["seed"] == rec["seed"] == spec["seed"]
    dest = tmp_path / "frozen"
    assert main(["report", str(out), "--freeze", str(dest), "--data-root", str(data_root)]) == 0
    wide = pd.read_csv(dest / "report" / "leaderboard_wide.csv")
    assert set(wide["dataset"]) == {"synthetic[seed=run]"}
    assert (wide["miou_n"] == 2).all()
    assert [p.stat().st_size > 1000 for p in dest.rglob("*_qualitative.png")] == [True]
    assert not [p for p in dest.rglob("*") if p.suffix in (".safetensors", ".pt")]
