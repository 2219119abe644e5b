"""Evaluate a method on a split under several scenarios with identical sliding-window inference."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from benchmark.inference import sliding_window_logits
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
