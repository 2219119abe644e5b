"""MMANet: the teacher is frozen in the student stage, the margin term relates every position
of the batch and weighs the positions the teacher is unsure about (as MMANet's official loss),
and MAR fixes the weakest combination from validation."""

from __future__ import annotations

import math

import torch

from benchmark.core.method import evaluation_mode, modality_inputs
from benchmark.core.scenarios import Scenario
from methods.components.training.margin import (
    margin_distillation,
    margin_weights,
    pooled,
    positions,
    relation_distance,
)
from tests.methods.zoo_helpers import build_method, changed, snapshot


def test_teacher_trains_then_is_frozen_and_predict_is_the_student(data_root):
    method, sampler, _ = build_method("mmanet", data_root, steps=2)  # 2 teacher + 2 student
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
    assert torch.allclose(weights.sum(), torch.tensor(1.0))
    assert weights[:2].max() < 1e-6 and torch.allclose(weights[2:], torch.tensor([0.5, 0.5]))


def test_entropy_weights_are_normalised_over_the_whole_batch():
    """MMANet divides each position's entropy by the batch's total, not by its image's: an
    image the teacher is sure about gets (almost) no weight at all."""
    logits = torch.zeros(2, 3, 2, 2)
    logits[0, 0] = 50.0  # image 0: certain everywhere; image 1: uniform everywhere
    weights = margin_weights(logits, (2, 2)).view(2, 4)
    assert float(weights[0].sum()) < 1e-6 and torch.allclose(weights[1].sum(), torch.tensor(1.0))
    sure = torch.zeros(1, 3, 2, 2)
    sure[:, 0] = 200.0  # certain everywhere: no weight anywhere (MMANet's NaN, then zero)
    assert float(margin_weights(sure, (2, 2)).abs().sum()) == 0.0


def test_teacher_logits_are_pooled_before_the_softmax():
    """Image 0 pools logits (20, 0) and (0, 0) into one cell: (10, 0), almost certain. Pooling
    probabilities instead would give (.75, .25), far from certain. Image 1 is uniform."""
    logits = torch.zeros(2, 2, 1, 2)
    logits[0, 0, 0, 0] = 20.0
    weights = margin_weights(logits, (1, 1))
    assert weights.shape == (2,)
    pooled_logits = torch.tensor([10.0, 0.0]).softmax(0)
    entropy = -(pooled_logits * pooled_logits.log()).sum()
    uniform = torch.log(torch.tensor(2.0))
    torch.testing.assert_close(weights[0], entropy / (entropy + uniform))
    assert float(weights[0]) < 0.01


def test_mad_gram_matrix_spans_the_batch():
    """Rotating one image's features (an orthogonal map of the channels) keeps every relation
    inside each image, so a per-image MAD is zero; MMANet's batch-wide Gram matrix also
    relates the positions of different images, and those relations changed."""
    torch.manual_seed(0)
    teacher = torch.randn(3, 6, 2, 2)
    rotation, _ = torch.linalg.qr(torch.randn(6, 6))
    student = teacher.clone()
    student[1] = torch.einsum("dc,chw->dhw", rotation, teacher[1])
    logits = torch.randn(3, 4, 8, 8)
    per_image = [
        margin_distillation(student[i : i + 1], teacher[i : i + 1], logits[i : i + 1])
        for i in range(3)
    ]
    assert max(float(x) for x in per_image) < 1e-6
    assert float(margin_distillation(student, teacher, logits)) > 1e-3
    assert float(margin_distillation(teacher, teacher, logits)) < 1e-10


def test_relation_rows_are_normalised_per_column_half():
    """MMANet builds the Gram matrix in two halves of its columns and normalises each row of
    each half: scaling the samples of one half leaves the distance unchanged."""
    torch.manual_seed(0)
    teacher = torch.randn(6, 5)
    student = teacher.clone()
    student[3:] *= 3.0  # the second half of the columns (and of the rows)
    distance = relation_distance(student, teacher)
    assert distance.shape == (6,) and float(distance.max()) < 1e-8
    assert float(relation_distance(torch.randn(6, 5), teacher).min()) > 0


def test_maps_above_thirty_rows_are_pooled_to_mmanets_grid():
    assert pooled(torch.randn(2, 3, 30, 30)).shape == (2, 3, 30, 30)
    assert pooled(torch.randn(2, 3, 64, 64)).shape == (2, 3, 30, 40)
    x = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).view(2, 3, 2, 2)
    assert torch.equal(positions(x)[5], x[1, :, 0, 1])  # image 1, row 0, column 1


def test_mar_fixes_the_weakest_combination_from_validation(data_root):
    method, sampler, _ = build_method("mmanet", data_root, steps=50)  # 50 teacher + 50 student
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
    method, sampler, _ = build_method("mmanet", data_root, {"begin_fraction": 0.5}, steps=4)
    assert (method.teacher_steps, method.begin_step) == (4, 6)
    losses = [method.update(sampler.batch(step), step) for step in range(8)]
    assert [x["mad"] > 0 for x in losses[4:]] == [False, False, True, True]
    assert all(x.get("mar", 0) == 0 for x in losses)  # nobody validated: no weakest combination
