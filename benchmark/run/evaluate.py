"""Evaluate a method on a split under several scenarios with identical sliding-window inference,
and turn the confusion matrices into self-describing records."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import torch

from benchmark.core.dataset import MultiModalDataset
from benchmark.core.method import Method, evaluation_mode
from benchmark.core.plugins import METHODS
from benchmark.core.records import CLEAN, EvalRecord, RunSpec
from benchmark.core.scenarios import Scenario
from benchmark.core.spec import MASK
from benchmark.corrupt.tile import TileCorruption
from benchmark.data.imbalance import TIERS
from benchmark.data.pipeline import RunData
from benchmark.data.transforms import Normalizer
from benchmark.run.cost import RunCost
from benchmark.run.inference import PredictFn, sliding_window_bands, sliding_window_logits
from benchmark.run.metrics import ConfusionMatrix, tier_mean
from benchmark.system.provenance import git_commit, versions

VALID_PREFIX = "valid:"
"""Key prefix of a modality's per-pixel validity ([1, H, W], 1 = valid) in a corrupted tile's
inputs; it travels through the sliding windows with the rasters and is split off before the
method's `fill_invalid` and `predict` (`with_validity`)."""


def with_validity(method: Method, predict: PredictFn) -> PredictFn:
    """`predict` on windows that may carry validity masks: invalid pixels go through the
    method's `fill_invalid` first, so the method decides what a cloud or void pixel means."""

    def run(batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        validity = {
            k.removeprefix(VALID_PREFIX): v > 0.5
            for k, v in batch.items()
            if k.startswith(VALID_PREFIX)
        }
        inputs = {k: v for k, v in batch.items() if not k.startswith(VALID_PREFIX)}
        if validity:
            inputs = method.fill_invalid(inputs, validity)
        return predict(inputs)

    return run


def corrupted_tile(
    dataset: MultiModalDataset, index: int, corruption: TileCorruption
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Normalised inputs of tile `index` under `corruption` (validity masks as `valid:<m>`
    float [1, H, W]) and its labels. The corruption works in the loader's raw units."""
    raw = dataset.load(index)
    target = raw.pop(MASK)
    result = corruption.apply(raw, dataset.spec, dataset.tile_name(index))
    sample = Normalizer(dataset.spec)(result.arrays)
    for m, valid in result.validity.items():
        sample[VALID_PREFIX + m] = valid[None].astype(np.float32)
    return sample, target


def select_present(tensors: Mapping[str, torch.Tensor], scenario: Scenario) -> dict:
    """The scenario's modalities of a tile's inputs, with their validity masks if any."""
    return {k: v for k, v in tensors.items() if k.removeprefix(VALID_PREFIX) in scenario.present}


def evaluate_split(
    method: Method,
    dataset: MultiModalDataset,
    scenarios: Sequence[Scenario],
    window: int,
    overlap: float,
    batch_size: int,
    device: torch.device,
    on_tile: Callable[[], object] | None = None,
    predict: PredictFn | None = None,
    corruption: TileCorruption | None = None,
) -> dict[Scenario, list[ConfusionMatrix]]:
    """Per-tile confusion matrices per scenario over every tile of `dataset`.

    Kept per tile so reports can resample tiles (paired bootstrap); sum them for the split.

    Each tile is read and normalised once, then predicted under every scenario; the method
    sees only the present modalities and never the labels. `predict` replaces the method's own
    (a validation probe, e.g. a distillation teacher). Under a `corruption` every tile is
    corrupted whole (same tile for every scenario) and never streamed in bands.
    """
    predict = with_validity(method, predict or method.predict)
    spec = dataset.spec
    normalize = Normalizer(spec)
    matrices: dict[Scenario, list[ConfusionMatrix]] = {s: [] for s in scenarios}
    with evaluation_mode(method):
        for index in range(len(dataset)):
            height, width = dataset.tile_shape(index)
            if height >= window and width >= window and corruption is None:
                # Large tiles stream through in bands of rows (same windows, same logits):
                # memory stays bounded by the window size, not the tile size.
                for scenario in scenarios:
                    matrices[scenario].append(
                        _streamed_tile_matrix(
                            predict,
                            dataset,
                            index,
                            scenario,
                            normalize,
                            window,
                            overlap,
                            batch_size,
                            device,
                        )
                    )
                if on_tile is not None:
                    on_tile()
                continue
            if corruption is None:
                sample = normalize(dataset.load(index))
                labels = sample.pop(MASK)
            else:
                sample, labels = corrupted_tile(dataset, index, corruption)
            target = torch.from_numpy(labels.astype("int64"))
            tensors = {k: torch.from_numpy(v).to(device) for k, v in sample.items()}
            for scenario in scenarios:
                logits = sliding_window_logits(
                    predict,
                    select_present(tensors, scenario),
                    spec.num_classes,
                    window=window,
                    overlap=overlap,
                    batch_size=batch_size,
                )
                tile_matrix = ConfusionMatrix(spec.num_classes, spec.ignore_index)
                tile_matrix.update(logits.argmax(0).cpu(), target)
                matrices[scenario].append(tile_matrix)
            if on_tile is not None:
                on_tile()
    return matrices


def _streamed_tile_matrix(
    predict: PredictFn,
    dataset: MultiModalDataset,
    index: int,
    scenario: Scenario,
    normalize: Normalizer,
    window: int,
    overlap: float,
    batch_size: int,
    device: torch.device,
) -> ConfusionMatrix:
    """Confusion matrix of one tile predicted band by band (`sliding_window_bands`)."""
    spec = dataset.spec
    height, width = dataset.tile_shape(index)
    every_column = slice(0, width)

    def read_rows(row0: int, row1: int) -> dict[str, torch.Tensor]:
        raw = dataset.load(index, (slice(row0, row1), every_column))
        raw.pop(MASK)
        tensors = {k: torch.from_numpy(v).to(device) for k, v in normalize(raw).items()}
        return scenario.select(tensors)

    matrix = ConfusionMatrix(spec.num_classes, spec.ignore_index)
    bands = sliding_window_bands(
        predict, read_rows, height, width, spec.num_classes, window, overlap, batch_size
    )
    for row0, row1, logits in bands:
        target = dataset.load(index, (slice(row0, row1), every_column))[MASK]
        matrix.update(logits.argmax(0).cpu(), torch.from_numpy(target.astype("int64")))
    return matrix


def process_peak_memory_mb(device: torch.device) -> float:
    """The process's high-water mark so far (CUDA allocator, or CPU max resident set): what a
    run record reports. `profile.timing.peak_memory_mb` is the per-call peak of the profilers."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def evaluation_records(
    spec: RunSpec,
    data: RunData,
    method: Method,
    split: str,
    scenarios: Sequence[Scenario],
    step: int,
    train_seconds: float,
    device: torch.device,
    selection: str,
    cost: RunCost,
    step_ms: float,
    probes: Mapping[str, float] | None = None,
    on_tile: Callable[[], object] | None = None,
    corruption: TileCorruption | None = None,
) -> list[dict[str, Any]]:
    """Evaluate `method` on `split` under `scenarios` (and a test-time `corruption`); one
    record per scenario. `probes` (the validation probes' latest scores) join the method's
    diagnostics in `extra`."""
    dataset = data.val if split == "val" else data.test
    tic = time.perf_counter()
    matrices = evaluate_run_split(
        method, dataset, scenarios, spec, device, on_tile=on_tile, corruption=corruption
    )
    seconds = (time.perf_counter() - tic) / max(1, len(scenarios))
    extra = {**method.diagnostics(), **(probes or {})}
    timing = Timing(seconds, train_seconds, step_ms)
    where = (dataset, split, step, selection)
    return [
        make_record(spec, data, where, scenario, tiles, timing, cost, device, extra, corruption)
        for scenario, tiles in matrices.items()
    ]


@dataclass(frozen=True)
class Timing:
    """Wall times a record reports."""

    eval_seconds: float
    """Per scenario, for this split."""
    train_seconds: float
    step_ms: float
    """Median training step."""


def make_record(
    spec: RunSpec,
    data: RunData,
    where: tuple[MultiModalDataset, str, int, str],
    scenario: Scenario,
    tiles: list[ConfusionMatrix],
    timing: Timing,
    cost: RunCost,
    device: torch.device,
    extra: dict[str, float],
    corruption: TileCorruption | None = None,
) -> dict[str, Any]:
    """The self-describing record of one evaluation (`EvalRecord`), as JSON.

    `where` is (dataset split, its name, the checkpoint's step, the selection rule or "").
    """
    dataset, split, step, selection = where
    ds = dataset.spec
    tiers = data.tiers
    record = EvalRecord(
        run_id=spec.run_id,
        method=spec.label or spec.method,
        method_name=spec.method,
        dataset=spec.dataset,
        dataset_options=dict(spec.dataset_options),
        hparams=dict(spec.hparams),
        seed=spec.seed,
        steps=spec.steps,
        preset=spec.preset,
        imbalance=spec.imbalance,
        checkpoint_step=step,
        split=split,
        scenario=str(scenario),
        missing=scenario.missing_label(ds.modality_names),
        n_present=len(scenario.present),
        selection=selection,
        **score_fields(tiles, ds.eval_classes, {t: tiers.of(t) for t in TIERS}),
        classes=list(ds.classes),
        tile_names=[dataset.tile_name(i) for i in range(len(tiles))],
        eval_classes=list(ds.eval_class_names),
        tiers={t: [ds.classes[c] for c in tiers.of(t)] for t in TIERS},
        ignore_index=ds.ignore_index,
        label_set=ds.label_set,
        eval_seconds=round(timing.eval_seconds, 3),
        train_seconds=round(timing.train_seconds, 3),
        peak_memory_mb=round(process_peak_memory_mb(device), 1),
        kind=METHODS.get(spec.method).kind(),
        params_trained=cost.params_trained,
        params_inference=cost.inference[str(scenario)].parameters,
        train_gflops_per_step=round(cost.train_gflops_per_step, 4),
        infer_gflops_per_window=round(cost.inference[str(scenario)].gflops, 4),
        step_ms=round(timing.step_ms, 2),
        budget=spec.budget,
        budget_ratio=spec.budget_ratio,
        train_missing=spec.train_missing_label,
        corruption=corruption.name if corruption else CLEAN,
        severity=corruption.severity if corruption else 0,
        device=str(device),
        commit=git_commit(),
        versions=versions(),
        timestamp=datetime.now(UTC).isoformat(timespec="seconds"),
        extra=extra,
    )
    return record.to_json()


def score_fields(
    tiles: Sequence[ConfusionMatrix],
    eval_classes: Sequence[int],
    tiers: Mapping[str, Sequence[int]],
) -> dict[str, Any]:
    """The metric fields of a record from its per-tile confusion matrices."""
    matrix = ConfusionMatrix.total(list(tiles))
    scores = matrix.compute(tuple(eval_classes))
    return {
        "miou": scores.miou,
        "mf1": scores.mf1,
        "oa": scores.oa,
        "kappa": scores.kappa,
        "iou": list(scores.iou),
        "f1": list(scores.f1),
        "precision": list(scores.precision),
        "recall": list(scores.recall),
        "support": list(scores.support),
        "confusion": matrix.matrix.tolist(),
        "tile_confusions": [t.matrix.tolist() for t in tiles],
        "tier_miou": {t: tier_mean(scores.iou, classes) for t, classes in tiers.items()},
        "tier_mf1": {t: tier_mean(scores.f1, classes) for t, classes in tiers.items()},
    }


def evaluate_run_split(
    method: Method,
    dataset: MultiModalDataset,
    scenarios: Sequence[Scenario],
    spec: RunSpec,
    device: torch.device,
    **options: Any,
) -> dict[Scenario, list[ConfusionMatrix]]:
    """`evaluate_split` with the run's own window, overlap and evaluation batch size."""
    return evaluate_split(
        method,
        dataset,
        scenarios,
        window=spec.hparams["crop_size"],
        overlap=spec.eval_overlap,
        batch_size=spec.eval_batch_size,
        device=device,
        **options,
    )


def feedback_iou(
    method: Method, dataset: MultiModalDataset, spec: RunSpec, device: torch.device
) -> dict[Scenario, list[float]]:
    """Per-class validation IoU of each scenario the method learns from (`feedback_scenarios`);
    classes outside the evaluated set are NaN."""
    scenarios = list(method.feedback_scenarios())
    if not scenarios:
        return {}
    matrices = evaluate_run_split(method, dataset, scenarios, spec, device)
    evaluated = set(dataset.spec.eval_classes)
    iou = {
        s: ConfusionMatrix.total(t).compute(dataset.spec.eval_classes).iou
        for s, t in matrices.items()
    }
    return {
        s: [v if c in evaluated else float("nan") for c, v in enumerate(values)]
        for s, values in iou.items()
    }


def probe_scores(
    method: Method, dataset: MultiModalDataset, spec: RunSpec, device: torch.device
) -> dict[str, float]:
    """`<name>_val_miou` of each of the method's validation probes, every modality present."""
    full = Scenario(frozenset(spec.train_modalities))
    scores = {}
    for name, predict in method.validation_probes().items():
        tiles = evaluate_run_split(method, dataset, [full], spec, device, predict=predict)[full]
        matrix = ConfusionMatrix.total(tiles)
        scores[f"{name}_val_miou"] = matrix.compute(dataset.spec.eval_classes).miou
    return scores
