"""`--invalid-fill own,mean`: how invalid pixels are handled is an evaluation-time choice, one
`TileCorruption` per fill (once where a corruption marks no pixel invalid), recorded in each
corrupted record (`invalid_fill`; old records read as `mean`) and split by the report."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from benchmark.commands.requests import parse_corruption_grid, parse_invalid_fills
from benchmark.core.plugins import DATASETS
from benchmark.core.records import invalid_fill_of
from benchmark.core.scenarios import all_scenarios
from benchmark.corrupt.tile import TileCorruption
from benchmark.report.corruption import primaries
from benchmark.report.frames import corruption_label
from benchmark.run.corrupted import corrupted_record, pending_evaluations
from benchmark.run.evaluate import evaluate_plan
from benchmark.run.metrics import ConfusionMatrix
from benchmark.system.errors import BenchmarkError
from tests.benchmark.cli.cli_helpers import assert_rejected
from tests.conftest import TINY
from tests.methods.zoo_helpers import build_method

WINDOWS = {"window": 64, "overlap": 0.5, "batch_size": 4, "device": torch.device("cpu")}


def test_fills_parse_and_expand_only_where_pixels_turn_invalid():
    assert parse_invalid_fills("own") == ("own",)
    assert parse_invalid_fills("mean, own,mean") == ("mean", "own")
    grid = parse_corruption_grid("clouds,noise", "1", "own,mean")
    assert [(c.name, c.severity, c.fill) for c in grid] == [
        ("clouds", 1, "own"),
        ("clouds", 1, "mean"),
        ("noise", 1, "own"),  # noise invalidates nothing: the fill changes nothing there
    ]
    assert [c.fill for c in parse_corruption_grid("dsm_voids", "2", "mean")] == ["mean"]
    assert parse_corruption_grid("none") == ()  # nothing given, nothing to evaluate
    with pytest.raises(BenchmarkError, match="--invalid-fill own,mean: applies to nothing"):
        parse_corruption_grid("none", None, "own,mean")  # given, it would change nothing
    with pytest.raises(BenchmarkError, match="--invalid-fill 'median': expected own, mean"):
        parse_invalid_fills("median")
    with pytest.raises(BenchmarkError, match="invalid-pixel fill 'zero'"):
        TileCorruption("clouds", 1, fill="zero")


@pytest.mark.parametrize("value", ["median", "own,", "own;mean"])
def test_cli_rejects_a_bad_fill_in_one_line(value, data_root, tmp_path, capsys):
    args = ["--corruptions", "clouds", "--invalid-fill", value]
    assert_rejected(args, f"--invalid-fill {value!r}: expected", data_root, tmp_path / "o", capsys)


def test_records_carry_the_fill_and_old_ones_read_as_mean():
    clean = {"classes": ["a", "b"], "tiers": {"head": ["a"]}, "scenario": "dsm+optical"}
    ds = SimpleNamespace(eval_classes=(0, 1))
    tiles = [ConfusionMatrix(2, 255)]
    tiles[0].update(torch.tensor([[0, 1]]), torch.tensor([[0, 1]]))
    for fill in ("own", "mean"):
        record = corrupted_record(clean, tiles, ds, TileCorruption("clouds", 2, fill=fill), 1.0)
        assert record["invalid_fill"] == fill and invalid_fill_of(record) == fill
    assert invalid_fill_of({"corruption": "clouds", "severity": 2}) == "mean"


def test_pending_evaluations_are_per_fill_where_the_fill_matters(data_root):
    cls = DATASETS.get("synthetic")
    dataset = cls(data_root, "test", cls.make_options(TINY)).spec
    modalities = tuple(dataset.modality_names)
    scenarios = [str(s) for s in all_scenarios(modalities)]
    old = [  # written before the field existed: they measured the mean fill
        {"corruption": c, "severity": 1, "scenario": s, "selection": "full_val"}
        for c in ("clouds", "noise")
        for s in scenarios
    ]
    store = SimpleNamespace(read_corrupted=lambda run_id: old)
    spec = SimpleNamespace(
        run_id="r", selection="full_val", method="baseline", train_modalities=modalities
    )

    def pending(*corruptions):
        found = pending_evaluations(spec, store, corruptions, dataset)
        return [(c.name, c.fill, sorted(map(str, s))) for c, s in found]

    assert pending(TileCorruption("clouds", 1, fill="mean")) == []
    assert pending(TileCorruption("noise", 1, fill="own")) == []  # no invalid pixel: done
    ((name, fill, todo),) = pending(TileCorruption("clouds", 1, fill="own"))
    assert (name, fill) == ("clouds", "own") and todo == sorted(
        s for s in scenarios if "optical" in s.split("+")
    )


def test_one_pass_over_both_fills_corrupts_each_tile_once(data_root, monkeypatch):
    """Own and mean of one draw share the corrupted tiles; for the baseline, whose own
    handling is the mean fill, they give the same matrices, and one pass equals two."""
    method, sampler, _ = build_method("baseline", data_root)
    method.update(sampler.batch(0), 0)
    test = DATASETS.get("synthetic")(
        data_root, "test", DATASETS.get("synthetic").make_options(TINY)
    )
    scenarios = all_scenarios(test.spec.modality_names)
    plan = [(TileCorruption("clouds", 4, fill=f), scenarios) for f in ("own", "mean")]
    calls = []
    apply = TileCorruption.apply
    monkeypatch.setattr(
        TileCorruption, "apply", lambda self, *a: calls.append(self) or apply(self, *a)
    )
    own, mean = evaluate_plan(method, test, plan, **WINDOWS)
    assert len(calls) == len(test)  # one draw per tile for both fills
    (alone,) = evaluate_plan(method, test, plan[1:], **WINDOWS)
    for scenario in own:
        for a, b, c in zip(own[scenario], mean[scenario], alone[scenario], strict=True):
            assert (a.matrix == b.matrix).all() and (b.matrix == c.matrix).all()


def test_report_names_mean_fill_rows_apart_and_counts_a_corruption_once():
    assert corruption_label({"corruption": "clouds"}) == "clouds (mean fill)"  # an old record
    assert corruption_label({"corruption": "clouds", "invalid_fill": "own"}) == "clouds"
    assert corruption_label({"corruption": "noise", "invalid_fill": "mean"}) == "noise"
    assert corruption_label({"corruption": "none"}) == "none"
    both = ["noise", "clouds", "clouds (mean fill)"]
    assert primaries(both) == ["noise", "clouds"]
    assert primaries(["noise", "clouds (mean fill)"]) == ["noise", "clouds (mean fill)"]
