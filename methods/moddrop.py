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
    Search,
    TrainContext,
    all_scenarios,
    availability_matrix,
    encode_present,
    labels_of,
    mean_fill_invalid,
    register_method,
    zero_fill_missing,
)
from methods.baseline import Baseline
from methods.components.training.dropout import (
    SAMPLING,
    SubsetSampler,
    sampler_hparams,
    zero_features,
    zero_inputs,
)
from methods.components.training.partial import scale_invalid, valid_shares

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
        "keeps dropping on top: a sample's absent modality counts as dropped (zero at the "
        "input, as at test; with `fill=feature_zero` it skips the encoder and its features are "
        "zero); where the drawn subset keeps nothing the sample has, it keeps what it has"
    )
    ENCODES_ABSENT = (
        "with `fill=input_zero` (default) a dropped or missing modality is zero at the input in "
        "training and at test, as in ModDrop, so its encoder's norms meet that fill when deployed"
    )
    INVALID_PIXELS = (
        "zeroes them as in training: at the input by default (its own fill is the mean fill), "
        "or with `fill=feature_zero` each invalid cell's features scaled by its valid share"
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
        "With `fill=feature_zero` a dropped sample's real input still runs through the encoder "
        "before its features are zeroed (MaskModal), but a sample lacking the modality under "
        "`--train-missing` skips it (`encode_present`): its features are zero either way, and a "
        "zero input would only enter that encoder's batch statistics.",
    )
    HPARAMS = {
        "fill": HParam(
            "input_zero",
            "where a dropped modality is zeroed",
            choices=FILLS,
            search=Search.categorical(*FILLS, note="the two fills the code keeps"),
        ),
        **sampler_hparams("training dropout"),
        "sampling": HParam(
            "sample",
            "training dropout: a subset per sample or per batch",
            choices=SAMPLING,
            search=Search.categorical(*SAMPLING, note="the two draws the code keeps"),
        ),
        "full_weight": HParam(
            1.0,
            "training dropout: weight of keeping every modality, multiplying the full set's "
            "entry of `subset_weights` (1 = as given); ModDrop's drop rate",
            low=0.0,
            high=100.0,
            # with two modalities: P(keep all) from 1/7 to 3/5 (1/3 at the default)
            search=Search.decades(0.5, "half a decade either side of uniform"),
        ),
    }

    def __init__(
        self, spec: DatasetSpec, hparams: Mapping[str, Any], context: TrainContext
    ) -> None:
        super().__init__(spec, hparams, context)
        hp = self.hparams
        weights = list(hp["subset_weights"]) or [1.0] * len(all_scenarios(self.modalities))
        weights[0] *= hp["full_weight"]
        self.sampler = SubsetSampler(self.modalities, weights, hp["sampling"])

    def encodes_absent(self) -> str:
        """Exempt only with the input fill: `feature_zero` never encodes an absent sample."""
        return self.ENCODES_ABSENT if self.hparams["fill"] == "input_zero" else ""

    def own_fill_is_mean(self) -> bool:
        """Only with the input fill, whose `predict_partial` is the default's (the mean fill)."""
        return self.hparams["fill"] == "input_zero"

    def update(self, batch: Batch, step: int) -> dict[str, float]:
        inputs = zero_fill_missing(batch, self.modalities)
        mask = labels_of(batch)
        available = availability_matrix(batch, self.modalities)
        keep = self.sampler.sample_available(available)
        with self.autocast():
            if self.hparams["fill"] == "input_zero":
                logits = self.net(zero_inputs(inputs, self.sampler.as_dict(keep)))
            else:  # a sample lacking a modality skips its encoder; its features are zero
                have = self.sampler.as_dict(available)
                encoded = encode_present(self.net.encode_each, inputs, have)
                pyramids = zero_features([encoded[m] for m in self.modalities], keep.unbind(1))
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

    def predict_partial(
        self, inputs: Mapping[str, Tensor], validity: Mapping[str, Tensor]
    ) -> Tensor:
        """Invalid pixels zeroed where a dropped modality is: at the input (`input_zero`, the
        mean fill), or in the features of each cell, scaled by its share of valid pixels."""
        if self.hparams["fill"] == "input_zero":
            return super().predict_partial(inputs, validity)
        present = mean_fill_invalid(
            {m: inputs[m] for m in self.modalities if m in inputs}, validity
        )
        first = next(iter(present.values()))
        with self.autocast():
            pyramids = {m: self.net.encoders[m](x) for m, x in present.items()}
            blank = [torch.zeros_like(level) for level in next(iter(pyramids.values()))]
            ordered = [pyramids.get(m, blank) for m in self.modalities]
            ordered = scale_invalid(ordered, self.modalities, valid_shares(validity, blank))
            return self.net.decode(self.net.fusion(ordered), tuple(first.shape[-2:])).float()


__all__ = ["ModDrop"]
