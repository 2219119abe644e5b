"""MetaRS: a modality-shared content encoder, whitened and aligned, beside specific encoders.

Zhou et al., "Remote sensing meta modal representation for missing modality land cover mapping:
From EarthMiss dataset to MetaRS method", Remote Sensing of Environment 2025 (the EarthMiss
paper; a STARS baseline). For every modality m:

    c_m = content encoder(stem_m(x_m))     one trunk for all modalities, own stem per modality
    p_m = specific encoder_m(x_m)
    h_m = [p_m + proj(c_m, p_m) ; c_m]     proj = SCSE(ConvBNReLU([SCSE(c_m) ; SCSE(p_m)])),
                                           shared by modalities; the residual is onto p_m
    logits_m = head_m(FPN_m(h_m))           one decoder per modality
    logits_fused = head(FPN(fuse(c_1 .. c_N)))
                                  fuse = SCSE(ConvBNReLU([SCSE_1(c_1) ; ... ; SCSE_N(c_N)]))

    L = sum_m CE(logits_m) + CE(logits_fused)
        + after `begin_fraction` of the budget:
          alpha * mean over strides 16, 32 and modality pairs of MSE(c_a, c_b)
          + MMR: instance-selective whitening of c_m at strides 4 and 8

MMR's mask of modality-sensitive covariance entries is built at the start of that stage from
the `mask_batches` training batches just before it (`methods.components.training.whitening`).
The blocks follow the official code (Yi-Heng/EarthMiss, `module/baseline/MetaRS.py` and
`base_metars/model.py`: `Fusespfnv2_res` for the projection, `Fusespfnv2` for the fusion).

At test time MetaRS predicts from one modality's own head, the fused head being a training
signal only: a lone modality uses its head; with several present, the head of `head_modality`
(MetaRS's configured `infer_rgb`) or, by default, of the present modality whose head scored
best alone at the latest validation (before any, the first present in the run's modality
order, which the harness sorts by name).
`inference=average` is this suite's variant, reported as one: the mean of the present heads'
and the fused head's probabilities, a missing modality's content being the mean of the present
ones'.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.api import (
    Batch,
    BenchmarkError,
    DatasetSpec,
    HParam,
    Method,
    Paper,
    Scenario,
    Search,
    TrainContext,
    availability,
    complete_samples,
    encode_once,
    encode_present,
    labels_of,
    nan_mean,
    predict_per_pixel_scenario,
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
INFERENCES = ("head", "average")
"""With several modalities present: one modality's head (MetaRS) or the heads' mean (variant)."""


@register_method("metars")
class MetaRS(Method):
    """Shared content encoder + specific encoders, per-modality heads + fused head (MetaRS)."""

    SUMMARY = (
        "Content encoder shared by modalities (own stems) + specific encoders, a head per "
        "modality and a fused head on content features; after a warm-up, MSE alignment and "
        "instance-selective whitening of the content features."
    )
    MISSING_MODALITY = (
        "predicts from one present modality's own head (with several present, the one whose "
        "head scored best alone on validation, or `head_modality`)"
    )
    TRAIN_MISSING = (
        "a sample's absent modality skips its stem, specific encoder and own decoder "
        "(`encode_present`), so each modality's head learns from the samples that have it; the "
        "fused head sees an absent content as the mean of the present ones; alignment on pairs "
        "present, MMR statistics from complete samples"
    )
    INVALID_PIXELS = (
        "predicts each pixel as the scenario of the modalities valid there (its heads picked as "
        "for a missing modality), invalid pixels mean-filled where a modality is kept"
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
        "With several modalities present, MetaRS's code predicts from the head of the one "
        "modality its configuration names (`infer_rgb`); here that is `head_modality` when "
        "set and present, else the present modality whose head scored best alone at the "
        "latest validation (validation data only; before any, the first by name). The "
        "suite's first version averaged the present heads' and the fused head's "
        "probabilities; that is now the variant `inference=average`, not MetaRS's inference.",
        "The projection and fusion blocks are MetaRS's (SCSE on each input, 1x1 conv-BN-ReLU, "
        "SCSE, the projection's residual onto the specific features); the fusion block's two "
        "inputs generalise to one SCSE per modality, and the projection's batch norm sees all "
        "modalities as one batch (`joint`) where MetaRS runs each through it separately (a "
        "train/eval mismatch). The suite's first version added the residual onto the content "
        "features and had no SCSE; `scse=false` keeps plain blocks as an ablation.",
        "One AdamW one-cycle schedule over the suite's budget (MetaRS: AdamW 1e-4, weight decay "
        "0.05, 15k iterations), with the alignment and whitening from `begin_fraction` = "
        "1600/15000; modality pairs beyond two are aligned cyclically.",
    )
    HPARAMS = {
        "alpha": HParam(
            1.25,
            "weight of the content MSE alignment (MetaRS: 1.25)",
            low=0.0,
            high=100.0,
            search=Search.decades(1),
        ),
        "mmr_weight": HParam(
            1.0,
            "weight of the whitening term (MetaRS: 1)",
            low=0.0,
            high=100.0,
            search=Search.decades(1),
        ),
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
        "scse": HParam(
            True,
            "SCSE blocks in the projection and the fused head's fusion, as MetaRS has them; "
            "false = plain conv blocks (ablation)",
        ),
        "inference": HParam(
            "head",
            "with several modalities present: `head` = one modality's own head (MetaRS), "
            "`average` = the mean of the present heads' and the fused head's probabilities "
            "(this suite's variant)",
            choices=INFERENCES,
        ),
        "head_modality": HParam(
            "",
            "`inference=head`: the modality whose head predicts whenever it is present "
            "(MetaRS's `infer_rgb`); empty = the present modality whose head scored best alone "
            "at the latest validation",
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
        self.project = Composer(
            channels,
            specific,
            self.modalities,
            kernel=1,
            norm="joint",
            residual="specific",
            attention=hp["scse"],
        )
        doubled = [2 * c for c in channels]
        self.decoders = nn.ModuleDict(
            {m: FPNDecoder(doubled, hp["decoder_channels"]) for m in self.modalities}
        )
        self.heads = nn.ModuleDict(
            {m: SegmentationHead(hp["decoder_channels"], spec.num_classes) for m in self.modalities}
        )
        self.fusion = ConcatFusion(channels, len(self.modalities), attention=hp["scse"])
        self.fused_decoder = FPNDecoder(channels, hp["decoder_channels"])
        self.fused_head = SegmentationHead(hp["decoder_channels"], spec.num_classes)
        self.masks = nn.ModuleList(
            CovarianceMask(channels[i], hp["clusters"]) for i in WHITENED_LEVELS
        )
        total = max(1, context.total_steps)
        self.begin_step = round(hp["begin_fraction"] * total)
        if hp["head_modality"] and hp["head_modality"] not in self.modalities:
            raise BenchmarkError(
                f"metars head_modality {hp['head_modality']!r}: expected one of "
                f"{', '.join(self.modalities)} or empty"
            )
        self.register_buffer("head_scores", torch.full((len(self.modalities),), -math.inf))
        """Per modality: its own head's validation mIoU alone (latest validation; -inf: none)."""
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

        def branches(rows: Mapping[str, Tensor]) -> tuple[dict, dict]:
            content, joined = self.encode(rows)
            return content, self.modality_logits(joined, size)

        with self.autocast():
            # a sample lacking a modality skips its stem, specific encoder and own decoder
            # (`encode_present`): zeros stand there, replaced below / never scored
            content, logits = encode_present(branches, inputs, have)
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

    # ------------------------------------------------------------ which head predicts
    def feedback_scenarios(self) -> tuple[Scenario, ...]:
        """Every modality alone, while the head that predicts with several present is the best
        one on validation (`inference=head`, no `head_modality`)."""
        hp = self.hparams
        if hp["inference"] != "head" or hp["head_modality"] or len(self.modalities) < 2:
            return ()
        return tuple(Scenario(frozenset({m})) for m in self.modalities)

    def observe_validation(self, iou: Mapping[Scenario, Sequence[float]], step: int) -> None:
        """Keep each modality's own-head validation mIoU alone (the latest validation's)."""
        for scenario, values in iou.items():
            if len(scenario.present) == 1:
                (m,) = scenario.present
                score = nan_mean(np.asarray(values, dtype=np.float64))
                value = score if math.isfinite(score) else -math.inf
                self.head_scores[self.modalities.index(m)] = value

    def deployed_head(self, present: Sequence[str]) -> str:
        """The modality whose head predicts from `present` (`inference=head`)."""
        chosen = self.hparams["head_modality"]
        if chosen in present:
            return chosen
        candidates = [m for m in self.modalities if m in present]  # ties: the run's first
        return max(candidates, key=lambda m: float(self.head_scores[self.modalities.index(m)]))

    # ------------------------------------------------------------ inference
    def branches(self, present: Mapping[str, Tensor], size: tuple[int, int]) -> tuple[dict, dict]:
        """Content pyramids and own-head logits of the `present` modalities (eval mode)."""
        if sharing_active():  # each modality's branch once for every view that keeps it
            out = {
                m: encode_once((self, m), x, partial(self.modality_branch, m, size=size))
                for m, x in present.items()
            }
            return {m: b[0] for m, b in out.items()}, {m: b[1] for m, b in out.items()}
        content, joined = self.encode(present)
        return content, self.modality_logits(joined, size)

    def predict(self, inputs: Mapping[str, Tensor]) -> Tensor:
        present = {m: inputs[m] for m in self.modalities if m in inputs}
        first = next(iter(present.values()))
        size = tuple(first.shape[-2:])
        with self.autocast():
            if len(present) == 1 or self.hparams["inference"] == "head":
                m = self.deployed_head(list(present))
                return self.branches({m: present[m]}, size)[1][m].float()
            content, logits = self.branches(present, size)
            content = complete_with_mean(content, self.modalities)
            heads = [*logits.values(), self.fused_logits(content, size)]
            probs = torch.stack([h.float().softmax(1) for h in heads]).mean(0)
            return probs.clamp_min(1e-12).log()

    def predict_partial(
        self, inputs: Mapping[str, Tensor], validity: Mapping[str, Tensor]
    ) -> Tensor:
        """Per pixel, the prediction of the scenario of the modalities valid there: MetaRS's
        answer to a missing modality is which heads it uses, a choice per scenario, so it is
        made per pixel (`predict_per_pixel_scenario`)."""
        return predict_per_pixel_scenario(self.predict, inputs, validity)

    def diagnostics(self) -> dict[str, float]:
        """Sensitive covariance entries per whitened level (0 until the mask is built), and
        the index (in `modalities`) of the head that predicts with every modality present."""
        out = {
            f"mmr_sensitive_level{level}": float(mask.mask.sum())
            for mask, level in zip(self.masks, WHITENED_LEVELS, strict=True)
        }
        if self.hparams["inference"] == "head":
            out["full_head"] = float(self.modalities.index(self.deployed_head(self.modalities)))
        return out


__all__ = ["MetaRS"]
