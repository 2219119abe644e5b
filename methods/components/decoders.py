"""FPN decoder over a feature pyramid (strides 4..32) to one stride-4 map."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from methods.components.fusion import conv_bn_relu


class FPNDecoder(nn.Module):
    """Lateral 1x1 convs, top-down upsample-and-add, 3x3 smoothing, then the levels are
    upsampled to stride 4 and summed (the semantic-FPN merge)."""

    def __init__(self, in_channels: Sequence[int], channels: int) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.smooth = nn.ModuleList(conv_bn_relu(channels, channels, 3) for _ in in_channels)
        self.out_channels = channels

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        laterals = [lat(f) for lat, f in zip(self.lateral, features, strict=True)]
        for level in range(len(laterals) - 2, -1, -1):
            laterals[level] = laterals[level] + F.interpolate(
                laterals[level + 1], size=laterals[level].shape[-2:], mode="nearest"
            )
        target = laterals[0].shape[-2:]
        merged = self.smooth[0](laterals[0])
        for level in range(1, len(laterals)):
            merged = merged + F.interpolate(
                self.smooth[level](laterals[level]),
                size=target,
                mode="bilinear",
                align_corners=False,
            )
        return merged
