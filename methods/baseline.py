"""Fusion network trained on complete data; a missing modality is zero-filled at test time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from benchmark.api import (
    Batch,
    DatasetSpec,
    Method,
    TrainContext,
    labels_of,
    register_method,
    zero_fill_missing,
)
from methods.components import FusionSegmenter
from methods.components.training.fill import mean_fill


@register_method("baseline", aliases=("zero_fill",))
class Baseline(Method):
    """Multimodal fusion trained with all modalities; missing inputs are mean-filled."""

    SUMMARY = "Per-modality timm encoders, concat fusion at every scale, FPN decoder."
    MISSING_MODALITY = "zero-fills it in normalised input space (= the training mean)"
    TRAIN_MISSING = "trains on its zero fill: a sample's absent modality is zero, as at test"
    ENCODES_ABSENT = (
        "its test-time policy feeds a missing modality's encoder zeros (the training mean), so "
        "a zero-filled absent sample is what that encoder and its norms meet when deployed"
    )
    PAPER = None
    DEVIATIONS = (
        "Not a published method: the standard lower bound of the missing-modality literature.",
    )

    def __init__(
        self, spec: DatasetSpec, hparams: Mapping[str, Any], context: TrainContext
    ) -> None:
        super().__init__(spec, hparams, context)
        self.net = FusionSegmenter(
            spec,
            self.modalities,
            backbone=self.hparams["backbone"],
            decoder_channels=self.hparams["decoder_channels"],
            weights=self.hparams["weights"],
        )
        self.configure_optimizer(self.parameters())

    def update(self, batch: Batch, step: int) -> dict[str, float]:
        with self.autocast():
            logits = self.net(zero_fill_missing(batch, self.modalities))
        loss = self.segmentation_loss(logits, labels_of(batch))
        self.optimisation_step(loss)
        return {"loss": float(loss.detach())}

    def predict(self, inputs: Mapping[str, Tensor]) -> Tensor:
        present = {k: v for k, v in inputs.items() if k in self.channels}
        with self.autocast():
            return self.net(mean_fill(present, self.modalities, self.channels)).float()


__all__ = ["Baseline"]
