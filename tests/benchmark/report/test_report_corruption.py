"""The report's corrupted-test-data section, and what corrupted records must not change.

Corrupted evaluations are extra test records of the same runs: every table and figure of the
clean report must come out byte-identical when they are added (the goldens of
test_reporting.py), while the corruption section shows mIoU per severity and the corruption
error normalised ImageNet-C style (the reference's mCE is 100).
"""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest

from benchmark.report import corruption, frames, render
from benchmark.report.generate import generate_report
from tests.benchmark.report.report_variants import (
    FIXTURE,
    GOLDEN,
    GOLDEN_FILES,
    add_corruptions,
    copy_fixture,
    read_records,
)


@pytest.fixture(scope="module")
def plain_report(tmp_path_factory):
    root = copy_fixture(tmp_path_factory.mktemp("plain"))
    generate_report(root, reference="baseline", qualitative=False)
    return root / "report"


@pytest.fixture(scope="module")
def corrupted_report(tmp_path_factory):
    root = copy_fixture(tmp_path_factory.mktemp("corrupted"))
    add_corruptions(root)
    generate_report(root, reference="baseline", qualitative=False)
    return root / "report"


@pytest.mark.parametrize("name", GOLDEN_FILES)
def test_corrupted_records_change_no_clean_table(corrupted_report, name):
    produced = (corrupted_report / name).read_text(encoding="utf-8")
    assert produced == (GOLDEN / name).read_text(encoding="utf-8")


def test_the_leaderboard_adds_corrupted_rows_and_keeps_the_clean_ones(
    plain_report, corrupted_report
):
    plain = pd.read_csv(plain_report / "leaderboard.csv")
    full = pd.read_csv(corrupted_report / "leaderboard.csv")
    clean = full[full["corruption"] == "none"].reset_index(drop=True)
    pd.testing.assert_frame_equal(clean, plain)
    assert set(plain["corruption"]) == {"none"} and set(plain["severity"]) == {0}
    assert set(plain["train_missing"]) == {"none"}  # old records: complete training data
    bad = full[full["corruption"] != "none"]
    assert set(bad["corruption"]) == {"clouds", "dsm_voids"}
    assert set(bad["severity"]) == {1, 2, 3, 4, 5}
    # a corruption only where its modality is present
    assert not bad[(bad["corruption"] == "clouds") & (bad["scenario"] == "dsm")].size
    assert not bad[(bad["corruption"] == "dsm_voids") & (bad["scenario"] == "optical")].size
    columns = list(full.columns)
    assert columns.index("train_missing") == columns.index("imbalance") + 1
    assert columns[columns.index("n_present") + 1 : columns.index("seed")] == [
        "corruption",
        "severity",
    ]


def test_no_corruption_section_without_corrupted_records(plain_report):
    index = (plain_report / "report.md").read_text(encoding="utf-8")
    assert "Corrupted test data" not in index
    assert not (plain_report / "corruption.csv").exists()


def test_corruption_outputs_are_written_and_linked(corrupted_report):
    index = (corrupted_report / "report.md").read_text(encoding="utf-8")
    section = index.split("## Corrupted test data", 1)[1]
    names = [
        "corruption.csv",
        "corruption_error.csv",
        "tables/synthetic_corruption.md",
        "tables/synthetic_corruption.tex",
    ]
    for stem in (
        "synthetic_corruption",
        "synthetic_corruption_dsm",
        "synthetic_corruption_optical",
    ):
        for suffix in (".png", ".pdf"):
            path = corrupted_report / "figures" / f"{stem}{suffix}"
            assert path.stat().st_size > 1000
        names.append(f"figures/{stem}.png")
    for name in names:
        assert (corrupted_report / name).exists()
        assert f"]({name})" in section


def test_corruption_tables_are_well_formed(corrupted_report):
    from markdown_it import MarkdownIt

    text = (corrupted_report / "tables" / "synthetic_corruption.md").read_text(encoding="utf-8")
    html = MarkdownIt("commonmark").enable("table").render(text)
    assert html.count("<table>") == 4  # three scenarios + the corruption error
    assert "present: optical (−dsm)" in text and "relative to baseline (= 100)" in text
    assert "Selection: full_val" in text and "Training data complete" in text
    latex = (corrupted_report / "tables" / "synthetic_corruption.tex").read_text(encoding="utf-8")
    body = "\n".join(line for line in latex.splitlines() if not line.startswith("%"))
    environments = re.findall(r"\\begin\{tabular\}\{([lr]+)\}(.*?)\\end\{tabular\}", body, re.S)
    assert len(environments) == 4
    for spec, content in environments:
        for row in (line for line in content.splitlines() if line.endswith(r"\\")):
            assert len(re.split(r"(?<!\\)&", row)) == len(spec), row


def test_fixture_reference_scores_100_and_the_grid_is_complete(corrupted_report):
    errors = pd.read_csv(corrupted_report / "corruption_error.csv")
    ref = errors[(errors["method"] == "baseline") & errors["ce_n"].gt(0)]
    assert len(ref) and ref["ce_mean"].sub(100).abs().max() < 1e-9
    severity = pd.read_csv(corrupted_report / "corruption.csv")
    assert set(severity["severity"]) == {0, 1, 2, 3, 4, 5}
    # the spec-only method has no records: shown with n = 0, never dropped
    lr = severity[severity["method"] == "baseline[lr=0.003]"]
    assert len(lr) and set(lr["miou_n"]) == {0}


def test_finished_methods_without_corrupted_evaluations_are_left_out(tmp_path):
    """A training condition the sweep did not corrupt has clean runs only: it is no row of the
    corruption section, while an unfinished method still shows as a gap."""
    root = copy_fixture(tmp_path)
    add_corruptions(
        root, keep=lambda rec, _c, _s: rec["method"] != "baseline[class_weighting=none]"
    )
    generate_report(root, reference="baseline", qualitative=False)
    severity = pd.read_csv(root / "report" / "corruption.csv")
    assert "baseline[class_weighting=none]" not in set(severity["method"])
    assert {"baseline", "baseline[lr=0.003]"} <= set(severity["method"])
    errors = pd.read_csv(root / "report" / "corruption_error.csv")
    assert "baseline[class_weighting=none]" not in set(errors["method"])
    table = (root / "report" / "tables" / "synthetic_corruption.md").read_text(encoding="utf-8")
    assert "class_weighting=none" not in table and "lr=0.003" in table


# --- hand-built boards: exact corruption errors -------------------------------------------

SCENARIOS = {"dsm+optical": ("none", 2), "optical": ("dsm", 1)}


def board_of(scores: dict[tuple[str, int, str, int, str], float], kinds=None) -> pd.DataFrame:
    """A leaderboard from {(method, seed, corruption, severity, scenario): miou}."""
    rows = []
    for (method, seed, name, severity, scenario), value in scores.items():
        missing, n_present = SCENARIOS[scenario]
        rows.append(
            {
                "dataset": "d",
                "method": method,
                "kind": (kinds or {}).get(method, "single-model"),
                "imbalance": 1.0,
                "train_missing": "none",
                "scenario": scenario,
                "missing": missing,
                "n_present": n_present,
                "corruption": name,
                "severity": severity,
                "seed": seed,
                "status": "ok",
                "miou": value,
            }
        )
    return pd.DataFrame(rows)


def curves(method, base, slope, seeds=(0, 1), scenario="dsm+optical", skip=()):
    """Clean score `base` (+0.01 per seed) falling by `slope` per severity under two
    corruptions; (seed, severity) pairs in `skip` are left out."""
    out = {}
    for seed in seeds:
        clean = base + 0.01 * seed
        out[(method, seed, "none", 0, scenario)] = clean
        for name in ("clouds", "noise"):
            for severity in range(1, 6):
                if (seed, severity) not in skip:
                    out[(method, seed, name, severity, scenario)] = clean - slope * severity
    return out


METHODS = ["baseline", "better", "worse"]
EXPECTED = {("d", 1.0, m): 2 for m in METHODS}


def mean_row(errors: pd.DataFrame, method: str, scenario: str = "dsm+optical") -> pd.Series:
    rows = errors[
        (errors["method"] == method)
        & (errors["scenario"] == scenario)
        & (errors["corruption"] == corruption.MEAN)
    ]
    assert len(rows) == 1
    return rows.iloc[0]


def test_reference_mce_is_100_and_a_uniformly_better_method_is_below():
    scores = {
        **curves("baseline", 0.6, 0.05),
        **curves("better", 0.7, 0.03),  # higher everywhere and loses less
        **curves("worse", 0.5, 0.06),
    }
    errors = corruption.error_frame(board_of(scores), METHODS, EXPECTED, "baseline")
    ref = mean_row(errors, "baseline")
    assert ref["ce_mean"] == pytest.approx(100) and ref["rce_mean"] == pytest.approx(100)
    assert ref["normalised_by"] == "baseline"
    assert mean_row(errors, "better")["ce_mean"] < 100
    assert mean_row(errors, "better")["rce_mean"] < 100
    assert mean_row(errors, "worse")["ce_mean"] > 100
    # CE by hand: seed 0 of `better`, clouds: sum_s (1 - (0.7 - 0.03 s)) over the baseline's
    # mean sum over its seeds of (1 - (0.6 + 0.01 seed - 0.05 s))
    better = errors[(errors["method"] == "better") & (errors["corruption"] == "clouds")].iloc[0]
    mine = [sum(1 - (0.7 + 0.01 * seed - 0.03 * s) for s in range(1, 6)) for seed in (0, 1)]
    ref_sum = sum(sum(1 - (0.6 + 0.01 * seed - 0.05 * s) for s in range(1, 6)) for seed in (0, 1))
    expected_ce = [100 * m / (ref_sum / 2) for m in mine]
    assert better["ce_mean"] == pytest.approx(sum(expected_ce) / 2)
    assert better["rce_mean"] == pytest.approx(100 * 0.03 / 0.05)
    assert better["severities"] == "1,2,3,4,5" and better["reference_seeds"] == 2


def test_a_missing_severity_is_never_averaged_over():
    scores = {
        **curves("baseline", 0.6, 0.05),
        **curves("better", 0.7, 0.03, skip={(1, 3)}),  # seed 1 lacks severity 3
        **curves("worse", 0.5, 0.06, skip={(0, 3), (1, 3)}),  # no seed has severity 3
    }
    board = board_of(scores)
    errors = corruption.error_frame(board, METHODS, EXPECTED, "baseline")
    better = mean_row(errors, "better")
    assert better["ce_n"] == 1  # seed 0 only: seed 1 has no CE rather than one over 4 levels
    only_seed0 = corruption.error_frame(
        board_of({k: v for k, v in scores.items() if k[0] != "better" or k[1] == 0}),
        METHODS,
        EXPECTED,
        "baseline",
    )
    assert better["ce_mean"] == pytest.approx(mean_row(only_seed0, "better")["ce_mean"])
    worse = mean_row(errors, "worse")
    assert worse["ce_n"] == 0 and math.isnan(worse["ce_mean"])
    table = corruption.severity_table(board, "d", "dsm+optical", METHODS, EXPECTED)
    text = render.to_markdown(table)
    worse_row = next(line for line in text.splitlines() if "| clouds | worse |" in line)
    cells = [c.strip() for c in worse_row.split("|")[3:-1]]
    assert cells[3] == "–" and cells[-1] == "–"  # severity 3 and the mean over severities
    better_row = next(line for line in text.splitlines() if "| clouds | better |" in line)
    assert [c.strip() for c in better_row.split("|")[3:-1]][3].endswith("†")  # one seed of two
    error_text = render.to_markdown(
        corruption.error_table(errors, "d", METHODS, EXPECTED, "baseline", set())
    )
    worse_line = next(line for line in error_text.splitlines() if "| worse |" in line)
    assert worse_line.count("| – ") == 4  # CE clouds, CE noise, mCE, rel. mCE (clean shown)


def test_a_corruption_missing_for_one_scenario_reads_not_applicable():
    scores = {
        **curves("baseline", 0.6, 0.05),
        **curves("better", 0.7, 0.03),
        ("baseline", 0, "none", 0, "optical"): 0.4,
        ("baseline", 0, "clouds", 1, "optical"): 0.3,
    }
    board = board_of(scores)
    grid = corruption.grid_of(board, EXPECTED, "d")
    assert grid.applicable == {"dsm+optical": ["clouds", "noise"], "optical": ["clouds"]}
    # severities 2-5 of clouds exist elsewhere in the dataset, so their absence here is a gap
    errors = corruption.error_frame(board, METHODS, EXPECTED, "baseline")
    optical = errors[(errors["scenario"] == "optical") & (errors["method"] == "baseline")]
    assert set(optical["corruption"]) == {"clouds", corruption.MEAN}
    assert optical["ce_n"].eq(0).all()
    text = render.to_markdown(
        corruption.error_table(errors, "d", METHODS, EXPECTED, "baseline", set())
    )
    assert "| optical (−dsm) | baseline | 40.0† | – | n/a | – | – |" in text


def test_without_the_reference_errors_are_left_unnormalised(caplog):
    scores = {**curves("better", 0.7, 0.03), **curves("worse", 0.5, 0.06)}
    errors = corruption.error_frame(board_of(scores), METHODS, EXPECTED, "baseline")
    assert set(errors["normalised_by"]) == {""}
    assert "not normalised" in caplog.text
    worse = errors[(errors["method"] == "worse") & (errors["corruption"] == "clouds")].iloc[0]
    # mean over severities of 100 - mIoU, mean over seeds
    by_hand = [
        sum(100 * (1 - (0.5 + 0.01 * seed - 0.06 * s)) for s in range(1, 6)) / 5 for seed in (0, 1)
    ]
    assert worse["ce_mean"] == pytest.approx(sum(by_hand) / 2)
    assert worse["rce_mean"] == pytest.approx(100 * 0.06 * 3)
    table = corruption.error_table(errors, "d", METHODS, EXPECTED, "baseline", set())
    assert "not normalised" in table.title and "no corrupted evaluations" in table.caption
    assert table.columns[-2:] == ["mE", "mean drop"]


def test_oracles_are_named_and_never_bold():
    scores = {
        **curves("baseline", 0.6, 0.05),
        **curves("better", 0.9, 0.01),  # best everywhere, but an oracle
    }
    board = board_of(scores, kinds={"better": "oracle"})
    errors = corruption.error_frame(board, METHODS, EXPECTED, "baseline")
    assert set(errors.loc[errors["method"] == "better", "kind"]) == {"oracle"}
    text = render.to_markdown(
        corruption.error_table(
            errors, "d", METHODS, EXPECTED, "baseline", corruption.oracles(board)
        )
    )
    oracle_line = next(line for line in text.splitlines() if "better (oracle)" in line)
    assert "**" not in oracle_line
    severity = render.to_markdown(
        corruption.severity_table(board, "d", "dsm+optical", METHODS, EXPECTED)
    )
    assert "better (oracle)" in severity and "references, never marked best" in severity


def test_severity_curves_draw_every_scenario_and_name_gaps():
    scores = {
        **curves("baseline", 0.6, 0.05),
        **curves("better", 0.7, 0.03, skip={(0, 2), (1, 2)}),
    }
    fig = corruption.severity_curves(board_of(scores), "d", "dsm+optical", METHODS, EXPECTED)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert any("missing: better (severity 2)" in t for t in texts)
    assert any("missing: worse (no results)" in t for t in texts)
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == ["clouds", "noise"]


# --- old records, the sweep's board and its terminal table --------------------------------


def test_old_records_read_as_clean_evaluations_of_complete_data():
    run = next(p for p in sorted((FIXTURE / "runs").iterdir()) if (p / "done").exists())
    records = read_records(run)
    assert not any("corruption" in r or "train_missing" in r for r in records)
    board = frames.record_frame(records)
    assert set(board["corruption"]) == {"none"} and set(board["severity"]) == {0}
    assert set(board["train_missing"]) == {"none"}


def test_unfinished_rows_carry_the_new_columns():
    import json

    from benchmark.report.frames import BoardEntry, leaderboard
    from benchmark.run.store import StoredRun

    run = FIXTURE / "runs" / "7f19215f523c7099"  # spec only
    spec = json.loads((run / "spec.json").read_text())
    spec_missing = dict(spec, train_missing=[["dsm", 0.3]])
    entries = [
        BoardEntry("a", "synthetic", spec, StoredRun("x", run, spec, "incomplete")),
        BoardEntry("b", "synthetic", spec_missing, StoredRun("y", run, spec_missing, "failed")),
    ]
    board = leaderboard(
        entries, {"synthetic": ["dsm+optical", "dsm"]}, {"synthetic": ["dsm", "optical"]}
    )
    assert set(board["corruption"]) == {"none"} and set(board["severity"]) == {0}
    assert list(board.drop_duplicates("method")["train_missing"]) == ["none", "dsm=0.3"]
    assert set(board["status"]) == {"missing", "failed"}


def test_terminal_table_ignores_corrupted_rows_and_splits_training_conditions():
    def row(method, condition, scenario, name, severity, value, seed=0):
        return {
            "dataset": "d",
            "method": method,
            "imbalance": 1.0,
            "train_missing": condition,
            "scenario": scenario,
            "missing": "none" if scenario == "a+b" else "b",
            "n_present": 2 if scenario == "a+b" else 1,
            "corruption": name,
            "severity": severity,
            "seed": seed,
            "status": "ok",
            "miou": value,
            "mf1": value,
            "selection": "full_val",
            "eval_classes": "x|y",
        }

    board = pd.DataFrame(
        [
            row("m", "none", "a+b", "none", 0, 0.5),
            row("m", "none", "a+b", "clouds", 5, 0.1),
            row("m", "dsm=0.3", "a+b", "none", 0, 0.3),
            row("m", "none", "a", "none", 0, 0.4),
        ]
    )
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(render.wide_table(board, ["m"], "d"))
    text = console.export_text()
    assert "50.0 / 50.0" in text and "10.0" not in text  # clean only, not averaged with 0.1
    assert "m (train −dsm 30%)" in text and "30.0 / 30.0" in text


def test_mean_fill_rows_are_a_corruption_of_their_own_counted_once_in_the_mce():
    """`--invalid-fill own,mean`: the mean-fill rows (`clouds (mean fill)`) get their own CE
    column and severity group beside the methods' own handling, and the mCE averages each
    corruption once (the own fill), so adding them changes no method's mCE."""
    scores = {
        **curves("baseline", 0.6, 0.05),
        **curves("better", 0.7, 0.03),
        **curves("worse", 0.5, 0.06),
    }
    variant = {
        (m, seed, "clouds" + frames.MEAN_FILL_SUFFIX, severity, scenario): value - 0.02 * severity
        for (m, seed, name, severity, scenario), value in scores.items()
        if name == "clouds"
    }
    own = corruption.error_frame(board_of(scores), METHODS, EXPECTED, "baseline")
    board = board_of({**scores, **variant})
    both = corruption.error_frame(board, METHODS, EXPECTED, "baseline")
    for method in METHODS:
        assert mean_row(both, method)["ce_mean"] == pytest.approx(mean_row(own, method)["ce_mean"])
    split = both[(both["method"] == "better") & (both["scenario"] == "dsm+optical")]
    ce = dict(zip(split["corruption"], split["ce_mean"], strict=True))
    assert ce["clouds (mean fill)"] > ce["clouds"]  # the mean fill lost more here
    text = render.to_markdown(
        corruption.error_table(both, "d", METHODS, EXPECTED, "baseline", set())
    )
    assert "CE clouds (mean fill)" in text and "--invalid-fill mean" in text
    table = corruption.severity_table(board, "d", "dsm+optical", METHODS, EXPECTED)
    assert "| clouds (mean fill) | better |" in render.to_markdown(table)
    # without the own fill's rows, the mean fill's are the corruption's (old records)
    alone = corruption.error_frame(
        board_of({k: v for k, v in {**scores, **variant}.items() if k[2] != "clouds"}),
        METHODS,
        EXPECTED,
        "baseline",
    )
    assert mean_row(alone, "better")["ce_mean"] != pytest.approx(mean_row(own, "better")["ce_mean"])


def with_mean_fill(scores: dict, extra: float) -> dict:
    """`scores` plus their clouds rows under the mean fill, losing `extra(method)` more per
    severity than the method's own fill."""
    variant = {
        (m, seed, "clouds" + frames.MEAN_FILL_SUFFIX, severity, scenario): value
        - extra(m) * severity
        for (m, seed, name, severity, scenario), value in scores.items()
        if name == "clouds"
    }
    return {**scores, **variant}


def test_fill_table_puts_each_methods_own_fill_beside_its_mean_fill():
    """Per method, the drop from clean per severity under its own fill and under the mean
    fill, only for the corruption evaluated both ways (clouds, not noise)."""
    scores = {**curves("baseline", 0.6, 0.05), **curves("better", 0.7, 0.03)}
    methods, expected = ["baseline", "better"], {("d", 1.0, m): 2 for m in ("baseline", "better")}
    board = board_of(with_mean_fill(scores, lambda m: 0.0 if m == "baseline" else 0.02))
    fills = corruption.fill_frame(board, methods, expected)
    assert set(fills["corruption"]) == {"clouds"} and set(fills["fill"]) == {"own", "mean"}
    assert set(fills["severity"]) == {1, 2, 3, 4, 5} and (fills["drop_n"] == 2).all()
    by = fills.set_index(["method", "fill", "severity"])["drop_mean"]
    for severity in range(1, 6):  # drops as built: slope x severity, + 0.02 x severity mean fill
        assert by[("better", "own", severity)] == pytest.approx(0.03 * severity)
        assert by[("better", "mean", severity)] == pytest.approx(0.05 * severity)
        assert by[("baseline", "own", severity)] == pytest.approx(
            by[("baseline", "mean", severity)]
        )
    table = corruption.fill_table(board, "d", methods, expected)
    text = render.to_markdown(table)
    assert "| dsm+optical (full) | clouds | better | own | **3.0 ± 0.0** |" in text
    assert "| dsm+optical (full) | clouds | better | mean fill | 5.0 ± 0.0 |" in text
    assert "noise" not in text  # evaluated with one fill only
    assert table.group_starts == [0, 2]  # one group (bold pair) per method
    assert corruption.fill_table(board_of(scores), "d", methods, expected) is None
    assert corruption.fill_frame(board_of(scores), methods, expected).empty


def test_report_writes_the_fill_table_only_with_both_fills(corrupted_report, tmp_path):
    assert not (corrupted_report / "corruption_fill.csv").exists()  # own fill only
    root = copy_fixture(tmp_path)
    add_corruptions(root, severities=(2, 4), fill="own")
    add_corruptions(root, severities=(2, 4), loss=lambda _r, _c, s: 0.1 * s, fill="mean")
    generate_report(root, reference="baseline", qualitative=False)
    fills = pd.read_csv(root / "report" / "corruption_fill.csv")
    assert set(fills["corruption"]) == {"clouds", "dsm_voids"}
    own = fills[fills["fill"] == "own"].set_index(["method", "scenario", "corruption", "severity"])
    mean = fills[fills["fill"] == "mean"].set_index(own.index.names)
    assert own.index.equals(mean.index)  # every own row has its mean-fill row
    done = own["drop_n"] > 0
    assert done.any() and (mean.loc[done, "drop_mean"] > own.loc[done, "drop_mean"]).all()
    text = (root / "report" / "tables" / "synthetic_corruption.md").read_text(encoding="utf-8")
    assert "under each method's own fill of invalid pixels and under the mean fill" in text
    latex = (root / "report" / "tables" / "synthetic_corruption.tex").read_text(encoding="utf-8")
    environments = re.findall(r"\\begin\{tabular\}\{([lr]+)\}(.*?)\\end\{tabular\}", latex, re.S)
    spec, content = environments[-1]  # the fill table, last
    assert "mean fill" in content
    for row in (line for line in content.splitlines() if line.endswith(r"\\")):
        assert len(re.split(r"(?<!\\)&", row)) == len(spec), row
    index = (root / "report" / "report.md").read_text(encoding="utf-8")
    assert "](corruption_fill.csv)" in index
    findings = pd.read_csv(root / "report" / "findings.csv")
    assert (findings["section"] == "invalid_fill").any()
