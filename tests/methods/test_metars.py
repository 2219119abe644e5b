"""MetaRS: only the stems of the content encoder are modality-specific, the whitening mask is
built from training batches only (never validation or test data), the blocks and the inference
are the official code's (residual onto the specific features, SCSE, one head predicts)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.core.method import evaluation_mode, modality_inputs
from benchmark.core.scenarios import Scenario
from benchmark.system.errors import BenchmarkError
from methods.components.training.whitening import CovarianceMask, kmeans_1d, whitening_loss
from tests.methods.zoo_helpers import build_method, snapshot


def test_content_stems_are_the_only_modality_specific_part_of_the_content_encoder(data_root):
    method, sampler, _ = build_method("metars", data_root, steps=4)
    batch = sampler.batch(0)
    content = method.content
    grads = {}
    for m in method.modalities:
        method.zero_grad(set_to_none=True)
        content({m: batch[m]})[m][-1].sum().backward()
        grads[m] = {n for n, p in content.named_parameters() if p.grad is not None and p.grad.any()}
    dsm_only, optical_only = grads["dsm"] - grads["optical"], grads["optical"] - grads["dsm"]
    assert dsm_only and all(n.startswith("stems.dsm.") for n in dsm_only)
    assert optical_only and all(n.startswith("stems.optical.") for n in optical_only)
    shared = grads["dsm"] & grads["optical"]
    assert shared and all(n.startswith("trunk.") for n in shared)


def test_whitening_statistics_come_from_training_batches_only(data_root):
    overrides = {"begin_fraction": 0.5, "mask_batches": 2}
    method, sampler, _ = build_method("metars", data_root, overrides, steps=6)
    masks = [snapshot(m) for m in method.masks]
    inputs = modality_inputs(sampler.batch(7))
    for step in range(6):
        if step == 1:  # predicting (validation, test) in the middle changes nothing
            with evaluation_mode(method):
                for scenario in ({"dsm"}, {"optical"}, {"dsm", "optical"}):
                    method.predict({m: inputs[m] for m in scenario})
            assert all(
                torch.equal(v, m.state_dict()[k])
                for before, m in zip(masks, method.masks, strict=True)
                for k, v in before.items()
            )
        losses = method.update(sampler.batch(step), step)
        if step < 3:
            assert losses["mmr"] == 0 and losses["align"] == 0
    batch_size = sampler.batch(0)["mask"].shape[0]
    assert [int(m.images) for m in method.masks] == [2 * batch_size] * 2  # steps 1 and 2
    assert all(bool(m.built) and int(m.mask.sum()) > 0 for m in method.masks)
    assert losses["mmr"] > 0 and losses["align"] > 0


def test_kmeans_and_mask_rules():
    values = np.array([0.0, 0.01, 0.02, 5.0, 5.1, 9.0])
    labels = kmeans_1d(values, 3)
    assert list(labels) == [0, 0, 0, 1, 1, 2]
    mask = CovarianceMask(3, clusters=2)
    a = torch.randn(4, 3, 5, 5)
    b = a.clone()
    b[:, 2] = torch.randn(4, 5, 5)  # channel 2 relates differently in the other modality
    mask.observe([a, b])
    count = mask.build()
    assert count > 0 and not mask.mask.diagonal().any() and torch.equal(mask.mask, mask.mask.T)
    assert bool(mask.mask[0, 2]) and not bool(mask.mask[0, 1])
    assert float(whitening_loss(a, torch.zeros(3, 3, dtype=torch.bool))) == 0.0


def test_projection_residual_goes_onto_the_specific_features(data_root):
    """MetaRS's `Fusespfnv2_res` adds its block's output to the specific features: with the
    block's conv at zero (so its output is zero) the projection returns them unchanged."""
    method, sampler, _ = build_method("metars", data_root, steps=2)
    project = method.project
    assert project.residual == "specific" and project.attention is not None
    project.eval()
    with torch.no_grad():
        for conv in project.convs:
            conv.weight.zero_()
    batch = sampler.batch(0)
    inputs = {m: batch[m] for m in method.modalities}
    with torch.no_grad(), evaluation_mode(method):
        content = method.content(inputs)
        specific = {m: method.specific[m](inputs[m]) for m in method.modalities}
        out = project(content, specific)
    for m in method.modalities:
        for level, x in enumerate(out[m]):
            torch.testing.assert_close(x, specific[m][level])
            assert not torch.allclose(x, content[m][level])


def test_scse_blocks_are_metars_and_learn(data_root):
    method, sampler, _ = build_method("metars", data_root, steps=2)
    assert method.fusion.attention is not None
    scse = {n: p.detach().clone() for n, p in method.named_parameters() if ".attention." in n}
    assert any(n.startswith("project.") for n in scse) and any(
        n.startswith("fusion.") for n in scse
    )
    method.update(sampler.batch(0), 0)
    after = dict(method.named_parameters())
    assert any(not torch.equal(v, after[n]) for n, v in scse.items() if n.startswith("project."))
    assert any(not torch.equal(v, after[n]) for n, v in scse.items() if n.startswith("fusion."))
    plain, _, _ = build_method("metars", data_root, {"scse": False}, steps=2)
    assert plain.project.attention is None and plain.fusion.attention is None


def test_inference_is_one_heads_and_averaging_is_a_variant(data_root):
    """With several modalities MetaRS predicts from one modality's own head: by default the
    one whose head scored best alone on validation, or `head_modality`; the mean of the heads
    is the `average` variant."""
    method, sampler, _ = build_method("metars", data_root, steps=2)
    method.update(sampler.batch(0), 0)
    inputs = modality_inputs(sampler.batch(5))
    assert [s.present for s in method.feedback_scenarios()] == [{m} for m in method.modalities]

    def predict(model, present):
        with evaluation_mode(model):
            return model.predict({m: inputs[m] for m in present})

    alone = {m: predict(method, {m}) for m in method.modalities}
    first, second = method.modalities  # before any validation: the run's first modality
    torch.testing.assert_close(predict(method, method.modalities), alone[first])
    scores = {Scenario(frozenset({first})): [0.2] * 6, Scenario(frozenset({second})): [0.6] * 6}
    method.observe_validation(scores, step=2)
    torch.testing.assert_close(predict(method, method.modalities), alone[second])
    assert method.diagnostics()["full_head"] == 1.0

    fixed, _, _ = build_method("metars", data_root, {"head_modality": first}, steps=2)
    fixed.load_state_dict(method.state_dict())
    assert fixed.feedback_scenarios() == ()
    torch.testing.assert_close(predict(fixed, fixed.modalities), alone[first])

    average, _, _ = build_method("metars", data_root, {"inference": "average"}, steps=2)
    average.load_state_dict(method.state_dict())
    both = predict(average, average.modalities)
    assert all(not torch.allclose(both, x) for x in alone.values())
    torch.testing.assert_close(predict(average, {"dsm"}), alone["dsm"])
    with pytest.raises(BenchmarkError, match="head_modality"):
        build_method("metars", data_root, {"head_modality": "sar"}, steps=2)
