"""Concurrent spatial and channel squeeze-and-excitation (scSE, Roy et al., MICCAI 2018)."""

from __future__ import annotations

from torch import Tensor, nn


class SCSE(nn.Module):
    """x * channel_gate(x) + x * spatial_gate(x).

    The channel gate squeezes space (global average pool -> bottleneck MLP -> sigmoid per
    channel); the spatial gate squeezes channels (1x1 conv -> sigmoid per pixel).
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.channel_gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1),
            nn.Sigmoid(),
        )
        self.spatial_gate = nn.Sequential(nn.Conv2d(channels, 1, 1), nn.Sigmoid())

    def forward(self, x: Tensor) -> Tensor:
        return x * self.channel_gate(x) + x * self.spatial_gate(x)
