"""Image-to-image U-Net generator (pix2pix's generator, scaled down for CPU budgets)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _down(in_channels: int, out_channels: int, norm: bool) -> nn.Sequential:
    """4x4 stride-2 conv (halves H, W) -> [BN] -> LeakyReLU(0.2)."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 4, 2, 1, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(nn.LeakyReLU(0.2, inplace=True))
    return nn.Sequential(*layers)


def _up(in_channels: int, out_channels: int) -> nn.Sequential:
    """4x4 stride-2 transposed conv (doubles H, W) -> BN -> ReLU."""
    return nn.Sequential(
        nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class UNetGenerator(nn.Module):
    """Encoder of `depth` stride-2 convs, mirrored decoder with skip concatenations.

    Widths double per level from `base` up to 8 * base. The output is linear (no tanh): our
    images are z-score normalised, not scaled to [-1, 1]. Inputs whose sides are not a multiple
    of 2**depth are reflect-padded and the output cropped back.
    """

    def __init__(self, in_channels: int, out_channels: int, base: int = 32, depth: int = 4):
        super().__init__()
        if depth < 1:
            raise ValueError("UNetGenerator needs depth >= 1")
        widths = [base * 2 ** min(i, 3) for i in range(depth)]
        self.downs = nn.ModuleList(
            _down(c_in, c_out, norm=i > 0)
            for i, (c_in, c_out) in enumerate(zip([in_channels, *widths[:-1]], widths, strict=True))
        )
        # decoder level i maps the deeper map (plus its skip, except at the bottom) to widths[i-1]
        self.ups = nn.ModuleList(
            _up(widths[i] * (1 if i == depth - 1 else 2), widths[i - 1])
            for i in range(depth - 1, 0, -1)
        )
        self.out = nn.ConvTranspose2d(widths[0] * (2 if depth > 1 else 1), out_channels, 4, 2, 1)
        self.multiple = 2**depth

    def forward(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        pad_h, pad_w = -height % self.multiple, -width % self.multiple
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
        skips = []
        for down in self.downs:
            x = down(x)
            skips.append(x)
        x = skips.pop()
        for up in self.ups:
            x = torch.cat([up(x), skips.pop()], dim=1)
        return self.out(x)[..., :height, :width]
