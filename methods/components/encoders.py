"""Per-modality encoders: any timm `features_only` backbone, any number of input bands."""

from __future__ import annotations

import timm
from torch import Tensor, nn

FEATURE_LEVELS = (1, 2, 3, 4)
"""timm feature indices used everywhere: strides 4, 8, 16, 32."""


class ModalityEncoder(nn.Module):
    """A timm backbone returning a pyramid of features at strides 4, 8, 16 and 32.

    timm adapts the stem to `in_chans` (for pretrained weights it re-sums the RGB filters),
    so optical, DSM and SAR inputs all fit without special-casing.
    """

    def __init__(self, backbone: str, in_chans: int, pretrained: bool = False) -> None:
        super().__init__()
        self.net = timm.create_model(
            backbone,
            features_only=True,
            pretrained=pretrained,
            in_chans=in_chans,
            out_indices=FEATURE_LEVELS,
        )
        self.channels: list[int] = list(self.net.feature_info.channels())
        self.reductions: list[int] = list(self.net.feature_info.reduction())

    def forward(self, x: Tensor) -> list[Tensor]:
        return list(self.net(x))
