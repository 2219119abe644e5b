"""Knowledge-distillation losses: temperature-scaled logit KL (KD-Net, ProtoKD), feature L1
(KD-Net's latent term) and ProtoKD's prototype-similarity term."""

from __future__ import annotations

import torch
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


def prototype_loss(
    student: Tensor, teacher: Tensor, labels: Tensor, num_classes: int, ignore_index: int
) -> Tensor:
    """ProtoKD's prototype term: mean over classes and pixels of (S_k^s(x) - S_k^t(x))^2.

    For each model separately, the class prototype c_k is the mean of its feature map over the
    pixels labelled k, and S_k(x) = cos(f(x), c_k) its similarity map; the student's maps are
    pulled towards the (detached) teacher's. Features [B, C, h, w]; labels [B, h, w] on the
    feature grid. Prototypes are per image, over the classes present in it (ProtoKD keeps the
    classes present in every item of its batch; at 8 crops of 128 px that leaves almost none).
    """
    valid = (labels >= 0) & (labels < num_classes) & (labels != ignore_index)
    onehot = F.one_hot(labels.clamp(0, num_classes - 1), num_classes).float()
    onehot = onehot * valid.unsqueeze(-1).float()  # [B, h, w, K]
    counts = onehot.sum((1, 2))  # [B, K]
    present = counts > 0
    if not present.any():
        return student.sum() * 0.0

    def similarity(features: Tensor) -> Tensor:
        f = features.float()
        prototypes = torch.einsum("bchw,bhwk->bkc", f, onehot) / counts.clamp(min=1)[..., None]
        return F.cosine_similarity(f.unsqueeze(1), prototypes[..., None, None], dim=2)

    squared = (similarity(student) - similarity(teacher.detach())) ** 2  # [B, K, h, w]
    return squared[present].mean()
