"""Pixel-level semantic sampling and alignment (PSA) building blocks, fully vectorised.

* `downsample_labels`: labels onto a feature grid.
* `sample_pixels`: class-balanced pixel sampling (the same budget for every class present; all
  pixels of a rarer class; ignored pixels never drawn; optional hard/easy split), or uniform
  sampling with the same total budget. No Python loop over classes or images.
* `supervised_infonce`: supervised contrastive (InfoNCE) loss between two sets of embeddings,
  positives = same class.
* `ProjectionHead`, `collapse_std`: the small projection MLP and the feature-collapse gauge.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SAMPLING_MODES = ("balanced", "uniform")


def downsample_labels(mask: Tensor, size: tuple[int, int]) -> Tensor:
    """[B, H, W] labels -> [B, h, w] by taking the label at each grid cell's centre.

    Nearest-centre sampling never mixes labels (a label map cannot be averaged) and keeps
    `ignore_index` pixels as they are.
    """
    if tuple(mask.shape[-2:]) == tuple(size):
        return mask
    down = F.interpolate(mask[:, None].float(), size=size, mode="nearest-exact")
    return down[:, 0].long()


def _rank_within_groups(groups: Tensor, num_groups: int, keys: Tensor) -> tuple[Tensor, Tensor]:
    """Order pixels by (group, random key); return that order and each pixel's rank in its group."""
    order = torch.argsort(groups.double() + keys.double())  # keys in [0, 1): groups stay apart
    sorted_groups = groups[order]
    counts = torch.bincount(groups, minlength=num_groups)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(groups.numel(), device=groups.device) - starts[sorted_groups]
    return order, rank


def sample_pixels(
    labels: Tensor,
    per_class: int,
    num_classes: int,
    ignore_index: int,
    mode: str = "balanced",
    generator: torch.Generator | None = None,
    hard: Tensor | None = None,
    hard_fraction: float = 0.0,
) -> Tensor:
    """Indices into flattened `labels` of the pixels to align, sorted ascending.

    balanced: `per_class` pixels of every class present (all of them when a class has fewer).
    With `hard` (bool per pixel, e.g. currently misclassified) and `hard_fraction` > 0, up to
    round(hard_fraction * per_class) of each class's budget comes from its hard pixels and the
    rest from its easy ones; a side that runs short is topped up from the other, so a class
    still gets min(count, per_class) pixels.
    uniform: the same total (per_class x number of classes present), drawn uniformly from the
    labelled pixels regardless of class (the imbalanced ablation).
    Draws come from `generator` (or the global RNG), so a seed fixes the sample.
    """
    if mode not in SAMPLING_MODES:
        raise ValueError(f"unknown sampling {mode!r}; expected one of {SAMPLING_MODES}")
    labels = labels.reshape(-1)
    valid = (labels != ignore_index) & (labels >= 0) & (labels < num_classes)
    candidates = valid.nonzero().squeeze(1)
    classes = labels[candidates]
    keys = torch.rand(candidates.numel(), generator=generator, device=labels.device)
    if candidates.numel() == 0 or per_class <= 0:
        return candidates[:0]
    if mode == "uniform":
        present = int((torch.bincount(classes, minlength=num_classes) > 0).sum())
        total = min(per_class * present, candidates.numel())
        chosen = torch.topk(keys, total).indices
        return torch.sort(candidates[chosen]).values

    if hard is None or hard_fraction <= 0:
        groups, num_groups = classes, num_classes
        quota = torch.full((num_classes,), per_class, device=labels.device)
    else:
        is_hard = hard.reshape(-1)[candidates].long()
        groups, num_groups = 2 * classes + is_hard, 2 * num_classes
        counts = torch.bincount(groups, minlength=num_groups).view(num_classes, 2)
        n_easy, n_hard = counts[:, 0], counts[:, 1]
        hard_budget = min(per_class, int(round(hard_fraction * per_class)))
        easy_take = torch.minimum(n_easy, per_class - torch.clamp(n_hard, max=hard_budget))
        hard_take = torch.minimum(n_hard, per_class - easy_take)
        quota = torch.stack([easy_take, hard_take], dim=1).reshape(-1)
    order, rank = _rank_within_groups(groups, num_groups, keys)
    keep = rank < quota[groups[order]]
    return torch.sort(candidates[order[keep]]).values


def gather_pixels(features: Tensor, index: Tensor) -> Tensor:
    """[B, C, H, W] features at flattened (b, y, x) indices -> [M, C]."""
    b, c, h, w = features.shape
    flat = features.permute(0, 2, 3, 1).reshape(b * h * w, c)
    return flat[index]


def supervised_infonce(
    anchors: Tensor, keys: Tensor, labels: Tensor, temperature: float = 0.1
) -> Tensor:
    """Supervised InfoNCE from each anchor to the key set (Khosla et al. 2020, cross-view form).

    For anchor i: -mean over keys j of the same class of log softmax_j(a_i . k_j / t), with
    L2-normalised embeddings. Anchor i and key i are the same pixel seen by two branches, so
    every anchor has at least one positive.
    """
    a = F.normalize(anchors.float(), dim=1)
    k = F.normalize(keys.float(), dim=1)
    logits = a @ k.t() / temperature
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positive = (labels[:, None] == labels[None, :]).float()
    return (-(log_prob * positive).sum(1) / positive.sum(1)).mean()


class ProjectionHead(nn.Module):
    """Linear -> ReLU -> Linear on sampled pixel vectors (never on the full feature map)."""

    def __init__(self, in_channels: int, out_channels: int, hidden: int | None = None) -> None:
        super().__init__()
        hidden = hidden or max(out_channels, in_channels // 2)
        self.net = nn.Sequential(
            nn.Linear(in_channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_channels)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


@torch.no_grad()
def collapse_std(features: Tensor) -> float:
    """Mean over channels of the per-channel std of the L2-normalised pixel vectors.

    About 1/sqrt(C) when the features spread over the unit sphere, about 0 when every pixel
    maps to the same direction (collapse). SimSiam's gauge, applied per pixel.
    """
    c = features.shape[1]
    z = F.normalize(features.detach().float(), dim=1).transpose(0, 1).reshape(c, -1)
    return float(z.std(dim=1).mean())
