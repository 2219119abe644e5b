"""Distillation: the teacher trains first, is frozen afterwards, and the student learns from it;
the suite's teacher rule gives the student the whole step budget (`distill` and `mmanet`)."""

from __future__ import annotations

import pytest
import torch

from benchmark.core.method import evaluation_mode, modality_inputs
from benchmark.core.plugins import METHODS
from methods.components.training.distillation import feature_l1, logit_kl
from tests.methods.zoo_helpers import build_method, changed, snapshot


def test_budget_split_is_recorded(data_root):
    method, _, _ = build_method("distill", data_root, steps=10)
    stats = method.diagnostics()
    assert (stats["teacher_steps"], stats["student_steps"]) == (10.0, 10.0)
    assert stats["student_active"] == 0.0


@pytest.mark.parametrize("name", ["distill", "mmanet"])
def test_the_student_gets_the_whole_step_budget(name, data_root):
    """The teacher rule: the teacher's S steps come on top of the budget, so the deployed
    student takes S optimisation steps on its own full one-cycle schedule, as every other
    method's model does; the harness plans 2S update calls."""
    steps = 2
    cls = METHODS.get(name)
    assert cls.update_calls(steps) == 2 * steps and cls.STAGES == ("teacher", "student")
    assert METHODS.get("baseline").update_calls(steps) == steps
    method, sampler, _ = build_method(name, data_root, steps=steps)
    for call in range(cls.update_calls(steps)):
        method.update(sampler.batch(call % steps), call)
    stats = method.diagnostics()
    assert (stats["teacher_updates"], stats["student_updates"]) == (steps, steps)
    schedule = method._schedulers["student"]
    assert schedule.total_steps == steps + 1 and schedule.last_epoch == steps
    assert method._schedulers["teacher"].last_epoch == steps


def test_teacher_trains_then_is_frozen_while_the_student_learns(data_root):
    method, sampler, _ = build_method("distill", data_root, steps=2)
    teacher, student = snapshot(method.teacher), snapshot(method.student)
    for step in range(2):  # teacher stage
        losses = method.update(sampler.batch(step), step)
        assert "teacher_ce" in losses
    assert changed(teacher, method.teacher) and not changed(student, method.student)

    frozen = snapshot(method.teacher)
    for step in range(2, 4):  # student stage
        losses = method.update(sampler.batch(step), step)
        assert {"kd", "feature_l1", "student_ce"} <= set(losses)
    # no weight and no batch-norm statistic of the teacher moved; the student did
    assert changed(frozen, method.teacher) == []
    assert changed(student, method.student)
    assert all(p.grad is None for p in method.teacher.parameters())
    assert method.diagnostics()["student_updates"] == 2.0


def test_predict_is_always_the_student(data_root):
    """Selection must never pick a teacher checkpoint: predict is the student in both stages."""
    method, sampler, _ = build_method("distill", data_root, steps=2)
    inputs = modality_inputs(sampler.batch(9))
    method.update(sampler.batch(0), 0)  # teacher stage
    with evaluation_mode(method):
        torch.testing.assert_close(method.predict(inputs), method.student(inputs))
    method.update(sampler.batch(2), 2)  # first student step
    with evaluation_mode(method):
        torch.testing.assert_close(method.predict(inputs), method.student(inputs))


def test_kd_losses():
    torch.manual_seed(0)
    logits = torch.randn(2, 6, 8, 8)
    assert float(logit_kl(logits, logits, 10.0)) < 1e-6
    other = torch.randn(2, 6, 8, 8)
    plain = logit_kl(other, logits, 4.0, t_squared=False)
    assert plain > 0
    torch.testing.assert_close(logit_kl(other, logits, 4.0), plain * 16)
    student = other.clone().requires_grad_(True)
    teacher = logits.clone().requires_grad_(True)
    (logit_kl(student, teacher, 2.0) + feature_l1(student, teacher)).backward()
    assert teacher.grad is None and student.grad.abs().sum() > 0


def test_default_loss_is_protokds():
    from benchmark.core.plugins import METHODS

    space = METHODS.get("distill").hparam_space()
    defaults = {k: space[k].default for k in ("temperature", "kd_weight", "t_squared")}
    assert defaults == {"temperature": 10.0, "kd_weight": 10.0, "t_squared": False}
    assert space["proto_weight"].default == 0.1 and space["feature_weight"].default == 0.0


def test_prototype_loss_pulls_only_the_student():
    from methods.components.training.distillation import prototype_loss

    torch.manual_seed(0)
    labels = torch.randint(0, 3, (2, 4, 4))
    labels[0, 0, 0] = 255
    teacher = torch.randn(2, 5, 4, 4, requires_grad=True)
    assert float(prototype_loss(teacher.detach(), teacher, labels, 3, 255)) < 1e-10
    student = torch.randn(2, 5, 4, 4, requires_grad=True)
    loss = prototype_loss(student, teacher, labels, 3, 255)
    assert float(loss) > 0
    loss.backward()
    assert teacher.grad is None and student.grad.abs().sum() > 0


def test_student_stage_reports_the_prototype_term(data_root):
    method, sampler, _ = build_method("distill", data_root, steps=1)
    method.update(sampler.batch(0), 0)
    losses = method.update(sampler.batch(0), 1)
    assert {"kd", "proto", "student_ce"} <= set(losses) and losses["proto"] > 0
    assert set(method.validation_probes()) == {"teacher"}
