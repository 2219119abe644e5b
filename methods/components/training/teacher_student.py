"""Two stages: a full-modal fusion teacher trained for the whole budget, frozen, then a student
trained for the whole budget too.

The suite's rule for methods with a teacher (`distill`, `mmanet`): no deployed model trains for
fewer steps than any other method's, and what the teacher costs is paid and shown. A run with a
budget of S steps makes 2S update calls (`update_calls`): calls [0, S) train the teacher with
CE on complete inputs under its own AdamW one-cycle schedule over S steps (the papers load a
converged teacher); calls [S, 2S) train the student and whatever the method adds, under a
second schedule over S steps, the teacher frozen (eval mode, no gradient, no batch-norm
statistics updates). Both stages read the same batches 0..S-1 as every other method's model.
The harness validates, and so selects checkpoints, only in the student stage, and counts the
teacher's calls in the run's cost: its steps, seconds and GFLOPs sit beside the student's in
the records' `extra` (`teacher_train_gflops`, `student_train_gflops`, ...), its FLOPs are in
`train_gflops_per_step` and under `--budget flops` they buy the student fewer steps. `predict`
is always the student; the teacher's own full-modality validation mIoU is `teacher_val_miou`.
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
    Method,
    TrainContext,
    availability_matrix,
    labels_of,
    zero_fill_missing,
)
from methods.components.segmenter import FusionSegmenter
from methods.components.training.fill import mean_fill


class TeacherStudentMethod(Method):
    """A fusion teacher and a same-size fusion student, each with its own stage and schedule.

    Subclasses configure the student's optimiser (`"student"`, over `student_steps`) with
    whatever else trains beside the student, and implement `student_update`.
    """

    STAGES = ("teacher", "student")

    @classmethod
    def update_calls(cls, steps: int) -> int:
        """The teacher's `steps`, then the student's `steps`."""
        return 2 * steps

    def __init__(
        self, spec: DatasetSpec, hparams: Mapping[str, Any], context: TrainContext
    ) -> None:
        super().__init__(spec, hparams, context)
        self.teacher_steps = max(1, context.total_steps)
        self.student_steps = self.teacher_steps
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
        """The teacher's step for the first `teacher_steps` calls; afterwards, frozen, the
        student's (`step` counts calls, as `update_calls` plans them).

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


__all__ = ["TeacherStudentMethod"]
