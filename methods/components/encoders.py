"""Per-modality encoders: any timm `features_only` backbone, any number of input bands."""

from __future__ import annotations

from torch import Tensor, nn

from benchmark.api import FEATURE_LEVELS, NO_WEIGHTS, create_backbone, encode_once

__all__ = ["FEATURE_LEVELS", "ModalityEncoder"]


class ModalityEncoder(nn.Module):
    """A timm backbone returning a pyramid of features at strides 4, 8, 16 and 32.

    timm adapts the stem to `in_chans` (for pretrained weights it re-sums the RGB filters),
    so optical, DSM and SAR inputs all fit without special-casing. `weights`: none, imagenet
    or a path to a timm state dict (`benchmark.core.weights`).
    """

    def __init__(self, backbone: str, in_chans: int, weights: str = NO_WEIGHTS) -> None:
        super().__init__()
        self.net = create_backbone(backbone, in_chans, weights)
        self.channels: list[int] = list(self.net.feature_info.channels())
        self.reductions: list[int] = list(self.net.feature_info.reduction())

    def forward(self, x: Tensor) -> list[Tensor]:
        """The pyramid of `x`; once per tensor while views of one input are evaluated
        (`encode_once`: a scenario or severity that keeps `x` reuses it)."""
        return encode_once(self, x, self._pyramid)

    def _pyramid(self, x: Tensor) -> list[Tensor]:
        return list(self.net(x))
