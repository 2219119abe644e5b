"""Knowledge-distillation losses: temperature-scaled logit KL and feature L1 (KD-Net family)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def logit_kl(
    student: Tensor, teacher: Tensor, temperature: float, t_squared: bool = True
) -> Tensor:
    """Mean over pixels of KL(softmax(teacher/T) || softmax(student/T)), over class dim 1.

    `t_squared` multiplies by T^2 (Hinton et al.; keeps the gradient scale independent of T);
    ProtoKD leaves it out. The teacher is detached: it is a target, never trained by this term.
    """
    t = float(temperature)
    log_student = F.log_softmax(student.float() / t, dim=1)
    log_teacher = F.log_softmax(teacher.detach().float() / t, dim=1)
    per_pixel = (log_teacher.exp() * (log_teacher - log_student)).sum(1)
    loss = per_pixel.mean()
    return loss * t * t if t_squared else loss


def feature_l1(student: Tensor, teacher: Tensor) -> Tensor:
    """Mean absolute difference to the detached teacher features (KD-Net's latent term)."""
    return F.l1_loss(student.float(), teacher.detach().float())
