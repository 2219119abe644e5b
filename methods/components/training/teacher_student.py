"""Two stages in one step budget: a full-modal fusion teacher, frozen, then a student.

Distillation methods (`distill`, `mmanet`) share the schedule and the bookkeeping: the first
`teacher_fraction` of the budget trains the teacher with CE on complete inputs under its own
AdamW one-cycle schedule; from then on the teacher is frozen (eval mode, no gradient, no
batch-norm statistics updates) and only the student and whatever the method adds learn, under
a second schedule. `predict` is always the student, so validation-based selection can never pick
a teacher checkpoint; the teacher's own full-modality validation mIoU is recorded as
`teacher_val_miou`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from benchmark.api import (
    Batch,
    DatasetSpec,
    HParam,
    Method,
    TrainContext,
    availability_matrix,
    labels_of,
    zero_fill_missing,
)
from methods.components.segmenter import FusionSegmenter
from methods.components.training.fill import mean_fill

TEACHER_FRACTION = HParam(
    0.4, "share of the step budget spent training the teacher", low=0.05, high=0.95
)


class TeacherStudentMethod(Method):
    """A fusion teacher and a same-size fusion student, each with its own stage and schedule.

    Subclasses configure the student's optimiser (`"student"`, over `student_steps`) with
    whatever else trains beside the student, and implement `student_update`.
    """

    def __init__(
        self, spec: DatasetSpec, hparams: Mapping[str, Any], context: TrainContext
    ) -> None:
        super().__init__(spec, hparams, context)
        hp = self.hparams
        total = max(2, context.total_steps)
        self.teacher_steps = min(total - 1, max(1, round(hp["teacher_fraction"] * total)))
        self.student_steps = total - self.teacher_steps
        self.teacher = self.fusion_network()
        self.student = self.fusion_network()
        self.register_buffer("updates", torch.zeros(2, dtype=torch.long))
        """Teacher and student optimisation steps taken so far."""
        self.configure_optimizer(self.teacher.parameters(), "teacher", steps=self.teacher_steps)

    def fusion_network(self) -> FusionSegmenter:
        hp = self.hparams
        return FusionSegmenter(
            self.spec, self.modalities, hp["backbone"], hp["decoder_channels"], hp["weights"]
        )

    @property
    def student_active(self) -> bool:
        return int(self.updates[1]) > 0

    def update(self, batch: Batch, step: int) -> dict[str, float]:
        """The teacher's step during its stage; afterwards, frozen, the student's.

        Under `--train-missing` a sample's absent modality arrives zero-filled, and
        `available` (bool [B, M]) tells the stages which samples are complete.
        """
        inputs = zero_fill_missing(batch, self.modalities)
        available = availability_matrix(batch, self.modalities)
        mask = labels_of(batch)
        if step < self.teacher_steps:
            return self.teacher_update(inputs, mask, available.all(1))
        self.freeze_teacher()
        losses = self.student_update(inputs, mask, step, available)
        self.updates[1] += 1
        return losses

    @abc.abstractmethod
    def student_update(
        self, inputs: Mapping[str, Tensor], mask: Tensor, step: int, available: Tensor
    ) -> dict[str, float]:
        """One student-stage step (the teacher is frozen); returns named scalar losses.

        The teacher's outputs are trustworthy only for complete samples (`available.all(1)`).
        """

    def teacher_update(
        self, inputs: Mapping[str, Tensor], mask: Tensor, complete: Tensor
    ) -> dict[str, float]:
        """One teacher-stage step: CE on complete inputs (the complete samples only)."""
        if not bool(complete.all()):
            if not bool(complete.any()):
                self.skip_step("teacher")
                self.updates[0] += 1
                return {"skipped_update": 1.0}
            inputs = {m: x[complete] for m, x in inputs.items()}
            mask = mask[complete]
        with self.autocast():
            logits = self.teacher(inputs)
        loss = self.segmentation_loss(logits, mask)
        self.optimisation_step(loss, "teacher")
        self.updates[0] += 1
        return {"loss": float(loss.detach()), "teacher_ce": float(loss.detach())}

    def freeze_teacher(self) -> None:
        """No gradient and no batch-norm statistics updates for the teacher from now on."""
        self.teacher.eval()
        self.teacher.requires_grad_(False)
        self.teacher.zero_grad(set_to_none=True)

    def validation_probes(self) -> dict[str, Callable[[Mapping[str, Tensor]], Tensor]]:
        """The teacher, validated with every modality next to the student."""
        return {"teacher": self.teacher_predict}

    def teacher_predict(self, inputs: Mapping[str, Tensor]) -> Tensor:
        """The teacher's logits (a missing modality zero-filled, as the baseline does)."""
        present = {k: v for k, v in inputs.items() if k in self.channels}
        with self.autocast():
            return self.teacher(mean_fill(present, self.modalities, self.channels)).float()

    def diagnostics(self) -> dict[str, float]:
        """The budget split (planned) and the steps each stage has taken so far."""
        return {
            "teacher_steps": float(self.teacher_steps),
            "student_steps": float(self.student_steps),
            "teacher_updates": float(self.updates[0]),
            "student_updates": float(self.updates[1]),
            "student_active": float(self.student_active),
        }


__all__ = ["TEACHER_FRACTION", "TeacherStudentMethod"]
