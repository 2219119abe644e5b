"""Evaluate a method on a split under several scenarios with identical sliding-window inference."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from benchmark.inference import sliding_window_bands, sliding_window_logits
from benchmark.method import Method, evaluation_mode
from benchmark.metrics import ConfusionMatrix
from benchmark.scenarios import Scenario
from benchmark.spec import MASK
from benchmark.transforms import Normalizer
from datasets.base import MultiModalDataset


def evaluate_split(
    method: Method,
    dataset: MultiModalDataset,
    scenarios: Sequence[Scenario],
    window: int,
    overlap: float,
    batch_size: int,
    device: torch.device,
    on_tile=None,
) -> dict[Scenario, list[ConfusionMatrix]]:
    """Per-tile confusion matrices per scenario over every tile of `dataset`.

    Kept per tile so reports can resample tiles (paired bootstrap); sum them for the split.

    Each tile is read and normalised once, then predicted under every scenario; the method
    sees only the present modalities and never the labels.
    """
    spec = dataset.spec
    normalize = Normalizer(spec)
    matrices: dict[Scenario, list[ConfusionMatrix]] = {s: [] for s in scenarios}
    with evaluation_mode(method):
        for index in range(len(dataset)):
            height, width = dataset.tile_shape(index)
            if height >= window and width >= window:
                # Large tiles stream through in bands of rows (same windows, same logits):
                # memory stays bounded by the window size, not the tile size.
                for scenario in scenarios:
                    matrices[scenario].append(
                        _streamed_tile_matrix(
                            method,
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
            sample = normalize(dataset.load(index))
            target = torch.from_numpy(sample.pop(MASK).astype("int64"))
            tensors = {k: torch.from_numpy(v).to(device) for k, v in sample.items()}
            for scenario in scenarios:
                logits = sliding_window_logits(
                    method.predict,
                    scenario.select(tensors),
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
    method: Method,
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
        method.predict, read_rows, height, width, spec.num_classes, window, overlap, batch_size
    )
    for row0, row1, logits in bands:
        target = dataset.load(index, (slice(row0, row1), every_column))[MASK]
        matrix.update(logits.argmax(0).cpu(), torch.from_numpy(target.astype("int64")))
    return matrix
