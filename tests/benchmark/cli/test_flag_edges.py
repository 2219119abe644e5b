"""Flag values checked for what they mean, not only their syntax (issue 33, class 6).

A `--train-missing` share is judged by the tile count it gives on the dataset at hand; a key
given twice in any `key=value` list is refused, never last-wins; a flag that would apply to
nothing (severities without corruptions, a corruption that touches none of the data, a fill
where no pixel turns invalid, a launcher setting another launcher ignores, `--keep` with one
rung, `--methods` for a profiler that takes none) is refused in one line, or, in a report,
stated. Every refusal: exit 2, one line, nothing written, and the same through the API (the
cases: `BAD_INPUT` in test_bad_input.py).
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from benchmark.cli import main
from benchmark.commands.requests import parse_corruption_grid, tune_request
from benchmark.core.options import parse_named, parse_pairs
from benchmark.data.pipeline import check_train_missing, tile_availability, tiles_without
from benchmark.deploy.predict import parse_inputs
from benchmark.system.errors import BenchmarkError
from tests.benchmark.cli.cli_helpers import assert_rejected, invoke, snapshot
from tests.conftest import TINY, tiny_dataset_arg


@pytest.fixture(scope="module", autouse=True)
def generated(data_root) -> None:
    """The tiny datasets generated up front, so that a refusal's stderr is its one line."""
    from benchmark.core.plugins import DATASETS

    for name in ("synthetic", "synthetic_sar"):
        cls = DATASETS.get(name)
        for split in cls.SPLITS:
            cls(data_root, split, cls.make_options(TINY)).load(0)


# The refusals themselves (a share's tile count, a repeated key, an option that applies to
# nothing), each run through the command line and through the API alike: BAD_INPUT in
# tests/benchmark/cli/test_bad_input.py.


def test_a_dry_run_meets_the_tile_count_check_too(data_root, tmp_path, capsys):
    args = ["--launcher", "dry_run", "--train-missing", "dsm=0.95"]
    assert_rejected(args, "removes dsm from 3 of the 3", data_root, tmp_path / "o", capsys)
    shares = ["--train-missing", "dsm=0.4", "--train-missing", "dsm=0.5"]  # 1 and 2 of 3 tiles
    assert invoke(["--launcher", "dry_run", *shares], data_root, tmp_path / "o") == 0
    assert snapshot(tmp_path / "o") == {}


@pytest.mark.parametrize("tiles", [1, 2, 3, 7, 48, 101])
def test_the_count_check_agrees_with_the_draw(tiles):
    """A share passes exactly when the seeded draw removes the modality from some tiles and
    leaves it on others: the check and the draw share one rounding rule."""
    names = ("optical", "dsm")
    for rate in np.linspace(0.0, 0.999, 97)[1:]:
        lacking = int((~tile_availability(names, tiles, {"dsm": rate}, seed=2)["dsm"]).sum())
        assert lacking == tiles_without(rate, tiles)
        try:
            check_train_missing({"dsm": float(rate)}, names, tiles, "d")
            passed = True
        except BenchmarkError as error:
            assert f"removes dsm from {lacking} of the {tiles}" in str(error)
            passed = False
        assert passed == (0 < lacking < tiles), (tiles, rate)
    check_train_missing({"dsm": 0.999}, names)  # without a tile count: range only (stored runs)


def test_one_key_value_reader_refuses_repeats_and_malformed_items():
    assert parse_pairs(["a=1", " b = [2,3] "], "item", "a=1,b=[2,3]", "k=v") == {
        "a": "1",
        "b": "[2,3]",
    }
    for items, message in [
        (["a=1", "a=1"], "item 'a' given twice"),  # even the same value: one key, once
        (["a=1", " a =2"], "(a=1 and a=2)"),
        (["a"], "malformed item 'a'"),
        (["=1"], "malformed item '=1'"),
        (["a="], "malformed item 'a='"),
    ]:
        with pytest.raises(BenchmarkError, match=message.replace("(", r"\(").replace(")", r"\)")):
            parse_pairs(items, "item", ",".join(items), "k=v")
    assert parse_named("stars[psa_k=[1,2],lr=3e-4]").overrides["psa_k"] == (1, 2)
    with pytest.raises(BenchmarkError, match="override 'psa_k' given twice"):
        parse_named("stars[psa_k=[1,2],psa_k=[1,2]]")
    assert parse_inputs("optical=a[1].tif,dsm=b.tif")["optical"].name == "a[1].tif"
    with pytest.raises(BenchmarkError, match="--input pair 'optical' given twice"):
        parse_inputs("optical=a.tif,dsm=b.tif,optical=c.tif")


def test_predict_refuses_one_modality_given_by_two_input_flags(tmp_path, capsys):
    capsys.readouterr()
    args = ["predict", str(tmp_path / "run"), "--input", "dsm=a.tif", "--input", "dsm=b.tif"]
    assert main([*args, "--out", str(tmp_path / "labels.tif")]) == 2
    err = capsys.readouterr().err.strip()
    assert "--input pair 'dsm' given twice" in err and len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_the_corruption_grid_keeps_what_applies():
    assert parse_corruption_grid("none") == ()
    grid = parse_corruption_grid("haze,clouds", None, "mean")  # clouds marks pixels invalid
    assert {(c.name, c.fill) for c in grid} == {("haze", "mean"), ("clouds", "mean")}
    assert len(grid) == 2 * 5 and {c.severity for c in grid} == {1, 2, 3, 4, 5}  # default
    assert {c.severity for c in parse_corruption_grid("noise", "2,4")} == {2, 4}


def test_a_corruption_missing_some_datasets_is_a_warning_not_a_refusal(data_root, tmp_path, caplog):
    both = f"{tiny_dataset_arg()},{tiny_dataset_arg('synthetic_sar')}"
    args = ["--dataset", both, "--corruptions", "speckle,noise", "--launcher", "dry_run"]
    with caplog.at_level(logging.WARNING):
        assert invoke(args, data_root, tmp_path / "o") == 0
    warned = [r.getMessage() for r in caplog.records if "speckle" in r.getMessage()]
    assert len(warned) == 1 and "touches no modality of synthetic" in warned[0]
    assert "synthetic_sar" not in warned[0]
    assert not any("noise" in r.getMessage() for r in caplog.records)  # noise touches both


def test_all_corruptions_leave_out_what_touches_none_of_the_data(data_root, tmp_path, caplog):
    """`all` names no corruption: speckle on data without SAR is left out with a log line, not
    refused (named on its own, it is: test_bad_input.BAD_INPUT)."""
    args = ["--corruptions", "all", "--severities", "1", "--launcher", "dry_run"]
    with caplog.at_level(logging.INFO):
        assert invoke(args, data_root, tmp_path / "o") == 0
    said = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("--corruptions all: speckle")


def test_keep_without_several_rungs_is_refused():
    args = {
        "methods": "baseline",
        "dataset": "synthetic",
        "preset": "smoke",
        "trials": 2,
        "seed": 0,
        "selection": "full_val",
    }
    for rungs in (None, "5", [7]):
        with pytest.raises(BenchmarkError, match="--keep 0.3: applies to nothing with one rung"):
            tune_request(**args, rungs=rungs, keep=0.3)
        assert tune_request(**args, rungs=rungs, keep=None).schedule.keep == 0.5
    assert tune_request(**args, rungs="2,4", keep=0.3).schedule.keep == 0.3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tune", "--methods", "baseline", "--keep", "0.25"], "--keep 0.25: applies to nothing"),
        (["profile", "psa", "--methods", "baseline"], "--methods baseline applies to nothing"),
    ],
)
def test_other_commands_refuse_what_applies_to_nothing(args, message, data_root, tmp_path, capsys):
    capsys.readouterr()
    out = tmp_path / "out"
    full = [*args, "--preset", "smoke", "--dataset", tiny_dataset_arg(), "--device", "cpu"]
    assert main([*full, "--data-root", str(data_root), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()


def test_a_report_states_budget_options_that_change_nothing(results, caplog):
    """One budget per configuration: `--leaderboard-steps` and `--flat-delta` have nothing to
    choose; the report says so instead of leaving the reader to think they did."""
    args = ["report", str(results), "--no-qualitative", "--leaderboard-steps", "40"]
    with caplog.at_level(logging.WARNING):
        assert main([*args, "--flat-delta", "2"]) == 0
    text = (results / "report" / "report.md").read_text()
    assert "`--leaderboard-steps 40` and `--flat-delta 2` changed nothing" in text
    assert any("changed nothing" in r.getMessage() for r in caplog.records)
    assert main(["report", str(results), "--no-qualitative"]) == 0
    assert "changed nothing" not in (results / "report" / "report.md").read_text()
