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
from benchmark.core.method import Method, evaluation_mode, invalid_masks, mean_fill_invalid
from benchmark.core.plugins import METHODS
from benchmark.core.records import (
    CLEAN,
    MEAN_FILL,
    OWN_FILL,
    EvalRecord,
    RunSpec,
    tiles_evaluated,
)
from benchmark.core.scenarios import Scenario
from benchmark.core.sharing import encode_once, shared_encodings
from benchmark.core.spec import MASK
from benchmark.corrupt.tile import TileCorruption
from benchmark.data.imbalance import TIERS
from benchmark.data.pipeline import RunData
from benchmark.data.transforms import Normalizer
from benchmark.run.cost import RunCost
from benchmark.run.inference import (
    PredictFn,
    PredictViewsFn,
    sliding_window_bands,
    sliding_window_views,
)
from benchmark.run.metrics import ConfusionMatrix, tier_mean
from benchmark.system.provenance import git_commit, versions

VALID_PREFIX = "valid:"
"""Key prefix of a modality's per-pixel validity ([1, H, W], 1 = valid) in a corrupted tile's
inputs; it travels through the sliding windows with the rasters and is split off before the
method sees the view (`views_predictor`)."""


def views_predictor(
    method: Method,
    predict: PredictFn | None = None,
    fills: Sequence[str | None] | None = None,
) -> PredictViewsFn:
    """What the harness calls on the views of a batch of windows (`Method.predict_views`, or
    a validation probe's `predict` view by view).

    Windows may carry validity masks; `fills` says per view (in the order the views come)
    how their invalid pixels are handled: `own` (the default) hands the masks to the method,
    which treats them as it treats a missing modality (`Method.predict_partial`); `mean` sets
    them to the training mean for every method (`mean_fill_invalid`) and predicts as usual. A
    probe's `predict` gets the method's `fill_invalid` inputs under `own`."""
    predict_views = method.predict_views

    def run(views: Sequence[Mapping[str, torch.Tensor]]) -> Sequence[torch.Tensor]:
        with shared_encodings():  # one fill per (tensor, mask) for every view of the window
            inputs, validity = [], []
            for index, view in enumerate(views):
                tensors, masks = _split(view)
                fill = (fills[index] if fills is not None else None) or OWN_FILL
                if masks and fill == MEAN_FILL:
                    tensors, masks = mean_fill_invalid(tensors, masks), {}
                elif masks and predict is not None:
                    tensors, masks = method.fill_invalid(tensors, invalid_masks(tensors, masks)), {}
                inputs.append(tensors)
                validity.append(masks)
            if predict is not None:
                return [predict(view) for view in inputs]
            if not any(validity):  # clean windows: the one-argument form of the contract
                return predict_views(inputs)
            return predict_views(inputs, validity)

    return run


def _split(
    view: Mapping[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """A view's modality tensors and its validity masks (bool, True = valid) by modality."""
    masks = {  # one bool mask per distinct window tensor (the views share it)
        k.removeprefix(VALID_PREFIX): encode_once(VALID_PREFIX, v, _is_valid)
        for k, v in view.items()
        if k.startswith(VALID_PREFIX)
    }
    if not masks:
        return dict(view), {}
    return {k: v for k, v in view.items() if not k.startswith(VALID_PREFIX)}, masks


def _is_valid(mask: torch.Tensor) -> torch.Tensor:
    return mask > 0.5


def _corrupted_inputs(
    raw: Mapping[str, np.ndarray],
    dataset: MultiModalDataset,
    index: int,
    corruption: TileCorruption,
) -> dict[str, np.ndarray]:
    """Normalised inputs of tile `index` (raw arrays `raw`) under `corruption`, validity masks
    as `valid:<m>` float [1, H, W]. The corruption works in the loader's raw units."""
    result = corruption.apply(raw, dataset.spec, dataset.tile_name(index))
    sample = Normalizer(dataset.spec)(result.arrays)
    for m, valid in result.validity.items():
        sample[VALID_PREFIX + m] = valid[None].astype(np.float32)
    return sample


def select_present(tensors: Mapping[str, torch.Tensor], scenario: Scenario) -> dict:
    """The scenario's modalities of a tile's inputs, with their validity masks if any."""
    return {k: v for k, v in tensors.items() if k.removeprefix(VALID_PREFIX) in scenario.present}


Plan = Sequence[tuple[TileCorruption | None, Sequence[Scenario]]]
"""What to evaluate on every tile: (a corruption or None for clean data, its scenarios)."""


def evaluate_plan(
    method: Method,
    dataset: MultiModalDataset,
    plan: Plan,
    window: int,
    overlap: float,
    batch_size: int,
    device: torch.device,
    on_tile: Callable[[], object] | None = None,
    predict: PredictFn | None = None,
    tiles: int = 0,
) -> list[dict[Scenario, list[ConfusionMatrix]]]:
    """Per plan entry, per scenario, the per-tile confusion matrices over the first `tiles`
    tiles of `dataset` (0 = all).

    Kept per tile so reports can resample tiles (paired bootstrap); sum them for the split.

    Each tile is read and normalised once; every (corruption, scenario) view of it then goes
    through the same windows together, built from the same tensor objects where they agree (a
    scenario's modalities are the tile's own; a corruption's untouched modalities are the clean
    ones), so a method encodes each distinct modality tensor of a window once
    (`Method.predict_views`). The method sees only the present modalities and never the labels.
    `predict` replaces the method's own (a validation probe, e.g. a distillation teacher).
    A corruption's `fill` says how the pixels it marks invalid are handled (`views_predictor`).
    Corrupted tiles are corrupted whole (the same tile for every scenario); large clean tiles
    stream through in bands of rows.
    """
    fills = [None if c is None else c.fill for c, scenarios in plan for _ in scenarios]
    predict_views = views_predictor(method, predict, fills)
    spec = dataset.spec
    normalize = Normalizer(spec)
    matrices: list[dict[Scenario, list[ConfusionMatrix]]] = [
        {s: [] for s in scenarios} for _, scenarios in plan
    ]
    keys = [(entry, s) for entry, (_, scenarios) in enumerate(plan) for s in scenarios]
    clean_only = all(corruption is None for corruption, _ in plan)
    count = tiles_evaluated(tiles, len(dataset))
    with evaluation_mode(method):
        for index in range(count):
            height, width = dataset.tile_shape(index)
            if height >= window and width >= window and clean_only:
                # Large tiles stream through in bands of rows (same windows, same logits):
                # memory stays bounded by the window size, not the tile size.
                tile_matrices = _streamed_tile_matrices(
                    predict_views,
                    dataset,
                    index,
                    [s for _, s in keys],
                    normalize,
                    (window, overlap, batch_size),
                    device,
                )
            else:
                views, labels = _tile_views(dataset, index, plan, normalize, device)
                logits = sliding_window_views(
                    predict_views,
                    views,
                    spec.num_classes,
                    window=window,
                    overlap=overlap,
                    batch_size=batch_size,
                )
                target = torch.from_numpy(labels.astype("int64"))
                tile_matrices = []
                for view_logits in logits:
                    tile_matrix = ConfusionMatrix(spec.num_classes, spec.ignore_index)
                    tile_matrix.update(view_logits.argmax(0).cpu(), target)
                    tile_matrices.append(tile_matrix)
            for (entry, scenario), tile_matrix in zip(keys, tile_matrices, strict=True):
                matrices[entry][scenario].append(tile_matrix)
            if on_tile is not None:
                on_tile()
    return matrices


def _tile_views(
    dataset: MultiModalDataset,
    index: int,
    plan: Plan,
    normalize: Normalizer,
    device: torch.device,
) -> tuple[list[dict[str, torch.Tensor]], np.ndarray]:
    """Every (corruption, scenario) view of tile `index`, in plan order, and its labels.

    A corrupted modality equal to the clean one (a corruption leaves it alone) is the clean
    tensor object, so the views share it; the entries of one draw that differ only in how
    invalid pixels are filled share the corrupted tensors too."""
    raw = dataset.load(index)
    labels = raw.pop(MASK)
    clean_arrays = normalize(dict(raw))
    clean = {k: torch.from_numpy(v).to(device) for k, v in clean_arrays.items()}
    drawn: dict[TileCorruption, dict[str, torch.Tensor]] = {}
    views = []
    for corruption, scenarios in plan:
        tensors = clean
        if corruption is not None:
            draw = corruption.draw
            if draw not in drawn:
                corrupted = _corrupted_inputs(raw, dataset, index, corruption)
                drawn[draw] = {
                    k: clean[k]
                    if k in clean and np.array_equal(v, clean_arrays[k])
                    else torch.from_numpy(v).to(device)
                    for k, v in corrupted.items()
                }
            tensors = drawn[draw]
        views += [select_present(tensors, s) for s in scenarios]
    return views, labels


def _streamed_tile_matrices(
    predict_views: PredictViewsFn,
    dataset: MultiModalDataset,
    index: int,
    scenarios: Sequence[Scenario],
    normalize: Normalizer,
    windows: tuple[int, float, int],
    device: torch.device,
) -> list[ConfusionMatrix]:
    """Confusion matrix per scenario of one tile predicted band by band
    (`sliding_window_bands`); `windows` is (window, overlap, batch size)."""
    spec = dataset.spec
    height, width = dataset.tile_shape(index)
    every_column = slice(0, width)

    def read_rows(row0: int, row1: int) -> list[dict[str, torch.Tensor]]:
        raw = dataset.load(index, (slice(row0, row1), every_column))
        raw.pop(MASK)
        tensors = {k: torch.from_numpy(v).to(device) for k, v in normalize(raw).items()}
        return [scenario.select(tensors) for scenario in scenarios]

    matrices = [ConfusionMatrix(spec.num_classes, spec.ignore_index) for _ in scenarios]
    window, overlap, batch_size = windows
    bands = sliding_window_bands(
        predict_views, read_rows, height, width, spec.num_classes, window, overlap, batch_size
    )
    for row0, row1, logits in bands:
        target = torch.from_numpy(
            dataset.load(index, (slice(row0, row1), every_column))[MASK].astype("int64")
        )
        for matrix, view_logits in zip(matrices, logits, strict=True):
            matrix.update(view_logits.argmax(0).cpu(), target)
    return matrices


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
        eval_window=spec.window,
        eval_overlap=spec.eval_overlap,
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
    corruption: TileCorruption | None = None,
    **options: Any,
) -> dict[Scenario, list[ConfusionMatrix]]:
    """`evaluate_plan` of one entry, with the run's own window, overlap, batch size and tiles."""
    (matrices,) = evaluate_run_plan(
        method, dataset, [(corruption, scenarios)], spec, device, **options
    )
    return matrices


def evaluate_run_plan(
    method: Method,
    dataset: MultiModalDataset,
    plan: Plan,
    spec: RunSpec,
    device: torch.device,
    **options: Any,
) -> list[dict[Scenario, list[ConfusionMatrix]]]:
    """`evaluate_plan` with the run's own window, overlap, batch size and tiles."""
    return evaluate_plan(
        method,
        dataset,
        plan,
        window=spec.window,
        overlap=spec.eval_overlap,
        batch_size=spec.eval_batch_size,
        device=device,
        tiles=spec.eval_tiles,
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
