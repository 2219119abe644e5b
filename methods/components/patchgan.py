"""Conditional PatchGAN discriminator (pix2pix) and its non-saturating BCE losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class PatchDiscriminator(nn.Module):
    """Classifies overlapping patches of (condition, image) as real or fake.

    `layers` stride-2 4x4 convs (BN + LeakyReLU after all but the first), one stride-1 4x4
    conv, then a 1-channel 4x4 conv: one logit per patch. With layers=3 and base 64 this is
    the 70x70 PatchGAN of pix2pix; `base` scales its width.
    """

    def __init__(self, in_channels: int, base: int = 64, layers: int = 3) -> None:
        super().__init__()
        blocks: list[nn.Module] = [nn.Conv2d(in_channels, base, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        width = base
        for i in range(1, layers + 1):
            nxt = base * 2 ** min(i, 3)
            stride = 2 if i < layers else 1
            blocks += [
                nn.Conv2d(width, nxt, 4, stride, 1, bias=False),
                nn.BatchNorm2d(nxt),
                nn.LeakyReLU(0.2, True),
            ]
            width = nxt
        blocks.append(nn.Conv2d(width, 1, 4, 1, 1))
        self.net = nn.Sequential(*blocks)

    def forward(self, condition: Tensor, image: Tensor) -> Tensor:
        return self.net(torch.cat([condition, image], dim=1))


def adversarial_loss(logits: Tensor, real: bool) -> Tensor:
    """BCE of patch logits against all-real (1) or all-fake (0) targets."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits.float(), target.float())
