"""MetaRS: a modality-shared content encoder, whitened and aligned, beside specific encoders.

Zhou et al., "Remote sensing meta modal representation for missing modality land cover mapping:
From EarthMiss dataset to MetaRS method", Remote Sensing of Environment 2025 (the EarthMiss
paper; a STARS baseline). For every modality m:

    c_m = content encoder(stem_m(x_m))     one trunk for all modalities, own stem per modality
    p_m = specific encoder_m(x_m)
    h_m = [c_m + proj([c_m ; p_m]) ; c_m]  residual projection shared by modalities, then concat
    logits_m = head_m(FPN_m(h_m))           one decoder per modality
    logits_fused = head(FPN(concat-fuse(c_1 .. c_N)))

    L = sum_m CE(logits_m) + CE(logits_fused)
        + after `begin_fraction` of the budget:
          alpha * mean over strides 16, 32 and modality pairs of MSE(c_a, c_b)
          + MMR: instance-selective whitening of c_m at strides 4 and 8

MMR's mask of modality-sensitive covariance entries is built at the start of that stage from
the `mask_batches` training batches just before it (`methods.components.training.whitening`).
At test time a lone modality uses its own head (MetaRS's inference); with several present, the
mean of their heads' probabilities and the fused head's, a missing modality's content being the
mean of the present ones' (content is what the losses make modality-invariant).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.api import (
    Batch,
    DatasetSpec,
    HParam,
    Method,
    Paper,
    TrainContext,
    availability,
    complete_samples,
    encode_once,
    labels_of,
    register_method,
    select_rows,
    sharing_active,
    zero_fill_missing,
)
from methods.components import ConcatFusion, FPNDecoder, ModalityEncoder, SegmentationHead
from methods.components.compose import Composer
from methods.components.shared_encoder import SharedEncoder
from methods.components.training.fill import (
    complete_with_mean,
    cyclic_pairs,
    replace_dropped,
    shared_fill,
)
from methods.components.training.whitening import CovarianceMask, whitening_loss

ALIGNED_LEVELS = (2, 3)
"""Content levels aligned by MSE: strides 16 and 32 (MetaRS: ResNet stages 3 and 4)."""
WHITENED_LEVELS = (0, 1)
"""Content levels whitened by MMR: strides 4 and 8 (MetaRS: the stem output, stages 1-2)."""


@register_method("metars")
class MetaRS(Method):
    """Shared content encoder + specific encoders, per-modality heads + fused head (MetaRS)."""

    SUMMARY = (
        "Content encoder shared by modalities (own stems) + specific encoders, a head per "
        "modality and a fused head on content features; after a warm-up, MSE alignment and "
        "instance-selective whitening of the content features."
    )
    MISSING_MODALITY = (
        "uses the present modality's own head; with several present, averages their heads and "
        "the fused head (missing content = mean of present content)"
    )
    TRAIN_MISSING = (
        "each modality's head learns from the samples that have it; the fused head sees an "
        "absent content as the mean of the present ones; alignment on pairs present, MMR "
        "statistics from complete samples"
    )
    PAPER = Paper(
        title="Remote sensing meta modal representation for missing modality land cover "
        "mapping: From EarthMiss dataset to MetaRS method",
        venue="Remote Sensing of Environment",
        year=2025,
        link="https://doi.org/10.1016/j.rse.2025.115132",
    )
    DEVIATIONS = (
        "Model selection and MMR's covariance mask use training and validation data only: the "
        "published protocol selects its checkpoint on the test set and computes the whitening "
        "statistics on the test cities; here the mask comes from the `mask_batches` training "
        "batches before `begin_fraction` and selection is the suite's full-modality validation.",
        "timm encoders at the preset's backbone with the suite's FPN decoders instead of "
        "ResNet-50 + FPN + asymmetric decoder; the content trunk's stems (conv, norm, pool) are "
        "per modality, where MetaRS swaps only conv1.",
        "The content trunk normalises all modalities as one batch (`SharedEncoder` with shared "
        "norms); MetaRS runs each modality through it as its own batch, which normalises per "
        "modality in training but with pooled running statistics at inference.",
        "MMR whitens the content features at strides 4 and 8 after per-image standardisation, "
        "not inside instance-normalisation layers at the stem, stage 1 and stage 2; its mask "
        "marks off-diagonal entries outside the lowest of `clusters` 1-D k-means groups of "
        "their cross-modal variance (RobustNet's rule, relax_denom = 0).",
        "Inference with every modality, or several of more than two, averages the present "
        "modalities' heads and the fused head; MetaRS infers from one modality's head only.",
        "One AdamW one-cycle schedule over the suite's budget (MetaRS: AdamW 1e-4, weight decay "
        "0.05, 15k iterations), with the alignment and whitening from `begin_fraction` = "
        "1600/15000; modality pairs beyond two are aligned cyclically.",
    )
    HPARAMS = {
        "alpha": HParam(
            1.25, "weight of the content MSE alignment (MetaRS: 1.25)", low=0.0, high=100.0
        ),
        "mmr_weight": HParam(1.0, "weight of the whitening term (MetaRS: 1)", low=0.0, high=100.0),
        "begin_fraction": HParam(
            1600 / 15000,
            "share of the budget before alignment and whitening start (MetaRS: 1600 of 15k)",
            low=0.0,
            high=1.0,
        ),
        "mask_batches": HParam(
            20,
            "training batches before the start whose features build MMR's mask",
            low=1,
            high=10_000,
        ),
        "clusters": HParam(
            10, "1-D k-means groups of covariance variances (MetaRS: 10)", low=2, high=100
        ),
    }

    def __init__(
        self, spec: DatasetSpec, hparams: Mapping[str, Any], context: TrainContext
    ) -> None:
        super().__init__(spec, hparams, context)
        hp = self.hparams
        self.content = SharedEncoder(hp["backbone"], self.channels, hp["weights"], norm="shared")
        self.specific = nn.ModuleDict(
            {m: ModalityEncoder(hp["backbone"], c, hp["weights"]) for m, c in self.channels.items()}
        )
        channels = self.content.channels
        specific = self.specific[self.modalities[0]].channels
        self.project = Composer(channels, specific, self.modalities, kernel=1, norm="joint")
        doubled = [2 * c for c in channels]
        self.decoders = nn.ModuleDict(
            {m: FPNDecoder(doubled, hp["decoder_channels"]) for m in self.modalities}
        )
        self.heads = nn.ModuleDict(
            {m: SegmentationHead(hp["decoder_channels"], spec.num_classes) for m in self.modalities}
        )
        self.fusion = ConcatFusion(channels, len(self.modalities))
        self.fused_decoder = FPNDecoder(channels, hp["decoder_channels"])
        self.fused_head = SegmentationHead(hp["decoder_channels"], spec.num_classes)
        self.masks = nn.ModuleList(
            CovarianceMask(channels[i], hp["clusters"]) for i in WHITENED_LEVELS
        )
        total = max(1, context.total_steps)
        self.begin_step = round(hp["begin_fraction"] * total)
        self.configure_optimizer(self.parameters())

    # ------------------------------------------------------------ forward pieces
    def encode(self, inputs: Mapping[str, Tensor]) -> tuple[dict, dict]:
        """Content pyramids and the per-modality decoder inputs of the modalities present."""
        content = self.content(inputs)
        specific = {m: self.specific[m](inputs[m]) for m in content}
        projected = self.project(content, specific)
        joined = {
            m: [torch.cat([p, c], dim=1) for p, c in zip(projected[m], content[m], strict=True)]
            for m in content
        }
        return content, joined

    def modality_branch(
        self, modality: str, x: Tensor, size: tuple[int, int]
    ) -> tuple[list[Tensor], Tensor]:
        """Content pyramid and own-head logits of one modality alone. In eval mode every norm
        is per sample, so this is what the joint `encode` gives that modality."""
        content, joined = self.encode({modality: x})
        return content[modality], self.modality_logits(joined, size)[modality]

    def modality_logits(self, joined: Mapping[str, list[Tensor]], size: tuple[int, int]) -> dict:
        return {m: self.heads[m](self.decoders[m](f), size) for m, f in joined.items()}

    def fused_logits(self, content: Mapping[str, list[Tensor]], size: tuple[int, int]) -> Tensor:
        fused = self.fusion([content[m] for m in self.modalities])
        return self.fused_head(self.fused_decoder(fused), size)

    # ------------------------------------------------------------ training
    def alignment_loss(self, content: Mapping[str, list[Tensor]], have: Mapping) -> Tensor:
        """MSE between the content features of cyclic pairs, on samples that have both."""
        terms = []
        for a, b in cyclic_pairs(self.modalities):
            rows = have[a] & have[b]
            if bool(rows.any()):
                terms += [
                    F.mse_loss(
                        select_rows(content[a][level], rows).float(),
                        select_rows(content[b][level], rows).float(),
                    )
                    for level in ALIGNED_LEVELS
                ]
        if not terms:
            return next(iter(content.values()))[0].new_zeros(()).float()
        return torch.stack(terms).mean()

    def mmr_loss(self, content: Mapping[str, list[Tensor]], have: Mapping) -> Tensor:
        terms = [
            whitening_loss(select_rows(content[m][level], have[m]), mask.mask)
            for mask, level in zip(self.masks, WHITENED_LEVELS, strict=True)
            for m in self.modalities
            if bool(have[m].any())
        ]
        return torch.stack(terms).mean()

    def observe_content(self, content: Mapping[str, list[Tensor]], rows: Tensor) -> None:
        """Feed MMR's mask statistics with this (training) batch's content features, from its
        complete samples (`rows`, all of them when none is complete)."""
        rows = rows if bool(rows.any()) else torch.ones_like(rows)
        for mask, level in zip(self.masks, WHITENED_LEVELS, strict=True):
            mask.observe([select_rows(content[m][level], rows).detach() for m in self.modalities])

    def update(self, batch: Batch, step: int) -> dict[str, float]:
        hp = self.hparams
        inputs = zero_fill_missing(batch, self.modalities)
        have = availability(batch, self.modalities)
        complete = complete_samples(batch, self.modalities)
        mask = labels_of(batch)
        size = tuple(mask.shape[-2:])
        aligning = len(self.modalities) > 1 and step >= self.begin_step
        with self.autocast():
            content, joined = self.encode(inputs)
            logits = self.modality_logits(joined, size)
            if not bool(complete.all()):  # an absent modality's content: the present ones' mean
                content = replace_dropped(
                    content, shared_fill(content, have), have, self.modalities
                )
            fused = self.fused_logits(content, size)
        ce = {  # each modality's own head learns from the samples that have it
            m: self.segmentation_loss(select_rows(v, have[m]), select_rows(mask, have[m]))
            for m, v in logits.items()
            if bool(have[m].any())
        }
        ce_fused = self.segmentation_loss(fused, mask)
        loss = sum(ce.values()) + ce_fused
        align = mmr = loss.new_zeros(())
        if (
            len(self.modalities) > 1
            and self.begin_step - hp["mask_batches"] <= step < self.begin_step
        ):
            self.observe_content(content, complete)
        if aligning:
            if not bool(self.masks[0].built):
                if int(self.masks[0].images) == 0:  # a start at step 0: this batch it is
                    self.observe_content(content, complete)
                for covariance_mask in self.masks:
                    covariance_mask.build()
            align = self.alignment_loss(content, have)
            mmr = self.mmr_loss(content, have)
            loss = loss + hp["alpha"] * align + hp["mmr_weight"] * mmr
        self.optimisation_step(loss)
        out = {"loss": float(loss.detach()), "ce_fused": float(ce_fused.detach())}
        out.update({f"ce_{m}": float(v.detach()) for m, v in ce.items()})
        out.update({"align": float(align.detach()), "mmr": float(mmr.detach())})
        return out

    def predict(self, inputs: Mapping[str, Tensor]) -> Tensor:
        present = {m: inputs[m] for m in self.modalities if m in inputs}
        first = next(iter(present.values()))
        size = tuple(first.shape[-2:])
        with self.autocast():
            if sharing_active():  # each modality's branch once for every view that keeps it
                branches = {
                    m: encode_once((self, m), x, partial(self.modality_branch, m, size=size))
                    for m, x in present.items()
                }
                content = {m: branch[0] for m, branch in branches.items()}
                logits = {m: branch[1] for m, branch in branches.items()}
            else:
                content, joined = self.encode(present)
                logits = self.modality_logits(joined, size)
            if len(present) == 1:
                return next(iter(logits.values())).float()
            content = complete_with_mean(content, self.modalities)
            heads = [*logits.values(), self.fused_logits(content, size)]
            probs = torch.stack([h.float().softmax(1) for h in heads]).mean(0)
            return probs.clamp_min(1e-12).log()

    def diagnostics(self) -> dict[str, float]:
        """Sensitive covariance entries per whitened level (0 until the mask is built)."""
        return {
            f"mmr_sensitive_level{level}": float(mask.mask.sum())
            for mask, level in zip(self.masks, WHITENED_LEVELS, strict=True)
        }


__all__ = ["MetaRS"]
