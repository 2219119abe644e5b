"""`--invalid-fill own,mean` on a method whose own handling of invalid pixels is the mean fill
(`Method.own_fill_is_mean`): the harness evaluates each draw once and writes the other fill's
records from it, identical to evaluating twice but for `invalid_fill_from`; a method with its
own handling (STARS) is still evaluated under both fills."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

import benchmark.run.corrupted as corrupted
from benchmark.core.method import Method
from benchmark.core.plugins import METHODS
from benchmark.core.records import RunSpec
from benchmark.corrupt.tile import TileCorruption
from benchmark.run.store import RunStore
from tests.benchmark.cli.cli_helpers import VOLATILE, invoke

ASKED = tuple(
    TileCorruption(name, severity, fill=fill)
    for name, severity in (("clouds", 2), ("clouds", 4), ("dsm_voids", 3), ("noise", 1))
    for fill in ("own", "mean")
    if fill == "own" or name != "noise"  # noise marks nothing invalid: one fill
)
"""Two corruptions that mark pixels invalid (two severities of one) under both fills, and one
that marks none."""
CPU = torch.device("cpu")
EVALUATE = corrupted.evaluate_run_plan


@pytest.fixture(scope="module")
def trained(data_root, tmp_path_factory):
    """A finished baseline run trained long enough that its predictions depend on the input
    (the smoke preset's 6 steps predict one class everywhere), so records of different draws
    differ and a record written from the wrong one would show."""
    out = tmp_path_factory.mktemp("baseline") / "results"
    args = ["--methods", "baseline", "--missing", "none", "--steps", "30"]
    assert invoke(args, data_root, out) == 0
    return out


def _copy(finished: Path, folder: Path) -> tuple[Path, RunSpec]:
    out = folder / "results"
    shutil.copytree(finished, out)
    (spec_file,) = out.glob("runs/*/spec.json")
    return out, RunSpec.from_json(json.loads(spec_file.read_text()))


def _evaluate(finished, data_root, folder, monkeypatch) -> tuple[list[dict], list[int]]:
    """The corrupted records of a copy of `finished` after evaluating ASKED, and how many
    (corruption, scenario) views each evaluation pass evaluated."""
    out, spec = _copy(finished, folder)
    passes: list[int] = []

    def counted(method, dataset, plan, *args, **kwargs):
        passes.append(sum(len(scenarios) for _, scenarios in plan))
        return EVALUATE(method, dataset, plan, *args, **kwargs)

    monkeypatch.setattr(corrupted, "evaluate_run_plan", counted)
    store = RunStore(out)
    added = corrupted.evaluate_corruptions(spec, store, data_root, CPU, ASKED)
    records = store.read_corrupted(spec.run_id)
    assert added == len(records) > 0
    return records, passes


def _fixed(record: dict) -> dict:
    """A record without what measures the machine or the moment, and without the mark."""
    skip = {*VOLATILE, "commit", "invalid_fill_from"}
    return {k: v for k, v in record.items() if k not in skip}


def test_shortcut_writes_what_two_evaluations_write(trained, data_root, tmp_path, monkeypatch):
    spec = RunSpec.from_json(json.loads(next(trained.glob("runs/*/spec.json")).read_text()))
    cls = METHODS.get(spec.method)
    assert spec.method == "baseline"
    shortcut, short_passes = _evaluate(trained, data_root, tmp_path / "once", monkeypatch)
    monkeypatch.setattr(cls, "own_fill_is_mean", lambda self: False)  # forced: both fills
    twice, twice_passes = _evaluate(trained, data_root, tmp_path / "twice", monkeypatch)

    assert [_fixed(r) for r in shortcut] == [_fixed(r) for r in twice]
    draws = {  # the draws differ, so a record written from another draw would differ
        (r["corruption"], r["severity"]): json.dumps(r["tile_confusions"])
        for r in twice
        if r["scenario"] == "dsm+optical"
    }
    assert len(set(draws.values())) == len(draws) == 4
    assert {(r["invalid_fill"], r["invalid_fill_from"]) for r in twice} == {
        ("own", ""),
        ("mean", ""),
    }
    for record in shortcut:  # the mean fill's records come from the own fill's evaluation
        derived = record["invalid_fill"] == "mean"
        assert record["invalid_fill_from"] == ("own" if derived else ""), record["corruption"]
        if derived:
            (source,) = [
                r
                for r in shortcut
                if r["invalid_fill"] == "own"
                and (r["corruption"], r["severity"], r["scenario"])
                == (record["corruption"], record["severity"], record["scenario"])
            ]
            assert record["tile_confusions"] == source["tile_confusions"]
    # per corruption one pass; clouds and dsm_voids evaluate half the views, noise the same
    fills = {r["corruption"]: set() for r in twice}
    for r in twice:
        fills[r["corruption"]].add(r["invalid_fill"])
    assert len(short_passes) == len(twice_passes) == len(fills)
    for short, full, name in zip(short_passes, twice_passes, fills, strict=True):
        assert full == short * len(fills[name]), name
    assert sum(short_passes) < sum(twice_passes)


def test_fill_sources_pair_only_the_same_draw():
    family = [
        (TileCorruption("clouds", 1, fill="own"), ["a", "b"]),
        (TileCorruption("clouds", 2, fill="own"), ["a"]),
        (TileCorruption("clouds", 1, fill="mean"), ["b", "c"]),
        (TileCorruption("clouds", 2, fill="mean", seed=1), ["a"]),  # another draw
    ]
    sources = corrupted.fill_sources(family)
    assert sources == [0, 1, 0, 3]
    plan = corrupted.evaluated_plan(family, sources)
    assert {i: (c.severity, c.fill, s) for i, (c, s) in plan.items()} == {
        0: (1, "own", ["a", "b", "c"]),  # every scenario either fill lacks, once
        1: (2, "own", ["a"]),
        3: (2, "mean", ["a"]),
    }


@pytest.fixture(scope="module")
def finished_stars(data_root, tmp_path_factory):
    """A results directory holding one finished STARS run (its own handling of invalid
    pixels: the translated features of the other modalities)."""
    out = tmp_path_factory.mktemp("stars") / "results"
    assert invoke(["--methods", "stars", "--missing", "none"], data_root, out) == 0
    return out


def test_a_method_with_its_own_handling_is_evaluated_under_both_fills(
    finished_stars, data_root, tmp_path, monkeypatch
):
    spec = RunSpec.from_json(json.loads(next(finished_stars.glob("runs/*/spec.json")).read_text()))
    cls = METHODS.get(spec.method)
    assert spec.method == "stars" and cls.predict_partial is not Method.predict_partial
    records, passes = _evaluate(finished_stars, data_root, tmp_path, monkeypatch)
    assert all(r["invalid_fill_from"] == "" for r in records)  # every record evaluated
    fills = {(r["corruption"], r["severity"], r["invalid_fill"]) for r in records}
    assert fills == {(c.name, c.severity, c.fill) for c in ASKED}
    # clouds: 2 severities x 2 fills x the scenarios with optical; the same for dsm_voids
    views = {r["corruption"]: 0 for r in records}
    for r in records:
        views[r["corruption"]] += 1
    assert passes == list(views.values())
