"""MMANet: margin-aware distillation and modality-aware regularisation.

Wei et al., "MMANet: Margin-aware Distillation and Modality-aware Regularization for Incomplete
Multimodal Learning", CVPR 2023. A budget of S steps trains both networks for S steps, as
`distill` does (the suite's teacher rule, `methods.components.training.teacher_student`):

    calls [0, S)   teacher: the fusion network, CE on complete inputs; then frozen
    calls [S, 2S)  student: the same network, each sample keeping a random non-empty subset
                   of modalities (the others zeroed in feature space, at every scale),
                   trained with CE + mad_weight * L_MAD + mar_weight * L_MAR

L_MAD (`methods.components.training.margin`, after MMANet's official loss) relates every
position of the batch to every other in the fused features at strides 32, 16 and 8 (Gram
matrices over B * h * w positions, across images) and weights each position by the entropy of
the teacher's logits pooled to that grid, normalised over the batch. L_MAR finds the
student's weakest modality combination on validation (the squared gap between its mIoU and
the full-modality mIoU, summed over the validations before `begin_fraction` of the student
stage has passed) and then trains an auxiliary decoder with CE on the samples that drew that
combination, regularising the shared encoders where the student is weakest. MAD starts at
`begin_fraction` of the student stage (MMANet's `begin_epoch`), MAR once the combination is
fixed (at the first validation from then on). `predict` is always the student (feature-space
zero fill); the auxiliary decoder is used only in training.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from benchmark.api import (
    DatasetSpec,
    HParam,
    Paper,
    Scenario,
    Search,
    TrainContext,
    encode_present,
    mean_fill_invalid,
    nan_mean,
    register_method,
)
from methods.components.training.dropout import SubsetSampler, sampler_hparams, zero_features
from methods.components.training.fill import mean_fill
from methods.components.training.margin import margin_distillation
from methods.components.training.partial import scale_invalid, valid_shares
from methods.components.training.teacher_student import TeacherStudentMethod

MAD_LEVELS = (3, 2, 1)
"""Fused pyramid levels distilled: strides 32, 16 and 8 (MMANet: context module, skip3, skip2)."""


@register_method("mmanet")
class MMANet(TeacherStudentMethod):
    """Frozen full-modal teacher; dropout student with margin-aware distillation + MAR."""

    SUMMARY = (
        "Two stages of a full budget each: a fusion teacher on complete data, then a same-size "
        "student with feature-space modality dropout, entropy-weighted pixel-relation distillation "
        "(MAD) and an auxiliary decoder on its weakest combination found on validation (MAR)."
    )
    MISSING_MODALITY = "zeroes its features at every scale, as the student's training dropout"
    TRAIN_MISSING = (
        "the teacher trains on complete samples only; a sample's absent modality skips the "
        "student's encoder (`encode_present`; its features are zero, as dropped ones), the "
        "dropout never keeps what a sample lacks, and MAD distils from complete samples only"
    )
    INVALID_PIXELS = (
        "zeroes invalid cells' features as the student zeroes a missing modality's (each cell "
        "scaled by its share of valid pixels; the input mean-filled there)"
    )
    PAPER = Paper(
        title="MMANet: Margin-aware Distillation and Modality-aware Regularization for "
        "Incomplete Multimodal Learning",
        venue="CVPR",
        year=2023,
        link="https://arxiv.org/abs/2304.08028",
    )
    DEVIATIONS = (
        "Teacher and student are the suite's fusion network (timm encoders, concat fusion, "
        "FPN) instead of ESANet-R50; MAD is applied to the fused features at strides 32, 16 "
        "and 8, the counterparts of ESANet's context-module output and its two deeper skips.",
        "The teacher is trained in the run for the same step budget as the student (the "
        "suite's teacher rule: 2 x budget update calls, each stage with its own AdamW "
        "one-cycle schedule over the budget), where MMANet loads a teacher trained to "
        "convergence beforehand and trains the student for 300 epochs of SGD with OneCycleLR; "
        "the teacher's cost is reported beside the student's and counted in the run's. An "
        "earlier version split one budget 40/60, leaving the student fewer steps than any "
        "other method's model.",
        "MMANet scores every combination at the validations of epochs 6-9 and fixes the "
        "weakest at epoch 10 (`begin_epoch`), when MAD and MAR start. Here the gaps are summed "
        "over the student-stage validations up to the first one at or after `begin_fraction` "
        "of the student stage, where the weakest is fixed and MAR starts (MAD starts at "
        "`begin_fraction` itself); validation data only.",
        "The cost columns' FLOPs probe fresh copies of the method, which have not been "
        "validated: MAR's auxiliary decoder (on the samples that drew the weakest combination) "
        "is not in `train_gflops_per_step`; the measured `step_ms` includes it.",
        "The suite's class-weighted CE (inverse square root of frequency) instead of "
        "median-frequency weighting; no AMP on CPU.",
        "MAD's entropy weights come from the teacher's class logits, as the paper describes "
        "(the entropy of the teacher's prediction). The official loop passes the teacher's "
        "seventh training-mode output instead, the first decoder stage's feature map, "
        "softmaxed over its channels; its teacher also stays in training mode (batch "
        "statistics in its forward pass), where ours is frozen in eval mode.",
        "MAD otherwise follows the official loss: maps with more than 30 rows pooled to 30 x "
        "40, logits pooled before the softmax, Gram matrices over every position of the "
        "batch, rows normalised per column half, entropy weights normalised over the batch, "
        "summed over the three levels. Under `--train-missing` it distils on the complete "
        "samples only (the teacher's inputs must be complete).",
        "The student's dropout zeroes a dropped modality's features at every scale after "
        "encoding its real input (mmFormer's MaskModal); the official `modality_drop` zeroes "
        "them after the stem and after each stage, so later stages of a dropped modality "
        "encode zeros. A sample that lacks a modality under `--train-missing` skips that "
        "modality's encoder (`encode_present`): its features are zero as at test, and nothing "
        "of it enters the encoder's batch statistics.",
    )
    HPARAMS = {
        "mad_weight": HParam(
            4.0,
            "weight of margin-aware distillation (paper: 4.0)",
            low=0.0,
            high=100.0,
            search=Search.decades(1),
        ),
        "mar_weight": HParam(
            0.2,
            "weight of the weakest-combination auxiliary CE (paper: 0.2)",
            low=0.0,
            high=10.0,
            search=Search.decades(1),
        ),
        "begin_fraction": HParam(
            10 / 300,
            "share of the student stage before MAD and MAR start (paper: epoch 10 of 300)",
            low=0.0,
            high=1.0,
        ),
        **sampler_hparams("student dropout"),
    }

    def __init__(
        self, spec: DatasetSpec, hparams: Mapping[str, Any], context: TrainContext
    ) -> None:
        super().__init__(spec, hparams, context)
        hp = self.hparams
        self.begin_step = self.teacher_steps + round(hp["begin_fraction"] * self.student_steps)
        self.aux_decoder = copy.deepcopy(self.student.decoder)
        self.aux_head = copy.deepcopy(self.student.head)
        self.sampler = SubsetSampler.from_hparams(self.modalities, hp)
        self.subsets = [frozenset(s) for s in self.sampler.subsets]
        self.register_buffer("gaps", torch.zeros(len(self.subsets)))
        """Per subset: sum over validations of (full mIoU - subset mIoU)^2 (MAR's search)."""
        self.register_buffer("weakest", torch.tensor(-1, dtype=torch.long))
        """Index in `subsets` of the weakest combination once fixed, else -1."""
        student = [
            *self.student.parameters(),
            *self.aux_decoder.parameters(),
            *self.aux_head.parameters(),
        ]
        self.configure_optimizer(student, "student", steps=self.student_steps)

    # ------------------------------------------------------------ MAR's validation search
    def feedback_scenarios(self) -> tuple[Scenario, ...]:
        """Every combination, while the student trains and the weakest is not yet fixed."""
        if not self.student_active or int(self.weakest) >= 0 or len(self.subsets) < 2:
            return ()
        return tuple(Scenario(s) for s in self.subsets)

    def observe_validation(self, iou: Mapping[Scenario, Sequence[float]], step: int) -> None:
        """Add each combination's squared gap to the full set; fix the weakest once due."""
        miou = {
            s.present: nan_mean(np.asarray(values, dtype=np.float64)) for s, values in iou.items()
        }
        full = miou.get(self.subsets[0], math.nan)
        for i, subset in enumerate(self.subsets[1:], start=1):
            if subset in miou and not math.isnan(full) and not math.isnan(miou[subset]):
                self.gaps[i] += (full - miou[subset]) ** 2
        if step >= self.begin_step:
            self.weakest.fill_(int(torch.argmax(self.gaps[1:])) + 1)

    # ------------------------------------------------------------ training
    def student_forward(
        self,
        inputs: Mapping[str, Tensor],
        keep: Tensor,
        size: tuple[int, int],
        available: Tensor | None = None,
    ) -> tuple[Tensor, list[Tensor]]:
        """Student logits and fused pyramid, features zeroed where `keep` (bool [B, M]) is
        False. A sample lacking a modality (`available`, bool [B, M]; None = none lacks one)
        skips that modality's encoder (`encode_present`); its features are zero either way."""
        if available is None:
            encoded = self.student.encode(inputs)
        else:
            have = self.sampler.as_dict(available)
            encoded = encode_present(self.student.encode_each, inputs, have)
            encoded = [encoded[m] for m in self.modalities]
        pyramids = zero_features(encoded, keep.unbind(1))
        fused = self.student.fusion(pyramids)
        return self.student.decode(fused, size), fused

    def student_update(
        self, inputs: Mapping[str, Tensor], mask: Tensor, step: int, available: Tensor
    ) -> dict[str, float]:
        size = tuple(mask.shape[-2:])
        hp = self.hparams
        keep = self.sampler.sample_available(available)
        complete = available.all(1)
        weakest = int(self.weakest)
        with self.autocast():
            logits, fused = self.student_forward(inputs, keep, size, available)
            ce = self.segmentation_loss(logits, mask)
            mad = mar = ce.new_zeros(())
            # MAD needs no validation: it starts on schedule, from complete samples only
            if step >= self.begin_step and bool(complete.any()):
                rows = slice(None) if bool(complete.all()) else complete
                with torch.no_grad():
                    taught = {m: x[rows] for m, x in inputs.items()}
                    teacher_fused = self.teacher.fusion(self.teacher.encode(taught))
                    teacher_logits = self.teacher.decode(teacher_fused, size)
                mad = sum(
                    margin_distillation(fused[level][rows], teacher_fused[level], teacher_logits)
                    for level in MAD_LEVELS
                )
            if weakest >= 0:  # MAR waits for the validation that fixes the weakest combination
                chosen = (keep == self.sampler.table[weakest].to(keep.device)).all(1)
                if bool(chosen.any()):
                    aux = self.aux_head(self.aux_decoder([f[chosen] for f in fused]), size)
                    mar = self.segmentation_loss(aux, mask[chosen])
        loss = ce + hp["mad_weight"] * mad + hp["mar_weight"] * mar
        self.optimisation_step(loss, "student")
        return {
            "loss": float(loss.detach()),
            "student_ce": float(ce.detach()),
            "mad": float(mad.detach()),
            "mar": float(mar.detach()),
        }

    def predict(self, inputs: Mapping[str, Tensor]) -> Tensor:
        # Always the student: the model MMANet deploys (its auxiliary decoder is training-only).
        present = {m: inputs[m] for m in self.modalities if m in inputs}
        first = next(iter(present.values()))
        keep = torch.tensor(
            [[m in present for m in self.modalities]], dtype=torch.bool, device=first.device
        ).expand(first.shape[0], -1)
        filled = mean_fill(present, self.modalities, self.channels)  # zeroed again below
        with self.autocast():
            logits, _ = self.student_forward(filled, keep, tuple(first.shape[-2:]))
            return logits.float()

    def predict_partial(
        self, inputs: Mapping[str, Tensor], validity: Mapping[str, Tensor]
    ) -> Tensor:
        """The student with invalid pixels dropped as a missing modality is, cell by cell: its
        features scaled by each cell's share of valid pixels (`scale_invalid`)."""
        present = mean_fill_invalid(
            {m: inputs[m] for m in self.modalities if m in inputs}, validity
        )
        first = next(iter(present.values()))
        keep = torch.tensor(
            [[m in present for m in self.modalities]], dtype=torch.bool, device=first.device
        ).expand(first.shape[0], -1)
        filled = mean_fill(present, self.modalities, self.channels)
        with self.autocast():
            pyramids = zero_features(self.student.encode(filled), keep.unbind(1))
            pyramids = scale_invalid(pyramids, self.modalities, valid_shares(validity, pyramids[0]))
            logits = self.student.decode(self.student.fusion(pyramids), tuple(first.shape[-2:]))
            return logits.float()

    def diagnostics(self) -> dict[str, float]:
        """The stages' bookkeeping and MAR's weakest combination (-1: not fixed yet)."""
        return {**super().diagnostics(), "weakest_subset": float(self.weakest)}


__all__ = ["MMANet"]
