"""Fusion of per-modality feature pyramids, scale by scale."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from methods.components.attention import SCSE


def conv_bn_relu(in_channels: int, out_channels: int, kernel: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class ConcatFusion(nn.Module):
    """Concatenate the modalities' features at every scale, then a 1x1 conv back to width.

    Expects every modality in a fixed order; methods decide what to feed for missing ones.
    With `attention`, an SCSE on each modality's input (one per input position) and one on
    the output, at every level: MetaRS's fusion block (`Fusespfnv2`) for any number of inputs.
    """

    def __init__(
        self, channels: Sequence[int], num_modalities: int, attention: bool = False
    ) -> None:
        super().__init__()
        self.num_modalities = num_modalities
        self.mix = nn.ModuleList(conv_bn_relu(c * num_modalities, c) for c in channels)
        self.attention = (
            nn.ModuleList(
                nn.ModuleList(SCSE(c) for _ in range(num_modalities + 1)) for c in channels
            )
            if attention
            else None
        )

    def forward(self, pyramids: Sequence[Sequence[Tensor]]) -> list[Tensor]:
        if len(pyramids) != self.num_modalities:
            raise ValueError(f"expected {self.num_modalities} pyramids, got {len(pyramids)}")
        if self.attention is None:
            return [
                mix(torch.cat([p[level] for p in pyramids], dim=1))
                for level, mix in enumerate(self.mix)
            ]
        out = []
        for level, (mix, gates) in enumerate(zip(self.mix, self.attention, strict=True)):
            inputs = [gate(p[level]) for gate, p in zip(gates, pyramids, strict=False)]
            out.append(gates[-1](mix(torch.cat(inputs, dim=1))))
        return out
