"""ModDrop: the fusion network trained with random modality dropout.

Neverova et al., "ModDrop: adaptive multi-modal gesture recognition", TPAMI 2016. Each training
sample keeps a random non-empty subset of its modalities (explicit probabilities, uniform by
default); the dropped ones are zeroed either at the input (`fill=input_zero`: zero in normalised
space = the training mean, ModDrop's and ShaSpec's choice) or in the encoders' features at every
scale (`fill=feature_zero`: mmFormer's / RFNet's MaskModal). At test time a missing modality is
filled the same way. No extra loss term: only the training signal differs from `baseline`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from benchmark.api import (
    Batch,
    DatasetSpec,
    HParam,
    Paper,
    TrainContext,
    availability_matrix,
    labels_of,
    register_method,
    zero_fill_missing,
)
from methods.baseline import Baseline
from methods.components.training.dropout import (
    SubsetSampler,
    sampler_hparams,
    zero_features,
    zero_inputs,
)

FILLS = ("input_zero", "feature_zero")


@register_method("moddrop")
class ModDrop(Baseline):
    """Fusion network trained with per-sample random modality dropout (ModDrop)."""

    SUMMARY = (
        "The baseline fusion network trained with modality dropout: every sample keeps a random "
        "non-empty subset (uniform by default), the rest zeroed at the input or in the features."
    )
    MISSING_MODALITY = (
        "zero-fills it as in training: in normalised input space (default) or in its features"
    )
    TRAIN_MISSING = (
        "keeps dropping on top: a sample's absent modality counts as dropped; where the drawn "
        "subset keeps nothing the sample has, it keeps what it has"
    )
    PAPER = Paper(
        title="ModDrop: adaptive multi-modal gesture recognition",
        venue="IEEE TPAMI",
        year=2016,
        link="https://arxiv.org/abs/1501.00102",
    )
    DEVIATIONS = (
        "No per-modality pre-training and no gradual fusion: the shared fusion network is "
        "trained end to end with dropout from the first step (as the RS/medical re-uses do).",
        "Dropout draws a whole subset with explicit probabilities (`subset_weights`, uniform "
        "over the non-empty subsets = 1/3 each for two modalities, as MMANet and mmFormer) "
        "instead of independent per-modality Bernoulli gates; the empty set is never drawn.",
        "Drawn per sample by default (`sampling=batch` for one subset per batch); per-sample "
        "mixing shifts batch-norm statistics, as in MMANet.",
        "`fill=feature_zero` zeroes features at all four encoder scales (mmFormer's MaskModal) "
        "rather than ModDrop's gated fusion-layer inputs.",
    )
    HPARAMS = {
        "fill": HParam("input_zero", "where a dropped modality is zeroed", choices=FILLS),
        **sampler_hparams("training dropout"),
    }

    def __init__(
        self, spec: DatasetSpec, hparams: Mapping[str, Any], context: TrainContext
    ) -> None:
        super().__init__(spec, hparams, context)
        self.sampler = SubsetSampler.from_hparams(self.modalities, self.hparams)

    def update(self, batch: Batch, step: int) -> dict[str, float]:
        inputs = zero_fill_missing(batch, self.modalities)
        mask = labels_of(batch)
        available = availability_matrix(batch, self.modalities)
        keep = self.sampler.sample_available(available)
        with self.autocast():
            if self.hparams["fill"] == "input_zero":
                logits = self.net(zero_inputs(inputs, self.sampler.as_dict(keep)))
            else:
                pyramids = zero_features(self.net.encode(inputs), keep.unbind(1))
                logits = self.net.decode(self.net.fusion(pyramids), tuple(mask.shape[-2:]))
        loss = self.segmentation_loss(logits, mask)
        self.optimisation_step(loss)
        return {"loss": float(loss.detach()), "kept_modalities": float(keep.float().sum(1).mean())}

    def predict(self, inputs: Mapping[str, Tensor]) -> Tensor:
        if self.hparams["fill"] == "input_zero":
            return super().predict(inputs)
        present = {m: inputs[m] for m in self.modalities if m in inputs}
        first = next(iter(present.values()))
        with self.autocast():
            pyramids = {m: self.net.encoders[m](x) for m, x in present.items()}
            blank = [torch.zeros_like(level) for level in next(iter(pyramids.values()))]
            ordered = [pyramids.get(m, blank) for m in self.modalities]
            return self.net.decode(self.net.fusion(ordered), tuple(first.shape[-2:])).float()


__all__ = ["ModDrop"]
