"""MMANet's margin-aware distillation (MAD): relations between pixels, weighted by how unsure
the teacher is about each pixel.

At one feature level, both feature maps are pooled to at most 30 x 40 positions; each position
is a sample, the Gram matrix G = F F^T relates every position to every other, and each row is
L2-normalised. The per-position term is the squared distance between the student's and the
teacher's normalised rows; positions are weighted by the entropy of the teacher's prediction
there (normalised to sum to one per image), so positions near the decision margin count and
positions the teacher is certain about do not.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

MAX_GRID = (30, 40)
"""MMANet pools every distilled map to at most this many rows and columns."""


def pooled_size(height: int, width: int) -> tuple[int, int]:
    return min(height, MAX_GRID[0]), min(width, MAX_GRID[1])


def margin_weights(teacher_logits: Tensor, size: tuple[int, int]) -> Tensor:
    """[B, P] per-position weights: the teacher's prediction entropy on the `size` grid,
    normalised to sum to one per image (uniform when the teacher is certain everywhere)."""
    probs = F.adaptive_avg_pool2d(teacher_logits.detach().float().softmax(1), size)
    entropy = -(probs * probs.clamp_min(1e-12).log()).sum(1).flatten(1)  # [B, P]
    total = entropy.sum(1, keepdim=True)
    uniform = torch.full_like(entropy, 1.0 / entropy.shape[1])
    return torch.where(total > 0, entropy / total.clamp_min(1e-12), uniform)


def relation_rows(features: Tensor, size: tuple[int, int]) -> Tensor:
    """[B, P, P] row-normalised Gram matrices of `features` pooled to `size`."""
    pooled = F.adaptive_avg_pool2d(features.float(), size).flatten(2).transpose(1, 2)  # B P C
    gram = pooled @ pooled.transpose(1, 2)
    return F.normalize(gram, dim=2)


def margin_distillation(student: Tensor, teacher: Tensor, teacher_logits: Tensor) -> Tensor:
    """L_MAD at one level: mean over images of sum_i w_i * ||G_s[i] - G_t[i]||^2."""
    size = pooled_size(*student.shape[-2:])
    rows = (relation_rows(student, size) - relation_rows(teacher.detach(), size)).pow(2).sum(2)
    return (margin_weights(teacher_logits, size) * rows).sum(1).mean()


__all__ = ["margin_distillation", "margin_weights", "relation_rows"]
