"""Test-time corruptions of a finished run: its selected model on the corrupted test split.

Corruptions (`benchmark.corrupt`) are not part of a run's spec: they change neither training
nor selection, so a sweep that adds `--corruptions` reuses every trained model and only
evaluates what is missing. Each (corruption, severity, invalid-pixel fill, scenario) is
evaluated once per run and kept in `corrupted.jsonl` beside the clean records
(`RunStore.add_corrupted`); a record is the clean test record of the same scenario with the
corrupted scores, `corruption`, `severity` and `invalid_fill` in place, so its cost,
conventions and selection are the run's own. The fill (`--invalid-fill`: each method's own
handling of invalid pixels, or the mean fill for every method) is an evaluation-time choice:
the same trained model is evaluated under both. A method whose own handling is the mean fill
(`Method.own_fill_is_mean`) predicts the same under both, so it is evaluated under the first
fill asked for and the other fill's records are written from that evaluation, marked
`invalid_fill_from` (identical otherwise: `tests/benchmark/run/test_fill_shortcut.py`).

A corrupted evaluation is a job of its own (`corrupted_evaluation_job`), which a launcher
schedules on a finished run: it rebuilds the run's model from its stored weights, whether the
run finished in this launch or long before.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from benchmark.core.plugins import METHODS
from benchmark.core.records import INVALID_FILLS as FILLS
from benchmark.core.records import RunSpec, invalid_fill_of
from benchmark.core.scenarios import Scenario
from benchmark.core.spec import DatasetSpec
from benchmark.corrupt.tile import TileCorruption
from benchmark.data.pipeline import prepare_data
from benchmark.run.evaluate import evaluate_run_plan, score_fields
from benchmark.run.metrics import ConfusionMatrix
from benchmark.run.store import RunStore
from benchmark.run.train import build_method
from benchmark.system.errors import BenchmarkError
from benchmark.system.provenance import git_commit

log = logging.getLogger(__name__)


def pending_evaluations(
    spec: RunSpec,
    store: RunStore,
    corruptions: Sequence[TileCorruption],
    dataset_spec: DatasetSpec,
) -> list[tuple[TileCorruption, list[Scenario]]]:
    """Per corruption, the run's scenarios that hold a modality it touches and lack a record
    (of its fill, where the fill matters: a corruption that marks no pixel invalid is evaluated
    once whatever the fill)."""
    records = [r for r in store.read_corrupted(spec.run_id) if r["selection"] == spec.selection]
    done = {(r["corruption"], r["severity"], invalid_fill_of(r), r["scenario"]) for r in records}
    done_any = {(r["corruption"], r["severity"], r["scenario"]) for r in records}
    scenarios = METHODS.get(spec.method).evaluation_scenarios(spec.train_modalities)
    pending = []
    for corruption in corruptions:
        touched = set(corruption.touches(dataset_spec))
        key = (corruption.name, corruption.severity)
        todo = [
            s
            for s in scenarios
            if s.present & touched
            and (
                (*key, corruption.fill, str(s)) not in done
                if corruption.fill_matters
                else (*key, str(s)) not in done_any
            )
        ]
        if todo:
            pending.append((corruption, todo))
    return pending


def corruptions_pending(
    spec: RunSpec, store: RunStore, corruptions: Sequence[TileCorruption]
) -> bool:
    """Whether the finished run `spec` lacks a corrupted evaluation it can have. Cheap: the
    dataset's modalities come from the run's model card, so no data is prepared, and a
    corruption that touches none of them (speckle without SAR) is never pending. A run without
    a readable card counts every (corruption, severity) it has no record of. Damaged lines in
    its `corrupted.jsonl` make it pending too: the job sets them aside (`RunStore.corrupted_lines`,
    `set_aside_corrupted`)."""
    if not corruptions:
        return False
    if store.corrupted_lines(spec.run_id)[1]:
        return True
    try:
        card = store.read_model_card(spec.run_id)
        dataset = DatasetSpec.from_json(card["dataset_spec"])
    except (BenchmarkError, KeyError, TypeError, ValueError):
        done = {
            (r["corruption"], r["severity"], invalid_fill_of(r))
            for r in store.read_corrupted(spec.run_id)
            if r["selection"] == spec.selection
        }
        fills = {c: (c.fill,) if c.fill_matters else FILLS for c in corruptions}
        return any(all((c.name, c.severity, f) not in done for f in fills[c]) for c in corruptions)
    return bool(pending_evaluations(spec, store, corruptions, dataset))


def corrupted_evaluation_job(
    spec: RunSpec,
    store: RunStore,
    data_root: Path,
    device: torch.device,
    corruptions: Sequence[TileCorruption],
) -> str:
    """The job a launcher schedules on a finished run: evaluate, with the run's lock held,
    every (corruption, severity, scenario) it lacks.

    Returns `done` (evaluated now), `skipped` (nothing was missing) or `busy` (another launcher
    holds the run's lock).
    """
    if not corruptions_pending(spec, store, corruptions):
        return "skipped"
    with store.lock(spec.run_id) as locked:
        if not locked:
            return "busy"
        store.set_aside_corrupted(spec.run_id)  # their evaluations are then pending again
        evaluate_corruptions(spec, store, data_root, device, corruptions)
    return "done"


def evaluate_corruptions(
    spec: RunSpec,
    store: RunStore,
    data_root: Path,
    device: torch.device,
    corruptions: Sequence[TileCorruption],
) -> int:
    """Evaluate a finished run under every corruption it lacks; returns the records added.

    Call with the run's lock held. The model is the run's own, rebuilt from its stored weights.
    Records are added after each corruption (all its severities), so an interrupted evaluation
    keeps what it finished.
    """
    if not corruptions:
        return 0
    data = prepare_data(spec, data_root)
    ds = data.test.spec
    pending = pending_evaluations(spec, store, corruptions, ds)
    if not pending:
        return 0
    clean = {
        r["scenario"]: r
        for r in store.read_records(spec.run_id)
        if r["split"] == "test" and r["selection"] == spec.selection
    }
    method = build_method(spec, data, device)
    method.load_state_dict(store.load_model(spec.run_id, spec.selection))
    shared = method.own_fill_is_mean()
    added = 0
    for family in _by_corruption(pending):
        # every severity (and fill) of one corruption in one pass over the tiles: the
        # modalities it leaves alone are encoded once per window for all of them
        # (`evaluate_plan`); a method whose own fill is the mean fill, once per draw
        sources = fill_sources(family) if shared else list(range(len(family)))
        plan = evaluated_plan(family, sources)
        tic = time.perf_counter()
        evaluated = evaluate_run_plan(method, data.test, list(plan.values()), spec, device)
        matrices = dict(zip(plan, evaluated, strict=True))
        views = sum(len(scenarios) for _, scenarios in plan.values())
        seconds = (time.perf_counter() - tic) / views
        for (corruption, scenarios), source in zip(family, sources, strict=True):
            measured = plan[source][0]
            records = [
                corrupted_record(clean[str(s)], matrices[source][s], ds, measured, seconds)
                for s in scenarios
            ]
            if measured != corruption:
                records = [derived_record(r, corruption) for r in records]
            store.add_corrupted(spec.run_id, records)
            added += len(records)
            log.info(
                "run %s · %s severity %d (%s fill%s): %s",
                spec.run_id,
                corruption.name,
                corruption.severity,
                corruption.fill,
                "" if measured == corruption else f", written from the {measured.fill} fill",
                ", ".join(f"{r['scenario']} {100 * r['miou']:.1f}" for r in records),
            )
    return added


def _by_corruption(
    pending: Sequence[tuple[TileCorruption, list[Scenario]]],
) -> list[list[tuple[TileCorruption, list[Scenario]]]]:
    """The pending evaluations grouped by corruption name (its severities together), in order."""
    groups: dict[str, list[tuple[TileCorruption, list[Scenario]]]] = {}
    for corruption, scenarios in pending:
        groups.setdefault(corruption.name, []).append((corruption, scenarios))
    return list(groups.values())


def fill_sources(family: Sequence[tuple[TileCorruption, Sequence[Scenario]]]) -> list[int]:
    """Per entry of `family`, the entry it is evaluated with: itself, or the first entry of the
    same draw (corruption, severity, seed) under another fill, for a method whose own fill is
    the mean fill (`Method.own_fill_is_mean`: both fills predict the same)."""
    first: dict[TileCorruption, int] = {}
    return [
        first.setdefault(c.draw, index) if c.fill_matters else index
        for index, (c, _) in enumerate(family)
    ]


def evaluated_plan(
    family: Sequence[tuple[TileCorruption, Sequence[Scenario]]], sources: Sequence[int]
) -> dict[int, tuple[TileCorruption, list[Scenario]]]:
    """What is evaluated, by source entry: its corruption and fill, and the scenarios of every
    entry it stands for (its own first, each once)."""
    plan: dict[int, tuple[TileCorruption, list[Scenario]]] = {}
    for (_, scenarios), source in zip(family, sources, strict=True):
        todo = plan.setdefault(source, (family[source][0], []))[1]
        todo.extend(s for s in scenarios if s not in todo)
    return plan


def derived_record(record: dict[str, Any], corruption: TileCorruption) -> dict[str, Any]:
    """The record of `corruption`'s fill written from `record`, the same draw evaluated under
    the other fill by a method whose own fill is the mean fill: the same predictions, so
    everything but `invalid_fill` is the same, and `invalid_fill_from` names the source."""
    return {**record, "invalid_fill": corruption.fill, "invalid_fill_from": record["invalid_fill"]}


def corrupted_record(
    clean: dict[str, Any],
    tiles: Sequence[ConfusionMatrix],
    dataset_spec: DatasetSpec,
    corruption: TileCorruption,
    seconds: float,
) -> dict[str, Any]:
    """The clean test record of a scenario with the scores under `corruption` in place."""
    classes = list(clean["classes"])
    tiers = {t: [classes.index(c) for c in names] for t, names in clean["tiers"].items()}
    return {
        **clean,
        **score_fields(tiles, dataset_spec.eval_classes, tiers),
        "corruption": corruption.name,
        "severity": corruption.severity,
        "invalid_fill": corruption.fill,
        "invalid_fill_from": "",
        "eval_seconds": round(seconds, 3),
        "commit": git_commit(),
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
    }
