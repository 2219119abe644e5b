"""A weight-tied encoder trunk shared by every modality, entered through modality-specific stems.

Optical, DSM and SAR have different band counts, so each modality gets its own stem (the timm
model's leading layers, built by timm for that `in_chans`, so pretrained stems are adapted the
way timm adapts them); everything after the stem is one set of weights used for all
modalities. Used by shared-specific methods (STARS, ShaSpec).

Batch norm in the trunk is either private per modality (`norm="private"`, default: the convs
are shared, every BatchNorm2d keeps one affine/statistics set per modality, as in CEN,
NeurIPS 2020) or shared (`norm="shared"`: all modalities go through the trunk as one batch).
Shared batch statistics couple the modalities in training: a loss on one modality's features
then sends gradient into the other modalities' stems through the batch mean and variance,
which defeats a stop-gradient on the other branch. Private norms keep the branches separate
and give each modality its own statistics at inference.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import partial

import torch
from torch import Tensor, nn

from benchmark.api import NO_WEIGHTS, create_backbone, encode_once, sharing_active


def _split_stem(model: nn.Module) -> tuple[list[str], list[str], dict[str, str]]:
    """Names of a timm `features_only` model's stem children, trunk children, return layers.

    The stem is every child before the first layer whose output is returned (for timm ResNets:
    conv1, bn1, act1, maxpool; for ConvNeXt: stem_0, stem_1). Parameter-free layers in it
    (the max pool) are harmless to duplicate.
    """
    return_layers = dict(getattr(model, "return_layers", {}))
    if not return_layers:
        raise ValueError(f"{type(model).__name__}: not a timm features_only model")
    names = [name for name, _ in model.named_children()]
    first = min(names.index(name) for name in return_layers)
    if first == 0:
        raise ValueError("the first returned feature is the first layer: no stem to split off")
    return names[:first], names[first:], return_layers


NORMS = ("private", "shared")


class ModalityBatchNorm2d(nn.Module):
    """One BatchNorm2d per modality behind a switch set by the owner before each forward."""

    def __init__(self, template: nn.BatchNorm2d, modalities: tuple[str, ...]) -> None:
        super().__init__()
        self.norms = nn.ModuleDict({m: copy.deepcopy(template) for m in modalities})
        self.active = modalities[0]

    def forward(self, x: Tensor) -> Tensor:
        return self.norms[self.active](x)


def privatise_norms(module: nn.Module, modalities: tuple[str, ...]) -> list[ModalityBatchNorm2d]:
    """Replace every BatchNorm2d under `module` in place; return the replacements."""
    switches = []
    for name, child in list(module.named_children()):
        if isinstance(child, nn.BatchNorm2d):
            switch = ModalityBatchNorm2d(child, modalities)
            setattr(module, name, switch)
            switches.append(switch)
        else:
            switches += privatise_norms(child, modalities)
    return switches


class SharedEncoder(nn.Module):
    """Modality-specific stems -> one shared timm trunk -> pyramids at strides 4..32.

    With `norm="private"` each modality runs through the trunk's shared convs with its own
    batch norms; with `norm="shared"` all modalities run as one concatenated batch (cheaper
    on CPU, but couples the modalities through batch statistics; see the module docstring).
    """

    def __init__(
        self,
        backbone: str,
        in_channels: Mapping[str, int],
        weights: str = NO_WEIGHTS,
        norm: str = "private",
    ) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; expected one of {NORMS}")
        self.norm = norm
        if not in_channels:
            raise ValueError("SharedEncoder needs at least one modality")
        self.modalities = tuple(in_channels)
        stems = {}
        trunk = None
        for name, channels in in_channels.items():
            model = create_backbone(backbone, channels, weights)
            stem_names, trunk_names, return_layers = _split_stem(model)
            children = dict(model.named_children())
            stems[name] = nn.Sequential(*(children[n] for n in stem_names))
            if trunk is None:  # the trunk is taken from the first modality's model
                trunk = nn.ModuleDict({n: children[n] for n in trunk_names})
                self.return_layers = [n for n in trunk_names if n in return_layers]
                self.channels: list[int] = list(model.feature_info.channels())
                self.reductions: list[int] = list(model.feature_info.reduction())
        self.stems = nn.ModuleDict(stems)
        self.trunk = trunk
        self._switches = privatise_norms(trunk, self.modalities) if norm == "private" else []

    def trunk_forward(self, x: Tensor) -> list[Tensor]:
        features = []
        for name, layer in self.trunk.items():
            x = layer(x)
            if name in self.return_layers:
                features.append(x)
        return features

    def _encode(self, modality: str, x: Tensor) -> list[Tensor]:
        """One modality through its stem and the trunk (with its own norms if private)."""
        for switch in self._switches:
            switch.active = modality
        return self.trunk_forward(self.stems[modality](x))

    def forward(self, inputs: Mapping[str, Tensor]) -> dict[str, list[Tensor]]:
        """Pyramids of the shared trunk for every modality in `inputs` (any non-empty subset)."""
        names = [m for m in self.modalities if m in inputs]
        if not names:
            raise KeyError(f"SharedEncoder got none of its modalities {self.modalities}")
        if self.norm == "private" or (sharing_active() and not self.training):
            # Per modality: private norms need it; with tied norms an eval-mode batch norm is
            # per sample, so views of one input (`encode_once`) may encode each modality alone.
            return {m: encode_once((self, m), inputs[m], partial(self._encode, m)) for m in names}
        stemmed = [self.stems[m](inputs[m]) for m in names]
        sizes = [s.shape[0] for s in stemmed]
        pyramid = self.trunk_forward(torch.cat(stemmed, dim=0))
        per_level = [level.split(sizes, dim=0) for level in pyramid]
        return {m: [level[i] for level in per_level] for i, m in enumerate(names)}
