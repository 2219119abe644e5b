"""Teacher election and cross-modal feature distillation (LCKD).

At each validation every modality is scored alone; for each class the modality with the best
validation IoU is that class's teacher, and the teachers are the union over classes. Each
training step then pulls the features of every present modality towards the detached features
of each present teacher: L = sum over teachers t and students s, both present, of
|sg(f_t) - f_s| (s = t contributes zero). The detach is the point: a teacher is never pulled
towards its students.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from torch import Tensor


def elect_teachers(iou: Mapping[str, Sequence[float]], modalities: Sequence[str]) -> list[int]:
    """Return, per class, the index (in `modalities`) of the elected modality, or -1.

    `iou[m]` holds the per-class validation IoU of modality m alone (NaN: class not scored).
    Ties go to the first modality in `modalities`; a class no modality scores elects nobody.
    """
    classes = len(next(iter(iou.values())))
    elected = []
    for c in range(classes):
        scores = [(iou[m][c], -i) for i, m in enumerate(modalities) if m in iou]
        scores = [(s, i) for s, i in scores if not math.isnan(s)]
        elected.append(-max(scores)[1] if scores else -1)
    return elected


def teacher_l1(
    features: Mapping[str, Tensor],
    keep: Mapping[str, Tensor],
    teachers: Sequence[str],
) -> Tensor:
    """Sum over (teacher t, student s != t) of the mean |sg(f_t) - f_s| over the samples where
    both are present (`keep[m]`: bool[B]); zero when no pair is present."""
    first = next(iter(features.values()))
    total = first.new_zeros(())
    for t in teachers:
        target = features[t].detach()
        for s, f in features.items():
            if s == t:
                continue
            both = (keep[t] & keep[s]).to(f.dtype)
            if not bool(both.any()):
                continue
            per_sample = (target - f).abs().flatten(1).mean(1)
            total = total + (per_sample * both).sum() / both.sum()
    return total


__all__ = ["elect_teachers", "teacher_l1"]
