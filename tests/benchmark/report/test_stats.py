"""Seed summaries, t intervals, the paired bootstrap and robustness summaries."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from benchmark.report.robustness import per_seed, robustness
from benchmark.report.stats import (
    NO_COMPARISON,
    PairedResult,
    miou_batch,
    paired_bootstrap,
    summarize,
    t_quantile_975,
)
from benchmark.run.metrics import scores_from_confusion


def test_t_quantiles_match_tables():
    assert t_quantile_975(1) == pytest.approx(12.7062, abs=1e-4)
    assert t_quantile_975(4) == pytest.approx(2.7764, abs=1e-4)
    assert t_quantile_975(40) == pytest.approx(2.0211, abs=2e-4)
    assert t_quantile_975(120) == pytest.approx(1.9799, abs=2e-4)
    assert math.isnan(t_quantile_975(0))


def test_summarize_mean_std_and_t_interval():
    s = summarize([0.1, 0.2, 0.3])
    assert (s.mean, s.std, s.n) == (pytest.approx(0.2), pytest.approx(0.1), 3)
    half = 4.3027 * 0.1 / math.sqrt(3)
    assert (s.ci_low, s.ci_high) == (pytest.approx(0.2 - half), pytest.approx(0.2 + half))
    one = summarize([0.5, float("nan")])
    assert one.n == 1 and one.mean == 0.5 and math.isnan(one.std) and math.isnan(one.ci_low)
    assert summarize([]).n == 0 and math.isnan(summarize([]).mean)


def test_miou_batch_matches_the_metrics_module():
    rng = np.random.default_rng(3)
    matrices = rng.integers(0, 50, size=(5, 4, 4))
    matrices[0, 2, :] = 0
    matrices[0, :, 2] = 0  # class 2 absent from truth and prediction: skipped
    for classes in ([0, 1, 2, 3], [1, 2]):
        expected = [scores_from_confusion(m, tuple(classes)).miou for m in matrices]
        assert miou_batch(matrices, classes) == pytest.approx(expected)


def _tiles(rng, seeds, tiles, accuracy):
    """[S, T, 3, 3] tile matrices whose diagonal share is about `accuracy`."""
    out = np.zeros((seeds, tiles, 3, 3))
    for s in range(seeds):
        for t in range(tiles):
            truth = rng.integers(0, 3, 400)
            wrong = rng.random(400) > accuracy
            pred = np.where(wrong, (truth + 1) % 3, truth)
            np.add.at(out[s, t], (truth, pred), 1)
    return out


def test_paired_bootstrap_identical_methods_is_not_significant():
    a = _tiles(np.random.default_rng(0), 2, 6, 0.7)
    result = paired_bootstrap(a, a.copy(), [0, 1, 2])
    assert result.diff == 0 and result.p_value == 1.0 and not result.significant


def test_paired_bootstrap_detects_a_clear_difference_and_is_deterministic():
    rng = np.random.default_rng(1)
    a, b = _tiles(rng, 3, 8, 0.9), _tiles(rng, 3, 8, 0.6)
    first = paired_bootstrap(a, b, [0, 1, 2], resamples=500)
    assert first.diff > 0.2 and first.ci_low > 0 and first.significant
    assert first == paired_bootstrap(a, b, [0, 1, 2], resamples=500)
    assert (first.n_seeds, first.n_tiles) == (3, 8)
    reverse = paired_bootstrap(b, a, [0, 1, 2], resamples=500)
    assert reverse.diff == pytest.approx(-first.diff) and reverse.significant


def test_paired_bootstrap_small_noise_is_not_significant():
    rng = np.random.default_rng(2)
    a = _tiles(rng, 2, 6, 0.7)
    b = a.copy()
    b[0, 0] += np.array([[0, 1, 0], [0, 0, 0], [0, 0, 0]])  # one pixel differs
    assert not paired_bootstrap(a, b, [0, 1, 2], resamples=300).significant


def test_paired_result_columns_name_every_field_once_and_no_comparison_is_empty():
    """The one place a comparison becomes table columns: renamed difference, prefixed CI,
    the rest as named; the no-comparison row is NaN, not significant, no seeds or tiles."""
    result = PairedResult(0.1, 0.05, 0.2, 0.01, 3, 8)
    assert result.columns() == {
        "diff": 0.1, "ci_low": 0.05, "ci_high": 0.2, "p_value": 0.01,
        "significant": True, "n_seeds": 3, "n_tiles": 8,
    }  # fmt: skip
    named = result.columns(diff="diff_vs_complete", prefix="diff_")
    assert list(named)[:3] == ["diff_vs_complete", "diff_ci_low", "diff_ci_high"]
    assert list(named.values()) == list(result.columns().values())
    empty = NO_COMPARISON.columns()
    assert all(math.isnan(empty[k]) for k in ("diff", "ci_low", "ci_high", "p_value"))
    assert (empty["significant"], empty["n_seeds"], empty["n_tiles"]) == (False, 0, 0)


def test_paired_bootstrap_rejects_unpaired_shapes():
    with pytest.raises(ValueError):
        paired_bootstrap(np.zeros((2, 3, 2, 2)), np.zeros((2, 4, 2, 2)), [0, 1])


def _board(rows):
    columns = ["dataset", "imbalance", "method", "seed", "scenario", "missing", "miou"]
    frame = pd.DataFrame(rows, columns=columns)
    for tier in ("head", "body", "tail"):
        frame[f"miou_{tier}"] = frame["miou"]
    return frame


def test_robustness_summaries_and_reference_delta():
    rows = []
    for method, scores in (("ref", (0.8, 0.6, 0.4)), ("new", (0.8, 0.7, 0.7))):
        for seed in (0, 1):
            for scenario, missing, score in zip(
                ("a+b", "a", "b"), ("none", "b", "a"), scores, strict=True
            ):
                rows.append(("d", 1.0, method, seed, scenario, missing, score + 0.01 * seed))
    seeds = per_seed(_board(rows), "ref")
    new = seeds[(seeds["method"] == "new") & (seeds["tier"] == "all") & (seeds["seed"] == 0)]
    row = new.iloc[0]
    assert row["full"] == pytest.approx(0.8) and row["mean_missing"] == pytest.approx(0.7)
    assert row["worst"] == pytest.approx(0.7) and row["retention"] == pytest.approx(0.875)
    assert row["drop"] == pytest.approx(0.1) and row["vs_ref"] == pytest.approx(0.2)
    table = robustness(_board(rows), ["ref", "new"], "ref")
    ref = table[(table["method"] == "ref") & (table["tier"] == "all")].iloc[0]
    assert ref["worst_scenario"] == "b" and math.isnan(ref["vs_ref_mean"])
    assert list(table["method"].unique()) == ["ref", "new"]


def test_robustness_seed_missing_a_scenario_gives_nan_not_a_partial_mean():
    rows = [
        ("d", 1.0, "m", 0, "a+b", "none", 0.8),
        ("d", 1.0, "m", 0, "a", "b", 0.6),
        ("d", 1.0, "m", 0, "b", "a", 0.5),
        ("d", 1.0, "m", 1, "a+b", "none", 0.8),
        ("d", 1.0, "m", 1, "a", "b", 0.6),
    ]
    seeds = per_seed(_board(rows), "m")
    one = seeds[(seeds["seed"] == 1) & (seeds["tier"] == "all")].iloc[0]
    assert math.isnan(one["mean_missing"]) and math.isnan(one["worst"])
