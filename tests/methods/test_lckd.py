"""LCKD: teachers follow single-modality validation scores; the L1 never flows into a teacher."""

from __future__ import annotations

import math

import torch

from benchmark.core.scenarios import Scenario
from methods.components.training.election import elect_teachers, teacher_l1
from tests.methods.zoo_helpers import build_method

NAN = math.nan


def single(iou_by_modality):
    return {Scenario(frozenset({m})): v for m, v in iou_by_modality.items()}


def test_election_is_per_class_and_follows_the_scores():
    elected = elect_teachers(
        {"dsm": [0.9, 0.1, NAN], "optical": [0.2, 0.8, NAN]}, ("dsm", "optical")
    )
    teachers = [i in elected for i in range(2)]
    assert elected == [0, 1, -1] and teachers == [True, True]
    elected = elect_teachers(
        {"dsm": [0.9, 0.9, 0.5], "optical": [0.2, 0.8, 0.4]}, ("dsm", "optical")
    )
    teachers = [i in elected for i in range(2)]
    assert elected == [0, 0, 0] and teachers == [True, False]


def test_the_method_reelects_at_every_validation(data_root):
    method, _, _ = build_method("lckd", data_root, steps=4)
    assert method.teachers == [] and method.feedback_scenarios() == tuple(
        Scenario(frozenset({m})) for m in method.modalities
    )
    method.observe_validation(single({"dsm": [0.9] * 6, "optical": [0.1] * 6}), step=2)
    assert method.teachers == ["dsm"]
    method.observe_validation(single({"dsm": [0.1] * 6, "optical": [0.9] * 6}), step=4)
    assert method.teachers == ["optical"]
    assert method.diagnostics() == {"elections": 2.0, "teacher_dsm": 0.0, "teacher_optical": 1.0}
    restored, _, _ = build_method("lckd", data_root, steps=4)  # a resumed run keeps them
    restored.load_state_dict(method.state_dict())
    assert restored.teachers == ["optical"]


def test_the_l1_reaches_students_and_never_a_teacher():
    torch.manual_seed(0)
    teacher = torch.randn(2, 4, 3, 3, requires_grad=True)
    student = torch.randn(2, 4, 3, 3, requires_grad=True)
    keep = {"a": torch.tensor([True, True]), "b": torch.tensor([True, False])}
    loss = teacher_l1({"a": teacher, "b": student}, keep, teachers=["a"])
    loss.backward()
    assert teacher.grad is None or not teacher.grad.any()
    assert student.grad[0].abs().sum() > 0 and not student.grad[1].any()  # sample 1 lacks b
    assert float(teacher_l1({"a": teacher, "b": student}, keep, teachers=[])) == 0.0


def test_a_training_step_sends_no_distillation_gradient_into_the_teachers_stem(data_root):
    method, sampler, _ = build_method("lckd", data_root, {"full_fraction": 1.0}, steps=4)
    method.observe_validation(single({"dsm": [0.9] * 6, "optical": [0.1] * 6}), step=1)
    batch = sampler.batch(0)
    inputs = {m: batch[m] for m in method.modalities}
    encoded = method.encoder(inputs)
    keep = {m: torch.ones(batch["mask"].shape[0], dtype=torch.bool) for m in method.modalities}
    bottleneck = {m: encoded[m][-1] for m in method.modalities}
    teacher_l1(bottleneck, keep, method.teachers).backward()
    stems = method.encoder.stems
    assert all(p.grad is None or not p.grad.any() for p in stems["dsm"].parameters())
    assert any(p.grad is not None and p.grad.any() for p in stems["optical"].parameters())
