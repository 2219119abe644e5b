"""Test-time corruptions of a finished run: its selected model on the corrupted test split.

Corruptions (`benchmark.corrupt.catalogue`) are not part of a run's spec: they change neither
training nor selection, so a sweep that adds `--corruptions` reuses every trained model and
only evaluates what is missing. Each (corruption, severity, scenario) is evaluated once per run
and kept in `corrupted.jsonl` beside the clean records (`RunStore.add_corrupted`); a record is
the clean test record of the same scenario with the corrupted scores, `corruption` and
`severity` in place, so its cost, conventions and selection are the run's own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from benchmark.core.method import Method
from benchmark.core.plugins import METHODS
from benchmark.core.records import RunSpec
from benchmark.core.scenarios import Scenario
from benchmark.core.spec import DatasetSpec
from benchmark.corrupt.catalogue import target_modalities
from benchmark.data.pipeline import RunData, prepare_data
from benchmark.run.evaluate import TileCorruption, evaluate_run_split, score_fields
from benchmark.run.metrics import ConfusionMatrix
from benchmark.run.store import RunStore
from benchmark.system.errors import BenchmarkError
from benchmark.system.provenance import git_commit

log = logging.getLogger(__name__)


def pending_evaluations(
    spec: RunSpec,
    store: RunStore,
    corruptions: Sequence[TileCorruption],
    dataset_spec: DatasetSpec,
) -> list[tuple[TileCorruption, list[Scenario]]]:
    """Per corruption, the run's scenarios that hold a modality it touches and lack a record."""
    done = {
        (r["corruption"], r["severity"], r["scenario"]) for r in store.read_corrupted(spec.run_id)
    }
    scenarios = METHODS.get(spec.method).evaluation_scenarios(spec.train_modalities)
    pending = []
    for corruption in corruptions:
        touched = set(target_modalities(corruption.name, dataset_spec))
        todo = [
            s
            for s in scenarios
            if s.present & touched and (corruption.name, corruption.severity, str(s)) not in done
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
    a readable card counts every (corruption, severity) it has no record of."""
    if not corruptions:
        return False
    try:
        card = store.read_model_card(spec.run_id)
        dataset = DatasetSpec.from_json(card["dataset_spec"])
    except (BenchmarkError, KeyError, TypeError, ValueError):
        done = {(r["corruption"], r["severity"]) for r in store.read_corrupted(spec.run_id)}
        return any((c.name, c.severity) not in done for c in corruptions)
    return bool(pending_evaluations(spec, store, corruptions, dataset))


def evaluate_corruptions(
    spec: RunSpec,
    store: RunStore,
    data_root: Path,
    device: torch.device,
    corruptions: Sequence[TileCorruption],
    build_method: Callable[[RunSpec, RunData, torch.device], Method],
) -> int:
    """Evaluate a finished run under every corruption it lacks; returns the records added.

    Call with the run's lock held. Records are added after each corruption, so an interrupted
    evaluation keeps what it finished. `build_method` is the harness's (`train.build_method`).
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
        if r["split"] == "test" and r["selection"]
    }
    method = build_method(spec, data, device)
    method.load_state_dict(store.load_model(spec.run_id))
    added = 0
    for corruption, scenarios in pending:
        tic = time.perf_counter()
        matrices = evaluate_run_split(
            method, data.test, scenarios, spec, device, corruption=corruption
        )
        seconds = (time.perf_counter() - tic) / len(scenarios)
        records = [
            corrupted_record(clean[str(s)], tiles, ds, corruption, seconds)
            for s, tiles in matrices.items()
        ]
        store.add_corrupted(spec.run_id, records)
        added += len(records)
        log.info(
            "run %s · %s severity %d: %s",
            spec.run_id,
            corruption.name,
            corruption.severity,
            ", ".join(f"{r['scenario']} {100 * r['miou']:.1f}" for r in records),
        )
    return added


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
        "eval_seconds": round(seconds, 3),
        "commit": git_commit(),
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
    }
