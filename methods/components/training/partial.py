"""Invalid pixels handled like a missing modality, cell by cell (`Method.predict_partial`).

A corruption can leave some pixels of a present modality invalid (an opaque cloud, a DSM void).
A method whose stand-in for a missing modality lives in feature space uses that stand-in where
the modality is invalid, and the modality's own features elsewhere:

* the modality is encoded from its input with the invalid pixels at the training mean
  (`mean_fill_invalid`), so nothing of the destroyed values reaches its features;
* its validity mask is area-pooled to every feature level: `w`, the share of valid input pixels
  under each cell (soft weights rather than a threshold, so a cell half in a cloud is half
  recovered, and w is exactly 1 on clean cells and 0 on wholly invalid ones);
* a cell's features become `w * own + (1 - w) * stand-in`, the stand-in being what the method
  uses for that modality when it is absent (STARS: the translations from the other present
  modalities; ShaSpec: their shared features; LCKD: their features), each source weighted by
  its own `w` there; an absent modality's stand-in likewise weighs its sources by their `w`.

A modality invalid everywhere thus gets exactly its absent-modality stand-in, and the other
modalities' stand-ins no longer draw on it: the prediction is (up to rounding) the one without
it. Where no source is valid, a present modality keeps its mean-filled features and an absent
one the plain mean of its sources: the mean fill is the fallback.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

StandIns = Callable[[str], Mapping[str, Sequence[Tensor]]]
"""target -> {source: its stand-in pyramid for the target} over the present modalities other
than the target (what the method averages for a missing target)."""


def valid_shares(
    validity: Mapping[str, Tensor], pyramid: Sequence[Tensor]
) -> dict[str, list[Tensor]]:
    """Per modality in `validity` (bool [B, 1, H, W]), per level of `pyramid` (features
    [B, C, h, w] of the same windows), the share of valid input pixels under each cell
    [B, 1, h, w] (area pooling), in the features' dtype."""
    return {
        m: [
            F.adaptive_avg_pool2d(valid.to(level.dtype), tuple(level.shape[-2:]))
            for level in pyramid
        ]
        for m, valid in validity.items()
    }


def blend(own: Tensor, stand_in: Tensor, weight: Tensor) -> Tensor:
    """`weight * own + (1 - weight) * stand_in`: exactly `own` where the weight is 1 and
    exactly `stand_in` where it is 0 (for finite values)."""
    return own * weight + stand_in * (1 - weight)


def complete_partial(
    features: Mapping[str, Sequence[Tensor]],
    shares: Mapping[str, Sequence[Tensor]],
    modalities: Sequence[str],
    stand_ins: StandIns,
) -> dict[str, list[Tensor]]:
    """Every modality's pyramid, invalid cells of present modalities and absent modalities
    filled from the stand-ins of the valid sources (module docstring).

    `features`: the present modalities' pyramids (encoded with invalid pixels mean-filled);
    `shares`: per present modality with invalid pixels, its `valid_shares`.
    """
    out: dict[str, list[Tensor]] = {}
    for target in modalities:
        sources = stand_ins(target) if target not in features or target in shares else {}
        if not sources:  # intact, or nothing else to recover from: its own (mean-filled) features
            out[target] = list(features[target])
            continue
        levels = []
        for level in range(len(next(iter(sources.values())))):
            parts = [pyramid[level] for pyramid in sources.values()]
            weights = [shares[s][level] if s in shares else None for s in sources]
            total = sum(1.0 if w is None else w for w in weights)
            weighted = sum(p if w is None else p * w for p, w in zip(parts, weights, strict=True))
            if isinstance(total, float):  # every source valid throughout
                stand_in, usable = weighted / total, None
            else:  # where no source is valid: the plain mean of their (mean-filled) features
                usable = total > 0
                plain = sum(parts) / len(parts)
                stand_in = torch.where(usable, weighted / torch.where(usable, total, 1.0), plain)
            if target in features:
                own = shares[target][level]
                if usable is not None:  # no valid source: the modality's own features stay
                    own = torch.where(usable, own, torch.ones_like(own))
                levels.append(blend(features[target][level], stand_in, own))
            else:
                levels.append(stand_in)
        out[target] = levels
    return out


def others(pyramids: Mapping[str, Sequence[Tensor]]) -> StandIns:
    """`StandIns` of a method whose stand-in for a missing modality is the mean of the present
    modalities' `pyramids` (ShaSpec: shared features; LCKD: features)."""
    return lambda target: {m: p for m, p in pyramids.items() if m != target}


def scale_invalid(
    pyramids: Sequence[Sequence[Tensor]],
    names: Sequence[str],
    shares: Mapping[str, Sequence[Tensor]],
) -> list[list[Tensor]]:
    """Pyramids (in the order of `names`) with each invalid cell's features scaled by its
    valid share: the per-cell form of zeroing a missing modality's features (MMANet's student,
    ModDrop's `feature_zero`)."""
    return [
        [level * shares[m][i] for i, level in enumerate(pyramid)] if m in shares else list(pyramid)
        for m, pyramid in zip(names, pyramids, strict=True)
    ]


__all__ = ["StandIns", "blend", "complete_partial", "others", "scale_invalid", "valid_shares"]
