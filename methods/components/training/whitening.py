"""Instance-selective whitening across modalities (MetaRS's MMR, after RobustNet's ISW).

Each image's feature map, standardised per channel over its pixels, has a channel covariance
(C x C). Entries that differ strongly between the modalities of one scene carry the modality's
"style" rather than the scene's content. `CovarianceMask` accumulates, over training batches,
the variance across modalities of every off-diagonal entry, then splits those variances into
`clusters` groups with 1-D k-means and marks every entry outside the lowest group as
sensitive. `whitening_loss` then suppresses the sensitive entries of each image's covariance,
pushing the content features towards a modality-invariant representation.

The statistics are accumulated only from the batches passed to `observe`: the method calls it
from `update` (training data), never from `predict`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn


def instance_covariance(features: Tensor, eps: float = 1e-5) -> Tensor:
    """[B, C, C] channel covariance of each image after per-channel standardisation."""
    b, c, h, w = features.shape
    flat = features.float().reshape(b, c, h * w)
    flat = (flat - flat.mean(2, keepdim=True)) / (flat.std(2, keepdim=True) + eps)
    return flat @ flat.transpose(1, 2) / max(1, h * w - 1)


def kmeans_1d(values: np.ndarray, clusters: int, iterations: int = 50) -> np.ndarray:
    """Cluster labels of 1-D `values`, clusters numbered by increasing centre (0 = lowest)."""
    centres = np.quantile(values, np.linspace(0, 1, clusters))
    labels = np.zeros(len(values), dtype=np.int64)
    for _ in range(iterations):
        labels = np.abs(values[:, None] - centres[None, :]).argmin(1)
        updated = np.array(
            [
                values[labels == k].mean() if (labels == k).any() else centres[k]
                for k in range(clusters)
            ]
        )
        if np.allclose(updated, centres):
            break
        centres = updated
    order = np.argsort(np.argsort(centres))
    return order[labels]


class CovarianceMask(nn.Module):
    """Accumulates cross-modal covariance variance for one feature level; builds the mask."""

    def __init__(self, channels: int, clusters: int = 10) -> None:
        super().__init__()
        self.clusters = clusters
        self.register_buffer("variance_sum", torch.zeros(channels, channels))
        self.register_buffer("images", torch.zeros((), dtype=torch.long))
        self.register_buffer("mask", torch.zeros(channels, channels, dtype=torch.bool))
        self.register_buffer("built", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def observe(self, per_modality: Sequence[Tensor]) -> None:
        """Add the batch's per-image variance across modalities of the covariance entries."""
        covariances = torch.stack([instance_covariance(f) for f in per_modality])  # M B C C
        self.variance_sum += covariances.var(0, unbiased=False).sum(0)
        self.images += covariances.shape[1]

    @torch.no_grad()
    def build(self) -> int:
        """Fix the mask of sensitive off-diagonal entries; return how many there are."""
        channels = self.variance_sum.shape[0]
        upper = torch.triu(torch.ones(channels, channels, dtype=torch.bool), diagonal=1)
        mean = (self.variance_sum / self.images.clamp_min(1)).cpu()
        values = mean[upper].numpy().astype(np.float64)
        labels = kmeans_1d(values, min(self.clusters, len(values)))
        sensitive = torch.zeros(channels, channels, dtype=torch.bool)
        sensitive[upper] = torch.from_numpy(labels > 0)
        sensitive = sensitive | sensitive.T
        self.mask.copy_(sensitive.to(self.mask.device))
        self.built.fill_(True)
        return int(sensitive.sum())


def whitening_loss(features: Tensor, mask: Tensor) -> Tensor:
    """Mean over images of the mean |covariance| over the sensitive entries of `mask`."""
    count = mask.sum()
    if int(count) == 0:
        return features.new_zeros(()).float()
    covariance = instance_covariance(features)
    return (covariance.abs() * mask.to(covariance.dtype)).sum((1, 2)).div(count).mean()


__all__ = ["CovarianceMask", "instance_covariance", "kmeans_1d", "whitening_loss"]
