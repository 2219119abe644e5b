"""Segmentation head: decoder map -> class logits at input resolution."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from methods.components.fusion import conv_bn_relu


class SegmentationHead(nn.Module):
    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.block = conv_bn_relu(channels, channels, 3)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, x: Tensor, size: tuple[int, int]) -> Tensor:
        logits = self.classifier(self.block(x))
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
