"""Stand-ins for absent modalities: inputs at the training mean, features at the present mean.

`mean_fill` gives an absent modality's input the training mean (zero in normalised space), as
the fusion methods (baseline, distill, MMANet) do at inference. Methods whose modalities share
an encoder (or are aligned to a common space: ShaSpec, LCKD, MetaRS) instead stand in for a
missing modality with the mean of the present modalities' features, per level and per sample:
in training for the modalities a sample dropped, at inference for those absent. Also the cyclic
modality pairs their alignment losses run over.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from benchmark.api import zeros_once


def mean_fill(
    inputs: Mapping[str, Tensor], modalities: tuple[str, ...], channels: Mapping[str, int]
) -> dict[str, Tensor]:
    """Add zeros for absent modalities. Inputs are normalised, so zero is the training mean.

    The zeros are one tensor per shape while views of one input are evaluated (`zeros_once`),
    so their encoding is shared by every scenario that lacks the modality."""
    ref = next(iter(inputs.values()))
    batch, _, height, width = ref.shape
    filled = dict(inputs)
    for name in modalities:
        if name not in filled:
            filled[name] = zeros_once(ref, (batch, channels[name], height, width))
    return filled


def shared_fill(shared: Mapping[str, list[Tensor]], keep: Mapping[str, Tensor]) -> list[Tensor]:
    """Per level, per sample: the mean of the shared features of the modalities kept there.

    `keep[m]` is bool[B]; every sample must keep at least one modality of `shared`.
    """
    names = list(shared)
    weights = torch.stack([keep[m] for m in names], dim=1).float()  # [B, M]
    weights = weights / weights.sum(1, keepdim=True).clamp_min(1.0)
    levels = len(shared[names[0]])
    return [
        sum(shared[m][level] * weights[:, i].view(-1, 1, 1, 1) for i, m in enumerate(names))
        for level in range(levels)
    ]


def replace_dropped(
    features: Mapping[str, list[Tensor]],
    fill: list[Tensor],
    keep: Mapping[str, Tensor],
    modalities: Sequence[str],
) -> dict[str, list[Tensor]]:
    """Every modality's pyramid, with `fill` in the samples where `keep[m]` is False."""
    return {
        m: [
            torch.where(keep[m].view(-1, 1, 1, 1), f, g)
            for f, g in zip(features[m], fill, strict=True)
        ]
        for m in modalities
    }


def complete_with_mean(
    features: Mapping[str, list[Tensor]],
    modalities: Sequence[str],
    source: Mapping[str, list[Tensor]] | None = None,
) -> dict[str, list[Tensor]]:
    """`features` of the present modalities, plus for each absent one the mean of the present
    modalities' `source` pyramids (`features` themselves by default)."""
    source = features if source is None else source
    if len(features) == len(modalities):
        return dict(features)
    first = next(iter(source.values()))[0]
    ones = first.new_ones(first.shape[0], dtype=torch.bool)
    fill = shared_fill(source, {m: ones for m in source})
    return {m: features.get(m, fill) for m in modalities}


def cyclic_pairs(names: Sequence[str]) -> list[tuple[str, str]]:
    """(name_i, name_i+1) around the circle; with two modalities the single pair."""
    pairs = [(names[i], names[(i + 1) % len(names)]) for i in range(len(names))]
    return pairs[:1] if len(names) == 2 else pairs


__all__ = ["complete_with_mean", "cyclic_pairs", "mean_fill", "replace_dropped", "shared_fill"]
