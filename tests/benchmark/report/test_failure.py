"""Failure-model metrics (Liao et al., arXiv 2503.18445) from the committed report fixture:
the paper's definitions, the tile-level draws, and the report section that shows them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmark.report import failure
from benchmark.report.frames import leaderboard, records_by_seed
from benchmark.report.generate import generate_report, load_results
from benchmark.report.robustness import per_seed
from benchmark.report.stats import paired_bootstrap
from tests.benchmark.report.report_variants import copy_fixture


@pytest.fixture(scope="module")
def fixture_results(tmp_path_factory):
    root = copy_fixture(tmp_path_factory.mktemp("failure"))
    return load_results(root)


@pytest.fixture(scope="module")
def data(fixture_results):
    results = fixture_results
    return failure.failure_data(results.records, results.methods, results.expected, set())


def test_bernoulli_weights_by_hand():
    """N = 2, p = 0.3: the full scenario 0.7² = 0.49, each single one 0.3 x 0.7 = 0.21; the
    pattern losing both (0.09) is not scored, so each is divided by 0.91."""
    weights = failure.scenario_weights([0, 1, 1], 2, "expected", 0.3)
    assert np.allclose(weights, [0.49 / 0.91, 0.21 / 0.91, 0.21 / 0.91])
    assert np.allclose(failure.scenario_weights([0, 1, 1], 2, "expected", 0.0), [1, 0, 0])
    missing = [0, 1, 1, 1, 2, 2, 2]  # N = 3
    half = failure.scenario_weights(missing, 3, "expected", 0.5)
    assert np.allclose(half, failure.scenario_weights(missing, 3, "uniform_all", 0.5))
    assert np.allclose(
        failure.scenario_weights(missing, 3, "uniform_missing", 0.5), [0] + [1 / 6] * 6
    )
    with pytest.raises(ValueError, match="outside"):
        failure.scenario_weights(missing, 3, "expected", 1.0)


def test_uniform_mean_agrees_with_the_robustness_table(fixture_results, data):
    """The mean over missing scenarios recomputed from the tile matrices is the robustness
    table's `mean missing` (from the records' own mIoU), seed by seed."""
    board = leaderboard(fixture_results.entries)
    robust = per_seed(board, "baseline")
    robust = robust[robust["tier"] == "all"]
    uniform = next(s for s in failure.STATISTICS if s.key == "uniform_missing")
    checked = 0
    for (dataset, factor, method), views in data.views.items():
        for seed, value in zip(views.seeds, views.per_seed(uniform), strict=True):
            row = robust[
                (robust["dataset"] == dataset)
                & (robust["imbalance"] == factor)
                & (robust["method"] == method)
                & (robust["seed"] == seed)
            ]
            assert value == pytest.approx(float(row["mean_missing"].iloc[0]), abs=1e-9)
            checked += 1
    assert checked >= 6


def test_expected_miou_ends_and_middle(fixture_results, data):
    """p = 0 is the full scenario's mIoU, p = 0.5 the paper's uniform mean over all
    scenarios; the curve is one value per grid point and seed."""
    index = records_by_seed(fixture_results.records, ("dataset", "imbalance", "method", "scenario"))
    by_name = {s.key: s for s in failure.STATISTICS}
    for (dataset, factor, method), views in data.views.items():
        curve = views.curve()
        assert curve.shape == (len(views.seeds), len(failure.CURVE_P))
        full = index[(dataset, factor, method, "dsm+optical")]
        for row, seed in enumerate(views.seeds):
            assert curve[row, 0] == pytest.approx(full[seed]["miou"], abs=1e-9)
        assert np.allclose(
            views.per_seed(by_name["expected_p0.5"]), views.per_seed(by_name["uniform_all"])
        )


def test_tile_draws_never_lose_every_modality_and_follow_the_model():
    tiles = [f"tile_{i}" for i in range(600)]
    modalities = ["dsm", "optical"]
    drawn = failure.draw_scenarios(tiles, modalities, 0.3)
    assert all(len(row) == failure.DRAWS and all(s for s in row) for row in drawn)
    lost = np.mean([m not in s for row in drawn for s in row for m in modalities])
    # P(a modality is lost | not both) = 0.3 x 0.7 / (1 - 0.09)
    assert lost == pytest.approx(0.21 / 0.91, abs=0.015)
    # seeded per tile name: the same failures whatever the other tiles are
    again = failure.draw_scenarios(list(reversed(tiles[:50])), modalities, 0.3)
    assert again == list(reversed(drawn[:50]))
    assert failure.draw_scenarios(tiles[:5], modalities, 0.5) != drawn[:5]


def test_tile_random_at_zero_failure_is_the_full_scenario(data):
    statistic = failure.Statistic("random_p0", "random p=0", "random", 0.0)
    full = failure.Statistic("expected_p0", "E p=0", "expected", 0.0)
    for views in data.views.values():
        assert np.allclose(views.per_seed(statistic), views.per_seed(full))


def test_weighted_bootstrap_of_a_method_against_itself(data):
    views = next(iter(data.views.values()))
    matrices, weights = views.views(failure.STATISTICS[3])
    result = paired_bootstrap(matrices, matrices, views.classes, resamples=200, weights=weights)
    assert result.diff == 0 and result.p_value == 1.0
    with pytest.raises(ValueError, match="view weights"):
        paired_bootstrap(matrices, matrices, views.classes, weights=weights[:-1])


def test_oracles_are_left_out_and_said_so(fixture_results):
    results = fixture_results
    data = failure.failure_data(results.records, results.methods, results.expected, {"baseline"})
    assert not any(m == "baseline" for _d, _f, m in data.views)
    assert any("baseline (oracle" in note for note in data.left_out["synthetic"])


def test_frame_compares_with_the_counterpart_only(fixture_results, data):
    frame = failure.failure_frame(
        data, fixture_results.expected, {m: "baseline" for _d, _f, m in data.views}
    )
    assert set(frame["statistic"]) == {s.key for s in failure.STATISTICS}
    reference_rows = frame[frame["method"] == "baseline"]
    assert reference_rows["reference"].eq("").all() and reference_rows["diff"].isna().all()
    other = frame[frame["method"] != "baseline"]
    assert other["reference"].eq("baseline").all() and other["p_value"].between(0, 1).all()
    lone = failure.failure_frame(data, fixture_results.expected, {})
    assert lone["diff"].isna().all()


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = copy_fixture(tmp_path_factory.mktemp("failure_report"))
    generate_report(root, reference="baseline", qualitative=False)
    return root / "report"


def test_report_writes_the_failure_section(report):
    index = (report / "report.md").read_text(encoding="utf-8")
    section = index.split(f"## {failure.SECTION}", 1)[1]
    for name in (
        "failure.csv",
        "failure_curve.csv",
        "tables/synthetic_failure.md",
        "tables/synthetic_failure.tex",
        "figures/synthetic_failure.png",
    ):
        assert (report / name).exists()
        assert f"]({name})" in section
    curve = pd.read_csv(report / "failure_curve.csv")
    assert sorted(set(curve["p_fail"].round(2))) == list(failure.CURVE_P)
    text = (report / "tables" / "synthetic_failure.md").read_text(encoding="utf-8")
    assert "arXiv 2503.18445" in text and "| ×1 | baseline |" in text
    frame = pd.read_csv(report / "failure.csv")
    assert (frame["mean"].dropna().between(0, 1)).all()
    row = next(line for line in text.splitlines() if line.startswith("| ×1 | baseline |"))
    cells = [c.strip() for c in row.strip("|").split("|")][2:]
    mine = frame[(frame["method"] == "baseline") & (frame["imbalance"] == 1.0)]
    for cell, statistic in zip(cells, failure.STATISTICS, strict=True):
        mean = mine.loc[mine["statistic"] == statistic.key, "mean"].iloc[0]
        assert cell.strip("*").startswith(f"{100 * mean:.1f}")
