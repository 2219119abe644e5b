"""LCKD: teachers follow single-modality validation scores; the L1 never flows into a teacher;
the random stage draws subsets as LCKD's code does (never the full set)."""

from __future__ import annotations

import math

import torch

from benchmark.core.scenarios import Scenario
from methods.components.training.dropout import SubsetSampler
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


def test_random_stage_draws_as_lckd_never_the_full_or_the_empty_set():
    """LCKD's DualNet draws k uniform in 1..M-1, then k modalities: with four modalities a
    single modality or a triple has probability 1/12 each, a pair 1/18, the full set 0."""
    modalities = ("a", "b", "c", "d")
    sampler = SubsetSampler(modalities, per="batch", include_full=False, by_size=True)
    expected = {1: 1 / 12, 2: 1 / 18, 3: 1 / 12}
    assert len(sampler.subsets) == 14 and frozenset(modalities) not in sampler.subsets
    for subset, p in zip(sampler.subsets, sampler.probabilities.tolist(), strict=True):
        assert abs(p - expected[len(subset)]) < 1e-12
    torch.manual_seed(0)
    sizes = torch.stack([sampler.sample(3)[0] for _ in range(3000)]).sum(1)
    assert int(sizes.min()) >= 1 and int(sizes.max()) <= 3
    shares = [float((sizes == k).float().mean()) for k in (1, 2, 3)]
    assert all(abs(share - 1 / 3) < 0.04 for share in shares), shares


def test_the_methods_random_stage_keeps_one_of_two_modalities(data_root):
    method, sampler, _ = build_method("lckd", data_root, {"full_fraction": 0.0}, steps=4)
    assert method.sampler.subsets == [frozenset({"dsm"}), frozenset({"optical"})]
    torch.manual_seed(0)
    keeps = torch.cat([method.sampler.sample(4) for _ in range(50)])
    assert bool((keeps.sum(1) == 1).all())  # never both, never none
    assert 0 < float(keeps[:, 0].float().mean()) < 1
    single, _, _ = build_method("lckd", data_root, steps=2, modalities=("optical",))
    assert single.sampler.subsets == [frozenset({"optical"})]  # nothing to drop
