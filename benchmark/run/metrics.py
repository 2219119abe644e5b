"""Confusion-matrix metrics accumulated over a whole split (never a mean of batch scores).

Conventions (stated in every table): per-class scores from the split's confusion matrix;
mIoU and mF1 are MACRO means over the dataset's `eval_classes`, skipping a class only when it
is absent from both the ground truth and the predictions of the split (its score is undefined);
OA and kappa count every labelled pixel; `ignore_index` pixels never count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


class ConfusionMatrix:
    """K x K matrix, rows = ground truth, columns = prediction; accumulated with bincount."""

    def __init__(self, num_classes: int, ignore_index: int | None = None) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, prediction: Tensor, target: Tensor) -> None:
        """Add predicted class indices and targets of the same shape (any device)."""
        if prediction.shape != target.shape:
            raise ValueError(
                f"shape mismatch: prediction {prediction.shape}, target {target.shape}"
            )
        prediction = prediction.reshape(-1).to(torch.int64)
        target = target.reshape(-1).to(torch.int64)
        valid = (target >= 0) & (target < self.num_classes)
        if self.ignore_index is not None:
            valid &= target != self.ignore_index
        k = self.num_classes
        flat = target[valid] * k + prediction[valid].clamp(0, k - 1)
        counts = torch.bincount(flat, minlength=k * k).reshape(k, k)
        self.matrix += counts.cpu()

    def merge(self, other: ConfusionMatrix) -> ConfusionMatrix:
        out = ConfusionMatrix(self.num_classes, self.ignore_index)
        out.matrix = self.matrix + other.matrix
        return out

    @classmethod
    def total(cls, matrices: list[ConfusionMatrix]) -> ConfusionMatrix:
        """Sum of per-tile matrices (they must share class count and ignore index)."""
        out = cls(matrices[0].num_classes, matrices[0].ignore_index)
        for matrix in matrices:
            out.matrix += matrix.matrix
        return out

    def compute(self, eval_classes: tuple[int, ...] | None = None) -> SegScores:
        return scores_from_confusion(self.matrix.numpy(), eval_classes)


@dataclass(frozen=True)
class SegScores:
    """Scores of one split: per-class lists in class order, NaN where undefined."""

    miou: float
    mf1: float
    oa: float
    kappa: float
    iou: tuple[float, ...]
    f1: tuple[float, ...]
    precision: tuple[float, ...]
    recall: tuple[float, ...]
    support: tuple[int, ...]
    """Ground-truth pixels per class."""


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(num.shape, np.nan, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def scores_from_confusion(
    matrix: np.ndarray, eval_classes: tuple[int, ...] | None = None
) -> SegScores:
    """Per-class IoU/F1/precision/recall, OA, Cohen's kappa and macro means."""
    cm = np.asarray(matrix, dtype=np.float64)
    k = cm.shape[0]
    eval_classes = tuple(range(k)) if eval_classes is None else tuple(eval_classes)
    tp = np.diag(cm)
    gt = cm.sum(axis=1)
    pred = cm.sum(axis=0)
    total = cm.sum()
    iou = _safe_div(tp, gt + pred - tp)
    f1 = _safe_div(2 * tp, gt + pred)
    precision = _safe_div(tp, pred)
    recall = _safe_div(tp, gt)
    oa = float(tp.sum() / total) if total > 0 else float("nan")
    if total > 0:
        expected = float((gt * pred).sum() / total**2)
        kappa = (oa - expected) / (1 - expected) if expected < 1 else float("nan")
    else:
        kappa = float("nan")
    idx = list(eval_classes)
    miou = nan_mean(iou[idx])
    mf1 = nan_mean(f1[idx])
    return SegScores(
        miou=miou,
        mf1=mf1,
        oa=oa,
        kappa=float(kappa),
        iou=tuple(float(x) for x in iou),
        f1=tuple(float(x) for x in f1),
        precision=tuple(float(x) for x in precision),
        recall=tuple(float(x) for x in recall),
        support=tuple(int(x) for x in gt),
    )


def tier_mean(per_class: tuple[float, ...], classes: tuple[int, ...]) -> float:
    """Macro mean over a subset of classes (NaN when the subset is empty or all undefined)."""
    return nan_mean(np.asarray([per_class[c] for c in classes], dtype=np.float64))


def nan_mean(values: np.ndarray) -> float:
    """Return the mean of the entries of `values` that are not NaN (NaN when none are)."""
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")
