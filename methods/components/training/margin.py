"""MMANet's margin-aware distillation (MAD): relations between pixels of the whole batch,
weighted by how unsure the teacher is about each pixel.

As MMANet's official loss (`segmentation/loss/kd/mad.py` and its call in
`train_missing_mmanet.py`, shicaiwei123/MMANet-CVPR2023@c330689), at one feature level:

* a map with more than 30 rows is average-pooled to 30 x 40 (MMANet's fixed grid, kept for
  any aspect ratio); the teacher's logits are average-pooled to the same grid *before* the
  softmax;
* every position of every image is a sample: F is [P, C] with P = B * h * w, so the Gram
  matrix G = F F^T relates each position to every position of the batch, across images;
* G is built in two halves of its columns (MMANet's memory saving) and each row of each half
  is L2-normalised on its own; a position's term is the squared distance between the
  student's and the teacher's normalised rows, summed over both halves;
* positions are weighted by the teacher's prediction entropy, normalised to sum to one over
  the whole batch, so positions near the decision margin count and those the teacher is
  certain about do not (all weights zero, hence no term, where it is certain everywhere:
  MMANet's 0/0 becomes NaN, which its loop replaces by zero).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

POOL_ABOVE = 30
"""MMANet pools a map whose height exceeds this many rows ..."""
POOLED_GRID = (30, 40)
"""... to this grid."""


def pooled(x: Tensor) -> Tensor:
    """`x` [B, C, H, W] average-pooled to `POOLED_GRID` when H exceeds `POOL_ABOVE`."""
    return F.adaptive_avg_pool2d(x, POOLED_GRID) if x.shape[-2] > POOL_ABOVE else x


def positions(x: Tensor) -> Tensor:
    """[B * h * w, C]: every position of every image of a [B, C, h, w] map as a sample."""
    return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])


def margin_weights(teacher_logits: Tensor, size: tuple[int, int]) -> Tensor:
    """[B * h * w] weights: the entropy of the softmax of the teacher's logits pooled to
    `size`, normalised to sum to one over the batch (zeros where the entropy is zero)."""
    logits = F.adaptive_avg_pool2d(teacher_logits.detach().float(), size)
    probs = positions(logits).softmax(1)
    entropy = -(probs * probs.clamp_min(1e-12).log()).sum(1)
    total = entropy.sum()
    return entropy / total if float(total) > 0 else torch.zeros_like(entropy)


def relation_distance(student: Tensor, teacher: Tensor) -> Tensor:
    """[P] per position: sum over the two column halves (the first P // 2 columns, then the
    rest) of ||Ĝ_s[i] - Ĝ_t[i]||^2, where Ĝ is the batch-wide Gram matrix of the [P, C]
    samples with each row of each half L2-normalised."""
    cut = student.shape[0] // 2
    total = student.new_zeros(student.shape[0])
    for cols in (slice(0, cut), slice(cut, None)):
        g_s = F.normalize(student @ student[cols].T, dim=1)
        g_t = F.normalize(teacher @ teacher[cols].T, dim=1)
        total = total + (g_s - g_t).pow(2).sum(1)
    return total


def margin_distillation(student: Tensor, teacher: Tensor, teacher_logits: Tensor) -> Tensor:
    """L_MAD at one level: sum over the batch's positions i of w_i * d_i (see the module)."""
    s, t = pooled(student.float()), pooled(teacher.detach().float())
    weights = margin_weights(teacher_logits, tuple(s.shape[-2:]))
    return (weights * relation_distance(positions(s), positions(t))).sum()


__all__ = ["margin_distillation", "margin_weights", "pooled", "positions", "relation_distance"]
