"""MMANet: the teacher is frozen in the student stage, the margin term weighs the pixels the
teacher is unsure about, and MAR fixes the weakest combination from validation."""

from __future__ import annotations

import math

import torch

from benchmark.core.method import evaluation_mode, modality_inputs
from benchmark.core.scenarios import Scenario
from methods.components.training.margin import margin_distillation, margin_weights, relation_rows
from tests.methods.zoo_helpers import build_method, changed, snapshot


def test_teacher_trains_then_is_frozen_and_predict_is_the_student(data_root):
    method, sampler, _ = build_method("mmanet", data_root, {"teacher_fraction": 0.5}, steps=4)
    teacher, student = snapshot(method.teacher), snapshot(method.student)
    for step in range(2):
        assert "teacher_ce" in method.update(sampler.batch(step), step)
    assert changed(teacher, method.teacher) and not changed(student, method.student)
    frozen = snapshot(method.teacher)
    method.weakest.fill_(1)  # as if validation had fixed it: MAD and MAR both act
    for step in range(2, 4):
        losses = method.update(sampler.batch(step), step)
        assert losses["mad"] > 0
    assert changed(frozen, method.teacher) == []  # weights and batch-norm statistics
    assert all(p.grad is None for p in method.teacher.parameters())
    assert changed(student, method.student)
    inputs = modality_inputs(sampler.batch(9))
    with evaluation_mode(method):
        keep = torch.ones(inputs["dsm"].shape[0], 2, dtype=torch.bool)
        expected, _ = method.student_forward(inputs, keep, tuple(inputs["dsm"].shape[-2:]))
        torch.testing.assert_close(method.predict(inputs), expected)


def test_margin_weights_follow_teacher_entropy():
    logits = torch.zeros(1, 3, 2, 2)
    logits[0, 0, 0, :] = 50.0  # top row: certain; bottom row: uniform (maximal entropy)
    weights = margin_weights(logits, (2, 2))
    assert torch.allclose(weights.sum(1), torch.ones(1))
    assert weights[0, :2].max() < 1e-6 and torch.allclose(weights[0, 2:], torch.tensor([0.5, 0.5]))


def test_margin_term_ignores_rows_of_pixels_the_teacher_is_sure_about():
    torch.manual_seed(0)
    teacher, student = torch.randn(1, 4, 2, 2), torch.randn(1, 4, 2, 2)
    logits = torch.zeros(1, 3, 2, 2)
    logits[0, 0, 0, :] = 50.0
    rows = (relation_rows(student, (2, 2)) - relation_rows(teacher, (2, 2))).pow(2).sum(2)[0]
    loss = margin_distillation(student, teacher, logits)
    torch.testing.assert_close(loss, 0.5 * rows[2] + 0.5 * rows[3], atol=1e-5, rtol=1e-4)
    assert float(margin_distillation(teacher, teacher, logits)) < 1e-10


def test_mar_fixes_the_weakest_combination_from_validation(data_root):
    method, sampler, _ = build_method("mmanet", data_root, {"teacher_fraction": 0.5}, steps=100)
    assert method.feedback_scenarios() == ()  # teacher stage: the student is untrained
    assert method.begin_step == 52
    method.update(sampler.batch(50), 50)  # the student stage begins
    subsets = method.subsets
    assert [len(s.present) for s in method.feedback_scenarios()] == [2, 1, 1]
    scores = {Scenario(subsets[0]): [0.8] * 6, Scenario(subsets[1]): [0.7] * 6}
    scores[Scenario(subsets[2])] = [0.2] * 6
    method.observe_validation(scores, step=50)
    assert int(method.weakest) == -1  # before begin: still searching
    method.observe_validation(scores, step=method.begin_step)
    assert int(method.weakest) == 2 and method.feedback_scenarios() == ()
    assert math.isclose(float(method.gaps[2]), 2 * 0.6**2, rel_tol=1e-5)


def test_mad_starts_on_schedule_and_mar_waits_for_validation(data_root):
    overrides = {"teacher_fraction": 0.5, "begin_fraction": 0.5}
    method, sampler, _ = build_method("mmanet", data_root, overrides, steps=8)
    assert (method.teacher_steps, method.begin_step) == (4, 6)
    losses = [method.update(sampler.batch(step), step) for step in range(8)]
    assert [x["mad"] > 0 for x in losses[4:]] == [False, False, True, True]
    assert all(x.get("mar", 0) == 0 for x in losses)  # nobody validated: no weakest combination
